"""A fault-injecting JSON-RPC proxy (aiohttp, loopback) in front of a node, for tests and the
faults benchmark. A share `rate` of requests meets one of the `kinds` of fault a real provider
shows; the rest are forwarded unchanged.

Kinds: `drop_before` (the connection is closed before forwarding), `drop_after` (forwarded, so the
node acts on it, then closed without a reply), `delay` (1-5 s before forwarding), `garbage` (a
truncated JSON body), `header_not_found` (-32000, as a node behind the head says), `rate_limited`
(HTTP 429), `stale_head` (the head a few blocks back, as a lagging node answers) and
`truncated_batch` (a batch reply missing its last items). It can also lie about the chain id,
answer chosen methods 'method not found', and refuse chosen eth_sendRawTransaction calls."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import aiohttp
from aiohttp import web

from keeper.devtools.anvil import free_port

KINDS = (
    "drop_before",
    "drop_after",
    "delay",
    "garbage",
    "header_not_found",
    "rate_limited",
    "stale_head",
    "truncated_batch",
)
HEAD_METHODS = ("eth_blockNumber", "eth_getBlockByNumber")


def _reply(rid: Any, *, result: Any = None, error: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"jsonrpc": "2.0", "id": rid}
    out.update({"error": error} if error is not None else {"result": result})
    return out


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        rng: random.Random,
        rate: float,
        *,
        kinds: tuple[str, ...] = KINDS,
        delay_s: tuple[float, float] = (1.0, 5.0),
        chain_id_hex: str | None = None,
        refuse_sends: frozenset[int] = frozenset(),
        missing_methods: frozenset[str] = frozenset(),
    ):
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
        self.upstream, self.rng, self.rate, self.kinds, self.delay_s = upstream, rng, rate, kinds, delay_s
        self.chain_id_hex = chain_id_hex
        self.missing_methods = missing_methods
        self.refuse_sends, self.sends = refuse_sends, 0
        self.public_sends: list[str] = []
        """Every signed transaction sent through it (raw hex), in order."""
        self.faults: dict[str, int] = {k: 0 for k in (*KINDS, "ok")}
        self.session: aiohttp.ClientSession | None = None
        self.runner: web.AppRunner | None = None
        self.url = ""

    @property
    def injected(self) -> int:
        return sum(n for k, n in self.faults.items() if k != "ok")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            payload = json.loads(body)
        except ValueError:
            return web.Response(status=400, text="not JSON")
        items = payload if isinstance(payload, list) else [payload]
        methods = {str(i.get("method")) for i in items if isinstance(i, dict)}
        self.public_sends += [
            str((i.get("params") or [""])[0])
            for i in items
            if isinstance(i, dict) and i.get("method") == "eth_sendRawTransaction"
        ]
        if self.chain_id_hex and methods == {"eth_chainId"} and not isinstance(payload, list):
            return web.json_response(_reply(payload["id"], result=self.chain_id_hex))
        missing = methods & self.missing_methods
        if missing and not isinstance(payload, list):
            err = {"code": -32601, "message": f"the method {missing.pop()} does not exist/is not available"}
            return web.json_response(_reply(payload["id"], error=err))
        if "eth_sendRawTransaction" in methods and self.refuse_sends:
            return await self._sends(payload)
        kind = self._fault(methods, isinstance(payload, list))
        if kind == "drop_before":
            return self._drop(request)
        if kind == "delay":
            await asyncio.sleep(self.rng.uniform(*self.delay_s))
        if kind == "garbage":
            return web.Response(text='{"jsonrpc": "2.0", "id": 1, "resu', content_type="application/json")
        if kind == "rate_limited":
            return web.Response(status=429, text="Too Many Requests", headers={"Retry-After": "1"})
        if kind == "header_not_found":
            err = {"code": -32000, "message": "header not found"}
            out = [_reply(i.get("id"), error=err) for i in items]
            return web.json_response(out if isinstance(payload, list) else out[0])
        if kind == "stale_head":
            return web.json_response(await self._stale(payload))
        reply = await self._forward(body)
        if kind == "drop_after":
            return self._drop(request)
        if kind == "truncated_batch" and isinstance(reply, list) and len(reply) > 1:
            return web.json_response(reply[: len(reply) // 2])
        return web.json_response(reply)

    def _fault(self, methods: set[str], batch: bool) -> str | None:
        if self.rng.random() >= self.rate:
            self.faults["ok"] += 1
            return None
        kinds = [
            k
            for k in self.kinds
            if (k != "stale_head" or (methods <= set(HEAD_METHODS) and not batch)) and (k != "truncated_batch" or batch)
        ]
        if not kinds:
            self.faults["ok"] += 1
            return None
        kind = self.rng.choice(kinds)
        self.faults[kind] += 1
        return kind

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=502)

    async def _forward(self, body: bytes | str) -> Any:
        assert self.session is not None
        data = body if isinstance(body, bytes) else body.encode()
        async with self.session.post(self.upstream, data=data, headers={"Content-Type": "application/json"}) as up:
            return json.loads(await up.read())

    async def _stale(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The head a few blocks back (a lagging node): eth_blockNumber minus 1-3, or that block
        for eth_getBlockByNumber('latest'); a block asked for by number is served as is."""
        head = await self._forward(json.dumps(_rpc("eth_blockNumber", [])))
        behind = max(0, int(head["result"], 16) - self.rng.randint(1, 3))
        if payload["method"] == "eth_blockNumber":
            return _reply(payload["id"], result=hex(behind))
        params = list(payload.get("params") or [])
        if params and params[0] in ("latest", "pending"):
            params[0] = hex(behind)
        got = await self._forward(json.dumps({**payload, "params": params}))
        return dict(got) if isinstance(got, dict) else _reply(payload["id"], result=None)

    async def _sends(self, payload: dict[str, Any] | list[dict[str, Any]]) -> web.StreamResponse:
        """Forward signed transactions (alone or in a batch) except the ones to refuse, which get
        the error a node gives."""
        items = payload if isinstance(payload, list) else [payload]
        refused, forward = [], []
        for item in items:
            if item.get("method") == "eth_sendRawTransaction":
                self.sends += 1
                if self.sends - 1 in self.refuse_sends:
                    err = {"code": -32000, "message": "transaction underpriced (injected refusal)"}
                    refused.append(_reply(item["id"], error=err))
                    continue
            forward.append(item)
        replies: list[dict[str, Any]] = []
        if forward:
            got = await self._forward(json.dumps(forward if isinstance(payload, list) else forward[0]))
            replies = got if isinstance(got, list) else [got]
        by_id = {r["id"]: r for r in replies + refused}
        out = [by_id[item["id"]] for item in items]
        return web.json_response(out if isinstance(payload, list) else out[0])

    async def start(self, port: int | None = None) -> str:
        self.session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_post("/", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        port = port or free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/"
        return self.url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        if self.session is not None:
            await self.session.close()


def _rpc(method: str, params: list[Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 0, "method": method, "params": params}
