"""Wiring for `keeper run` / `keeper status`: settings -> web3 -> chain -> executor -> keeper."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from web3 import AsyncWeb3
from web3.providers import WebSocketProvider

from keeper.app.loop import Keeper
from keeper.app.ops import OpsServer
from keeper.errors import ConfigError
from keeper.execution.executor import Executor
from keeper.execution.journal import Checkpoints, Journal
from keeper.execution.signer import RelayAuth, Signer
from keeper.settings import Settings
from keeper.settings.load import load_settings
from keeper.sources.chain import Chain
from keeper.sources.relay import Relay
from keeper.sources.rpc import FailoverProvider


def connect(settings: Settings) -> AsyncWeb3[Any]:
    """A WebSocket endpoint, or one or several comma-separated HTTP endpoints behind the failover
    provider (where failures are classified and retried within `rpc_retry_budget_s`)."""
    urls = [u.strip() for u in settings.rpc_url.get_secret_value().split(",") if u.strip()]
    if len(urls) == 1 and urls[0].startswith(("ws://", "wss://")):
        return AsyncWeb3(WebSocketProvider(urls[0]))
    return AsyncWeb3(
        FailoverProvider(
            urls,
            timeout_s=settings.rpc_timeout_s,
            max_lag_blocks=settings.rpc_max_lag_blocks,
            retry_budget_s=settings.rpc_retry_budget_s,
        )
    )


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
    signer = Signer(settings.private_key) if settings.private_key else None
    assert settings.address is not None
    journal = Journal(":memory:" if dry_run else journal_path(settings))
    executor = Executor(
        chain, settings.execution, settings.address, signer, dry_run=dry_run, journal=journal, relay=relay_of(settings)
    )
    keeper = Keeper(settings, chain, executor, report=print, checkpoints=Checkpoints(checkpoint_path(settings)))
    keeper.background = True  # decisions never wait on confirmations
    return keeper


def relay_of(settings: Settings) -> Relay | None:
    """The private relay of `[execution] private_rpc_url` (signed with KEEPER_RELAY_AUTH_KEY when set)."""
    url = settings.execution.private_rpc_url
    if url is None:
        return None
    auth = RelayAuth(settings.relay_auth_key).header if settings.relay_auth_key else None
    return Relay(url.get_secret_value(), timeout_s=settings.rpc_timeout_s, auth=auth)


async def open_keeper(network: str, env_file: str | None, *, dry_run: bool, require_key: bool) -> Keeper:
    settings = load_settings(network, env_file, require_key=require_key)
    w3 = connect(settings)
    if isinstance(w3.provider, WebSocketProvider):
        await w3.provider.connect()
    return build_keeper(settings, w3, dry_run=dry_run)


@contextlib.asynccontextmanager
async def serve(keeper: Keeper, *, listen: str | None = None) -> AsyncIterator[OpsServer | None]:
    """Alerts (webhooks from KEEPER_ALERT_WEBHOOKS) and the operations server around a run."""
    from keeper.app.alerts import install, parse_webhooks

    s = keeper.settings
    hooks = parse_webhooks(s.alert_webhooks.get_secret_value()) if s.alert_webhooks else []
    alerts = install(hooks, min_tier=s.ops.alert_min_tier, cooldown_s=s.ops.alert_cooldown_s)
    address = s.ops.listen if listen is None else ("" if listen == "off" else listen)
    server = None
    if address:
        server = OpsServer(keeper, s.ops.model_copy(update={"listen": address}), alerts)
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
