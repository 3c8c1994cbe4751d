"""Nothing runs behind a failure or a stop: a cancel reaches a request whose reply arrives at the
same moment, a fan-out of reads finishes before its failure is raised, and a closed provider
refuses requests instead of opening an HTTP session nobody closes."""

import asyncio
from types import SimpleNamespace

import pytest
from web3.exceptions import ProviderConnectionError

from keeper.app.startup import Startup
from keeper.errors import TransientError
from keeper.sources.rpc import FailoverProvider


class Held:
    """An endpoint provider whose reply is released by the test."""

    def __init__(self) -> None:
        self.reply: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        self.asked = asyncio.Event()

    async def make_request(self, method, params):
        self.asked.set()
        return await self.reply

    async def disconnect(self) -> None:
        pass


async def test_a_cancel_is_not_lost_when_the_reply_arrives_at_the_same_moment():
    provider = FailoverProvider(["http://127.0.0.1:9"], probe_every_s=1e9)
    held = Held()
    provider.endpoints[0].provider = held
    task = asyncio.create_task(provider.make_request("eth_getCode", ["0x" + "11" * 20, "latest"]))
    await held.asked.wait()
    held.reply.set_result({"jsonrpc": "2.0", "id": 1, "result": "0x"})
    task.cancel()  # asyncio.wait_for on 3.11 returns the reply here and the cancel is gone
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_closed_provider_refuses_requests():
    provider = FailoverProvider(["http://127.0.0.1:9"], probe_every_s=1e9)
    provider.endpoints[0].provider = Held()
    await provider.disconnect()
    with pytest.raises(ProviderConnectionError, match="closed"):
        await provider.make_request("eth_chainId", [])
    with pytest.raises(ProviderConnectionError, match="closed"):
        await provider.make_batch_request([("eth_sendRawTransaction", ["0x00"])])


async def test_the_code_check_raises_only_once_every_read_finished():
    finished: list[str] = []

    async def code(address: str) -> bytes:
        if address == "0xfast":
            raise TransientError("eth_getCode(0xfast) failed: nope")
        await asyncio.sleep(0.05)
        finished.append(address)
        raise TransientError(f"eth_getCode({address}) failed: nope")

    fake = SimpleNamespace(
        settings=SimpleNamespace(multicall3="0xfast", flash=SimpleNamespace(funding="wallet")),
        watches=[SimpleNamespace(address="0xslow")],
        chain=SimpleNamespace(code=code),
    )
    with pytest.raises(TransientError, match="0xfast"):
        await Startup._check_code(fake)  # type: ignore[arg-type]
    assert finished == ["0xslow"], "a read was left running behind the failure"
