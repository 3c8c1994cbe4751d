"""Burst execution on anvil with mining off: a block's liquidations are all accepted by the node
before any of them is mined (sequential nonces, no receipt awaited in between), and land in one
block. A send the node refuses in the middle of a burst leaves a nonce gap, which the keeper
fills so the later ones are mined; the refused account is liquidated at a later block."""

import asyncio
import random

from eth_account import Account
from pydantic import SecretStr
from web3 import AsyncWeb3
from web3.providers import AsyncHTTPProvider

from keeper.app.loop import Keeper
from keeper.devtools.demo import make_settings
from keeper.devtools.devchain import DevChain
from keeper.execution.executor import Executor
from keeper.execution.journal import Journal
from keeper.execution.signer import Signer
from keeper.sources.chain import Chain
from tests.anvil.conftest import DEV_KEYS, FaultProxy, liquidations_per_user, seed_liquidatable

E6 = 10**6
USERS = 12


async def setup(anvil: str, url: str, tmp_path):  # type: ignore[no-untyped-def]
    w3 = AsyncWeb3(AsyncHTTPProvider(anvil, request_kwargs={"timeout": 60}))
    dc = DevChain(w3)
    dep = await dc.deploy_market((await w3.eth.accounts)[0])
    users = await seed_liquidatable(dc, dep, "burst user", USERS)
    address = Account.from_key(DEV_KEYS[9]).address
    await dc.mint(dep, "USDC", address, 100_000 * E6)
    await dc.approve(dep, "USDC", address, dep.pool, 10**30)
    settings = make_settings(dep, await w3.eth.chain_id, DEV_KEYS[9], (), comet=False, perps=False)
    chain = Chain(AsyncWeb3(AsyncHTTPProvider(url, request_kwargs={"timeout": 30})), dep.multicall3)
    executor = Executor(
        chain,
        settings.execution,
        address,
        Signer(SecretStr(DEV_KEYS[9])),
        dry_run=False,
        journal=Journal(tmp_path / "journal.sqlite"),
    )
    keeper = Keeper(settings, chain, executor)
    keeper.background = True
    await keeper.start()
    await dc.set_price(dep, "WETH", 2_300.0)  # HF 0.92: each account fully liquidatable once
    await w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    return w3, dep, users, keeper


async def accepted(keeper: Keeper, n: int) -> None:
    while len(keeper.executor.accepted) < n:
        await asyncio.sleep(0.01)


async def test_a_blocks_liquidations_go_out_in_one_burst(anvil, tmp_path):
    w3, dep, users, keeper = await setup(anvil, anvil, tmp_path)
    block = await w3.eth.block_number
    report = await keeper.step()
    assert report is not None and report.queued == USERS
    await asyncio.wait_for(accepted(keeper, USERS), timeout=30)
    assert await w3.eth.block_number == block  # every one accepted while no block was mined
    pending = await w3.eth.get_transaction_count(keeper.executor.address, "pending")
    assert pending - await w3.eth.get_transaction_count(keeper.executor.address) == USERS
    await w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    await asyncio.wait_for(keeper.drain(), timeout=30)
    receipts = [r for o in keeper.history for r in o.results]
    assert len(receipts) == USERS and {r.block for r in receipts} == {block + 1}
    assert all(r.status == 1 for r in receipts)
    assert await liquidations_per_user(w3, dep.pool) == {u: 1 for u in users}
    assert keeper.executor.journal.counts() == {"confirmed": USERS}


async def test_a_refused_send_leaves_no_gap(anvil, tmp_path):
    proxy = FaultProxy(anvil, random.Random(1), 0.0, refuse_sends=frozenset({4}))
    url = await proxy.start()
    try:
        w3, dep, users, keeper = await setup(anvil, url, tmp_path)
        report = await keeper.step()
        assert report is not None and report.queued == USERS
        # 11 liquidations and the filler of the refused one's nonce
        await asyncio.wait_for(accepted(keeper, USERS), timeout=30)
        await w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        await asyncio.wait_for(keeper.drain(), timeout=30)
        refused = [o for o in keeper.history if o.error]
        assert len(refused) == 1 and "injected refusal" in (refused[0].error or "")
        assert sum(o.ok and o.sent for o in keeper.history) == USERS - 1
        address = keeper.executor.address
        assert await w3.eth.get_transaction_count(address) == await w3.eth.get_transaction_count(address, "pending")
        # the next block liquidates the account whose send was refused
        await w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        await keeper.step()
        await asyncio.wait_for(accepted(keeper, USERS + 1), timeout=30)
        await w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        await asyncio.wait_for(keeper.drain(), timeout=30)
        assert await liquidations_per_user(w3, dep.pool) == {u: 1 for u in users}
    finally:
        await proxy.stop()
