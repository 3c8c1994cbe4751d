"""A self-starting anvil (from node_modules) for tests that need a real JSON-RPC node over HTTP."""

import asyncio
import contextlib
import os
import shutil
from pathlib import Path

import pytest

from keeper.devtools.anvil import free_port, start_anvil
from keeper.devtools.faultproxy import FaultProxy

ROOT = Path(__file__).resolve().parents[2]
# anvil's well-known dev accounts (public test keys of its default mnemonic)
DEV_KEYS = {
    0: "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    9: "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
}
__all__ = [
    "DEV_KEYS",
    "ROOT",
    "FaultProxy",
    "beside",
    "free_port",
    "liquidations_per_user",
    "mine_every",
    "on_fresh_anvil",
    "require_real_bytecode",
    "run_live_keeper",
    "seed_liquidatable",
]


@pytest.fixture
def anvil():
    """A fresh anvil (automine); yields its URL."""
    if not (ROOT / "node_modules" / ".bin" / "anvil").exists() and shutil.which("anvil") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have anvil (npm install)")
        pytest.skip("anvil missing: run scripts/setup.sh")
    proc, url = start_anvil(free_port())
    yield url
    proc.terminate()
    proc.wait(timeout=10)


async def mine_every(w3, seconds: float, base_fee_wei: int | None = None) -> None:
    """Mine a block every `seconds` (optionally at a set base fee) until cancelled."""
    while True:
        await asyncio.sleep(seconds)
        if base_fee_wei is not None:
            await w3.provider.make_request("anvil_setNextBlockBaseFeePerGas", [hex(base_fee_wei)])
        await w3.provider.make_request("evm_mine", [])


@contextlib.asynccontextmanager
async def beside(coro):
    """Run `coro` as a task for the duration of the block; cancel it after."""
    task = asyncio.create_task(coro)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def seed_liquidatable(dc, dep, label: str, n: int) -> list[str]:
    """`n` accounts with 1 WETH each borrowing USDC at HF 1.2 at $3,000; at $2,300 their HF is
    0.92 < 0.95, so one liquidation takes all of each one's debt."""
    from eth_utils import keccak
    from web3 import AsyncWeb3

    users = [AsyncWeb3.to_checksum_address(keccak(text=f"{label} {k}")[:20]) for k in range(n)]
    debt = [int(3_000 * 0.83 / 1.2 * 10**6)] * n
    deployer = dep.deployer
    await dc.send(
        "Pool", dep.pool, "seedPositions", deployer, dep.tokens["WETH"], dep.tokens["USDC"], users, [10**18] * n, debt
    )
    await dc.mint(dep, "WETH", dep.a_tokens["WETH"], n * 10**18)
    return users


async def liquidations_per_user(w3, pool: str) -> dict[str, int]:
    """How many LiquidationCall events each user has on the canonical chain."""
    from web3 import AsyncWeb3

    from keeper.sources.abi import event

    topic = "0x" + event("AaveV3Pool", "LiquidationCall").topic.hex()
    found = await w3.eth.get_logs({"address": pool, "topics": [topic], "fromBlock": 0, "toBlock": "latest"})
    counts: dict[str, int] = {}
    for entry in found:
        user = AsyncWeb3.to_checksum_address(bytes(entry["topics"][3])[-20:])
        counts[user] = counts.get(user, 0) + 1
    return counts


def require_real_bytecode(missing: str | None, what: str) -> None:
    """Under CI a missing real-protocol input fails the test; elsewhere it skips, naming it."""
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the real {what} bytecode: {missing}")
        pytest.skip(f"real {what} bytecode missing: {missing}")


async def on_fresh_anvil(scenario, *args, accounts: int = 20):  # type: ignore[no-untyped-def]
    """Run `scenario(w3, keeper_w3, *args)` on a fresh anvil (two HTTP clients: the test's and
    the keeper's), closed and stopped after."""
    from web3 import AsyncWeb3
    from web3.providers import AsyncHTTPProvider

    proc, url = start_anvil(free_port(), "--accounts", str(accounts), "--gas-limit", "100000000")
    w3 = AsyncWeb3(AsyncHTTPProvider(url, request_kwargs={"timeout": 60}))
    keeper_w3 = AsyncWeb3(AsyncHTTPProvider(url, request_kwargs={"timeout": 60}))
    try:
        await scenario(w3, keeper_w3, *args)
    finally:
        await w3.provider.disconnect()
        await keeper_w3.provider.disconnect()
        proc.terminate()
        proc.wait(timeout=10)


def live_keeper(chain, settings, tmp_path, relay=None):  # type: ignore[no-untyped-def]
    """A live keeper signing with dev key 9, its journal in `tmp_path` (not started)."""
    from eth_account import Account
    from pydantic import SecretStr

    from keeper.app.loop import Keeper
    from keeper.execution.executor import Executor
    from keeper.execution.journal import Journal
    from keeper.execution.signer import Signer

    address = Account.from_key(DEV_KEYS[9]).address
    executor = Executor(chain, settings.execution, address, Signer(SecretStr(DEV_KEYS[9])), dry_run=False,
                        journal=Journal(tmp_path / "journal.sqlite"), relay=relay)  # fmt: skip
    return Keeper(settings, chain, executor)


async def run_live_keeper(w3, chain, settings, tmp_path, blocks: int = 4, relay_url=None):  # type: ignore[no-untyped-def]
    """A live keeper (dev key 9, journal in `tmp_path`) run for `blocks` blocks, each step's
    actions drained before the next block is mined (through the private relay at `relay_url`
    when given); returns it."""
    from keeper.sources.relay import Relay

    relay = Relay(relay_url) if relay_url else None
    k = live_keeper(chain, settings, tmp_path, relay)
    k.background = True
    await k.start()
    try:
        for _ in range(blocks):
            await k.step()
            await k.drain()
            await w3.provider.make_request("evm_mine", [])
    finally:
        if relay is not None:
            await relay.close()
    return k
