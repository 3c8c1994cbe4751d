"""Reaction latency: from a crash block being available to the last liquidation accepted by the
node, on anvil over HTTP, with N positions of which a price fall makes K liquidatable.

    .venv/bin/python -m benchmarks.reaction [--accounts 10000] [--liquidatable 100] [--runs 7]

Each run starts from the same chain state (anvil snapshot/revert): positions seeded with the
test Pool's `seedPositions`, the liquidator funded and its USDC approved to the Pool (as both
bots would have set up beforehand), mining off. The WETH oracle falls 10% in one block; the
clock starts once that block is mined (what a newHeads notification announces) and stops when
the node has accepted the last liquidation (`eth_sendRawTransaction` answered).

  - keeper: `Keeper.step()` (head, logs, one Multicall3, the incremental book, the strategy)
    hands the block's liquidations to the executor's burst (concurrent simulation, sequential
    nonces, concurrent broadcast), as `keeper run` does;
  - baseline, the way per-account polling bots work: `getUserAccountData` for every account
    (Multicall3, 400 per call), then per account below HF 1: estimate gas, sign, send, one after
    the other (without even waiting for receipts in between, which many of them do).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from eth_account import Account
from pydantic import SecretStr
from web3 import AsyncWeb3
from web3.providers import AsyncHTTPProvider

from benchmarks.rpc_per_block import GET_DATA, KEY, seed
from keeper.app.loop import Keeper
from keeper.devtools.anvil import free_port, start_anvil
from keeper.devtools.demo import make_settings
from keeper.devtools.devchain import DevChain
from keeper.execution.executor import Executor
from keeper.execution.journal import Journal
from keeper.execution.signer import Signer
from keeper.sources.abi import fn
from keeper.sources.chain import Call, Chain

LIQUIDATION_CALL = fn("AaveV3Pool", "liquidationCall")
MAX_UINT = 2**256 - 1


async def ours(w3: AsyncWeb3[Any], dep: Any, k: int, tmp: Path, run: int) -> tuple[float, float, int]:
    """(ms to the last liquidation accepted, ms of which deciding, start-up discovery s)."""
    settings = make_settings(dep, await w3.eth.chain_id, KEY, (), comet=False, perps=False)
    execution = settings.execution.model_copy(
        update={"max_actions_per_hour": 10_000, "max_gas_spend_native_per_day": 100}
    )
    settings = settings.model_copy(update={"execution": execution})
    chain = Chain(
        AsyncWeb3(AsyncHTTPProvider(w3.provider.endpoint_uri, request_kwargs={"timeout": 120})), dep.multicall3
    )  # type: ignore[attr-defined]
    signer = Signer(SecretStr(KEY))
    journal = Journal(tmp / f"journal-{run}.sqlite")
    keeper = Keeper(
        settings, chain, Executor(chain, settings.execution, signer.address, signer, dry_run=False, journal=journal)
    )
    keeper.background = True
    t = time.perf_counter()
    await keeper.start()
    discovery = time.perf_counter() - t
    await crash(w3, dep)
    t0 = time.perf_counter()
    report = await keeper.step()
    decided = time.perf_counter()
    assert report is not None and report.queued == k, report
    while len(keeper.executor.accepted) < k:
        await asyncio.sleep(0.0005)
    t1 = keeper.executor.accepted[-1][1]
    for task in list(keeper._tasks):  # receipts are not part of the measure
        task.cancel()
    await chain.close()
    return (t1 - t0) * 1e3, (decided - t0) * 1e3, discovery


async def baseline(w3: AsyncWeb3[Any], dep: Any, users: list[str], k: int) -> float:
    chain = Chain(
        AsyncWeb3(AsyncHTTPProvider(w3.provider.endpoint_uri, request_kwargs={"timeout": 120})), dep.multicall3
    )  # type: ignore[attr-defined]
    account = Account.from_key(KEY)
    chain_id = await chain.w3.eth.chain_id
    nonce = await chain.w3.eth.get_transaction_count(account.address)
    await crash(w3, dep)
    t0 = time.perf_counter()
    block = await chain.w3.eth.block_number
    results = await chain.multicall([Call(dep.pool, GET_DATA.encode(u)) for u in users], block)
    sent = 0
    base_fee = (await chain.w3.eth.get_block("latest"))["baseFeePerGas"]
    for user, raw in zip(users, results, strict=True):
        assert raw is not None
        if GET_DATA.decode(raw)[5] >= 10**18:
            continue
        data = LIQUIDATION_CALL.encode(dep.tokens["WETH"], dep.tokens["USDC"], user, MAX_UINT, False)
        gas = await chain.w3.eth.estimate_gas({"from": account.address, "to": dep.pool, "data": data})
        signed = account.sign_transaction(
            {
                "to": dep.pool,
                "data": data,
                "gas": gas * 5 // 4,
                "nonce": nonce,
                "chainId": chain_id,
                "type": 2,
                "maxFeePerGas": 2 * base_fee + 10**9,
                "maxPriorityFeePerGas": 10**9,
            }
        )
        await chain.w3.eth.send_raw_transaction(signed.raw_transaction)
        nonce += 1
        sent += 1
    t1 = time.perf_counter()
    assert sent == k, sent
    await chain.close()
    return (t1 - t0) * 1e3


async def crash(w3: AsyncWeb3[Any], dep: Any) -> None:
    """The WETH oracle falls 10% in one mined block; mining then stops (transactions wait in the pool)."""
    await w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
    await DevChain(w3).set_price(dep, "WETH", 2_700.0)
    await w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]


async def reset(w3: AsyncWeb3[Any], snap: str) -> str:
    """Back to the seeded state: the pool emptied, the chain reverted; a new snapshot of it."""
    await w3.provider.make_request("anvil_dropAllTransactions", [])  # type: ignore[arg-type]
    await w3.provider.make_request("evm_revert", [snap])  # type: ignore[arg-type]
    return str((await w3.provider.make_request("evm_snapshot", []))["result"])  # type: ignore[arg-type]


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q))


async def main_async(n: int, k: int, runs: int) -> None:
    proc, url = start_anvil(free_port(), "--gas-limit", "3000000000", "--code-size-limit", "50000")
    try:
        w3 = AsyncWeb3(AsyncHTTPProvider(url, request_kwargs={"timeout": 120}))
        dc = DevChain(w3)
        dep = await dc.deploy_market((await w3.eth.accounts)[0])
        t = time.perf_counter()
        users = await seed(dc, dep, n, random.Random(2), hf=(1.5, 3.0), at_risk=k)
        seeding = time.perf_counter() - t
        keeper_address = Account.from_key(KEY).address
        await dc.mint(dep, "USDC", keeper_address, 10**13 * 10**6)
        await dc.approve(dep, "USDC", keeper_address, dep.pool, MAX_UINT)
        snap = (await w3.provider.make_request("evm_snapshot", []))["result"]  # type: ignore[arg-type]
        mine: list[float] = []
        deciding: list[float] = []
        base: list[float] = []
        discovery = 0.0
        with tempfile.TemporaryDirectory() as tmp:
            for run in range(runs):
                ms, decide_ms, discovery = await ours(w3, dep, k, Path(tmp), run)
                mine.append(ms)
                deciding.append(decide_ms)
                snap = await reset(w3, snap)
                base.append(await baseline(w3, dep, users, k))
                snap = await reset(w3, snap)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(
        f"reaction latency: {n:,} positions, a 10% WETH fall makes {k} liquidatable; block mined -> last "
        f"liquidation accepted by anvil (HTTP), {runs} runs"
    )
    print(f"(seeding {n:,} positions took {seeding:.1f} s; the keeper's start-up discovery {discovery:.1f} s)")
    print(f"{'implementation':<44} {'p50 (ms)':>9} {'p99 (ms)':>9} {'min (ms)':>9} {'vs keeper':>10}")
    rows = [
        ("keeper: incremental book + burst", mine),
        ("  of which detecting and deciding", deciding),
        ("baseline: poll every account, send one by one", base),
    ]
    for name, xs in rows:
        print(
            f"{name:<44} {pct(xs, 50):>9,.1f} {pct(xs, 99):>9,.1f} {min(xs):>9,.1f} "
            f"{pct(xs, 50) / pct(mine, 50):>9.1f}x"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--liquidatable", type=int, default=100)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    asyncio.run(main_async(args.accounts, args.liquidatable, args.runs))


if __name__ == "__main__":
    main()
