"""Restart recovery on anvil with mining off: a run leaves a burst of liquidations in flight (the
node forgot them: its mempool was dropped). The next run starts without waiting for them, watches
from its first block, rebroadcasts every one in one batch and tracks them together: all land in
the next block, each account liquidated once, nothing left in flight."""

import asyncio
import time

from web3 import AsyncWeb3
from web3.providers import AsyncHTTPProvider

from keeper.app.loop import Keeper
from keeper.execution.executor import Executor
from keeper.execution.journal import Journal
from keeper.execution.signer import Signer
from keeper.sources.chain import Chain
from tests.anvil.conftest import liquidations_per_user
from tests.anvil.test_burst import USERS, accepted, setup


async def test_a_restart_rebroadcasts_every_in_flight_transaction_at_once_and_watches_meanwhile(anvil, tmp_path):
    w3, dep, users, first = await setup(anvil, anvil, tmp_path)
    report = await first.step()
    assert report is not None and report.queued == USERS
    await asyncio.wait_for(accepted(first, USERS), timeout=30)
    for task in list(first._tasks):  # the first run dies with its burst in flight
        task.cancel()
    await asyncio.gather(*first._tasks, return_exceptions=True)
    await w3.provider.make_request("anvil_dropAllTransactions", [])  # and the node forgot them
    journal = Journal(tmp_path / "journal.sqlite")
    assert len(journal.pending_txs()) == USERS

    settings, signer = first.settings, first.executor._signer
    assert isinstance(signer, Signer)
    chain = Chain(AsyncWeb3(AsyncHTTPProvider(anvil, request_kwargs={"timeout": 30})), dep.multicall3)
    executor = Executor(chain, settings.execution, signer.address, signer, dry_run=False, journal=journal)
    second = Keeper(settings, chain, executor)
    second.background = True
    block = await w3.eth.block_number
    started = time.monotonic()
    await asyncio.wait_for(second.start(), timeout=15)  # no block is mined: it does not wait for them
    assert second.last_block == block and time.monotonic() - started < 10
    pending = await w3.eth.get_transaction_count(signer.address, "pending")
    while pending - await w3.eth.get_transaction_count(signer.address) < USERS:  # rebroadcast, together
        await asyncio.sleep(0.05)
        pending = await w3.eth.get_transaction_count(signer.address, "pending")
    await w3.provider.make_request("evm_mine", [])
    report = await second.step()  # the first block after the restart is processed
    assert report is not None and report.block == block + 1
    assert not any(o.sent for o in report.outcomes)  # in flight: nothing decided twice
    assert second._recovery is not None
    await asyncio.wait_for(second._recovery, timeout=30)
    states = dict(journal.db.execute("SELECT state, COUNT(*) FROM txs GROUP BY state").fetchall())
    assert states == {"confirmed": USERS}, states
    mined = journal.db.execute("SELECT DISTINCT block FROM txs").fetchall()
    assert mined == [(block + 1,)]  # all in the one block after the restart
    assert await liquidations_per_user(w3, dep.pool) == {u: 1 for u in users}
    await second.chain.close()
