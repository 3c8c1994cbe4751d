"""Handling a crash through faulty JSON-RPC endpoints: blocks and seconds from the crash until every
liquidatable and protected position is handled, at each fault rate, against the same scenario
with no faults in the same run.

    .venv/bin/python -m benchmarks.faults [--aave 25] [--comet 12] [--protected 3] [--rates 0,0.1,0.2,0.4]

Each case starts a fresh anvil (a block every `--block-time` s), our test Aave and Comet markets,
`--aave` Aave and `--comet` Comet accounts that the crash makes liquidatable, and `--protected`
positions per market the keeper protects (health 1.07 after the crash, trigger 1.15). The keeper
reaches anvil through one or two fault proxies (keeper.devtools.faultproxy: every kind of fault,
mixed) at the given rate, from start-up on. Handled: every Aave account liquidated, every Comet
account absorbed, every protected account at or above its trigger. Also counted: transactions that
reverted on chain, positions acted on twice, and journal rows left in flight once sending stops
(the kill switch, after the last position is handled: the keeper goes on watching and tracking).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import keccak
from pydantic import SecretStr
from web3 import AsyncWeb3
from web3.providers import AsyncHTTPProvider

from keeper.app.loop import Keeper
from keeper.devtools.anvil import free_port, start_anvil
from keeper.devtools.demo import make_settings
from keeper.devtools.devchain import DevChain
from keeper.devtools.faultproxy import FaultProxy
from keeper.execution.executor import Executor
from keeper.execution.journal import Journal
from keeper.execution.signer import Signer
from keeper.sources.abi import event
from keeper.sources.chain import Chain
from keeper.sources.rpc import FailoverProvider

KEY = "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6"  # anvil dev account 9 (public)
E18, E6 = 10**18, 10**6


@dataclass
class Case:
    rate: float
    endpoints: int
    aave: int = 10
    comet: int = 4
    protected: int = 2
    seed: int = 1
    block_time_s: float = 1.0
    max_blocks: int = 40
    """Blocks after the crash the case may take before it counts as not handled."""


@dataclass
class Result:
    case: Case
    handled: bool = False
    blocks: int = 0
    seconds: float = 0.0
    reverts: int = 0
    duplicates: int = 0
    left_in_flight: int = 0
    faults: int = 0
    requests: int = 0
    missing: list[str] = field(default_factory=list)
    log_tail: str = ""


async def _users(dc: DevChain, dep: Any, accounts: list[str], case: Case) -> tuple[list[str], list[str], list[str]]:
    """(Aave liquidatable, Comet liquidatable, protected) accounts, opened at WETH $3,000."""
    aave = [AsyncWeb3.to_checksum_address(keccak(text=f"fault user {k}")[:20]) for k in range(case.aave)]
    debt = [int(3_000 * 0.83 / 1.2 * E6)] * case.aave  # HF 1.2 at $3,000, 0.92 at $2,300
    await dc.send("Pool", dep.pool, "seedPositions", dep.deployer, dep.tokens["WETH"], dep.tokens["USDC"], aave,
                  [E18] * case.aave, debt)  # fmt: skip
    await dc.mint(dep, "WETH", dep.a_tokens["WETH"], case.aave * E18)
    lp = accounts[1]
    await dc.supply(dep, "USDC", lp, 10_000_000 * E6)
    await dc.comet_supply(dep, "USDC", lp, 10_000_000 * E6)
    free = accounts[2:9] + accounts[10:]
    comet = free[: case.comet]
    for u in comet:  # liquidation health 0.84 at $2,300
        await dc.comet_supply(dep, "WETH", u, E18)
        await dc.comet_borrow(dep, u, 2_460 * E6)
    protected = free[case.comet : case.comet + 2 * case.protected]
    for u in protected[: case.protected]:  # Aave: HF 1.4 at $3,000, 1.07 at $2,300
        await dc.mint(dep, "WETH", u, E18)
        await dc.supply(dep, "WETH", u, E18)
        await dc.borrow(dep, "USDC", u, int(3_000 * 0.83 / 1.4 * E6))
    for u in protected[case.protected :]:  # Comet: liquidation health 1.40 at $3,000, 1.07 at $2,300
        await dc.comet_supply(dep, "WETH", u, E18)
        await dc.comet_borrow(dep, u, 1_934 * E6)
    return aave, comet, protected


async def _counts(w3: AsyncWeb3[Any], address: str, name: str, topic_index: int, abi: str) -> dict[str, int]:
    topic = "0x" + event(abi, name).topic.hex()
    found = await w3.eth.get_logs({"address": address, "topics": [topic], "fromBlock": 0, "toBlock": "latest"})
    counts: dict[str, int] = {}
    for entry in found:
        user = AsyncWeb3.to_checksum_address(bytes(entry["topics"][topic_index])[-20:])
        counts[user] = counts.get(user, 0) + 1
    return counts


async def run_case(case: Case, tmp: Path) -> Result:
    out = Result(case)
    accounts_n = str(12 + case.comet + 2 * case.protected)
    proc, url = start_anvil(free_port(), "--accounts", accounts_n, "--gas-limit", "100000000")
    w3 = AsyncWeb3(AsyncHTTPProvider(url, request_kwargs={"timeout": 60}))
    proxies: list[FaultProxy] = []
    keeper: Keeper | None = None
    task: asyncio.Task[None] | None = None
    miner: asyncio.Task[None] | None = None
    try:
        dc = DevChain(w3)
        accounts = list(await w3.eth.accounts)
        dep = await dc.deploy_market(accounts[0])
        await dc.deploy_comet(dep)
        aave, comet, protected = await _users(dc, dep, accounts, case)
        me = Account.from_key(KEY).address
        await dc.mint(dep, "USDC", me, 5_000_000 * E6)
        for spender in (dep.pool, dep.comet):
            await dc.approve(dep, "USDC", me, spender, 10**30)
        # set up with automine; from here a block every block_time_s
        await w3.provider.make_request("evm_setAutomine", [False])
        miner = asyncio.create_task(_mine_every(w3, case.block_time_s))
        rng = random.Random(case.seed)
        proxies = [FaultProxy(url, rng, case.rate) for _ in range(case.endpoints)]
        urls = [await p.start() for p in proxies]
        settings = make_settings(dep, await w3.eth.chain_id, KEY, tuple(protected), perps=False)
        kill = tmp / f"kill-{case.rate}-{case.endpoints}"
        execution = settings.execution.model_copy(
            update={"max_actions_per_hour": 10_000, "max_gas_spend_native_per_day": 100, "receipt_poll_s": 0.25,
                    "kill_switch_file": str(kill)}
        )  # fmt: skip
        settings = settings.model_copy(update={"execution": execution, "poll_interval_s": 0.2, "max_stall_s": 90.0})
        provider = FailoverProvider(urls, timeout_s=2.0, max_lag_blocks=5, probe_every_s=5.0, retry_budget_s=6.0)
        chain = Chain(AsyncWeb3(provider), dep.multicall3)
        signer = Signer(SecretStr(KEY))
        journal = Journal(tmp / f"journal-{case.rate}-{case.endpoints}.sqlite")
        keeper = Keeper(settings, chain, Executor(chain, settings.execution, me, signer, dry_run=False,
                                                  journal=journal))  # fmt: skip
        keeper.background = True
        task = asyncio.create_task(keeper.run())
        deadline = time.monotonic() + 120
        while keeper.last_block is None and time.monotonic() < deadline and not task.done():
            await asyncio.sleep(0.1)
        if keeper.last_block is None:
            out.missing = ["the keeper did not start"]
            return out
        await dc.set_price(dep, "WETH", 2_300.0)
        crash_block, t0 = await w3.eth.block_number, time.monotonic()
        while not task.done():
            missing = await _unhandled(w3, dc, dep, aave, comet, protected, settings.protect.trigger_hf)
            now_block = await w3.eth.block_number
            out.blocks, out.seconds = now_block - crash_block, time.monotonic() - t0
            if not missing:
                out.handled, out.missing = True, []
                break
            out.missing = missing
            if out.blocks > case.max_blocks:
                break
            await asyncio.sleep(0.25)
        # sending stops (the kill switch; the keeper goes on watching, buying nothing more): every
        # journaled transaction must then settle from the chain (trackers, reconciliation)
        kill.write_text("benchmark done")
        settle_by = time.monotonic() + 60
        while journal.pending_count() and time.monotonic() < settle_by:
            await asyncio.sleep(0.5)
        await asyncio.sleep(2 * case.block_time_s)  # late duplicates would show now
        liquidated = await _counts(w3, dep.pool, "LiquidationCall", 3, "AaveV3Pool")
        absorbed = await _counts(w3, dep.comet, "AbsorbDebt", 2, "Comet")
        out.duplicates = sum(n - 1 for n in (liquidated | absorbed).values() if n > 1)
        rows = journal.db.execute("SELECT state, COUNT(*) FROM txs GROUP BY state").fetchall()
        states = {str(s): int(n) for s, n in rows}
        out.reverts = states.get("failed", 0)
        out.left_in_flight = states.get("sent", 0) + states.get("signed", 0)
        out.faults = sum(p.injected for p in proxies)
        out.requests = chain.requests
    finally:
        for t in (task, miner):
            if t is not None:
                t.cancel()
                with contextlib.suppress(BaseException):
                    await t
        if keeper is not None:
            await keeper.chain.close()
        for p in proxies:
            await p.stop()
        await w3.provider.disconnect()
        proc.terminate()
        proc.wait(timeout=10)
    return out


async def _mine_every(w3: Any, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        await w3.provider.make_request("evm_mine", [])


async def _unhandled(w3: Any, dc: DevChain, dep: Any, aave: list[str], comet: list[str], protected: list[str],
                     trigger: float) -> list[str]:  # fmt: skip
    """What is not handled yet: Aave accounts with debt, Comet accounts not absorbed, protected
    accounts under the trigger."""
    try:
        return await _unhandled_now(dc, dep, aave, comet, protected, trigger)
    except Exception as exc:  # a view read mid-block: ask again
        return [f"unknown ({type(exc).__name__})"]


async def _unhandled_now(dc: DevChain, dep: Any, aave: list[str], comet: list[str], protected: list[str],
                         trigger: float) -> list[str]:  # fmt: skip
    pool, c = dc.contract("Pool", dep.pool), dc.contract("Comet", dep.comet)
    missing = []
    for u in aave:
        if (await pool.functions.getUserAccountData(u).call())[1] > 0:
            missing.append(f"aave {u}")
    for u in comet:
        if await c.functions.borrowBalanceOf(u).call() > 0:
            missing.append(f"comet {u}")
    half = len(protected) // 2
    for u in protected[:half]:
        if (await pool.functions.getUserAccountData(u).call())[5] < int(trigger * E18):
            missing.append(f"protect aave {u}")
    for u in protected[half:]:
        if await c.functions.isLiquidatable(u).call() or await _comet_health(c, u) < trigger:
            missing.append(f"protect comet {u}")
    return missing


async def _comet_health(c: Any, user: str) -> float:
    """Liquidation health of a one-collateral (WETH) Comet account: collateral x price x
    liquidateCollateralFactor / debt (base USD 1)."""
    info = await c.functions.getAssetInfo(0).call()
    balance = (await c.functions.userCollateral(user, info[1]).call())[0]
    price = await c.functions.getPrice(info[2]).call()
    debt = await c.functions.borrowBalanceOf(user).call()
    if debt == 0:
        return float("inf")
    return balance / info[3] * price / 1e8 * info[5] / 1e18 / (debt / 1e6)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--aave", type=int, default=25)
    ap.add_argument("--comet", type=int, default=12)
    ap.add_argument("--protected", type=int, default=3, help="per market")
    ap.add_argument("--rates", default="0,0.1,0.2,0.4")
    ap.add_argument("--endpoints", default="1,2")
    ap.add_argument("--block-time", type=float, default=1.0)
    ap.add_argument("--verbose", action="store_true", help="show the keeper's warnings (retries, failed blocks)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING if args.verbose else logging.CRITICAL, format="%(message)s")
    rates = [float(r) for r in args.rates.split(",")]
    cases = [
        Case(rate, n, args.aave, args.comet, args.protected, block_time_s=args.block_time)
        for n in (int(e) for e in args.endpoints.split(","))
        for rate in rates
    ]
    with tempfile.TemporaryDirectory() as tmp:
        results = [asyncio.run(run_case(c, Path(tmp))) for c in cases]
    base = {r.case.endpoints: r for r in results if r.case.rate == 0}
    print(f"{'endpoints':>9} {'faults':>7} {'injected':>8} {'handled':>8} {'blocks':>6} {'seconds':>8} "
          f"{'x 0% blocks':>11} {'x 0% s':>7} {'reverts':>7} {'dupes':>5} {'in flight':>9}")  # fmt: skip
    for r in results:
        b = base.get(r.case.endpoints)
        rb = f"{r.blocks / b.blocks:.2f}" if b and b.blocks else "-"
        rs = f"{r.seconds / b.seconds:.2f}" if b and b.seconds else "-"
        print(f"{r.case.endpoints:>9} {r.case.rate:>7.0%} {r.faults:>8} {'yes' if r.handled else 'NO':>8} "
              f"{r.blocks:>6} {r.seconds:>8.1f} {rb:>11} {rs:>7} {r.reverts:>7} {r.duplicates:>5} "
              f"{r.left_in_flight:>9}")  # fmt: skip
        if r.missing and not r.handled:
            print(f"          not handled: {', '.join(r.missing[:6])}")


if __name__ == "__main__":
    main()
