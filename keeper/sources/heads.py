"""New heads over WebSocket (`eth_subscribe("newHeads")`): wakes the keeper loop the moment a
block arrives. The subscription reconnects with backoff when the connection drops; meanwhile the
loop falls back to polling, so a lost socket costs latency, never a block."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from web3 import AsyncWeb3, WebSocketProvider
from web3.exceptions import Web3Exception
from websockets.exceptions import WebSocketException

from keeper.sources.rpc import redact

log = logging.getLogger("keeper.heads")


class HeadSubscription:
    def __init__(self, url: str, *, max_backoff_s: float = 30.0):
        self.url = url
        self.max_backoff_s = max_backoff_s
        self.event = asyncio.Event()
        """Set on every new head; the loop clears it."""
        self.connected = False
        self.heads = 0
        self.reconnects = 0

    async def run(self) -> None:
        """Subscribe, and re-subscribe after every loss, until cancelled."""
        backoff = 0.5
        while True:
            try:
                async with AsyncWeb3(WebSocketProvider(self.url)) as w3:
                    await w3.eth.subscribe("newHeads")
                    self.connected, backoff = True, 0.5
                    log.info("newHeads subscription on %s", redact(self.url))
                    async for _ in w3.socket.process_subscriptions():
                        self.heads += 1
                        self.event.set()
            except asyncio.CancelledError:
                raise
            except (Web3Exception, WebSocketException, OSError, TimeoutError, ValueError) as exc:  # reconnect
                log.warning("newHeads subscription lost (%s: %s); polling until it is back", type(exc).__name__, exc)
            self.connected = False
            self.reconnects += 1
            await asyncio.sleep(backoff)
            backoff = min(self.max_backoff_s, backoff * 2)

    async def wait(self, poll_interval_s: float) -> None:
        """Until the next head (or the polling interval when the socket is down; a few polling
        intervals at most when it is up, in case it stalls silently)."""
        timeout = poll_interval_s * 5 if self.connected else poll_interval_s
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.event.wait()
        self.event.clear()

    def stats(self) -> dict[str, Any]:
        return {"connected": self.connected, "heads": self.heads, "reconnects": self.reconnects}
