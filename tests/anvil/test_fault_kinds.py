"""Each kind of RPC fault, on its own, at a high rate, against the Chain port over one endpoint:
every read still answers (classified, retried with backoff within the budget), a send is
classified whatever happens to it, and what no retry can fix is a TransientError, never a
raw aiohttp or JSON exception."""

import random

import pytest
from eth_account import Account
from web3 import AsyncWeb3
from web3.providers import AsyncHTTPProvider

from keeper.devtools.devchain import DevChain
from keeper.devtools.faultproxy import KINDS, FaultProxy
from keeper.errors import TransientError
from keeper.execution.signer import sign_eip1559
from keeper.sources.abi import fn
from keeper.sources.chain import Call, Chain
from keeper.sources.failures import send_outcome
from keeper.sources.rpc import FailoverProvider
from tests.anvil.conftest import DEV_KEYS


def _chain(urls: list[str], multicall3: str, budget_s: float = 8.0) -> Chain:
    provider = FailoverProvider(urls, timeout_s=0.5, retry_budget_s=budget_s, probe_every_s=3600)
    return Chain(AsyncWeb3(provider), multicall3)


@pytest.mark.parametrize("kind", KINDS)
async def test_every_read_answers_through_one_kind_of_fault(anvil, kind):
    w3 = AsyncWeb3(AsyncHTTPProvider(anvil))
    dc = DevChain(w3)
    dep = await dc.deploy_market((await w3.eth.accounts)[0])
    proxy = FaultProxy(anvil, random.Random(7), 0.3, kinds=(kind,), delay_s=(0.6, 1.0))
    url = await proxy.start()
    chain = _chain([url], dep.multicall3)
    key = DEV_KEYS[9]
    me = Account.from_key(key).address
    try:
        for _ in range(6):
            latest = await w3.eth.block_number
            head = await chain.head()
            assert latest - 3 <= head.number <= await w3.eth.block_number  # stale at worst, never garbage
            (raw,) = await chain.multicall([Call(dep.tokens["USDC"], fn("ERC20", "decimals").encode())], head.number)
            assert fn("ERC20", "decimals").decode(raw) == (6,)
            assert await chain.get_logs(dep.pool, [], 0, head.number) is not None
            nonce = await chain.nonce(me, "pending")
            raw_tx = sign_eip1559(_key(key), await w3.eth.chain_id, nonce, 10**9, 10**11, 21_000, me, 0, b"")
            sent = await chain.send_raw(raw_tx)
            # a dropped connection may hide an acceptance: "lost"; a retried send finds it known
            assert sent.kind in ("accepted", "already_known", "lost", "nonce_too_low"), sent
        batch = await chain.send_raw_batch([raw_tx])
        assert batch is not None and batch[0].kind in ("accepted", "already_known", "nonce_too_low", "lost")
    finally:
        await chain.close()
        await proxy.stop()
    assert proxy.faults[kind] > 0 or kind == "truncated_batch"  # one batch only: it may be spared


async def test_a_dead_endpoint_is_a_transient_error_within_the_budget(anvil):
    proxy = FaultProxy(anvil, random.Random(1), 1.0, kinds=("drop_before",))
    url = await proxy.start()
    chain = _chain([url], "0x" + "11" * 20, budget_s=1.0)
    try:
        with pytest.raises(TransientError, match="every endpoint failed for 1 s"):
            await chain.head()
        assert (await chain.send_raw(b"\x02\x00")).kind == "lost"
    finally:
        await chain.close()
        await proxy.stop()


def test_send_outcomes_are_classified_by_what_nodes_say():
    cases = {
        "already known": "already_known",
        "ALREADY_EXISTS: already known": "already_known",
        "replacement transaction underpriced": "underpriced",
        "transaction underpriced": "underpriced",
        "max fee per gas less than block base fee": "underpriced",
        "nonce too low: next nonce 5, tx nonce 4": "nonce_too_low",
        "insufficient funds for gas * price + value": "rejected",
        "intrinsic gas too low": "rejected",
        "header not found": "lost",  # the node's trouble, not a refusal: tracked, sent again
    }
    for message, kind in cases.items():
        assert send_outcome(message).kind == kind, message
    assert send_outcome(ConnectionResetError("reset")).kind == "lost"
    assert send_outcome(None).kind == "accepted"


def _key(hex_key: str):
    from eth_keys.datatypes import PrivateKey

    return PrivateKey(bytes.fromhex(hex_key[2:]))
