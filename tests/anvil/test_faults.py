"""Fault injection on anvil: the keeper killed with SIGKILL at random points of a burst of
liquidations, again and again, loses nothing and repeats nothing."""

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from eth_account import Account
from web3 import AsyncWeb3
from web3.providers import AsyncHTTPProvider

from keeper.devtools.devchain import DevChain
from keeper.devtools.testnet import config_toml
from tests.anvil.conftest import DEV_KEYS, ROOT, beside, liquidations_per_user, mine_every, seed_liquidatable

E18, E6 = 10**18, 10**6
USERS = 30
KILLS = 22


async def test_kill_9_during_a_burst_loses_nothing_and_repeats_nothing(anvil, tmp_path):
    rng = random.Random(99)
    w3 = AsyncWeb3(AsyncHTTPProvider(anvil, request_kwargs={"timeout": 60}))
    dc = DevChain(w3)
    dep = await dc.deploy_market((await w3.eth.accounts)[0])
    users = await seed_liquidatable(dc, dep, "faulty user", USERS)
    keeper = Account.from_key(DEV_KEYS[9]).address
    await dc.mint(dep, "USDC", keeper, 200_000 * E6)
    await dc.set_price(dep, "WETH", 2_300.0)

    cfg = tmp_path / "faults.toml"
    cfg.write_text(config_toml(dep, await w3.eth.chain_id).replace("poll_interval_s = 1.0", "poll_interval_s = 0.2"))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "KEEPER_RPC_URL": anvil,
        "KEEPER_PRIVATE_KEY": DEV_KEYS[9],
        "KEEPER_EXECUTION_JOURNAL_PATH": str(tmp_path / "journal.sqlite"),
    }
    # transactions wait for the next block (no automine): a kill often lands between send and receipt
    await w3.provider.make_request("evm_setAutomine", [False])
    logs = []
    async with beside(mine_every(w3, 0.25)):
        kills_in_flight = 0
        for k in range(KILLS + 1):
            log_file = tmp_path / f"run-{k}.log"
            with log_file.open("w") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "keeper", "run", "--network", str(cfg), "--blocks", "12"],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=ROOT,
                )
                if k < KILLS:
                    if k % 3 == 2:  # every third run dies the moment a transaction is in flight
                        await _until_in_flight(tmp_path / "journal.sqlite", time.time() + 6.0)
                    else:
                        await asyncio.sleep(rng.uniform(0.5, 4.0))
                    proc.send_signal(signal.SIGKILL)
                    kills_in_flight += proc.wait() == -signal.SIGKILL
                else:  # the last run is left to finish
                    deadline = time.time() + 240
                    while proc.poll() is None and time.time() < deadline:
                        await asyncio.sleep(0.5)
                    if proc.poll() is None:
                        proc.kill()
                    assert proc.wait() == 0, log_file.read_text()[-3_000:]
            logs.append(log_file.read_text())
        assert kills_in_flight >= KILLS // 2  # most runs really were killed, not finished
        # a restart that found a transaction in flight rebroadcasts it at once (recovery runs beside
        # the loop, so the next kill may come before it is settled)
        recovered = sum("recovered in-flight" in text for text in logs)
        print(f"{kills_in_flight} runs killed, {recovered} restarts found a transaction in flight")
        assert recovered >= 1  # the crash window that matters was hit

    for text in logs:  # the keeper's own output never shows its key
        assert DEV_KEYS[9][2:] not in text.lower()

    # every account liquidated exactly once, and nothing left over
    per_user = await liquidations_per_user(w3, dep.pool)
    assert per_user == {u: 1 for u in users}, (per_user, logs[-1][-2_000:])
    pool = dc.contract("Pool", dep.pool)
    for u in users:
        assert (await pool.functions.getUserAccountData(u).call())[1] == 0  # no debt left
    # the journal: nothing in flight, and every transaction it signed is on chain (no nonce gap)
    db = sqlite3.connect(tmp_path / "journal.sqlite")
    states = dict(db.execute("SELECT state, COUNT(*) FROM txs GROUP BY state").fetchall())
    assert states.get("signed", 0) == states.get("sent", 0) == 0, states
    mined = db.execute("SELECT COUNT(*) FROM txs WHERE state IN ('confirmed', 'failed')").fetchone()[0]
    assert await w3.eth.get_transaction_count(keeper) == mined
    confirmed_liquidations = db.execute(
        "SELECT COUNT(*) FROM actions WHERE intent = 'Liquidate' AND state = 'confirmed'"
    ).fetchone()[0]
    assert confirmed_liquidations == USERS  # recorded by the run that sent it, or by the next one's recovery


async def _until_in_flight(journal: Path, deadline: float) -> None:
    """Wait until the journal holds a transaction signed or sent but not settled (or the deadline)."""
    while time.time() < deadline:
        try:
            db = sqlite3.connect(journal, timeout=0.05)
            try:
                open_txs = db.execute("SELECT COUNT(*) FROM txs WHERE state IN ('signed', 'sent')").fetchone()[0]
            finally:
                db.close()
            if open_txs:
                return
        except sqlite3.Error:
            pass  # not created yet, or busy
        await asyncio.sleep(0.02)
