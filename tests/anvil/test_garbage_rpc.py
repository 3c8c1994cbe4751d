"""A JSON-RPC server on loopback that answers with garbage: clear errors, no traceback, nothing sent."""

import asyncio
import os
import sys

import pytest
from aiohttp import web
from web3 import AsyncWeb3
from web3.providers import AsyncHTTPProvider

from keeper.errors import TransientError
from keeper.sources.chain import Call, Chain
from tests.anvil.conftest import ROOT, free_port


async def start_server(handler):
    app = web.Application()
    app.router.add_post("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def garbage(request: web.Request) -> web.Response:
    body = await request.json()
    result = {"eth_chainId": "0x7a69", "eth_blockNumber": "0x10", "eth_call": "0xdeadbeef"}.get(body["method"])
    if result is None:
        return web.json_response({"jsonrpc": "2.0", "id": body["id"], "error": {"code": -32000, "message": "nope"}})
    return web.json_response({"jsonrpc": "2.0", "id": body["id"], "result": result})


@pytest.fixture
async def garbage_rpc():
    runner, url = await start_server(garbage)
    yield url
    await runner.cleanup()


async def test_multicall_garbage_is_a_transient_error(garbage_rpc):
    chain = Chain(AsyncWeb3(AsyncHTTPProvider(garbage_rpc)), "0x" + "11" * 20)
    assert await chain.chain_id() == 31337
    with pytest.raises(TransientError, match="undecodable reply"):
        await chain.multicall([Call("0x" + "22" * 20, b"\x01\x02\x03\x04")], 16)
    with pytest.raises(TransientError, match="eth_getBlockByNumber"):
        await chain.head()


async def test_cli_on_garbage_rpc_prints_one_clear_line(garbage_rpc):
    env = {"PATH": os.environ.get("PATH", ""), "KEEPER_RPC_URL": garbage_rpc, "KEEPER_ADDRESS": "0x" + "33" * 20}
    # the server runs in this event loop, so the CLI runs as an asyncio subprocess
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "keeper",
        "status",
        "--network",
        "local",
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    stderr = err.decode()
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert "keeper: eth_getCode(" in stderr and "nope" in stderr  # the first read past the chain id


async def test_get_logs_halves_a_refused_range():
    seen: list[tuple[int, int]] = []

    async def picky(request: web.Request) -> web.Response:
        body = await request.json()
        if body["method"] == "eth_getLogs":
            f = body["params"][0]
            lo, hi = int(f["fromBlock"], 16), int(f["toBlock"], 16)
            seen.append((lo, hi))
            if hi - lo + 1 > 8:
                err = {"code": -32005, "message": "query returned more than 10000 results"}
                return web.json_response({"jsonrpc": "2.0", "id": body["id"], "error": err})
            return web.json_response({"jsonrpc": "2.0", "id": body["id"], "result": []})
        return web.json_response({"jsonrpc": "2.0", "id": body["id"], "result": "0x7a69"})

    runner, url = await start_server(picky)
    try:
        chain = Chain(AsyncWeb3(AsyncHTTPProvider(url)), "0x" + "11" * 20, log_chunk=100)
        assert await chain.get_logs("0x" + "22" * 20, [], 0, 99) == []
    finally:
        await runner.cleanup()
    served = sorted((lo, hi) for lo, hi in seen if hi - lo + 1 <= 8)
    covered = [b for lo, hi in served for b in range(lo, hi + 1)]
    assert covered == list(range(100)), "every block exactly once"
