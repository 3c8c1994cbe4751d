"""Two faulty JSON-RPC proxies (aiohttp, loopback) in front of anvil: each drops, delays past the
timeout, errors or garbles a share of requests. With failover between them the keeper still
liquidates every liquidatable account, each exactly once, within a bounded number of blocks.
And endpoints that disagree on the chain stop the keeper before it acts."""

import asyncio
import random

import pytest
from eth_account import Account
from pydantic import SecretStr
from web3 import AsyncWeb3
from web3.providers import AsyncHTTPProvider

from keeper.app.loop import Keeper
from keeper.devtools.demo import make_settings
from keeper.devtools.devchain import DevChain
from keeper.errors import FatalError
from keeper.execution.executor import Executor
from keeper.execution.journal import Journal
from keeper.execution.signer import Signer
from keeper.sources.chain import Chain
from keeper.sources.rpc import FailoverProvider
from tests.anvil.conftest import (
    DEV_KEYS,
    FaultProxy,
    beside,
    liquidations_per_user,
    mine_every,
    seed_liquidatable,
)

E18, E6 = 10**18, 10**6
USERS = 8


async def deploy(anvil: str):
    w3 = AsyncWeb3(AsyncHTTPProvider(anvil, request_kwargs={"timeout": 60}))
    dc = DevChain(w3)
    dep = await dc.deploy_market((await w3.eth.accounts)[0])
    users = await seed_liquidatable(dc, dep, "rpc fault user", USERS)
    keeper = Account.from_key(DEV_KEYS[9]).address
    await dc.mint(dep, "USDC", keeper, 100_000 * E6)
    await dc.approve(dep, "USDC", keeper, dep.pool, 10**30)
    return w3, dc, dep, users


def keeper_over(urls: list[str], dep, chain_id: int, tmp_path) -> Keeper:
    provider = FailoverProvider(urls, timeout_s=1.0, max_lag_blocks=5, probe_every_s=5.0)
    key = DEV_KEYS[9]
    settings = make_settings(dep, chain_id, key, ())
    settings = settings.__class__(**{**settings.__dict__, "poll_interval_s": 0.1})
    chain = Chain(AsyncWeb3(provider), dep.multicall3)
    address = Account.from_key(key).address
    executor = Executor(
        chain,
        settings.execution,
        address,
        Signer(SecretStr(key)),
        dry_run=False,
        journal=Journal(tmp_path / "j.sqlite"),
    )
    return Keeper(settings, chain, executor)


async def test_every_account_handled_through_faulty_endpoints(anvil, tmp_path):
    w3, dc, dep, users = await deploy(anvil)
    rng = random.Random(5)
    proxies = [FaultProxy(anvil, rng, 0.2), FaultProxy(anvil, rng, 0.2)]
    urls = [await p.start() for p in proxies]
    keeper = keeper_over(urls, dep, await w3.eth.chain_id, tmp_path)

    try:
        async with beside(mine_every(w3, 0.3)):
            await dc.set_price(dep, "WETH", 2_300.0)  # HF 0.92: each account fully liquidatable once
            await asyncio.wait_for(keeper.run(blocks=30), timeout=150)
    finally:
        for p in proxies:
            await p.stop()
    injected = sum(p.injected for p in proxies)
    assert injected >= 20, [p.faults for p in proxies]
    per_user = await liquidations_per_user(w3, dep.pool)
    assert per_user == {u: 1 for u in users}, per_user


async def test_endpoints_on_different_chains_refuse_to_start(anvil, tmp_path):
    w3 = AsyncWeb3(AsyncHTTPProvider(anvil))
    dc = DevChain(w3)
    dep = await dc.deploy_market((await w3.eth.accounts)[0])
    liar = FaultProxy(anvil, random.Random(1), 0.0, chain_id_hex="0x1")
    url = await liar.start()
    try:
        keeper = keeper_over([anvil, url], dep, await w3.eth.chain_id, tmp_path)
        with pytest.raises(FatalError, match="is on chain id 1, not 31337"):
            await keeper.start()
    finally:
        await liar.stop()
