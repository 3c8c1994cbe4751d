"""The keeper against our Comet-compatible market on eth-tester (py-evm)."""

import dataclasses
import random

import pytest

from keeper.protocols.aave_v3.actions import Liquidate
from keeper.protocols.comet import math as comet
from keeper.protocols.comet.actions import Absorb, BuyCollateral
from keeper.strategy.actions import Protect
from tests.helpers import evolve

E18, E8, E6 = 10**18, 10**8, 10**6
PRICE = {"WETH": 3_000.0, "WBTC": 60_000.0}
DECIMALS = {"WETH": 18, "WBTC": 8}
BCF = {"WETH": 0.83, "WBTC": 0.70}


def comet_of(env):
    return env.dc.contract("Comet", env.dep.comet)


def watch(keeper):
    (w,) = [w for w in keeper.watches if w.protocol == "comet"]
    return w


async def open_comet(env, user, coll_sym, coll_amount, borrow_usdc):
    await env.dc.comet_supply(env.dep, coll_sym, user, coll_amount)
    await env.dc.comet_borrow(env.dep, user, borrow_usdc)


async def fund_keeper(env, usdc=0, weth=0):
    if usdc:
        await env.dc.mint(env.dep, "USDC", env.keeper_address, usdc)
    if weth:
        await env.dc.mint(env.dep, "WETH", env.keeper_address, weth)


async def mine_and_step(env, keeper):
    env.w3.provider.ethereum_tester.mine_blocks(1)
    return await keeper.step()


async def test_health_matches_comet_for_random_accounts(env):
    """isLiquidatable / isBorrowCollateralized at the keeper's block, for 14 random accounts:
    the integer replica matches exactly, and so does the numpy engine's classification."""
    rng = random.Random(7)
    tester = env.w3.provider.ethereum_tester
    users = []
    for _ in range(14):
        user = tester.add_account("0x" + rng.randbytes(32).hex())
        await env.w3.eth.send_transaction({"from": env.accounts[0], "to": user, "value": 10**18})
        capacity = 0.0
        for sym in rng.sample(["WETH", "WBTC"], rng.choice([1, 2])):
            usd = rng.uniform(3_000, 60_000)
            await env.dc.comet_supply(env.dep, sym, user, int(usd / PRICE[sym] * 10 ** DECIMALS[sym]))
            capacity += usd * BCF[sym]
        await env.dc.comet_borrow(env.dep, user, int(capacity * rng.uniform(0.90, 0.995) * E6))
        users.append(user)
    await env.dc.advance_time(20 * 86_400)
    await env.dc.comet_supply(env.dep, "USDC", env.accounts[1], E6)  # accrues: the stored indices move
    await env.dc.heartbeat(env.dep)
    await env.dc.set_price(env.dep, "WETH", 2_640.0)
    await env.dc.set_price(env.dep, "WBTC", 53_000.0)

    keeper = env.keeper(aave=False)
    await keeper.start()
    w = watch(keeper)
    snap = w.book.snapshot()
    c = comet_of(env)
    liquidatable = 0
    for user in users:
        pos = w.book.positions[user]
        onchain_liq = await c.functions.isLiquidatable(user).call(block_identifier=w.block)
        onchain_coll = await c.functions.isBorrowCollateralized(user).call(block_identifier=w.block)
        assert comet.is_liquidatable(pos, w.adapter.market) == onchain_liq, user
        assert comet.is_borrow_collateralized(pos, w.adapter.market) == onchain_coll, user
        # the rate model: interest accrued since the last accrual, as borrowBalanceOf computes it
        onchain_debt = await c.functions.borrowBalanceOf(user).call(block_identifier=w.block)
        assert comet.borrow_balance(pos, w.adapter.market.accrued()) == onchain_debt, user
        engine = snap.health.health_factor[w.book.row[user]]
        assert (engine < 1.0) == onchain_liq, (user, engine)
        exact = comet.health_factor_wad(pos, w.adapter.market) / E18
        assert engine == pytest.approx(exact, rel=1e-9)
        liquidatable += onchain_liq
    assert 0 < liquidatable < len(users), liquidatable  # both classes are exercised
    # distance to liquidation: 0 when liquidatable; otherwise the price of one collateral at which
    # Comet's own math puts the account at the boundary
    for user in users:
        k, pos = w.book.row[user], w.book.positions[user]
        if comet.is_liquidatable(pos, w.adapter.market):
            assert snap.distance[k] == 0
            continue
        assert 0 < snap.distance[k] < 1
        for col in range(1, 3):
            if pos.in_asset(col - 1):
                prices = list(w.adapter.market.prices)
                prices[col - 1] = int(snap.liquidation_price[k][col])
                at = dataclasses.replace(w.adapter.market, prices=tuple(prices))
                assert comet.health_factor_wad(pos, at) / E18 == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("kind", ["repay", "supply"])
async def test_protect_reaches_target_on_comet(env, kind):
    user = env.accounts[2]
    await open_comet(env, user, "WETH", 10 * E18, 24_000 * E6)
    if kind == "repay":
        await fund_keeper(env, usdc=20_000 * E6)
    else:
        await fund_keeper(env, weth=5 * E18)
    # a quiet market: the stored indices are 30 days old; the supply accrues them first
    await env.dc.advance_time(30 * 86_400)
    await env.dc.heartbeat(env.dep)
    keeper = env.keeper(protect=(user,), trigger=1.15, target=1.30, aave=False)
    await keeper.start()
    report = await mine_and_step(env, keeper)
    (out,) = report.outcomes
    assert isinstance(out.action, Protect) and out.action.kind == kind and out.ok, out.error
    w = watch(keeper)
    (pos,) = await w.read_positions(keeper.chain, [user], await env.w3.eth.block_number)
    hf = comet.health_factor_wad(pos, w.adapter.market.accrued()) / E18
    assert 1.30 <= hf <= 1.30 * 1.001
    assert out.health_after == pytest.approx(hf, rel=1e-12)
    assert not await comet_of(env).functions.isLiquidatable(user).call()


async def test_absorb_then_buy_collateral_pays_the_predicted_gain(env):
    user = env.accounts[4]
    await open_comet(env, user, "WETH", 10 * E18, 24_500 * E6)
    await fund_keeper(env, usdc=60_000 * E6)
    await env.dc.set_price(env.dep, "WETH", 2_650.0)
    c = comet_of(env)
    assert await c.functions.isLiquidatable(user).call()
    usdc0 = await env.dc.balance(env.dep, "USDC", env.keeper_address)
    weth0 = await env.dc.balance(env.dep, "WETH", env.keeper_address)
    keeper = env.keeper(aave=False)
    await keeper.start()
    report = await mine_and_step(env, keeper)
    absorb, buy = report.outcomes
    assert isinstance(absorb.action, Absorb) and absorb.ok, absorb.error
    assert absorb.action.accounts == (user,) and absorb.action.expected_seized == (("WETH", 10 * E18),)
    assert isinstance(buy.action, BuyCollateral) and buy.ok, buy.error
    assert not await c.functions.isLiquidatable(user).call()
    assert await c.functions.collateralBalanceOf(user, env.dep.tokens["WETH"]).call() == 0
    spent = usdc0 - await env.dc.balance(env.dep, "USDC", env.keeper_address)
    got = await env.dc.balance(env.dep, "WETH", env.keeper_address) - weth0
    assert spent == buy.action.base_amount
    assert got == buy.action.expected_collateral == 10 * E18  # all of it: the quote is exact
    realised = got * 2_650 * E8 // E18 - spent * E8 // E6
    assert realised == pytest.approx(buy.action.expected_gross_base, abs=2)
    # 3% store-front discount (0.6 x (1 - 0.95)) on $26,500 of WETH
    assert realised == pytest.approx(0.03 * 26_500 * E8, rel=1e-3)
    gas_usd = (absorb.gas_cost_base + buy.gas_cost_base) / E8
    assert 0 < gas_usd < realised / E8


async def test_absorb_skipped_when_it_cannot_pay_and_forced_by_config(env, caplog):

    user = env.accounts[5]
    await open_comet(env, user, "WETH", 10 * E18, 24_500 * E6)
    await env.dc.set_price(env.dep, "WETH", 2_650.0)
    keeper = env.keeper(aave=False)  # no USDC in the wallet: nothing to buy the collateral with
    await keeper.start()
    with caplog.at_level("INFO", logger="keeper.decision"):
        report = await mine_and_step(env, keeper)
    assert report.outcomes == [] and report.below_one == 1
    assert any("absorb unprofitable" in r.getMessage() and user in r.getMessage() for r in caplog.records)

    keeper.settings = evolve(keeper.settings, liquidate=evolve(keeper.settings.liquidate, comet_absorb_always=True))
    report = await mine_and_step(env, keeper)
    (out,) = report.outcomes
    assert isinstance(out.action, Absorb) and out.ok, out.error
    assert not await comet_of(env).functions.isLiquidatable(user).call()


async def test_comet_dry_run_sends_nothing(env):
    user, victim = env.accounts[6], env.accounts[7]
    await open_comet(env, user, "WETH", 10 * E18, 24_000 * E6)
    await open_comet(env, victim, "WETH", 10 * E18, 24_500 * E6)
    await fund_keeper(env, usdc=60_000 * E6)
    env.unlock_keeper()
    await env.dc.approve(env.dep, "USDC", env.keeper_address, env.dep.comet, 10**30)
    await env.dc.set_price(env.dep, "WETH", 2_650.0)
    nonce = await env.w3.eth.get_transaction_count(env.keeper_address)
    c = comet_of(env)
    before = [await c.functions.userBasic(u).call() for u in (user, victim)]
    keeper = env.keeper(protect=(user,), dry_run=True, aave=False)
    await keeper.start()
    report = await mine_and_step(env, keeper)
    kinds = [type(o.action).__name__ for o in report.outcomes]
    assert kinds == ["Protect", "Absorb", "BuyCollateral"], kinds
    protect, absorb, buy = report.outcomes
    for out in (protect, absorb):
        assert out.error is None and [r.sent for r in out.results] == [False] and out.results[0].gas_estimate > 0
    # eth-tester has no eth_simulateV1: the purchase after the absorb cannot be simulated, and says so
    assert (
        buy.error is None
        and buy.results
        and all(r.note.startswith("dry-run: not simulated: it needs") for r in buy.results)
    ), buy.results
    assert await env.w3.eth.get_transaction_count(env.keeper_address) == nonce
    assert [await c.functions.userBasic(u).call() for u in (user, victim)] == before


async def test_one_keeper_liquidates_on_every_market_in_one_block(env):
    aave_user, comet_user = env.accounts[2], env.accounts[3]
    await env.dc.supply(env.dep, "WETH", aave_user, 10 * E18)
    await env.dc.borrow(env.dep, "USDC", aave_user, 24_000 * E6)
    await open_comet(env, comet_user, "WETH", 10 * E18, 24_500 * E6)
    perp = await env.dc.perps_open(env.dep, env.accounts[4], 3_000 * E18, 100, 10 * E18)  # 10x long ETH
    await fund_keeper(env, usdc=100_000 * E6)
    keeper = env.keeper()
    await keeper.start()
    assert [w.protocol for w in keeper.watches] == ["aave-v3", "comet", "perps"]
    quiet = await mine_and_step(env, keeper)
    assert quiet.outcomes == [] and quiet.requests == 3  # head, one getLogs, one multicall: all three markets
    await env.dc.set_price(env.dep, "WETH", 2_650.0)
    report = await mine_and_step(env, keeper)
    kinds = [(o.market.split()[0], type(o.action).__name__) for o in report.outcomes]
    assert kinds == [
        ("aave-v3", "Liquidate"),
        ("comet", "Absorb"),
        ("comet", "BuyCollateral"),
        ("perps", "LiquidatePerps"),
    ], kinds
    assert all(o.ok for o in report.outcomes), [o.error for o in report.outcomes]
    assert isinstance(report.outcomes[0].action, Liquidate)
    assert report.outcomes[3].action.account_id == perp


async def test_comet_reverts_are_named(env):
    """Comet reverts with custom errors; the keeper names them (simulated through the executor)."""
    from keeper.errors import SkipAction
    from keeper.execution.executor import TxRequest

    user = env.accounts[8]
    await open_comet(env, user, "WETH", 10 * E18, 20_000 * E6)
    c = comet_of(env)
    keeper = env.keeper(aave=False)
    cases = [
        (env.keeper_address, c.encode_abi("absorb", [env.keeper_address, [user]]), "NotLiquidatable"),
        (user, c.encode_abi("withdraw", [env.dep.tokens["USDC"], 10_000 * E6]), "NotCollateralized"),
        (user, c.encode_abi("withdraw", [env.dep.tokens["WETH"], 5 * E18]), "NotCollateralized"),
    ]
    for sender, data, name in cases:
        keeper.executor.address = sender
        with pytest.raises(SkipAction, match=f"reverted: {name}"):
            await keeper.executor.simulate(TxRequest(env.dep.comet, bytes.fromhex(data[2:]), "test"))
