"""Private submission on anvil, through the project's local relay (keeper.devtools.relay, which
speaks eth_sendPrivateTransaction / eth_cancelPrivateTransaction / eth_sendBundle and builds the
anvil's blocks) and a recording proxy in front of the public RPC (every eth_sendRawTransaction
the keeper makes publicly is seen there).

A single transaction goes to the relay alone; dependent ones (an approval and its action) as one
bundle that lands in one block. What the relay drops is re-simulated after `private_blocks` and
sent publicly (fallback on), offered again privately (fallback off: nothing ever reaches the
public RPC), or released when it is no longer needed (its nonce handed out again)."""

import asyncio
import contextlib
import random

from eth_account import Account
from pydantic import SecretStr
from web3 import AsyncWeb3
from web3.providers import AsyncHTTPProvider

from keeper.devtools.demo import make_settings
from keeper.devtools.devchain import DevChain
from keeper.devtools.relay import LocalRelay
from keeper.errors import ExecutionError, SkipAction
from keeper.execution.executor import Executor
from keeper.execution.journal import Journal
from keeper.execution.signer import RelayAuth, Signer
from keeper.execution.tx import TxRequest
from keeper.sources.abi import fn
from keeper.sources.chain import Chain
from keeper.sources.relay import Relay
from tests.anvil.conftest import DEV_KEYS, FaultProxy, beside, mine_every, seed_liquidatable

E6 = 10**6
AUTH = "0x" + "42" * 32
ME = Account.from_key(DEV_KEYS[9]).address


class Rig:
    def __init__(self, w3, dc, dep, relay, proxy, executor):  # type: ignore[no-untyped-def]
        self.w3, self.dc, self.dep, self.relay, self.proxy, self.executor = w3, dc, dep, relay, proxy, executor

    def transfer(self, amount: int = E6) -> TxRequest:
        data = fn("ERC20", "transfer").encode(self.dep.deployer, amount)
        return TxRequest(self.dep.tokens["USDC"], data, f"transfer {amount} USDC")

    def supply(self, amount: int) -> tuple[TxRequest, tuple[str, str, int]]:
        usdc = self.dep.tokens["USDC"]
        data = fn("AaveV3Pool", "supply").encode(usdc, amount, ME, 0)
        return TxRequest(self.dep.pool, data, f"supply {amount} USDC"), (usdc, self.dep.pool, amount)

    async def nonce(self) -> int:
        return int(await self.w3.eth.get_transaction_count(ME))


@contextlib.asynccontextmanager
async def rigged(anvil: str, tmp_path, **execution):  # type: ignore[no-untyped-def]
    w3 = AsyncWeb3(AsyncHTTPProvider(anvil, request_kwargs={"timeout": 60}))
    dc = DevChain(w3)
    dep = await dc.deploy_market((await w3.eth.accounts)[0])
    await dc.mint(dep, "USDC", ME, 100_000 * E6)
    relay = LocalRelay(anvil, require_auth=True)
    await relay.start()
    proxy = FaultProxy(anvil, random.Random(0), 0.0)
    url = await proxy.start()
    settings = make_settings(dep, await w3.eth.chain_id, DEV_KEYS[9], (), comet=False, perps=False)
    ex = settings.execution.model_copy(update={"receipt_poll_s": 0.05, "private_blocks": 2, **execution})
    chain = Chain(AsyncWeb3(AsyncHTTPProvider(url, request_kwargs={"timeout": 30})), dep.multicall3)
    executor = Executor(
        chain, ex, ME, Signer(SecretStr(DEV_KEYS[9])), dry_run=False, journal=Journal(tmp_path / "journal.sqlite"),
        relay=Relay(relay.url, auth=RelayAuth(SecretStr(AUTH)).header),
    )  # fmt: skip
    r = Rig(w3, dc, dep, relay, proxy, executor)
    try:
        yield r
    finally:
        assert r.executor.relay is not None
        await r.executor.relay.close()
        await r.executor.chain.close()
        await relay.stop()
        await proxy.stop()


def methods(r: Rig) -> list[str]:
    return [m for m, _ in r.relay.received]


async def until(done, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    async def wait() -> None:
        while not done():
            await asyncio.sleep(0.02)

    await asyncio.wait_for(wait(), timeout)


async def test_a_transaction_goes_to_the_relay_alone_and_never_public(anvil, tmp_path):
    async with rigged(anvil, tmp_path) as r:
        [result] = await r.executor.execute(r.transfer(), protective=True)
        assert result.status == 1 and result.tx_hash in r.relay.included
        assert r.proxy.public_sends == []
        assert methods(r) == ["eth_sendPrivateTransaction"]
        assert r.relay.signers == [RelayAuth(SecretStr(AUTH)).address]  # the auth key, not the keeper's
        [row] = [row for row in r.executor.journal.db.execute("SELECT route, state FROM txs")]
        assert row == ("private+fallback", "confirmed")


async def test_an_approval_and_its_action_land_as_one_bundle_in_one_block(anvil, tmp_path):
    async with rigged(anvil, tmp_path) as r:
        tx, approve = r.supply(5_000 * E6)
        results = await r.executor.execute(tx, approve=approve)
        assert [x.description.split()[0] for x in results] == ["approve", "supply"]
        assert all(x.status == 1 for x in results) and len({x.block for x in results}) == 1
        assert r.proxy.public_sends == []
        bundles = [p for m, p in r.relay.received if m == "eth_sendBundle"]
        first = int(bundles[0][0]["blockNumber"], 16)
        assert [int(p[0]["blockNumber"], 16) for p in bundles] == [first, first + 1]  # one per target block
        assert bundles[0][0]["txs"] == bundles[1][0]["txs"] and len(bundles[0][0]["txs"]) == 2


async def test_what_the_relay_drops_is_resimulated_and_sent_publicly_after_its_window(anvil, tmp_path):
    async with rigged(anvil, tmp_path) as r:
        r.relay.mode = "drop"
        start = await r.w3.eth.block_number
        async with beside(mine_every(r.w3, 0.2)):
            [result] = await asyncio.wait_for(r.executor.execute(r.transfer()), 60)
        assert result.status == 1 and result.tx_hash not in r.relay.included
        sent = [p for m, p in r.relay.received if m == "eth_sendPrivateTransaction"]
        until = int(sent[0][0]["maxBlockNumber"], 16)
        assert until == start + 2
        assert result.block is not None and result.block > until  # public only after the window
        assert len(r.proxy.public_sends) == 1 and "eth_cancelPrivateTransaction" in methods(r)


async def test_with_fallback_off_nothing_reaches_the_public_rpc(anvil, tmp_path):
    async with rigged(anvil, tmp_path, private_fallback_liquidate=False) as r:
        r.relay.mode = "drop"
        async with beside(mine_every(r.w3, 0.2)):
            task = asyncio.ensure_future(r.executor.execute(r.transfer(), protective=False))
            await until(lambda: methods(r).count("eth_sendPrivateTransaction") >= 3)  # window after window
            r.relay.mode = "include"
            [result] = await asyncio.wait_for(task, 60)
        assert result.status == 1 and result.tx_hash in r.relay.included
        assert r.proxy.public_sends == []
        raws = {p[0]["tx"] for m, p in r.relay.received if m == "eth_sendPrivateTransaction"}
        assert len(raws) >= 2  # the later windows carry replacements with bumped fees


async def test_a_dropped_bundle_falls_back_publicly_in_order(anvil, tmp_path):
    async with rigged(anvil, tmp_path) as r:
        r.relay.mode = "drop"
        tx, approve = r.supply(5_000 * E6)
        async with beside(mine_every(r.w3, 0.2)):
            results = await asyncio.wait_for(r.executor.execute(tx, approve=approve), 60)
        assert all(x.status == 1 for x in results)
        assert len(r.proxy.public_sends) == 2  # the approval, then the supply
        assert "eth_sendBundle" in methods(r)


async def test_a_bundle_no_longer_needed_gives_its_nonces_back(anvil, tmp_path):
    async with rigged(anvil, tmp_path, private_fallback_liquidate=False) as r:
        r.relay.mode = "drop"
        [user] = await seed_liquidatable(r.dc, r.dep, "private user", 1)
        await r.dc.set_price(r.dep, "WETH", 2_300.0)
        usdc, weth = r.dep.tokens["USDC"], r.dep.tokens["WETH"]
        debt = 10**30
        data = fn("AaveV3Pool", "liquidationCall").encode(weth, usdc, user, debt, False)
        tx = TxRequest(r.dep.pool, data, f"liquidate {user}")
        before = await r.nonce()
        task = asyncio.ensure_future(r.executor.execute(tx, approve=(usdc, r.dep.pool, 5_000 * E6)))
        await until(lambda: "eth_sendBundle" in methods(r))
        other = r.dep.deployer  # someone else liquidates the account meanwhile
        await r.dc.mint(r.dep, "USDC", other, 100_000 * E6)
        await r.dc.approve(r.dep, "USDC", other, r.dep.pool, 10**30)
        await r.dc.send("Pool", r.dep.pool, "liquidationCall", other, weth, usdc, user, debt, False)
        async with beside(mine_every(r.w3, 0.2)):
            try:
                await asyncio.wait_for(task, 60)
                raise AssertionError("a bundle no longer needed was sent")
            except SkipAction as exc:
                assert "no longer needed" in str(exc)
        assert r.proxy.public_sends == [] and await r.nonce() == before
        assert await r.executor.nonces.take() == before  # handed out again: no gap, no cancel paid for
        states = {s for (s,) in r.executor.journal.db.execute("SELECT state FROM txs")}
        assert states == {"dropped"}


async def test_a_refusing_relay_with_fallback_off_sends_nothing(anvil, tmp_path):
    async with rigged(anvil, tmp_path, private_fallback_liquidate=False) as r:
        r.executor.relay = Relay(r.relay.url)  # no auth header: this relay refuses
        before = await r.nonce()
        try:
            await r.executor.execute(r.transfer())
            raise AssertionError("sent without the relay taking it")
        except ExecutionError as exc:
            assert "X-Flashbots-Signature" in str(exc)
        assert r.proxy.public_sends == [] and await r.nonce() == before
        assert await r.executor.nonces.take() == before


async def test_a_refusing_relay_with_fallback_on_sends_publicly_at_once(anvil, tmp_path):
    async with rigged(anvil, tmp_path) as r:
        r.executor.relay = Relay(r.relay.url)
        [result] = await r.executor.execute(r.transfer(), protective=True)
        assert result.status == 1 and len(r.proxy.public_sends) == 1
        [(route,)] = list(r.executor.journal.db.execute("SELECT route FROM txs"))
        assert route == "public"


async def test_a_private_transaction_left_in_flight_is_recovered_through_the_relay(anvil, tmp_path):
    async with rigged(anvil, tmp_path) as r:
        r.relay.mode = "drop"
        task = asyncio.ensure_future(r.executor.execute(r.transfer()))
        await until(lambda: "eth_sendPrivateTransaction" in methods(r))
        task.cancel()  # the keeper is killed with its transaction at the relay
        await asyncio.gather(task, return_exceptions=True)
        r.relay.mode = "include"
        again = Executor(
            r.executor.chain, r.executor.settings, ME, Signer(SecretStr(DEV_KEYS[9])), dry_run=False,
            journal=r.executor.journal, relay=Relay(r.relay.url, auth=RelayAuth(SecretStr(AUTH)).header),
        )  # fmt: skip
        [result] = await asyncio.wait_for(again.recover(), 60)
        assert result.status == 1 and result.tx_hash in r.relay.included
        assert r.proxy.public_sends == []
        assert again.relay is not None
        await again.relay.close()


async def test_a_keepers_burst_of_liquidations_goes_to_the_relay(anvil, tmp_path):
    from keeper.app.loop import Keeper
    from tests.anvil.conftest import liquidations_per_user

    async with rigged(anvil, tmp_path) as r:
        users = await seed_liquidatable(r.dc, r.dep, "private burst", 3)
        settings = make_settings(r.dep, await r.w3.eth.chain_id, DEV_KEYS[9], (), comet=False, perps=False)
        keeper = Keeper(settings.model_copy(update={"execution": r.executor.settings}), r.executor.chain, r.executor)
        await keeper.start()
        await r.dc.set_price(r.dep, "WETH", 2_300.0)
        await keeper.step()
        await asyncio.wait_for(keeper.drain(), 60)
        assert [o.error for o in keeper.history] == [None] * 3
        assert await liquidations_per_user(r.w3, r.dep.pool) == {u: 1 for u in users}
        assert r.proxy.public_sends == []
        sent = [h for o in keeper.history for h in (x.tx_hash for x in o.results)]
        assert set(sent) <= set(r.relay.included) and len(r.relay.included) == 4  # the approval, then 3
