"""Liquidating without inventory: blocks from a crash until every liquidatable Aave account is
liquidated, and profit per liquidation, through keeper's FlashLiquidator with a wallet that holds
only gas, against the inventory path (the wallet holds the debt asset) on the same scenario in the
same run.

    .venv/bin/python -m benchmarks.flash [--positions 100] [--block-time 2] [--depth-usd 20e6]

Each path starts a fresh anvil (a block every `--block-time` s, 100M gas per block), our Aave
market with `--positions` accounts (1 WETH each, borrowing USDC at HF 1.2 at $3,000; at $2,300
their HF is 0.92, so each can be liquidated whole), and the real Uniswap v3 (npm artifacts) with
WETH/USDC pools at $2,300 ($depth at 0.3%, half that at 0.05%). Profit: the flash path's is what
the contract sent the owner, less gas at the oracle's ETH price; the inventory path's is the seized
WETH valued at what selling it all on the same (untouched) pools would pay (QuoterV2), less the
USDC it repaid and gas; its value at the oracle price is shown beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from eth_account import Account
from eth_utils import keccak
from pydantic import SecretStr
from web3 import AsyncWeb3
from web3.providers import AsyncHTTPProvider

from benchmarks.faults import KEY, _counts, _mine_every
from keeper.app.loop import Keeper
from keeper.devtools.anvil import free_port, start_anvil
from keeper.devtools.demo import make_settings
from keeper.devtools.devchain import DevChain
from keeper.devtools.flashkit import SALE_FEE, deploy_flash
from keeper.execution.executor import Executor
from keeper.execution.journal import Journal
from keeper.execution.signer import Signer
from keeper.settings import FlashSettings
from keeper.sources.abi import event
from keeper.sources.chain import Chain
from keeper.sources.uniswap import encode_path

E18, E6 = 10**18, 10**6
CRASH = 2_300.0


@dataclass
class Result:
    path: str
    positions: int
    handled: int = 0
    blocks: int = 0
    seconds: float = 0.0
    reverts: int = 0
    profit_usd: float = 0.0
    profit_oracle_usd: float = 0.0
    gas_usd: float = 0.0
    wallet_usdc: float = 0.0
    """What the wallet had to hold of the debt asset before the crash."""
    per_block: dict[int, int] = field(default_factory=dict)
    """Blocks after the crash -> liquidations mined in it."""
    gas_m: dict[int, int] = field(default_factory=dict)
    """Blocks after the crash -> gas used in it (millions)."""


async def run_path(flash: bool, n: int, block_time_s: float, depth_usd: float, tmp: Path) -> Result:
    out = Result("flash" if flash else "inventory", n)
    proc, url = start_anvil(free_port(), "--accounts", "12", "--gas-limit", "100000000")
    w3 = AsyncWeb3(AsyncHTTPProvider(url, request_kwargs={"timeout": 60}))
    task: asyncio.Task[None] | None = None
    miner: asyncio.Task[None] | None = None
    keeper: Keeper | None = None
    try:
        dc = DevChain(w3)
        accounts = list(await w3.eth.accounts)
        dep = await dc.deploy_market(accounts[0])
        users = [AsyncWeb3.to_checksum_address(keccak(text=f"flash user {k}")[:20]) for k in range(n)]
        await dc.send("Pool", dep.pool, "seedPositions", dep.deployer, dep.tokens["WETH"], dep.tokens["USDC"], users,
                      [E18] * n, [int(3_000 * 0.83 / 1.2 * E6)] * n)  # fmt: skip
        await dc.mint(dep, "WETH", dep.a_tokens["WETH"], n * E18)
        await dc.supply(dep, "USDC", accounts[1], 10_000_000 * E6)
        me = Account.from_key(KEY).address
        kit = await deploy_flash(w3, dc, dep, me, accounts[1], {"WETH": CRASH, "WBTC": 45_000.0, "USDC": 1.0},
                                 depth_usd=depth_usd)  # fmt: skip
        settings = make_settings(dep, await w3.eth.chain_id, KEY, (), comet=False, perps=False)
        if flash:
            settings = settings.model_copy(update={"flash": FlashSettings(**kit.settings("flash"))})
        else:
            out.wallet_usdc = n * 2_100.0
            await dc.mint(dep, "USDC", me, int(out.wallet_usdc * E6))
            await dc.approve(dep, "USDC", me, dep.pool, 10**30)
        execution = settings.execution.model_copy(update={"max_actions_per_hour": 10_000, "receipt_poll_s": 0.25,
                                                          "max_gas_spend_native_per_day": 100})  # fmt: skip
        settings = settings.model_copy(update={"execution": execution, "poll_interval_s": 0.1})
        chain = Chain(AsyncWeb3(AsyncHTTPProvider(url, request_kwargs={"timeout": 60})), dep.multicall3)
        journal = Journal(tmp / f"journal-{out.path}.sqlite")
        keeper = Keeper(settings, chain, Executor(chain, settings.execution, me, Signer(SecretStr(KEY)),
                                                  dry_run=False, journal=journal))  # fmt: skip
        keeper.background = True
        usdc_before, eth_before = await dc.balance(dep, "USDC", me), await w3.eth.get_balance(me)
        await w3.provider.make_request("evm_setAutomine", [False])
        miner = asyncio.create_task(_mine_every(w3, block_time_s))
        task = asyncio.create_task(keeper.run())
        while keeper.last_block is None and not task.done():
            await asyncio.sleep(0.1)
        await dc.set_price(dep, "WETH", CRASH)
        crash_block, t0 = await w3.eth.block_number, time.monotonic()
        debt = dc.contract("VariableDebtToken", dep.debt_tokens["USDC"])
        while not task.done() and out.blocks <= 20:
            await asyncio.sleep(0.25)
            now = await w3.eth.block_number
            out.blocks, out.seconds = now - crash_block, time.monotonic() - t0
            # the debt tokens' scaled balances: getUserAccountData through eth_call on anvil with
            # interval mining was seen to panic (interest accrual underflow) at a block where
            # debug_traceCall of the same call succeeds: the call's timestamp, not the Pool
            debts = [await debt.functions.scaledBalanceOf(u).call(block_identifier=now) for u in users]
            if all(d == 0 for d in debts):
                break
        await asyncio.sleep(2 * block_time_s)
        out.handled = sum(1 for c in (await _counts(w3, dep.pool, "LiquidationCall", 3, "AaveV3Pool")).values() if c)
        topic = "0x" + event("AaveV3Pool", "LiquidationCall").topic.hex()
        mined = await w3.eth.get_logs({"address": dep.pool, "topics": [topic], "fromBlock": crash_block})
        for entry in mined:
            k = int(entry["blockNumber"]) - crash_block
            out.per_block[k] = out.per_block.get(k, 0) + 1
        for k in out.per_block:
            blk = await w3.eth.get_block(crash_block + k)
            out.gas_m[k] = round(blk["gasUsed"] / 1e6)
        states = dict(journal.db.execute("SELECT state, COUNT(*) FROM txs GROUP BY state").fetchall())
        out.reverts = int(states.get("failed", 0))
        eth_usd = CRASH
        out.gas_usd = (eth_before - await w3.eth.get_balance(me)) / E18 * eth_usd
        usdc_delta = (await dc.balance(dep, "USDC", me) - usdc_before) / E6
        seized = await dc.balance(dep, "WETH", me)
        sale = 0.0
        if seized:  # the inventory path: what selling the seized WETH on the same pools would pay
            q = kit.uni.contract("QuoterV2", kit.uni.quoter).functions.quoteExactInput(
                encode_path([dep.tokens["WETH"], dep.tokens["USDC"]], [SALE_FEE]), seized
            )
            sale = (await q.call())[0] / E6
        out.profit_usd = usdc_delta + sale - out.gas_usd
        out.profit_oracle_usd = usdc_delta + seized / E18 * CRASH - out.gas_usd
    finally:
        for t in (task, miner):
            if t is not None:
                t.cancel()
                with contextlib.suppress(BaseException):
                    await t
        if keeper is not None:
            await keeper.chain.close()
        await w3.provider.disconnect()
        proc.terminate()
        proc.wait(timeout=10)
    return out


def mined_text(r: Result) -> str:
    return ", ".join(f"+{k}: {n} ({r.gas_m.get(k, 0)}M gas)" for k, n in sorted(r.per_block.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--positions", type=int, default=100)
    ap.add_argument("--block-time", type=float, default=2.0)
    ap.add_argument("--depth-usd", type=float, default=20e6)
    args = ap.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    with tempfile.TemporaryDirectory() as tmp:
        results = [asyncio.run(run_path(f, args.positions, args.block_time, args.depth_usd, Path(tmp)))
                   for f in (False, True)]  # fmt: skip
    base = results[0]
    print(f"{'path':>9} {'wallet USDC':>11} {'liquidated':>10} {'blocks':>6} {'seconds':>7} {'reverts':>7} "
          f"{'profit/liq $':>12} {'x inventory':>11} {'gas/liq $':>9} {'at oracle $':>11}  mined in")  # fmt: skip
    for r in results:
        per = r.profit_usd / max(1, r.handled)
        ratio = per / (base.profit_usd / max(1, base.handled)) if base.profit_usd else float("nan")
        print(f"{r.path:>9} {r.wallet_usdc:>11,.0f} {r.handled:>6}/{r.positions:<3} {r.blocks:>6} {r.seconds:>7.1f} "
              f"{r.reverts:>7} {per:>12,.2f} {ratio:>11.3f} {r.gas_usd / max(1, r.handled):>9.2f} "
              f"{r.profit_oracle_usd / max(1, r.handled):>11,.2f}  {mined_text(r)}")  # fmt: skip


if __name__ == "__main__":
    main()
