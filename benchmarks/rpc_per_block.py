"""RPC cost per block: keeper's incremental book against per-account polling, on anvil.

Seeds N positions in our Aave v3-compatible market (one `seedPositions` transaction per 1,000
accounts), then measures, for a block with no activity and for a block with an oracle price
update, the JSON-RPC requests and the wall time needed to know every account's health:

  - keeper: head + eth_getLogs + one Multicall3 for market and wallet; accounts re-read only
    when their own events say they changed (`Keeper.step`);
  - polling, unbatched: one `getUserAccountData` eth_call per account per block (what many
    open-source liquidation bots do);
  - polling, Multicall3: the same calls batched 400 per `aggregate3`.

    .venv/bin/python -m benchmarks.rpc_per_block [--accounts 1000 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

from eth_account import Account
from eth_utils import keccak
from web3 import AsyncWeb3
from web3.providers import AsyncHTTPProvider

from keeper.app.loop import Keeper
from keeper.devtools.anvil import free_port, start_anvil
from keeper.devtools.demo import make_settings
from keeper.devtools.devchain import DevChain
from keeper.execution.executor import Executor
from keeper.sources.abi import fn
from keeper.sources.chain import Call, Chain

KEY = "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6"  # anvil dev account 9 (public)
GET_DATA = fn("AaveV3Pool", "getUserAccountData")


async def seed(  # type: ignore[no-untyped-def]
    dc: DevChain, dep, n: int, rng: random.Random, hf: tuple[float, float] = (1.05, 2.5), at_risk: int = 0
) -> list[str]:
    """`n` WETH/USDC positions at HFs drawn from `hf` at $3,000 (LT 83%); the first `at_risk`
    of them at HF 1.02-1.05 instead (a 10% fall liquidates them). One transaction per 1,000."""
    users = [AsyncWeb3.to_checksum_address(keccak(text=f"user {k}")[:20]) for k in range(n)]
    total_weth = 0
    for s in range(0, n, 1000):
        batch = users[s : s + 1000]
        weth = [rng.randint(1, 20) * 10**18 for _ in batch]
        ranges = [(1.02, 1.05) if s + k < at_risk else hf for k in range(len(batch))]
        debt = [int(w / 10**18 * 3000 * 0.83 / rng.uniform(*r) * 10**6) for w, r in zip(weth, ranges, strict=True)]
        total_weth += sum(weth)
        await dc.send(
            "Pool", dep.pool, "seedPositions", dep.deployer, dep.tokens["WETH"], dep.tokens["USDC"], batch, weth, debt
        )
    await dc.mint(dep, "WETH", dep.a_tokens["WETH"], total_weth)
    return users


async def polling(chain: Chain, pool: str, users: list[str], block: int, batched: bool) -> None:
    if batched:
        await chain.multicall([Call(pool, GET_DATA.encode(u)) for u in users], block)
    else:
        for u in users:
            await chain.call(pool, GET_DATA.encode(u), block)


async def measure(n: int, rng: random.Random) -> list[tuple[str, int, int, float, float]]:
    proc, url = start_anvil(free_port(), "--gas-limit", "3000000000", "--code-size-limit", "50000")
    try:
        w3 = AsyncWeb3(AsyncHTTPProvider(url, request_kwargs={"timeout": 120}))
        dc = DevChain(w3)
        deployer = (await w3.eth.accounts)[0]
        dep = await dc.deploy_market(deployer)
        users = await seed(dc, dep, n, rng)
        settings = make_settings(dep, await w3.eth.chain_id, KEY, ())
        chain = Chain(w3, dep.multicall3)
        keeper = Keeper(
            settings, chain, Executor(chain, settings.execution, Account.from_key(KEY).address, None, dry_run=True)
        )
        await keeper.start()
        assert keeper.watches[0].book is not None and len(keeper.watches[0].book) == n

        async def one_block(label: str) -> dict[str, tuple[int, float]]:
            if label == "price":
                await dc.set_price(dep, "WETH", 2_900.0 - rng.random() * 100)  # mined in its own block
            else:
                await w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            head = (await chain.head()).number
            out: dict[str, tuple[int, float]] = {}
            before, t = chain.requests, time.perf_counter()
            report = await keeper.step()
            assert report is not None and report.block == head
            out["keeper (incremental book)"] = (chain.requests - before, time.perf_counter() - t)
            for name, batched in (("polling, Multicall3 x400", True), ("polling, unbatched", False)):
                before, t = chain.requests, time.perf_counter()
                await polling(chain, dep.pool, users, head, batched)
                out[name] = (chain.requests - before, time.perf_counter() - t)
            return out

        idle, price = await one_block("idle"), await one_block("price")
        await chain.close()
        return [(name, idle[name][0], price[name][0], idle[name][1] * 1e3, price[name][1] * 1e3) for name in idle]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def main_async(sizes: list[int]) -> None:
    rng = random.Random(1)
    print("JSON-RPC requests and wall time to know every account's health, per block (anvil, HTTP)")
    print(
        f"{'accounts':>9}  {'implementation':<28} {'req idle':>9} {'req price':>10} {'ms idle':>9} "
        f"{'ms price':>9} {'req ratio':>10}"
    )
    for n in sizes:
        rows = await measure(n, rng)
        ours = rows[0][2]
        for name, r_idle, r_price, ms_idle, ms_price in rows:
            print(
                f"{n:>9,}  {name:<28} {r_idle:>9,} {r_price:>10,} {ms_idle:>9,.1f} {ms_price:>9,.1f} "
                f"{r_price / ours:>9.0f}x"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, nargs="+", default=[1_000, 10_000])
    asyncio.run(main_async(ap.parse_args().accounts))


if __name__ == "__main__":
    main()
