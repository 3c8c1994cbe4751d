"""Transaction faults on anvil: stuck (base-fee spike) and dropped transactions are replaced
under the fee cap, or their nonce cancelled when the action is no longer needed; a reorg that
removes a liquidation sends it again; a stranded transaction does not delay the next decisions;
stale and zero oracle answers mean no transaction."""

import asyncio

from eth_account import Account
from pydantic import SecretStr
from web3 import AsyncWeb3
from web3.providers import AsyncHTTPProvider

from keeper.app.loop import Keeper
from keeper.devtools.demo import make_settings
from keeper.devtools.devchain import DevChain
from keeper.execution.executor import Executor
from keeper.execution.journal import Journal
from keeper.execution.signer import Signer
from keeper.sources.chain import Chain
from tests.anvil.conftest import DEV_KEYS, beside, liquidations_per_user, mine_every
from tests.helpers import evolve

E18, E6, GWEI = 10**18, 10**6, 10**9
CAP_GWEI = 40.0


async def setup(url: str, tmp_path):
    w3 = AsyncWeb3(AsyncHTTPProvider(url, request_kwargs={"timeout": 60}))
    dc = DevChain(w3)
    accounts = await w3.eth.accounts
    dep = await dc.deploy_market(accounts[0])
    victim = accounts[2]
    await dc.supply(dep, "USDC", accounts[1], 1_000_000 * E6)
    await dc.supply(dep, "WETH", victim, 10 * E18)
    await dc.borrow(dep, "USDC", victim, 24_000 * E6)
    key = DEV_KEYS[9]
    address = Account.from_key(key).address
    await dc.mint(dep, "USDC", address, 100_000 * E6)
    await dc.approve(dep, "USDC", address, dep.pool, 10**30)  # a standing allowance: one transaction per action
    await dc.set_price(dep, "WETH", 2_800.0)
    settings = make_settings(dep, await w3.eth.chain_id, key, ())
    settings = evolve(
        settings,
        execution=evolve(
            settings.execution, max_fee_gwei=CAP_GWEI, replace_after_blocks=2, receipt_poll_s=0.1, receipt_timeout_s=60
        ),
    )
    chain = Chain(w3, dep.multicall3)
    journal = Journal(tmp_path / "journal.sqlite")
    executor = Executor(chain, settings.execution, address, Signer(SecretStr(key)), dry_run=False, journal=journal)
    return w3, dc, dep, victim, Keeper(settings, chain, executor), journal


async def pending_hashes(w3, sender: str) -> list[str]:
    content = (await w3.provider.make_request("txpool_content", []))["result"]
    by_sender = {k.lower(): v for k, v in content.get("pending", {}).items()}
    return [tx["hash"] for tx in by_sender.get(sender.lower(), {}).values()]


async def test_stuck_then_dropped_transaction_is_replaced_under_the_cap(anvil, tmp_path):
    w3, dc, dep, victim, keeper, journal = await setup(anvil, tmp_path)
    await keeper.start()
    await w3.provider.make_request("evm_setAutomine", [False])
    await w3.provider.make_request("evm_mine", [])  # a new block for the keeper to act on

    async def adversary():
        """Drop the keeper's first transaction from the mempool, then mine blocks whose base fee
        (10 gwei) is above what it offered; let the replacement in."""
        dropped = None
        while dropped is None:
            hashes = await pending_hashes(w3, keeper.executor.address)
            if hashes:
                dropped = hashes[0]
                await w3.provider.make_request("anvil_dropTransaction", [dropped])
            await asyncio.sleep(0.05)
        while True:
            await w3.provider.make_request("anvil_setNextBlockBaseFeePerGas", [hex(10 * GWEI)])
            await w3.provider.make_request("evm_mine", [])
            await asyncio.sleep(0.2)

    async with beside(adversary()):
        report = await asyncio.wait_for(keeper.step(), timeout=90)
    (out,) = report.outcomes
    assert out.ok and out.sent, out.error
    rows = journal.db.execute("SELECT role, state, max_fee_wei FROM txs ORDER BY created").fetchall()
    roles = [r[0] for r in rows]
    assert roles[0] == "action" and "replacement" in roles, rows
    assert [r[1] for r in rows].count("confirmed") == 1, rows
    assert all(r[2] <= CAP_GWEI * GWEI for r in rows), rows  # the cap is never exceeded
    pool = dc.contract("Pool", dep.pool)
    assert (await pool.functions.getUserAccountData(victim).call())[5] >= E18
    assert await liquidations_per_user(w3, dep.pool) == {victim: 1}  # liquidated once


async def test_a_stuck_action_no_longer_needed_is_cancelled(anvil, tmp_path):
    w3, dc, dep, victim, keeper, journal = await setup(anvil, tmp_path)
    other = (await w3.eth.accounts)[3]
    await dc.mint(dep, "USDC", other, 50_000 * E6)
    await dc.approve(dep, "USDC", other, dep.pool, 10**30)
    await keeper.start()
    await w3.provider.make_request("evm_setAutomine", [False])
    await w3.provider.make_request("evm_mine", [])

    async def competitor():
        """Strand the keeper's liquidation under a base-fee spike, then liquidate the account
        ourselves: the keeper's re-simulation reverts, so it cancels its nonce."""
        while not await pending_hashes(w3, keeper.executor.address):
            await asyncio.sleep(0.05)
        await w3.provider.make_request(
            "anvil_dropTransaction", [(await pending_hashes(w3, keeper.executor.address))[0]]
        )
        pool = dc.contract("Pool", dep.pool)
        await pool.functions.liquidationCall(
            dep.tokens["WETH"], dep.tokens["USDC"], victim, 2**256 - 1, False
        ).transact({"from": other})
        while True:
            await w3.provider.make_request("evm_mine", [])
            await asyncio.sleep(0.2)

    async with beside(competitor()):
        report = await asyncio.wait_for(keeper.step(), timeout=90)
    (out,) = report.outcomes
    assert not out.ok and "cancelled" in (out.error or ""), out.error
    roles = [r[0] for r in journal.db.execute("SELECT role FROM txs").fetchall()]
    assert "cancel" in roles, roles
    actions = dict(journal.db.execute("SELECT intent, state FROM actions").fetchall())
    assert actions["Liquidate"] == "cancelled", actions


async def test_a_liquidation_reorged_out_is_detected_and_sent_again(anvil, tmp_path):
    w3, dc, dep, victim, keeper, journal = await setup(anvil, tmp_path)
    await dc.set_price(dep, "WETH", 2_800.0)
    await keeper.start()
    await w3.provider.make_request("evm_mine", [])
    report = await keeper.step()
    (out,) = report.outcomes
    assert out.ok, out.error
    mined_in = out.results[-1].block
    pool = dc.contract("Pool", dep.pool)
    assert (await pool.functions.getUserAccountData(victim).call())[5] >= E18

    # the block holding the liquidation (and the one before) are replaced by empty ones
    await w3.provider.make_request("anvil_reorg", [2, []])
    assert (await pool.functions.getUserAccountData(victim).call())[5] < E18  # liquidatable again
    await w3.provider.make_request("evm_mine", [])
    report = await keeper.step()
    assert report.reorg_depth >= 1
    # the journaled transaction goes out again (recovery, beside the loop): nothing new is sent
    # (decided again, it meets the in-flight transaction, or its simulation finds it done)
    assert not any(o.sent for o in report.outcomes), report.outcomes
    assert keeper._recovery is not None
    await asyncio.wait_for(keeper._recovery, 30)
    (row,) = journal.db.execute("SELECT state, block FROM txs WHERE role = 'action'").fetchall()
    assert row[0] == "confirmed" and row[1] > mined_in  # mined again, in a block of the new chain
    assert (await pool.functions.getUserAccountData(victim).call())[5] >= E18
    assert await liquidations_per_user(w3, dep.pool) == {victim: 1}  # on the canonical chain: once
    assert journal.counts().get("confirmed") == 1 and set(journal.counts()) <= {"confirmed", "skipped"}


async def test_a_slow_confirmation_does_not_delay_the_next_decisions(anvil, tmp_path):
    """Background execution (`keeper run`): while the first liquidation is stranded under a
    base-fee spike (and the fee cap forbids outbidding it), the next block's decisions are made
    at once and queued; both land once the fee falls."""
    w3, dc, dep, victim, keeper, journal = await setup(anvil, tmp_path)
    second = (await w3.eth.accounts)[4]
    await dc.supply(dep, "WETH", second, 10 * E18)
    await dc.borrow(dep, "USDC", second, 22_000 * E6)  # HF 1.06 at $2,800, 0.98 at $2,600
    keeper.background = True
    keeper.executor.settings = evolve(keeper.executor.settings, max_fee_gwei=5.0)
    await keeper.start()
    await w3.provider.make_request("evm_setAutomine", [False])

    async def mine(base_fee_gwei: float, n: int = 1) -> None:
        for _ in range(n):
            await w3.provider.make_request("anvil_setNextBlockBaseFeePerGas", [hex(int(base_fee_gwei * GWEI))])
            await w3.provider.make_request("evm_mine", [])

    await mine(1.0)
    first = await keeper.step()
    assert first.queued == 1
    while not await pending_hashes(w3, keeper.executor.address):
        await asyncio.sleep(0.05)
    await mine(20.0, 3)  # the liquidation offered <= 5 gwei: it cannot be mined
    agg = dc.contract("MockAggregator", dep.aggregators["WETH"])
    await agg.functions.updateAnswer(2_600 * 10**8).transact(
        {"from": dep.deployer, "maxFeePerGas": 100 * GWEI, "maxPriorityFeePerGas": GWEI}
    )
    await mine(20.0)
    start = asyncio.get_running_loop().time()
    second_step = await asyncio.wait_for(keeper.step(), timeout=10)
    took = asyncio.get_running_loop().time() - start
    assert second_step.queued == 1 and took < 5, (second_step, took)  # decided without waiting for the first
    assert journal.in_flight()  # the first is still out there
    await mine(1.0, 6)  # the fee falls: the first lands, then the second goes out
    async with beside(mine_every(w3, 0.2, base_fee_wei=GWEI)):
        await asyncio.wait_for(keeper.drain(), timeout=60)
    # each once: the queued decision was not lost
    assert await liquidations_per_user(w3, dep.pool) == {victim: 1, second: 1}
    assert journal.counts().get("confirmed") == 2, journal.counts()


async def test_stale_and_zero_oracle_answers_mean_no_transaction(anvil, tmp_path, caplog):
    w3, dc, dep, _, keeper, journal = await setup(anvil, tmp_path)
    await keeper.start()
    nonce = await w3.eth.get_transaction_count(keeper.executor.address)
    latest = (await w3.eth.get_block("latest"))["timestamp"]
    agg = dc.contract("MockAggregator", dep.aggregators["WETH"])
    stale = latest - 26 * 3_600  # past the 25 h max age
    await agg.functions.updateRoundData(2_700 * 10**8, stale, stale).transact({"from": dep.deployer})
    with caplog.at_level("WARNING", logger="keeper"):
        report = await keeper.step()
    assert report.outcomes == [] and report.below_one == 1
    assert any("oracle price of WETH is untrusted" in r.getMessage() for r in caplog.records)
    await agg.functions.updateAnswer(0).transact({"from": dep.deployer})  # AaveOracle refuses a zero answer
    report = await keeper.step()  # that market is left out of the block (reported), nothing is decided on it
    assert report.outcomes == [] and "getAssetsPrices" in keeper.watches[0].error
    assert await w3.eth.get_transaction_count(keeper.executor.address) == nonce
    assert journal.counts() == {}
