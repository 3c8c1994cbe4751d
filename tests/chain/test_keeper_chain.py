"""The keeper against our Aave v3-compatible Pool on eth-tester (py-evm)."""

import random
import re

import pytest

from keeper.errors import FatalError, SkipAction
from keeper.execution.executor import TxRequest
from keeper.protocols.aave_v3.actions import Liquidate
from keeper.protocols.aave_v3.math import WAD, account_data
from keeper.strategy.actions import Protect
from tests.helpers import evolve

E18, E8, E6 = 10**18, 10**8, 10**6
NAMES = {
    36: "COLLATERAL_CANNOT_COVER_NEW_BORROW",
    35: "HEALTH_FACTOR_LOWER_THAN_LIQUIDATION_THRESHOLD",
    45: "HEALTH_FACTOR_NOT_BELOW_THRESHOLD",
}


async def fund_keeper(env, usdc: int = 0, weth: int = 0):
    if usdc:
        await env.dc.mint(env.dep, "USDC", env.keeper_address, usdc)
    if weth:
        await env.dc.mint(env.dep, "WETH", env.keeper_address, weth)


async def pool_hf(env, user, block="latest") -> int:
    c = env.dc.contract("Pool", env.dep.pool)
    return int((await c.functions.getUserAccountData(user).call(block_identifier=block))[5])


async def test_health_matches_pool_for_random_positions(env):
    rng = random.Random(11)
    tester = env.w3.provider.ethereum_tester
    users = []
    for _ in range(14):
        key = "0x" + rng.randbytes(32).hex()
        user = tester.add_account(key)
        await env.w3.eth.send_transaction({"from": env.accounts[0], "to": user, "value": 10**18})
        users.append(user)
        coll = rng.sample(["WETH", "WBTC", "USDC"], rng.choice([1, 2]))
        value = 0.0
        for sym in coll:
            usd = rng.uniform(3_000, 60_000)
            spec = env.dep.specs[sym]
            await env.dc.supply(env.dep, sym, user, int(usd / spec.price_usd * 10**spec.decimals))
            value += usd * spec.ltv_bps / 1e4
        debt_sym = rng.choice([s for s in ("USDC", "WETH") if s not in coll] or ["WETH"])
        spec = env.dep.specs[debt_sym]
        await env.dc.borrow(
            env.dep, debt_sym, user, int(value * rng.uniform(0.85, 0.99) / spec.price_usd * 10**spec.decimals)
        )
    await env.dc.advance_time(10 * 86_400)
    await env.dc.heartbeat(env.dep)
    await env.dc.set_price(env.dep, "WETH", 2_700.0)
    await env.dc.set_price(env.dep, "WBTC", 56_000.0)

    keeper = env.keeper()
    await keeper.start()
    snap = keeper.watches[0].book.snapshot()
    block = keeper.watches[0].adapter.market.block
    below = 0
    for user in users:
        onchain = await pool_hf(env, user, block)
        exact = account_data(keeper.watches[0].book.positions[user], keeper.watches[0].adapter.market).health_factor_wad
        engine = snap.health.health_factor[keeper.watches[0].book.row[user]]
        assert exact == onchain, user  # integer replica: bit-exact
        assert abs(engine - onchain / WAD) <= 1e-9 * onchain / WAD
        assert (engine < 1.0) == (onchain < WAD)
        below += onchain < WAD
    assert 0 < below < len(users), below  # both classes are exercised

    # A block with no Pool activity costs a fixed handful of requests, whatever the number of
    # accounts: head, eth_getLogs, one multicall (market + wallet).
    tester.mine_blocks(1)
    assert await keeper.step() is not None  # the wallet holds no debt asset: nothing to do
    tester.mine_blocks(1)
    quiet = await keeper.step()
    assert quiet is not None and quiet.requests == 3, quiet.requests


async def open_position(env, user, coll_sym, coll_amount, debt_sym, debt_amount):
    await env.dc.supply(env.dep, coll_sym, user, coll_amount)
    await env.dc.borrow(env.dep, debt_sym, user, debt_amount)


async def test_protect_repays_to_target(env):
    user = env.accounts[2]
    await open_position(env, user, "WETH", 10 * E18, "USDC", 21_000 * E6)
    await fund_keeper(env, usdc=10_000 * E6)
    await env.dc.set_price(env.dep, "WETH", 2_800.0)
    keeper = env.keeper(protect=(user,), trigger=1.15, target=1.30)
    await keeper.start()
    report = await keeper.step() or await _mine_and_step(env, keeper)
    (out,) = report.outcomes
    assert isinstance(out.action, Protect) and out.action.kind == "repay" and out.ok
    hf = await pool_hf(env, user) / WAD
    assert 1.30 <= hf <= 1.30 * 1.001
    assert out.health_after == pytest.approx(hf, rel=1e-12)


async def _mine_and_step(env, keeper):
    env.w3.provider.ethereum_tester.mine_blocks(1)
    return await keeper.step()


async def test_protect_supplies_collateral_when_wallet_has_no_debt_asset(env):
    user = env.accounts[3]
    await open_position(env, user, "WETH", 10 * E18, "USDC", 21_000 * E6)
    await fund_keeper(env, weth=5 * E18)
    await env.dc.set_price(env.dep, "WETH", 2_800.0)
    keeper = env.keeper(protect=(user,))
    await keeper.start()
    report = await _mine_and_step(env, keeper)
    (out,) = report.outcomes
    assert out.action.kind == "supply" and out.ok
    assert 1.30 <= await pool_hf(env, user) / WAD <= 1.30 * 1.001


async def test_liquidation_profit_matches_prediction(env):
    user = env.accounts[4]
    await open_position(env, user, "WETH", 10 * E18, "USDC", 24_000 * E6)
    await fund_keeper(env, usdc=50_000 * E6)
    await env.dc.set_price(env.dep, "WETH", 2_850.0)
    assert await pool_hf(env, user) < WAD
    usdc0 = await env.dc.balance(env.dep, "USDC", env.keeper_address)
    weth0 = await env.dc.balance(env.dep, "WETH", env.keeper_address)
    keeper = env.keeper()
    await keeper.start()
    report = await _mine_and_step(env, keeper)
    (out,) = report.outcomes
    a = out.action
    assert isinstance(a, Liquidate) and out.ok, out.error
    assert a.debt_to_cover == a.expected_debt_repaid == a.max_spend  # 50% close factor: the exact amount
    spent = usdc0 - await env.dc.balance(env.dep, "USDC", env.keeper_address)
    got = await env.dc.balance(env.dep, "WETH", env.keeper_address) - weth0
    assert spent == a.expected_debt_repaid
    assert got == a.expected_collateral
    realised = got * 2_850 * E8 // E18 - spent * E8 // E6
    assert realised == pytest.approx(a.expected_gross_base, abs=2)
    assert await pool_hf(env, user) >= WAD


async def test_unprofitable_liquidation_is_skipped(env):
    user = env.accounts[5]
    await open_position(env, user, "WETH", 10 * E18, "USDC", 24_000 * E6)
    await fund_keeper(env, usdc=50_000 * E6)
    await env.dc.set_price(env.dep, "WETH", 2_850.0)
    keeper = env.keeper()
    keeper.settings = keeper.settings.__class__(
        **{**keeper.settings.__dict__, "liquidate": keeper.settings.liquidate.__class__(min_profit_usd=1e9)}
    )
    await keeper.start()
    report = await _mine_and_step(env, keeper)
    assert report.outcomes == [] and report.below_one >= 1


async def test_dry_run_sends_nothing(env):
    user, victim = env.accounts[6], env.accounts[7]
    await open_position(env, user, "WETH", 10 * E18, "USDC", 21_000 * E6)
    await open_position(env, victim, "WETH", 10 * E18, "USDC", 24_000 * E6)
    await fund_keeper(env, usdc=50_000 * E6)
    # pre-approve so the dry run can simulate both calls
    env.unlock_keeper()
    await env.dc.approve(env.dep, "USDC", env.keeper_address, env.dep.pool, 10**30)
    await env.dc.set_price(env.dep, "WETH", 2_800.0)
    nonce = await env.w3.eth.get_transaction_count(env.keeper_address)
    debt_token = env.dc.contract("VariableDebtToken", env.dep.debt_tokens["USDC"])

    async def scaled_debts():
        return [await debt_token.functions.scaledBalanceOf(u).call() for u in (user, victim)]

    debts = await scaled_debts()
    keeper = env.keeper(protect=(user,), dry_run=True)
    await keeper.start()
    report = await _mine_and_step(env, keeper)
    assert len(report.outcomes) == 2
    for out in report.outcomes:
        assert out.error is None
        assert [r.sent for r in out.results] == [False]
        assert out.results[0].gas_estimate > 0 and "simulated" in out.results[0].note
    assert await env.w3.eth.get_transaction_count(env.keeper_address) == nonce
    assert await scaled_debts() == debts  # neither repaid nor liquidated


async def test_wrong_chain_id_refuses_to_start(env):
    keeper = env.keeper()
    keeper.settings = keeper.settings.__class__(**{**keeper.settings.__dict__, "chain_id": 1})
    with pytest.raises(FatalError, match="chain id 131277322940537 but the configuration says 1"):
        await keeper.start()


async def test_pool_reverts_what_aave_reverts(env):
    """Simulated through the executor, as the keeper would: each is refused with Aave's error code."""
    user = env.accounts[8]
    await open_position(env, user, "WETH", 10 * E18, "USDC", 20_000 * E6)
    usdc, weth = env.dep.tokens["USDC"], env.dep.tokens["WETH"]
    pool = env.dc.contract("Pool", env.dep.pool)
    keeper = env.keeper()
    cases = [
        (
            user,
            pool.encode_abi("borrow", [usdc, 5_000 * E6, 2, 0, user]),
            "36 (COLLATERAL_CANNOT_COVER_NEW_BORROW)",
        ),  # borrow above LTV
        (
            user,
            pool.encode_abi("withdraw", [weth, 3 * E18, user]),
            "35 (HEALTH_FACTOR_LOWER_THAN_LIQUIDATION_THRESHOLD)",
        ),  # withdraw dropping HF below 1
        (
            env.keeper_address,
            pool.encode_abi("liquidationCall", [weth, usdc, user, 1_000 * E6, False]),
            "45 (HEALTH_FACTOR_NOT_BELOW_THRESHOLD)",
        ),
    ]
    for sender, data, code in cases:
        keeper.executor.address = sender
        with pytest.raises(SkipAction, match=f"reverted: {re.escape(code)}$"):
            await keeper.executor.simulate(TxRequest(env.dep.pool, bytes.fromhex(data[2:]), "test"))


async def test_loop_stops_when_no_block_is_processed_for_max_stall_s(env, monkeypatch):
    keeper = env.keeper()
    keeper.settings = evolve(keeper.settings, poll_interval_s=0.05, max_stall_s=0.5)
    calls = []

    async def broken():
        calls.append(1)
        raise RuntimeError("bug")

    monkeypatch.setattr(keeper, "step", broken)
    with pytest.raises(FatalError, match=r"no block processed for \d+ s \(max_stall_s 0.5\); 1 block\(s\) failed"):
        await keeper.run(blocks=1)
    assert len(calls) >= 5  # retried all along, one block counted once


async def test_stale_oracle_means_no_action_and_an_alert(env, caplog):
    user, victim = env.accounts[2], env.accounts[3]
    await open_position(env, user, "WETH", 10 * E18, "USDC", 21_000 * E6)
    await open_position(env, victim, "WETH", 10 * E18, "USDC", 24_000 * E6)
    await fund_keeper(env, usdc=50_000 * E6)
    now = (await env.w3.eth.get_block("latest"))["timestamp"]
    # a crash price whose round is 26 hours old: past the 25 h max age
    await env.dc.send(
        "MockAggregator",
        env.dep.aggregators["WETH"],
        "updateRoundData",
        env.dep.deployer,
        2_700 * E8,
        now - 26 * 3600,
        now - 26 * 3600,
    )
    assert await pool_hf(env, victim) < WAD  # Aave itself would let it be liquidated
    nonce = await env.w3.eth.get_transaction_count(env.keeper_address)
    keeper = env.keeper(protect=(user,))
    await keeper.start()
    with caplog.at_level("WARNING", logger="keeper"):
        report = await _mine_and_step(env, keeper)
    assert report.outcomes == []
    assert await env.w3.eth.get_transaction_count(env.keeper_address) == nonce
    alerts = [r.getMessage() for r in caplog.records if "ALERT" in r.getMessage()]
    assert any("oracle price of WETH is untrusted" in a and "stale" in a for a in alerts), alerts
    assert any(f"not protecting {user}" in a for a in alerts), alerts

    # a fresh round: the keeper acts again
    await env.dc.set_price(env.dep, "WETH", 2_700.0)
    report = await _mine_and_step(env, keeper)
    assert {type(o.action).__name__ for o in report.outcomes} == {"Protect", "Liquidate"}
    assert all(o.ok for o in report.outcomes), [o.error for o in report.outcomes]


async def test_zero_oracle_answer_means_no_action(env, caplog):
    """The AaveOracle reverts on a non-positive answer: that market is not read this block (one
    ALERT naming it), nothing is sent, and the loop goes on."""
    victim = env.accounts[4]
    await open_position(env, victim, "WETH", 10 * E18, "USDC", 24_000 * E6)
    await fund_keeper(env, usdc=50_000 * E6)
    keeper = env.keeper()
    await keeper.start()
    await env.dc.set_price(env.dep, "WETH", 0.0)  # AaveOracle reverts on a non-positive answer
    nonce = await env.w3.eth.get_transaction_count(env.keeper_address)
    with caplog.at_level("WARNING", logger="keeper"):
        report = await _mine_and_step(env, keeper)
    assert report is not None and not report.outcomes
    w = keeper.watches[0]
    assert w.protocol == "aave-v3" and "getAssetsPrices" in w.error, w.error
    assert all(not other.error for other in keeper.watches[1:])  # the other markets were read
    assert any("market not read" in r.getMessage() and w.label in r.getMessage() for r in caplog.records)
    assert await env.w3.eth.get_transaction_count(env.keeper_address) == nonce


async def test_reconciliation_catches_what_no_event_announced(env, monkeypatch):
    """A node that silently drops logs (or a change no event names): the periodic full re-read
    finds the drift and the keeper acts on it."""

    victim = env.accounts[6]
    await open_position(env, victim, "WETH", 10 * E18, "USDC", 20_000 * E6)
    await fund_keeper(env, usdc=50_000 * E6)
    keeper = env.keeper()
    keeper.settings = evolve(keeper.settings, reconcile_every_blocks=6)
    await keeper.start()
    start = keeper.last_block

    async def no_logs(*args, **kwargs):
        return []

    monkeypatch.setattr(keeper.chain, "get_logs", no_logs)
    await env.dc.borrow(env.dep, "USDC", victim, 4_000 * E6)  # unseen
    await env.dc.set_price(env.dep, "WETH", 2_850.0)
    assert await pool_hf(env, victim) < WAD
    report = await _mine_and_step(env, keeper)
    assert report.block - start < 6 and report.drift is None
    assert report.outcomes == []  # the book still holds the old debt: HF 1.18
    while report.block - start < 6:
        report = await _mine_and_step(env, keeper)
    assert report.drift == 1
    (out,) = report.outcomes
    assert isinstance(out.action, Liquidate) and out.action.account == victim and out.ok, out.error
