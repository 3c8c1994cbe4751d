"""The keeper through what goes wrong around it, on eth-tester: a journal that cannot be written
(read-only, full), an unexpected exception while executing, and a wallet that cannot fund the
protection it is asked for."""

import logging
import os
import resource
import signal

import pytest

from keeper.app.metrics import metric_families
from keeper.app.ops import OpsServer
from keeper.app.report import check_protection, market_notes
from keeper.protocols.aave_v3.actions import Liquidate
from keeper.settings import OpsSettings
from keeper.strategy.actions import Protect
from tests.chain.test_keeper_chain import fund_keeper, open_position

E18, E6 = 10**18, 10**6


async def _mine_and_step(env, keeper):
    env.w3.provider.ethereum_tester.mine_blocks(1)
    return await keeper.step()


async def _liquidations(env) -> int:
    pool = env.dc.contract("Pool", env.dep.pool)
    return len(await pool.events.LiquidationCall().get_logs(from_block=0))


def _cannot_write(db, how: str) -> None:
    if how == "read-only":
        db.conn.execute("PRAGMA query_only = ON")
    else:  # a full disk: no file of this process may grow (writes fail with EFBIG, SIGXFSZ ignored)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        sizes = [os.path.getsize(db.path + suffix) for suffix in ("", "-wal") if os.path.exists(db.path + suffix)]
        resource.setrlimit(resource.RLIMIT_FSIZE, (max(sizes), resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def _can_write(db, how: str) -> None:
    if how == "read-only":
        db.conn.execute("PRAGMA query_only = OFF")
    else:
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))


@pytest.mark.parametrize("how", ["read-only", "full"])
async def test_an_unwritable_journal_sends_nothing_alerts_and_resumes_by_itself(env, tmp_path, caplog, how):
    from keeper.execution.journal import Journal

    user = env.accounts[4]
    await open_position(env, user, "WETH", 10 * E18, "USDC", 24_000 * E6)
    await fund_keeper(env, usdc=50_000 * E6)
    keeper = env.keeper()
    keeper.executor.journal = Journal(tmp_path / "journal.sqlite")
    keeper.executor.nonces.journal = keeper.executor.journal
    await keeper.start()
    db = keeper.executor.journal.db
    await env.dc.set_price(env.dep, "WETH", 2_850.0)  # the account becomes liquidatable
    caplog.set_level(logging.INFO, logger="keeper")
    _cannot_write(db, how)
    try:
        for _ in range(3):  # monitoring goes on: every block is processed, nothing is sent
            report = await _mine_and_step(env, keeper)
            assert report is not None and report.below_one == 1
    finally:
        _can_write(db, how)
    assert await _liquidations(env) == 0
    assert keeper.storage_fault
    ok, problems, _ = await OpsServer(keeper, OpsSettings(max_block_age_s=1e9)).health()  # /healthz: 503
    assert not ok and any(p.startswith("journal cannot be written (nothing is sent)") for p in problems), problems
    families = metric_families(keeper, {"lag_blocks": 0, "last_block_age_s": 0}, None)
    samples = {m.name: m.samples[0].value for m in families
               if m.samples and not m.samples[0].labels}  # fmt: skip
    assert samples["keeper_journal_writable"] == 0.0
    alerts = [r for r in caplog.records if "ALERT: the journal cannot be written" in r.getMessage()]
    assert len(alerts) == 1, [r.getMessage() for r in caplog.records]
    skipped = [
        r for r in caplog.records if r.name == "keeper.decision" and "journal cannot be written" in r.getMessage()
    ]
    assert len(skipped) == 2  # the blocks after the failed write: probed, skipped

    report = await _mine_and_step(env, keeper)  # writes succeed again
    (out,) = report.outcomes
    assert isinstance(out.action, Liquidate) and out.ok, out.error
    assert not keeper.storage_fault
    assert any("journal can be written again" in r.getMessage() for r in caplog.records)
    assert await _liquidations(env) == 1
    assert keeper.executor.journal.counts().get("confirmed") == 1


async def test_an_unexpected_exception_stops_only_its_batch_and_the_action_is_decided_again(env, monkeypatch):
    user = env.accounts[4]
    await open_position(env, user, "WETH", 10 * E18, "USDC", 24_000 * E6)
    await fund_keeper(env, usdc=50_000 * E6)
    keeper = env.keeper()
    await keeper.start()
    await env.dc.set_price(env.dep, "WETH", 2_850.0)
    aave = keeper.watches[0].adapter
    real = aave.encode

    def broken(action):
        raise RuntimeError("a bug in encoding")

    monkeypatch.setattr(aave, "encode", broken)
    report = await _mine_and_step(env, keeper)
    (out,) = report.outcomes
    assert out.error == "internal error: RuntimeError: a bug in encoding"
    assert keeper.internal_errors == 1
    assert keeper.counts[(out.market, "Liquidate", "failed")] == 1
    monkeypatch.setattr(aave, "encode", real)
    report = await _mine_and_step(env, keeper)  # decided afresh, and done
    (out,) = report.outcomes
    assert isinstance(out.action, Liquidate) and out.ok, out.error
    assert await _liquidations(env) == 1


async def test_an_empty_wallet_raises_cannot_protect_once_and_says_what_it_would_take(env, caplog):
    user = env.accounts[2]
    await open_position(env, user, "WETH", 10 * E18, "USDC", 21_000 * E6)
    keeper = env.keeper(protect=(user,), trigger=1.15, target=1.30)
    await keeper.start()
    await env.dc.set_price(env.dep, "WETH", 2_800.0)  # HF about 1.1: under the trigger
    caplog.set_level(logging.WARNING, logger="keeper")
    for _ in range(2):
        report = await _mine_and_step(env, keeper)
        assert report.outcomes == []
    alerts = [r.getMessage() for r in caplog.records if "cannot protect" in r.getMessage()]
    assert len(alerts) == 1, alerts
    assert f"cannot protect {user}" in alerts[0] and "of 0x" in alerts[0]  # names the token and amount
    w = keeper.watches[0]
    assert user in w.cannot_protect
    assert any(note.startswith(f"cannot protect {user}") for note in market_notes(w))
    check_protection(keeper)  # what `keeper status` runs: the same finding from the planner
    assert user in w.cannot_protect

    await fund_keeper(env, usdc=10_000 * E6)
    report = await _mine_and_step(env, keeper)
    (out,) = report.outcomes
    assert isinstance(out.action, Protect) and out.ok, out.error
    assert user not in w.cannot_protect
    assert any("no longer short" in r.getMessage() for r in caplog.records)


async def test_protection_does_not_wait_behind_another_markets_liquidation(env, monkeypatch):
    """Background execution: a liquidation on Aave whose batch is slow (its health-after read
    takes seconds) does not hold up a protective action decided on Comet a block later."""
    import asyncio

    victim, mine = env.accounts[4], env.accounts[5]
    await open_position(env, victim, "WETH", 10 * E18, "USDC", 24_000 * E6)
    await env.dc.comet_supply(env.dep, "WBTC", mine, 10**8)
    await env.dc.comet_borrow(env.dep, mine, 38_000 * E6)
    await fund_keeper(env, usdc=100_000 * E6)
    keeper = env.keeper(protect=(mine,))
    keeper.background = True
    await keeper.start()
    aave = keeper.watches[0]
    slow_reads = asyncio.Event()

    async def slow_health_after(chain, action):
        slow_reads.set()
        await asyncio.sleep(5)
        return None

    monkeypatch.setattr(aave.adapter, "health_after", slow_health_after)
    await env.dc.set_price(env.dep, "WETH", 2_850.0)  # the Aave account is liquidatable
    report = await _mine_and_step(env, keeper)
    assert report.queued == 1
    await asyncio.wait_for(slow_reads.wait(), 10)  # the liquidation is sent; its batch is reading
    await env.dc.set_price(env.dep, "WBTC", 52_000.0)  # now my Comet position needs protection
    report = await _mine_and_step(env, keeper)
    assert report.queued == 1
    deadline = asyncio.get_running_loop().time() + 4
    while not any(o.action.protective for o in keeper.history):
        assert asyncio.get_running_loop().time() < deadline, "the protection waited"
        await asyncio.sleep(0.05)
    assert not any(isinstance(o.action, Liquidate) for o in keeper.history)  # still in its slow batch
    (done,) = [o for o in keeper.history if o.action.protective]
    assert done.ok and done.sent, done.error
    await keeper.drain()
    assert any(isinstance(o.action, Liquidate) and o.ok for o in keeper.history)
