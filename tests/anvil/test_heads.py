"""newHeads over WebSocket wake the keeper as blocks arrive; when a proxy keeps cutting the
socket, the subscription reconnects and polling covers the gaps: no block is missed."""

import asyncio

import aiohttp
from aiohttp import WSMsgType, web
from eth_account import Account
from pydantic import SecretStr
from web3 import AsyncWeb3
from web3.providers import AsyncHTTPProvider

from keeper.app.loop import Keeper
from keeper.devtools.demo import make_settings
from keeper.devtools.devchain import DevChain
from keeper.execution.executor import Executor
from keeper.execution.signer import Signer
from keeper.sources.chain import Chain
from tests.anvil.conftest import DEV_KEYS, beside, free_port, mine_every
from tests.helpers import evolve


async def keeper_on(anvil: str, ws_url: str, poll_interval_s: float):
    w3 = AsyncWeb3(AsyncHTTPProvider(anvil))
    dep = await DevChain(w3).deploy_market((await w3.eth.accounts)[0])
    key = DEV_KEYS[9]
    settings = make_settings(dep, await w3.eth.chain_id, key, ())
    settings = evolve(settings, poll_interval_s=poll_interval_s)
    chain = Chain(w3, dep.multicall3)
    executor = Executor(chain, settings.execution, Account.from_key(key).address, Signer(SecretStr(key)), dry_run=False)
    keeper = Keeper(settings, chain, executor)
    keeper.ws_url = ws_url
    return w3, keeper


async def test_new_heads_drive_the_loop(anvil):
    w3, keeper = await keeper_on(anvil, anvil.replace("http://", "ws://"), poll_interval_s=60.0)
    await keeper.start()
    async with beside(mine_every(w3, 0.3)):
        # with a 60 s polling interval, 5 blocks in under 20 s can only come from the subscription
        await asyncio.wait_for(keeper.run(blocks=5), timeout=20)
    assert keeper.heads is not None and keeper.heads.heads >= 4


async def test_a_cut_socket_reconnects_and_no_block_is_missed(anvil):
    """A WebSocket proxy that cuts every connection after 0.8 s."""
    upstream = anvil.replace("http://", "ws://")
    cuts = 0

    async def proxy(request: web.Request) -> web.WebSocketResponse:
        nonlocal cuts
        client = web.WebSocketResponse()
        await client.prepare(request)
        async with aiohttp.ClientSession() as session, session.ws_connect(upstream) as node:

            async def pump(src, dst):
                async for msg in src:
                    if msg.type == WSMsgType.TEXT:
                        await dst.send_str(msg.data)
                    elif msg.type == WSMsgType.BINARY:
                        await dst.send_bytes(msg.data)

            tasks = [asyncio.create_task(pump(client, node)), asyncio.create_task(pump(node, client))]
            await asyncio.sleep(0.8)
            cuts += 1
            for t in tasks:
                t.cancel()
            await client.close()
        return client

    app = web.Application()
    app.router.add_get("/", proxy)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    w3, keeper = await keeper_on(anvil, f"ws://127.0.0.1:{port}/", poll_interval_s=0.5)
    await keeper.start()
    first = keeper.last_block
    try:
        async with beside(mine_every(w3, 0.25)):
            await asyncio.wait_for(keeper.run(blocks=12), timeout=60)
    finally:
        await runner.cleanup()
    assert cuts >= 2 and keeper.heads is not None and keeper.heads.reconnects >= 2
    # every block since start-up was processed: logs were scanned over contiguous ranges
    assert keeper.last_block >= first + 12
