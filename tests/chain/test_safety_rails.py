"""Kill switch, spending and action caps, cooldown: enforced before anything is signed."""

import pytest

from tests.chain.test_keeper_chain import E6, E18, _mine_and_step, fund_keeper, open_position
from tests.helpers import evolve


def with_execution(keeper, **changes):
    s = keeper.settings
    keeper.settings = evolve(s, execution=evolve(s.execution, **changes))
    keeper.executor.settings = keeper.settings.execution


async def liquidatable(env, *users):
    for user in users:
        await open_position(env, user, "WETH", 10 * E18, "USDC", 24_000 * E6)
    await fund_keeper(env, usdc=100_000 * E6)
    await env.dc.set_price(env.dep, "WETH", 2_850.0)


async def test_kill_switch_stops_sending_but_not_watching(env, monkeypatch, caplog, tmp_path):
    await liquidatable(env, env.accounts[4])
    switch = tmp_path / "STOP"
    switch.write_text("")
    keeper = env.keeper()
    with_execution(keeper, kill_switch_file=str(switch))
    await keeper.start()
    nonce = await env.w3.eth.get_transaction_count(env.keeper_address)
    with caplog.at_level("WARNING", logger="keeper"):
        report = await _mine_and_step(env, keeper)
    (out,) = report.outcomes
    assert "kill switch file" in out.error and report.below_one == 1  # decided, watched, not sent
    assert await env.w3.eth.get_transaction_count(env.keeper_address) == nonce
    assert any("ALERT: kill switch" in r.getMessage() for r in caplog.records)
    switch.unlink()
    monkeypatch.setenv("KEEPER_KILL_SWITCH", "1")
    report = await _mine_and_step(env, keeper)
    assert "KEEPER_KILL_SWITCH is set" in report.outcomes[0].error
    monkeypatch.delenv("KEEPER_KILL_SWITCH")
    report = await _mine_and_step(env, keeper)
    assert report.outcomes[0].ok, report.outcomes[0].error


async def test_daily_gas_budget_and_hourly_action_cap(env):
    await liquidatable(env, env.accounts[4], env.accounts[5])
    keeper = env.keeper()
    with_execution(keeper, max_gas_spend_native_per_day=1e-6)
    await keeper.start()
    report = await _mine_and_step(env, keeper)
    assert [o.sent for o in report.outcomes] == [False, False]
    assert all("daily gas budget" in o.error for o in report.outcomes)

    with_execution(keeper, max_gas_spend_native_per_day=0.5, max_actions_per_hour=1)
    report = await _mine_and_step(env, keeper)
    first, second = report.outcomes
    assert first.ok, first.error
    assert "max_actions_per_hour 1 reached" in second.error and not second.sent


async def test_cooldown_per_account(env):
    user = env.accounts[2]
    await open_position(env, user, "WETH", 10 * E18, "USDC", 21_000 * E6)
    await fund_keeper(env, usdc=20_000 * E6)
    await env.dc.set_price(env.dep, "WETH", 2_800.0)
    keeper = env.keeper(protect=(user,), trigger=1.15, target=1.30)
    with_execution(keeper, account_cooldown_s=3_600)
    await keeper.start()
    report = await _mine_and_step(env, keeper)
    assert report.outcomes[0].ok
    await env.dc.set_price(env.dep, "WETH", 2_400.0)  # HF 1.30 x 2,400 / 2,800 = 1.11: needs protecting again
    report = await _mine_and_step(env, keeper)
    (out,) = report.outcomes
    assert out.error and "cooldown" in out.error and not out.sent


async def test_a_second_run_on_another_chain_refuses_the_journal(env, tmp_path):
    from keeper.errors import FatalError
    from keeper.execution.journal import Journal

    journal = Journal(tmp_path / "j.sqlite")
    journal.bind(1, "0x" + "ab" * 32)  # written by a keeper on another chain
    keeper = env.keeper()
    keeper.executor.journal = journal
    with pytest.raises(FatalError, match="belongs to chain 1:0xabab"):
        await keeper.start()


async def test_discovery_resumes_from_its_checkpoint(env, tmp_path, caplog):
    from keeper.execution.journal import Checkpoints

    victim = env.accounts[4]
    await open_position(env, victim, "WETH", 10 * E18, "USDC", 20_000 * E6)
    first = env.keeper()
    first.checkpoints = Checkpoints(tmp_path / "cp.sqlite")
    await first.start()
    saved = first.checkpoints.load(first._market_id(first.watches[0]))
    assert saved is not None and victim in saved[1]
    env.w3.provider.ethereum_tester.mine_blocks(3)

    again = env.keeper()
    again.checkpoints = Checkpoints(tmp_path / "cp.sqlite")
    scanned = []
    original = again.chain.get_logs

    async def spy(address, topics, from_block, to_block):
        scanned.append((from_block, to_block))
        return await original(address, topics, from_block, to_block)

    again.chain.get_logs = spy
    with caplog.at_level("INFO", logger="keeper"):
        await again.start()
    assert all(lo == saved[0] + 1 for lo, _ in scanned), scanned  # only the blocks since the checkpoint
    assert victim in again.watches[0].book.positions  # known from the checkpoint, not from a rescan
    assert any("resuming discovery at block" in r.getMessage() for r in caplog.records)


async def test_in_flight_limit(env):
    await liquidatable(env, env.accounts[4], env.accounts[5])
    keeper = env.keeper()
    with_execution(keeper, max_in_flight=1)
    await keeper.start()
    report = await _mine_and_step(env, keeper)
    first, second = report.outcomes
    assert first.ok, first.error
    assert "max_in_flight: 1 transactions in flight (limit 1)" in second.error and not second.sent


async def test_a_view_older_than_our_last_transaction_on_a_position_is_not_acted_on(env, caplog):
    """The execution worker saw our transaction mined at a later block than the one the loop is
    deciding on (a slow step): that view does not show its effect, so the position is skipped
    with the reason, and the next block's view decides."""
    from keeper.execution.journal import ActionKey

    victim = env.accounts[4]
    await liquidatable(env, victim)
    keeper = env.keeper()
    await keeper.start()
    w, head = keeper.watches[0], await env.w3.eth.block_number
    earlier = ActionKey(w.label, victim, "Liquidate", head - 1)
    keeper.executor.journal.begin(earlier, {})
    keeper.executor.journal.add_tx(earlier, "0x" + "ab" * 32, 999, b"raw", "liquidationCall", 10**9, 300_000)
    keeper.executor.journal.set_tx("0x" + "ab" * 32, "confirmed", gas_cost_wei=1, block=head + 2)
    with caplog.at_level("INFO", logger="keeper.decision"):
        report = await _mine_and_step(env, keeper)  # at head + 1
    assert report.outcomes == [] and report.below_one == 1
    assert any(f"predates our transaction mined at block {head + 2}" in r.getMessage() for r in caplog.records)
    env.w3.provider.ethereum_tester.mine_blocks(1)
    report = await _mine_and_step(env, keeper)  # at head + 3: the view is as new as the transaction
    (out,) = report.outcomes
    assert out.ok and out.sent, out.error
