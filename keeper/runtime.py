"""Wiring for `keeper run` / `keeper status`: settings -> web3 -> chain -> executor -> keeper."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from eth_account import Account
from web3 import AsyncWeb3
from web3.providers import AsyncHTTPProvider, WebSocketProvider

from keeper.chain import Chain
from keeper.config import Settings, load_settings
from keeper.errors import ConfigError
from keeper.execution.executor import Executor
from keeper.execution.journal import Checkpoints, Journal
from keeper.markets import Watch, usd
from keeper.ops import OpsServer
from keeper.rpc import FailoverProvider
from keeper.service import Keeper


def connect(settings: Settings) -> AsyncWeb3[Any]:
    """One endpoint (HTTP or WebSocket), or several comma-separated HTTP endpoints with failover."""
    urls = [u.strip() for u in settings.rpc_url.value.split(",") if u.strip()]
    if len(urls) > 1:
        return AsyncWeb3(
            FailoverProvider(urls, timeout_s=settings.rpc_timeout_s, max_lag_blocks=settings.rpc_max_lag_blocks)
        )
    url = urls[0]
    if url.startswith(("ws://", "wss://")):
        return AsyncWeb3(WebSocketProvider(url))
    return AsyncWeb3(AsyncHTTPProvider(url, request_kwargs={"timeout": settings.rpc_timeout_s}))


def journal_path(settings: Settings) -> str:
    """The journal file: `[execution] journal_path`, or one per network and key under .keeper/."""
    return settings.execution.journal_path or str(Path(".keeper") / f"{settings.network}-{settings.address}.sqlite")


def checkpoint_path(settings: Settings) -> str:
    """Discovery checkpoints: beside the journal (shared by every key and by dry runs)."""
    if settings.execution.journal_path:
        p = Path(settings.execution.journal_path)
        return str(p.with_name(f"{p.stem}-checkpoints.sqlite"))
    return str(Path(".keeper") / f"{settings.network}-checkpoints.sqlite")


def build_keeper(settings: Settings, w3: AsyncWeb3[Any], *, dry_run: bool) -> Keeper:
    chain = Chain(
        w3, settings.multicall3, multicall_chunk=settings.multicall_chunk, log_chunk=settings.log_chunk_blocks
    )
    signer = Account.from_key(settings.private_key.value) if settings.private_key else None
    assert settings.address is not None
    journal = Journal(":memory:" if dry_run else journal_path(settings))
    executor = Executor(chain, settings.execution, settings.address, signer, dry_run=dry_run, journal=journal)
    keeper = Keeper(settings, chain, executor, report=print, checkpoints=Checkpoints(checkpoint_path(settings)))
    keeper.background = True  # decisions never wait on confirmations
    return keeper


async def open_keeper(network: str, env_file: str | None, *, dry_run: bool, require_key: bool) -> Keeper:
    settings = load_settings(network, env_file, require_key=require_key)
    w3 = connect(settings)
    if isinstance(w3.provider, WebSocketProvider):
        await w3.provider.connect()
    return build_keeper(settings, w3, dry_run=dry_run)


async def deploy_testnet(rpc_url: str) -> str:
    """Deploy the test markets (Aave v3, Comet, perps) with the node's first unlocked account; return
    their config TOML."""
    from keeper.devchain import DevChain, config_toml

    w3 = AsyncWeb3(AsyncHTTPProvider(rpc_url))
    try:
        accounts = await w3.eth.accounts
    except Exception as exc:
        from keeper.errors import ConfigError

        raise ConfigError(f"cannot reach a dev node at {rpc_url}: {exc}") from None
    dc = DevChain(w3)
    dep = await dc.deploy_market(accounts[0])
    await dc.deploy_comet(dep)
    await dc.deploy_perps(dep)
    return config_toml(dep, await w3.eth.chain_id)


def status_rows(w: Watch, top: int) -> list[tuple[str, float, float, float, str, float]]:
    """(account, collateral, debt, HF, 'liq. price of the nearest asset', distance) riskiest first;
    values in the market's price units (USD on USD markets)."""
    assert w.book is not None
    snap = w.book.snapshot()
    hf = snap.health.health_factor
    order = np.argsort(hf, kind="stable")[:top]
    rows = []
    for k in order:
        d = snap.distance[k]
        liq = "-"
        if nearest := snap.nearest_liquidation(int(k)):
            liq = f"{w.symbols[nearest[0]]} {usd(nearest[1], w.engine_scale)}"
        emode = getattr(w.book.positions[snap.users[k]], "emode", 0)
        if emode:
            liq = f"e-mode {emode}: not modelled"
        rows.append(
            (
                snap.users[k],
                snap.health.collateral_base[k] / w.engine_scale,
                snap.health.debt_base[k] / w.engine_scale,
                float(hf[k]),
                liq,
                float(d),
            )
        )
    return rows


def print_status(keeper: Keeper, top: int) -> None:
    """Per market, the riskiest accounts; then, when several markets are watched, the riskiest
    across all of them (health factor and margin ratio are on one footing: below 1 is liquidatable)."""
    header = f"{'account':42} {'collateral':>14} {'debt':>14} {'health':>8} {'liquidation price':>24} {'distance':>12}"
    everything = []
    for w in keeper.watches:
        print(f"{w.label} {w.address} at block {w.block}: {len(w.book or [])} accounts")
        print(header)
        for row in status_rows(w, top):
            print(_status_line(*row))
            everything.append((row[3], w.protocol, row))
        print()
    if len(keeper.watches) > 1:
        print(f"riskiest across {len(keeper.watches)} markets")
        print(f"{'market':8} {header}")
        for _, protocol, row in sorted(everything, key=lambda x: x[0])[:top]:
            print(f"{protocol:8} {_status_line(*row)}")


def _status_line(user: str, c: float, d: float, h: float, liq: str, dist: float) -> str:
    hs = "no debt" if math.isinf(h) else f"{h:.4f}"
    ds = "-" if math.isinf(dist) else ("liquidatable" if h < 1 else f"{dist:.1%}")
    return f"{user:42} {usd(c, 1):>14} {usd(d, 1):>14} {hs:>8} {liq:>24} {ds:>12}"


@contextlib.asynccontextmanager
async def serve(keeper: Keeper, *, listen: str | None = None) -> AsyncIterator[OpsServer | None]:
    """Alerts (webhooks from KEEPER_ALERT_WEBHOOKS) and the operations server around a run."""
    from keeper.alerts import install, parse_webhooks

    s = keeper.settings
    hooks = parse_webhooks(s.alert_webhooks.value) if s.alert_webhooks else []
    alerts = install(hooks, min_tier=s.ops.alert_min_tier, cooldown_s=s.ops.alert_cooldown_s)
    address = s.ops.listen if listen is None else ("" if listen == "off" else listen)
    server = None
    if address:
        server = OpsServer(keeper, replace(s.ops, listen=address), alerts)
        try:
            await server.start()
        except OSError as exc:
            raise ConfigError(f"the operations server cannot listen on {address}: {exc}") from None
        print(f"operations server: {server.url}/ (status page), {server.url}/metrics, {server.url}/healthz")
    try:
        yield server
    finally:
        if server is not None:
            await server.stop()
        await alerts.flush_async()
