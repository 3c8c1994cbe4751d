"""Dry-run tells the truth: an action that needs an approval first is simulated after it (one
eth_simulateV1: approval, then the action) and reported as simulated; where the node cannot
simulate that, it is reported and counted as not simulated, never as simulated."""

from eth_account import Account
from pydantic import SecretStr
from web3 import AsyncWeb3
from web3.providers import AsyncHTTPProvider

from keeper.app.loop import Keeper
from keeper.devtools.demo import make_settings
from keeper.devtools.devchain import DevChain
from keeper.execution.executor import DRY_RUN_NOTE, Executor
from keeper.execution.signer import Signer
from keeper.sources.chain import Chain
from tests.anvil.conftest import DEV_KEYS, seed_liquidatable

E6 = 10**6


async def _keeper(w3, dep) -> Keeper:
    settings = make_settings(dep, await w3.eth.chain_id, DEV_KEYS[9], (), comet=False, perps=False)
    chain = Chain(w3, dep.multicall3)
    address = Account.from_key(DEV_KEYS[9]).address
    executor = Executor(chain, settings.execution, address, Signer(SecretStr(DEV_KEYS[9])), dry_run=True)
    return Keeper(settings, chain, executor)


async def test_an_action_without_allowance_is_simulated_after_its_approval(anvil):
    w3 = AsyncWeb3(AsyncHTTPProvider(anvil))
    dc = DevChain(w3)
    dep = await dc.deploy_market((await w3.eth.accounts)[0])
    users = await seed_liquidatable(dc, dep, "dry-run user", 2)
    keeper_address = Account.from_key(DEV_KEYS[9]).address
    await dc.mint(dep, "USDC", keeper_address, 100_000 * E6)  # funded, but no allowance for the Pool
    await dc.set_price(dep, "WETH", 2_300.0)
    keeper = await _keeper(w3, dep)
    nonce = await w3.eth.get_transaction_count(keeper_address)
    await keeper.start()
    await w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    await keeper.step()
    await keeper.drain()
    outs = [o for o in keeper.history if type(o.action).__name__ == "Liquidate"]
    assert {o.action.subject for o in outs} == set(users)
    for o in outs:
        assert o.error is None and [r.note for r in o.results] == [DRY_RUN_NOTE, DRY_RUN_NOTE], o.results
        assert o.results[0].description.startswith("approve") and all(r.gas_estimate > 0 for r in o.results)
    assert {k[2] for k in keeper.counts} == {"dry_run"}, keeper.counts
    assert await w3.eth.get_transaction_count(keeper_address) == nonce
    await w3.provider.disconnect()


async def test_purchases_after_an_absorb_are_simulated_after_it(anvil):
    w3 = AsyncWeb3(AsyncHTTPProvider(anvil))
    dc = DevChain(w3)
    dep = await dc.deploy_market((await w3.eth.accounts)[0])
    await dc.deploy_comet(dep)
    lp, victim = (await w3.eth.accounts)[1:3]
    await dc.comet_supply(dep, "USDC", lp, 5_000_000 * E6)
    await dc.comet_supply(dep, "WETH", victim, 10 * 10**18)
    await dc.comet_borrow(dep, victim, 24_500 * E6)
    keeper_address = Account.from_key(DEV_KEYS[9]).address
    await dc.mint(dep, "USDC", keeper_address, 100_000 * E6)  # no allowance for Comet
    await dc.set_price(dep, "WETH", 2_650.0)
    settings = make_settings(dep, await w3.eth.chain_id, DEV_KEYS[9], (), aave=False, perps=False)
    chain = Chain(w3, dep.multicall3)
    executor = Executor(chain, settings.execution, keeper_address, Signer(SecretStr(DEV_KEYS[9])), dry_run=True)
    keeper = Keeper(settings, chain, executor)
    await keeper.start()
    await w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    await keeper.step()
    await keeper.drain()
    kinds = [type(o.action).__name__ for o in keeper.history]
    assert kinds == ["Absorb", "BuyCollateral"], kinds
    absorb, buy = keeper.history
    assert absorb.error is None and [r.note for r in absorb.results] == [DRY_RUN_NOTE]
    assert buy.error is None and [r.note for r in buy.results] == [DRY_RUN_NOTE, DRY_RUN_NOTE], buy.results
    assert buy.results[0].description.startswith("approve")
    assert await w3.eth.get_transaction_count(keeper_address) == 0
    await w3.provider.disconnect()


async def test_without_eth_simulate_the_allowance_is_overridden_in_an_eth_call(anvil):
    """A node without eth_simulateV1 (a proxy answers 'method not found'): the action is checked
    by eth_call with the token's allowance slot overridden (found by probing), and says so."""
    import random

    from tests.anvil.conftest import FaultProxy

    proxy = FaultProxy(anvil, random.Random(1), 0.0, missing_methods=frozenset({"eth_simulateV1"}))
    url = await proxy.start()
    try:
        w3 = AsyncWeb3(AsyncHTTPProvider(anvil))
        dc = DevChain(w3)
        dep = await dc.deploy_market((await w3.eth.accounts)[0])
        users = await seed_liquidatable(dc, dep, "override user", 1)
        keeper_address = Account.from_key(DEV_KEYS[9]).address
        await dc.mint(dep, "USDC", keeper_address, 100_000 * E6)  # no allowance for the Pool
        await dc.set_price(dep, "WETH", 2_300.0)
        keeper = await _keeper(AsyncWeb3(AsyncHTTPProvider(url)), dep)
        await keeper.start()
        await w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        await keeper.step()
        await keeper.drain()
        (out,) = [o for o in keeper.history if o.action.subject == users[0]]
        assert out.error is None, out.error
        assert [r.note.split(" (")[0] for r in out.results] == [
            "dry-run: simulated by eth_call with the allowance overridden"
        ] * 2
        assert {k[2] for k in keeper.counts} == {"dry_run"}
        await keeper.chain.close()
        await w3.provider.disconnect()
    finally:
        await proxy.stop()
