"""`keeper rehearse` against a fork of a local anvil that has our markets deployed (no internet):
the fork is funded, the WETH price source is shocked, the keeper liquidates on the fork and every
transaction succeeds, while the forked chain itself is untouched, and a configured private relay
gets nothing (a fork's transactions are signed for the real chain id). Then the same in dry-run."""

import asyncio

from eth_account import Account

from keeper.devtools.relay import LocalRelay
from tests.anvil.conftest import DEV_KEYS
from tests.anvil.test_cli_on_anvil import deploy_and_open, keeper_cli

E18 = 10**18


async def test_rehearsal_on_a_fork_with_a_price_shock(anvil, tmp_path):
    dc, dep, victim, _ = await deploy_and_open(anvil)
    await dc.set_price(dep, "WETH", 3_000.0)  # everyone healthy on the real (forked) chain
    pool = dc.contract("Pool", dep.pool)
    assert (await pool.functions.getUserAccountData(victim).call())[5] > E18
    watcher = Account.from_key(DEV_KEYS[9]).address
    nonce = await dc.w3.eth.get_transaction_count(watcher)
    head = await dc.w3.eth.block_number
    relay = LocalRelay(anvil)  # configured, and never used by a rehearsal
    env = {"KEEPER_RPC_URL": anvil, "KEEPER_ADDRESS": watcher, "KEEPER_EXECUTION_PRIVATE_RPC_URL": await relay.start()}
    args = ("rehearse", "--network", "local", "--shock", "WETH=-15", "--fund", "USDC=200000", "--blocks", "3")

    try:
        r = await asyncio.to_thread(keeper_cli, *args, env=env, timeout=180)
    finally:
        await relay.stop()
    assert r.returncode == 0, r.stdout + r.stderr
    assert relay.received == [] and "sending through the public RPC" in r.stderr, r.stderr
    assert "shock: WETH $3,000.00 -> $2,550.00 (-15.0%)" in r.stdout, r.stdout
    assert "ephemeral key" in r.stdout
    assert "aave-v3" in r.stdout and "Liquidate: ok" in r.stdout, r.stdout
    assert "Absorb: ok" in r.stdout and "LiquidatePerps: ok" in r.stdout, r.stdout
    assert "result: every transaction succeeded" in r.stdout, r.stdout
    # the forked chain saw none of it
    assert (await pool.functions.getUserAccountData(victim).call())[5] > E18
    assert await dc.w3.eth.get_transaction_count(watcher) == nonce
    assert await dc.w3.eth.block_number == head

    r = keeper_cli(*args, "--dry-run", env=env, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Liquidate: simulated" in r.stdout and "0 sent" in r.stdout, r.stdout


async def test_bad_shock_is_a_clear_error(anvil):
    await deploy_and_open(anvil)
    env = {"KEEPER_RPC_URL": anvil, "KEEPER_ADDRESS": Account.from_key(DEV_KEYS[9]).address}
    r = keeper_cli("rehearse", "--network", "local", "--shock", "DOGE=-10", "--blocks", "1", env=env, timeout=120)
    assert r.returncode == 2 and "--shock DOGE: no Chainlink-style price source" in r.stderr, r.stderr
    r = keeper_cli("rehearse", "--network", "local", "--shock", "WETH", env=env, timeout=60)
    assert r.returncode == 2 and "expected SYMBOL=NUMBER" in r.stderr, r.stderr
