"""Several JSON-RPC endpoints behind one web3 provider: health-scored failover for reads,
broadcast to every endpoint for signed transactions, and a refusal to go on when endpoints
disagree on the chain or one falls too far behind.

Used for one HTTP endpoint too: it is where failures are classified and retried. Endpoints are
ranked by recent failures, then by latency; a failing endpoint backs off (exponentially, up to
a minute) and is tried again later. A request that fails on one endpoint (connection error,
timeout, HTTP 429, a reply that is not JSON-RPC, or a node-specific error reply such as -32000
'header not found') goes to the next, in rounds with a growing pause, for at most the retry
budget; JSON-RPC error replies that answer the request (a revert, a refused log range, a nonce
too low) are returned as they are.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from web3.exceptions import ProviderConnectionError
from web3.providers import AsyncHTTPProvider
from web3.providers.async_base import AsyncBaseProvider
from web3.types import RPCEndpoint, RPCResponse

from keeper.errors import FatalError
from keeper.sources.failures import TRANSPORT, node_specific

log = logging.getLogger("keeper.rpc")
BROADCAST = ("eth_sendRawTransaction",)


def _not_jsonrpc(exc: BaseException) -> bool:
    """An HTTP answer that no JSON-RPC node gives: a client error status (not 408/429), 501, or a
    body that does not parse (a page, not JSON)."""
    if isinstance(exc, aiohttp.ClientResponseError):
        return exc.status == 501 or (400 <= exc.status < 500 and exc.status not in (408, 429))
    return isinstance(exc, ValueError | aiohttp.ContentTypeError)


def redact(url: str) -> str:
    """scheme://host:port only: API keys live in paths and queries."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"


@dataclass
class Endpoint:
    url: str
    provider: AsyncHTTPProvider
    failures: int = 0
    backoff_until: float = 0.0
    latency_s: float = 0.0
    head: int = 0
    excluded: str = ""
    """Why the endpoint is out of rotation (behind the others), or ''."""
    requests: int = field(default=0)
    errors: int = field(default=0)
    not_jsonrpc: int = 0
    """Replies in a row that were HTTP but not JSON-RPC (an HTML page, a 404): a wrong URL."""
    not_jsonrpc_detail: str = ""

    @property
    def name(self) -> str:
        return redact(self.url)

    def ok(self, latency_s: float) -> None:
        self.failures = self.not_jsonrpc = 0
        self.latency_s = latency_s if not self.latency_s else 0.8 * self.latency_s + 0.2 * latency_s

    def fail(self) -> None:
        self.failures += 1
        self.errors += 1
        self.backoff_until = time.monotonic() + min(60.0, 0.5 * 2 ** min(self.failures, 7))


class FailoverProvider(AsyncBaseProvider):
    def __init__(
        self,
        urls: list[str],
        *,
        timeout_s: float = 10.0,
        max_lag_blocks: int = 5,
        probe_every_s: float = 30.0,
        retry_budget_s: float = 8.0,
    ):
        super().__init__()
        if not urls:
            raise ValueError("no RPC endpoint")
        self.endpoints = [
            Endpoint(u, AsyncHTTPProvider(u, request_kwargs={"timeout": timeout_s}, exception_retry_configuration=None))
            for u in urls
        ]
        self.timeout_s = timeout_s
        self.retry_budget_s = retry_budget_s
        """How long one read may be retried (backoff, every endpoint) before it is a failure."""
        self.exhausted = 0
        """Requests that failed on every endpoint for the whole retry budget (metrics)."""
        self.max_lag_blocks = max_lag_blocks
        self.probe_every_s = probe_every_s
        self._probed_at = 0.0
        self.last: Endpoint | None = None
        self.closed = False

    # -- web3 provider interface
    async def is_connected(self, show_traceback: bool = False) -> bool:
        return any(e.failures == 0 for e in self.endpoints)

    async def disconnect(self) -> None:
        self.closed = True
        for e in self.endpoints:
            await e.provider.disconnect()

    def _refuse_when_closed(self, method: str) -> None:
        """After disconnect a request would open a new HTTP session nobody closes: refused."""
        if self.closed:
            raise ProviderConnectionError(f"{method}: the RPC provider was closed")

    async def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        self._refuse_when_closed(method)
        if time.monotonic() - self._probed_at > self.probe_every_s and method not in ("eth_chainId", "eth_blockNumber"):
            await self.probe()
        if method in BROADCAST:
            return await self._broadcast(method, params)
        errors: list[str] = []
        deadline = time.monotonic() + self.retry_budget_s
        for attempt in range(1_000):
            for e in self._ranked():
                response = await self._one(e, method, params)
                if isinstance(response, str):
                    errors.append(f"{e.name}: {response}")
                    continue
                if attempt or len(errors):
                    log.debug("%s answered after %d failed attempt(s)", method, len(errors))
                return response
            if not await self._pause(attempt, deadline):
                break
        self.exhausted += 1
        raise ProviderConnectionError(
            f"{method}: every endpoint failed for {self.retry_budget_s:g} s "
            f"({len(errors)} attempts; last: {'; '.join(errors[-len(self.endpoints) :])})"
        )

    async def _pause(self, attempt: int, deadline: float) -> bool:
        """Back off before the next round of attempts (0.1 s doubling, up to 2 s); False when
        the retry budget does not leave room for another round."""
        wait = min(2.0, 0.1 * 2**attempt)
        if time.monotonic() + wait >= deadline:
            return False
        await asyncio.sleep(wait)
        return True

    async def make_batch_request(self, requests: list[tuple[RPCEndpoint, Any]]) -> list[RPCResponse]:
        """A JSON-RPC batch of signed transactions (a burst), broadcast like one: every endpoint
        gets the batch; per transaction the first acceptance wins, else the first refusal. Sending
        the same signed transactions again is harmless (a node says 'already known'), so a batch
        no endpoint answered in full is sent again within the retry budget."""
        self._refuse_when_closed("batch")
        if any(method not in BROADCAST for method, _ in requests):
            raise ValueError("only eth_sendRawTransaction batches go through the failover provider")
        endpoints = [e for e in self.endpoints if not e.excluded]

        async def one(e: Endpoint) -> list[Any] | str:
            e.requests += 1
            start = time.monotonic()
            try:
                async with asyncio.timeout(self.timeout_s):
                    reply = await e.provider.make_batch_request(requests)
            except TRANSPORT as exc:  # as in _one: try the others
                e.fail()
                return f"{type(exc).__name__}: {exc}"[:200]
            if not isinstance(reply, list) or len(reply) != len(requests):
                e.fail()
                return f"not a full JSON-RPC batch reply: {str(reply)[:80]}"
            e.ok(time.monotonic() - start)
            return reply

        deadline = time.monotonic() + self.retry_budget_s
        replies: list[list[Any]] = []
        for attempt in range(1_000):
            replies = [r for r in await asyncio.gather(*(one(e) for e in endpoints)) if isinstance(r, list)]
            if replies or not await self._pause(attempt, deadline):
                break
        if not replies:
            raise ProviderConnectionError("batch of signed transactions: no endpoint answered in full")
        out: list[Any] = []
        for k in range(len(requests)):
            items = [r[k] for r in replies if isinstance(r[k], dict)]
            good = [i for i in items if "result" in i]
            out.append(good[0] if good else items[0] if items else {"error": {"code": -32603, "message": "no reply"}})
        return out

    # -- health
    def _ranked(self) -> list[Endpoint]:
        now = time.monotonic()
        usable = [e for e in self.endpoints if not e.excluded]
        ready = sorted((e for e in usable if e.backoff_until <= now), key=lambda e: (e.failures, e.latency_s))
        waiting = sorted((e for e in usable if e.backoff_until > now), key=lambda e: e.backoff_until)
        return ready + waiting or sorted(self.endpoints, key=lambda e: e.failures)

    async def _one(self, e: Endpoint, method: RPCEndpoint, params: Any) -> RPCResponse | str:
        """The reply, or why this endpoint failed (it is then penalized)."""
        start = time.monotonic()
        e.requests += 1
        self.last = e
        try:
            async with asyncio.timeout(self.timeout_s):  # not wait_for: on 3.11 it can swallow a cancel
                response = await e.provider.make_request(method, params)
        except TRANSPORT as exc:  # connection errors, timeouts, undecodable bodies: try another
            e.fail()
            why = f"{type(exc).__name__}: {exc}"[:200]
            if _not_jsonrpc(exc):
                e.not_jsonrpc, e.not_jsonrpc_detail = e.not_jsonrpc + 1, why
            return why
        if not isinstance(response, dict) or ("result" not in response and "error" not in response):
            e.fail()
            e.not_jsonrpc, e.not_jsonrpc_detail = e.not_jsonrpc + 1, f"not a JSON-RPC reply: {str(response)[:80]}"
            return e.not_jsonrpc_detail
        if why := node_specific(response):
            e.fail()  # this node cannot answer now (behind the head, rate limited): another one may
            return why
        e.ok(time.monotonic() - start)
        return response

    def not_jsonrpc(self) -> str:
        """When every endpoint keeps answering HTTP that is not JSON-RPC (3 replies in a row, none
        good in between): which, and what they said ('' otherwise)."""
        if all(e.not_jsonrpc >= 3 for e in self.endpoints):
            return "; ".join(f"{e.name}: {e.not_jsonrpc_detail}" for e in self.endpoints)
        return ""

    def penalize_last(self, why: str) -> None:
        """The caller could not use the last reply (garbage that looked like JSON-RPC)."""
        if self.last is not None:
            log.info("endpoint %s gave an unusable reply: %s", self.last.name, why)
            self.last.fail()

    async def _broadcast(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        """A signed transaction goes to every endpoint; the first acceptance wins. 'Already known'
        style errors from the others are expected (they heard it from their peers)."""
        deadline = time.monotonic() + self.retry_budget_s
        for attempt in range(1_000):  # the same signed bytes again are harmless ('already known')
            replies = await asyncio.gather(*(self._one(e, method, params) for e in self.endpoints if not e.excluded))
            if any(isinstance(r, dict) for r in replies) or not await self._pause(attempt, deadline):
                break
        good = [r for r in replies if isinstance(r, dict) and "result" in r]
        if good:
            return good[0]
        answers = [r for r in replies if isinstance(r, dict)]
        if answers:
            return answers[0]  # every node refused it: the refusal (e.g. nonce too low) is the answer
        raise ProviderConnectionError(f"{method}: no endpoint reachable: {'; '.join(map(str, replies))}")

    async def probe(self, expected_chain_id: int | None = None) -> None:
        """Each endpoint's chain id and head: FatalError if one is on another chain; endpoints
        more than `max_lag_blocks` behind the best are taken out of rotation until they catch up."""
        self._probed_at = time.monotonic()

        async def look(e: Endpoint) -> tuple[Endpoint, int | None, int | None]:
            chain = await self._one(e, RPCEndpoint("eth_chainId"), [])
            number = await self._one(e, RPCEndpoint("eth_blockNumber"), [])
            cid = int(chain["result"], 16) if isinstance(chain, dict) and "result" in chain else None
            head = int(number["result"], 16) if isinstance(number, dict) and "result" in number else None
            return e, cid, head

        seen = await asyncio.gather(*(look(e) for e in self.endpoints))
        ids = {cid for _, cid, _ in seen if cid is not None}
        if expected_chain_id is not None:
            for e, cid, _ in seen:
                if cid is not None and cid != expected_chain_id:
                    raise FatalError(
                        f"RPC endpoint {e.name} is on chain id {cid}, not {expected_chain_id}: refusing to start"
                    )
        elif len(ids) > 1:
            raise FatalError(f"RPC endpoints disagree on the chain id ({sorted(ids)}): refusing to go on")
        best = max((h for _, _, h in seen if h is not None), default=0)
        for e, _, head in seen:
            if head is None:
                continue
            e.head = head
            lag = best - head
            was = e.excluded
            e.excluded = f"{lag} blocks behind" if lag > self.max_lag_blocks else ""
            if e.excluded != was:
                if e.excluded:
                    log.warning(
                        "ALERT: RPC endpoint %s is %s: out of rotation",
                        e.name,
                        e.excluded,
                        extra={"alert_kind": "rpc", "alert_subject": e.name, "alert_tier": "warning"},
                    )
                else:
                    log.warning("RPC endpoint %s caught up: back in rotation", e.name)
        if all(e.excluded for e in self.endpoints):
            for e in self.endpoints:
                e.excluded = ""

    def stats(self) -> list[dict[str, Any]]:
        return [
            {"endpoint": e.name, "requests": e.requests, "errors": e.errors, "latency_ms": round(e.latency_s * 1000, 1)}
            for e in self.endpoints
        ]
