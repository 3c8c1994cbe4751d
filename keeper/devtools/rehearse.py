"""Fork rehearsal (`keeper rehearse`): run the keeper against a fork of the real chain before
trusting it with a key.

Starts anvil (from npm) with `--fork-url` at a chosen block, funds the keeper's address on the
fork (native coin with `anvil_setBalance`; tokens by writing their balance slot, found by
probing the usual mapping layouts), optionally shocks prices by replacing the price sources'
code on the fork with our Chainlink-style aggregator (`anvil_setCode`) and posting the shocked
answer, runs the keeper for N blocks, and reports what it did and whether every transaction
succeeded. Nothing happens on the real chain: the fork is a local anvil process, discarded at
the end. With no key configured, an ephemeral key is made for the fork.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import keccak, to_checksum_address
from pydantic import SecretStr
from web3 import AsyncWeb3
from web3.providers import AsyncHTTPProvider

from keeper.app.runtime import build_keeper
from keeper.devtools.anvil import free_port, start_anvil
from keeper.devtools.devchain import DevChain
from keeper.errors import ConfigError, KeeperError
from keeper.execution.signer import Signer
from keeper.settings import Settings
from keeper.settings.load import load_settings
from keeper.sources.abi import fn

log = logging.getLogger("keeper.rehearse")
MOCK_LATEST_ROUND_SLOT = 1
"""MockAggregator's `_latestRound` storage slot (after `description`), reset when it takes over."""


@dataclass
class Rehearsal:
    fork_block: int
    keeper_address: str
    ephemeral_key: bool
    funded: dict[str, int]
    shocks: dict[str, tuple[float, float]]
    """symbol -> (price before, price after) in USD."""
    outcomes: list[Any]

    @property
    def failed(self) -> list[Any]:
        """Sent and reverted, or (dry-run or not) whose simulation reverted."""
        return [o for o in self.outcomes if (o.sent and not o.ok) or o.simulation_reverted]

    def summary(self) -> str:
        lines = [
            f"rehearsal on a fork at block {self.fork_block} (keeper {self.keeper_address}"
            f"{', ephemeral key' if self.ephemeral_key else ''})"
        ]
        for sym, (a, b) in self.shocks.items():
            lines.append(f"  shock: {sym} ${a:,.2f} -> ${b:,.2f} ({(b / a - 1):+.1%})")
        sent = [o for o in self.outcomes if o.sent]
        unsimulated = [o for o in self.outcomes if not o.sent and not o.error and o.not_simulated]
        simulated = [o for o in self.outcomes if not o.sent and not o.error and not o.not_simulated]
        skipped = [o for o in self.outcomes if o.error and not o.simulation_reverted]
        sent_failed = [o for o in sent if not o.ok]
        lines.append(
            f"  actions: {len(sent)} sent ({len(sent) - len(sent_failed)} succeeded, {len(sent_failed)} failed), "
            f"{len(simulated)} simulated only, {len(unsimulated)} not simulated, "
            f"{len(self.failed) - len(sent_failed)} whose simulation reverted, {len(skipped)} not attempted"
        )
        for o in self.outcomes:
            if o in self.failed:
                status = "FAILED" + (f" ({o.error})" if o.error else "")
            elif o.sent:
                status = "ok"
            elif o.error:
                status = o.error
            else:
                status = "NOT simulated" if o.not_simulated else "simulated"
            lines.append(f"  block {o.block} {o.market} {type(o.action).__name__}: {status}")
        if self.failed:
            verdict = f"{len(self.failed)} action(s) FAILED"
        elif not sent:
            verdict = f"nothing sent; {len(simulated)} simulated, {len(unsimulated)} not simulated"
        else:
            verdict = "every transaction succeeded"
        lines.append(f"  result: {verdict}")
        return "\n".join(lines)


def parse_amounts(items: list[str], what: str) -> dict[str, float]:
    """['WETH=-20', 'USDC=5000'] -> {'WETH': -20.0, ...}; ConfigError names a bad item."""
    out = {}
    for item in items:
        sym, sep, value = item.partition("=")
        try:
            if not sep or not sym:
                raise ValueError
            out[sym.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"{what}: expected SYMBOL=NUMBER, got {item!r}") from None
    return out


async def deal(w3: AsyncWeb3[Any], token: str, who: str, amount: int) -> None:
    """Set `who`'s balance of an ERC20 on the fork: find the balance mapping's slot by writing a
    probe value at keccak(who, slot) (Solidity layout) or keccak(slot, who) (Vyper) for the first
    slots and reading balanceOf back; restore each miss."""
    balance_of = fn("ERC20", "balanceOf")
    token = to_checksum_address(token)
    for slot in range(64):
        for key in (
            keccak(bytes(12) + bytes.fromhex(who[2:]) + slot.to_bytes(32, "big")),
            keccak(slot.to_bytes(32, "big") + bytes(12) + bytes.fromhex(who[2:])),
        ):
            where = "0x" + key.hex()
            old = await w3.eth.get_storage_at(token, int.from_bytes(key, "big"))
            await _rpc(w3, "anvil_setStorageAt", [token, where, "0x" + amount.to_bytes(32, "big").hex()])
            raw = await w3.eth.call({"to": token, "data": balance_of.encode(who)})
            if int.from_bytes(raw, "big") == amount:
                return
            await _rpc(w3, "anvil_setStorageAt", [token, where, "0x" + bytes(old).rjust(32, b"\0").hex()])
    raise KeeperError(f"cannot fund {token} on the fork: its balance storage layout was not found")


async def shock(w3: AsyncWeb3[Any], dc: DevChain, deployer: str, source: str, pct: float) -> tuple[float, float]:
    """Move the answer of the price source at `source` by `pct` percent: its code becomes our
    MockAggregator (immutable owner = the fork's first dev account) and a new round is posted."""
    latest = fn("AggregatorV3", "latestRoundData")
    decimals_fn = fn("AggregatorV3", "decimals")
    (_, answer, _, _, _) = latest.decode(await w3.eth.call({"to": source, "data": latest.encode()}))
    (decimals,) = decimals_fn.decode(await w3.eth.call({"to": source, "data": decimals_fn.encode()}))
    new = int(answer * (100 + pct) / 100)
    if new <= 0:
        raise ConfigError(f"a {pct}% shock leaves a non-positive price")
    mock = await dc.deploy("MockAggregator", deployer, int(decimals), "rehearsal shock", new)
    code = await w3.eth.get_code(to_checksum_address(mock))
    await _rpc(w3, "anvil_setCode", [source, "0x" + bytes(code).hex()])
    await _rpc(w3, "anvil_setStorageAt", [source, hex(MOCK_LATEST_ROUND_SLOT), "0x" + bytes(32).hex()])
    await dc.send("MockAggregator", source, "updateAnswer", deployer, new)
    scale = 10 ** int(decimals)
    return answer / scale, new / scale


async def _rpc(w3: AsyncWeb3[Any], method: str, params: list[Any]) -> Any:
    reply = await w3.provider.make_request(method, params)
    if "error" in reply:
        raise KeeperError(f"{method} on the fork failed: {reply['error']}")
    return reply.get("result")


async def rehearse(
    network: str,
    env_file: str | None,
    *,
    fork_url: str | None,
    fork_block: int | None,
    blocks: int,
    shocks: dict[str, float],
    fund: dict[str, float],
    fund_native: float,
    dry_run: bool,
    block_time: float = 1.0,
) -> Rehearsal:
    settings = load_settings(network, env_file, require_key=False)
    upstream = fork_url or settings.rpc_url.get_secret_value().split(",")[0].strip()
    args = ["--fork-url", upstream, "--block-time", str(block_time), "--gas-limit", "60000000"]
    if fork_block is not None:
        args += ["--fork-block-number", str(fork_block)]
    proc, url = start_anvil(free_port(), *args, timeout_s=60)
    try:
        return await _rehearse(settings, url, blocks, shocks, fund, fund_native, dry_run)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def _rehearse(
    settings: Settings,
    url: str,
    blocks: int,
    shocks: dict[str, float],
    fund: dict[str, float],
    fund_native: float,
    dry_run: bool,
) -> Rehearsal:
    w3 = AsyncWeb3(AsyncHTTPProvider(url, request_kwargs={"timeout": 60}))
    ephemeral = settings.private_key is None and not dry_run
    key = Signer.new_key() if ephemeral else settings.private_key
    address = Signer(key).address if key is not None else settings.address
    assert address is not None
    journal = Path(tempfile.mkdtemp(prefix="keeper-rehearsal-")) / "journal.sqlite"
    settings = settings.model_copy(
        update={
            "rpc_url": SecretStr(url),
            "ws_url": None,
            "private_key": key,
            "address": address,
            # never the private relay: a fork's transactions, signed for the real chain id, must not reach it
            "execution": settings.execution.model_copy(update={"journal_path": str(journal), "private_rpc_url": None}),
        }
    )
    fork_block = int(await w3.eth.block_number)
    keeper = build_keeper(settings, w3, dry_run=dry_run)
    chain = keeper.chain
    await _rpc(w3, "anvil_setBalance", [address, hex(int(fund_native * 10**18))])
    for w in keeper.watches:
        await w.load(chain, fork_block)
    funded: dict[str, int] = {"native": int(fund_native * 10**18)}
    tokens = {sym: tok for w in keeper.watches for sym, tok in zip(w.symbols, w.adapter.tokens, strict=False)}
    decimals = fn("ERC20", "decimals")
    for sym, amount in fund.items():
        if sym not in tokens:
            raise ConfigError(f"--fund {sym}: not a token of the watched markets ({', '.join(sorted(tokens))})")
        token = tokens[sym]
        (places,) = decimals.decode(await w3.eth.call({"to": token, "data": decimals.encode()}))
        units = int(amount * 10 ** int(places))
        await deal(w3, token, address, units)
        funded[sym] = units
    applied: dict[str, tuple[float, float]] = {}
    if shocks:
        dc = DevChain(w3)
        deployer = (await w3.eth.accounts)[0]
        sources = {sym: src for w in keeper.watches for sym, src in w.adapter.price_sources().items()}
        for sym, pct in shocks.items():
            if sym not in sources:
                raise ConfigError(
                    f"--shock {sym}: no Chainlink-style price source for it on the watched lending markets "
                    f"(have: {', '.join(sorted(sources))}); perps index prices are not shocked"
                )
            applied[sym] = await shock(w3, dc, deployer, sources[sym], pct)
    await keeper.run(blocks=blocks)
    await chain.close()
    return Rehearsal(fork_block, address, ephemeral, funded, applied, list(keeper.history))
