"""Approvals for USDT-style tokens, which revert when a non-zero allowance is changed to another
non-zero value: the executor resets a leftover allowance to zero first."""

from keeper.execution.tx import TxRequest
from keeper.sources.abi import fn


async def test_a_leftover_allowance_is_reset_before_the_new_one(env):
    keeper = env.keeper(aave=False, comet=False, perps=False)
    token = await env.dc.deploy("NonZeroApprovalERC20", env.dep.deployer, "Tether USD", "USDT", 6)
    await env.dc.send("MintableERC20", token, "mint", env.dep.deployer, env.keeper_address, 1_000 * 10**6)
    await env.w3.eth.send_transaction({"from": env.accounts[0], "to": env.keeper_address, "value": 10**18})
    env.unlock_keeper()
    spender = env.keeper_address  # the keeper pulls with transferFrom from itself: it is the spender
    await env.dc.send("NonZeroApprovalERC20", token, "approve", env.keeper_address, spender, 5)  # leftover
    bob = env.accounts[6]
    pull = TxRequest(token, fn("ERC20", "transferFrom").encode(env.keeper_address, bob, 300 * 10**6), "pull")
    results = await keeper.executor.execute(pull, approve=(token, spender, 300 * 10**6))
    assert [r.description.split(" of ")[0] for r in results] == ["approve 0", "approve 300000000", "pull"]
    assert all(r.status == 1 for r in results)
    assert await env.dc.view("MintableERC20", token, "balanceOf", bob) == 300 * 10**6


async def test_dry_run_without_eth_simulate_reports_not_simulated(env):
    """eth-tester has no eth_simulateV1: an action that needs an approval first cannot be
    simulated, and says so (counted as not simulated)."""
    user = env.accounts[4]
    await env.dc.supply(env.dep, "WETH", user, 10 * 10**18)
    await env.dc.borrow(env.dep, "USDC", user, 24_000 * 10**6)
    await env.dc.mint(env.dep, "USDC", env.keeper_address, 50_000 * 10**6)
    await env.dc.set_price(env.dep, "WETH", 2_850.0)
    keeper = env.keeper(dry_run=True, comet=False, perps=False)
    await keeper.start()
    env.w3.provider.ethereum_tester.mine_blocks(1)
    await keeper.step()
    await keeper.drain()
    (out,) = [o for o in keeper.history if o.action.subject == user]
    assert out.results and all(r.note.startswith("dry-run: not simulated") for r in out.results), out.results
    assert [k[2] for k in keeper.counts] == ["not_simulated"], keeper.counts


async def test_a_reverted_dry_run_simulation_is_counted(env):
    """`keeper run --dry-run` exits 1 when this count is not zero: here the account's owner never
    let the keeper add margin, so the simulation reverts with the market's reason."""
    owner = env.accounts[7]
    a = await env.dc.perps_open(env.dep, owner, 3_000 * 10**18, 100, 10 * 10**18)  # no permission for the keeper
    await env.dc.send("MintableERC20", env.dep.snx_usd, "mint", env.dep.deployer, env.keeper_address, 5_000 * 10**18)
    env.unlock_keeper()
    await env.dc.send("MintableERC20", env.dep.snx_usd, "approve", env.keeper_address, env.dep.perps, 10**30)
    await env.dc.set_price(env.dep, "WETH", 2_740.0)
    keeper = env.keeper(aave=False, comet=False, perps_accounts=(a,), dry_run=True, trigger=1.5, target=2.0)
    await keeper.start()
    env.w3.provider.ethereum_tester.mine_blocks(1)
    await keeper.step()
    await keeper.drain()
    (out,) = keeper.history
    assert out.error and "simulation of" in out.error and "reverted" in out.error, out.error
    assert keeper.simulation_reverts == 1
