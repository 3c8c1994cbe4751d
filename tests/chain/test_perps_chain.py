"""The keeper against our Synthetix-v3-compatible perps market on eth-tester (py-evm)."""

import dataclasses
import random

import numpy as np
import pytest

from keeper.protocols.synthetix_perps import math as perps
from keeper.protocols.synthetix_perps.actions import AddMargin, LiquidatePerps, ReducePosition, SettleOrder

E18 = 10**18
ETH, BTC = 100, 200


def proxy(env):
    return env.dc.contract("PerpsMarket", env.dep.perps)


def watch(keeper):
    (w,) = [w for w in keeper.watches if w.protocol == "perps"]
    return w


async def mine_and_step(env, keeper):
    env.w3.provider.ethereum_tester.mine_blocks(1)
    return await keeper.step()


async def fund_keeper(env, usd: int):
    await env.dc.send("MintableERC20", env.dep.snx_usd, "mint", env.dep.deployer, env.keeper_address, usd)


async def test_engine_matches_the_market_for_random_accounts(env):
    """Margin, requirement and canLiquidate at the keeper's block, for 14 random accounts after a
    day of funding and a price move: the engine's classification equals canLiquidate."""
    rng = random.Random(17)
    ids = []
    for k in range(14):
        owner = env.accounts[2 + k % 7]
        market, price = rng.choice([(ETH, 3_000), (BTC, 60_000)])
        margin = rng.uniform(1_000, 20_000)
        leverage = rng.uniform(5, 40) * rng.choice([1, -1])
        size = int(margin * leverage / price * E18)
        ids.append(await env.dc.perps_open(env.dep, owner, int(margin * E18), market, size))
    await env.dc.advance_time(86_400)
    await env.dc.heartbeat(env.dep)
    await env.dc.set_price(env.dep, "WETH", 2_870.0)
    await env.dc.set_price(env.dep, "WBTC", 62_300.0)

    keeper = env.keeper(aave=False, comet=False)
    await keeper.start()
    w = watch(keeper)
    snap = w.book.snapshot()
    c = proxy(env)
    liquidatable = 0
    for a in ids:
        key = perps.account_key(a)
        acct = w.book.positions[key]
        block = w.block
        onchain = await c.functions.canLiquidate(a).call(block_identifier=block)
        available = await c.functions.getAvailableMargin(a).call(block_identifier=block)
        _, mm, _ = await c.functions.getRequiredMargins(a).call(block_identifier=block)
        assert acct.can_liquidate == onchain and acct.available_margin == available
        engine = snap.health.health_factor[w.book.row[key]]
        assert (engine < 1.0) == onchain, (a, engine)
        assert engine == pytest.approx(max(available, 0) / mm, rel=1e-9)
        assert snap.health.collateral_base[w.book.row[key]] == pytest.approx(available / E18, rel=1e-9, abs=1e-6)
        liquidatable += onchain
    assert 0 < liquidatable < len(ids), liquidatable
    # liquidation prices: the engine's margin ratio at that price is 1 (for accounts not yet liquidatable)
    prices = snap._m.price_base
    for a in ids:
        k = w.book.row[perps.account_key(a)]
        if snap.health.health_factor[k] < 1:
            assert snap.distance[k] == 0
            continue
        col = int(np.nanargmin(np.abs(snap.liquidation_price[k] / prices - 1)))
        moved = dataclasses.replace(
            snap._m, price_base=np.where(np.arange(2) == col, snap.liquidation_price[k][col], prices)
        )
        ratio = w.book.engine.health(snap._coll[k : k + 1], snap._debt[k : k + 1], moved).health_factor[0]
        assert ratio == pytest.approx(1.0, abs=1e-9)


async def test_add_margin_reaches_target(env):
    owner = env.accounts[2]
    a = await env.dc.perps_open(env.dep, owner, 3_000 * E18, ETH, 10 * E18, keeper=env.keeper_address)
    await fund_keeper(env, 5_000 * E18)
    await env.dc.set_price(env.dep, "WETH", 2_740.0)  # margin ratio 400 / 287.7 = 1.39
    keeper = env.keeper(aave=False, comet=False, perps_accounts=(a,), trigger=1.5, target=2.0)
    await keeper.start()
    report = await mine_and_step(env, keeper)
    (out,) = report.outcomes
    assert isinstance(out.action, AddMargin) and out.ok, out.error
    available = await proxy(env).functions.getAvailableMargin(a).call()
    _, mm, _ = await proxy(env).functions.getRequiredMargins(a).call()
    assert 2.0 <= available / mm <= 2.0 * 1.001
    assert out.health_after == pytest.approx(available / mm, rel=1e-12)


async def test_reduce_when_the_wallet_cannot_cover(env):
    owner = env.accounts[3]
    a = await env.dc.perps_open(env.dep, owner, 3_000 * E18, ETH, 10 * E18, keeper=env.keeper_address)
    await env.dc.set_price(env.dep, "WETH", 2_740.0)
    keeper = env.keeper(aave=False, comet=False, perps_accounts=(a,), trigger=1.5, target=2.0)
    await keeper.start()
    report = await mine_and_step(env, keeper)
    commit, settle = report.outcomes
    assert isinstance(commit.action, ReducePosition) and commit.ok, commit.error
    assert isinstance(settle.action, SettleOrder) and settle.ok, settle.error
    assert commit.action.size_delta < 0  # sells part of the long
    available = await proxy(env).functions.getAvailableMargin(a).call()
    _, mm, _ = await proxy(env).functions.getRequiredMargins(a).call()
    assert available / mm >= 2.0
    _, _, size = await proxy(env).functions.getOpenPosition(a, ETH).call()
    assert 0 < size < 10 * E18 and size == 10 * E18 + commit.action.size_delta


async def test_liquidation_pays_the_predicted_reward(env):
    owner = env.accounts[4]
    a = await env.dc.perps_open(env.dep, owner, 3_000 * E18, ETH, 10 * E18)
    await env.dc.set_price(env.dep, "WETH", 2_700.0)
    c = proxy(env)
    assert await c.functions.canLiquidate(a).call()
    _, _, reward = await c.functions.getRequiredMargins(a).call()
    before = await env.dc.view("MintableERC20", env.dep.snx_usd, "balanceOf", env.keeper_address)
    keeper = env.keeper(aave=False, comet=False)
    await keeper.start()
    report = await mine_and_step(env, keeper)
    (out,) = report.outcomes
    assert isinstance(out.action, LiquidatePerps) and out.ok, out.error
    got = await env.dc.view("MintableERC20", env.dep.snx_usd, "balanceOf", env.keeper_address) - before
    assert got == out.action.expected_reward == reward == 2_700 * 10 * E18 * 5 // 10_000  # 5 bps of notional
    assert not await c.functions.canLiquidate(a).call()
    assert (await c.functions.getOpenPosition(a, ETH).call())[2] == 0


async def test_perps_dry_run_sends_nothing(env):
    owner = env.accounts[5]
    mine = await env.dc.perps_open(env.dep, owner, 3_000 * E18, ETH, 10 * E18, keeper=env.keeper_address)
    other = await env.dc.perps_open(env.dep, owner, 3_000 * E18, ETH, 10 * E18)
    await fund_keeper(env, 5_000 * E18)
    env.unlock_keeper()
    await env.dc.send("MintableERC20", env.dep.snx_usd, "approve", env.keeper_address, env.dep.perps, 10**30)
    await env.dc.set_price(env.dep, "WETH", 2_700.0)
    nonce = await env.w3.eth.get_transaction_count(env.keeper_address)
    keeper = env.keeper(aave=False, comet=False, perps_accounts=(mine,), dry_run=True, trigger=1.5, target=2.0)
    await keeper.start()
    report = await mine_and_step(env, keeper)
    kinds = [type(o.action).__name__ for o in report.outcomes]
    assert kinds == ["AddMargin", "LiquidatePerps"], kinds
    for out in report.outcomes:
        assert out.error is None and [r.sent for r in out.results] == [False] and out.results[0].gas_estimate > 0
    assert await env.w3.eth.get_transaction_count(env.keeper_address) == nonce
    assert await proxy(env).functions.canLiquidate(other).call()


async def test_liquidating_a_healthy_account_reverts_named(env):
    from keeper.errors import SkipAction
    from keeper.execution.executor import TxRequest

    a = await env.dc.perps_open(env.dep, env.accounts[6], 3_000 * E18, ETH, 5 * E18)
    keeper = env.keeper(aave=False, comet=False)
    data = proxy(env).encode_abi("liquidate", [a])
    with pytest.raises(SkipAction, match="reverted: NotEligibleForLiquidation"):
        await keeper.executor.simulate(TxRequest(env.dep.perps, bytes.fromhex(data[2:]), "test"))
