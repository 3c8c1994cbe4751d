"""A local private relay, for the tests and the demo: it speaks what a Flashbots-Protect style
relay speaks (`eth_sendPrivateTransaction`, `eth_cancelPrivateTransaction`, `eth_sendBundle`)
and lands what it takes on an anvil it builds blocks for.

What it does with a submission is its `mode`:
- `include`: at the next block it builds, once `delay_blocks` blocks have passed since it got it,
  within the submission's blocks (a private transaction's maxBlockNumber, a bundle's target);
- `drop`: never (it still answers, as a relay that finds no builder to take it does).

A block it builds holds its due submissions only: mining is switched off while it sends them,
one `evm_mine`, then on again; a bundle whose transactions do not all succeed is taken back
(evm_snapshot / evm_revert), so a bundle lands whole or not at all. Nothing it holds is ever
sent to the anvil's public mempool before that block. With `require_auth`, a request without a
valid X-Flashbots-Signature is refused (the signer is recorded in `signers`).

    python -m keeper.devtools.relay --upstream http://127.0.0.1:8545 --port 8600 [--mode drop]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak

log = logging.getLogger("keeper.devtools.relay")


@dataclass
class Held:
    """What the relay holds: one private transaction, or one bundle for one target block."""

    raws: list[str]
    first: int
    """The first block it may land in."""
    last: int
    """The last block it may land in."""
    bundle: bool
    hashes: list[str] = field(default_factory=list)


class LocalRelay:
    def __init__(
        self,
        upstream: str,
        *,
        mode: str = "include",
        delay_blocks: int = 0,
        require_auth: bool = False,
        mine: bool = True,
    ):
        self.upstream = upstream
        self.mine = mine
        """False: a node that mines on its own (interval mining) gets what is due handed to it
        at the block it is due for, and mines it in its next block (no bundle atomicity then)."""
        self.mode = mode
        self.delay_blocks = delay_blocks
        self.require_auth = require_auth
        self.held: list[Held] = []
        self.received: list[tuple[str, Any]] = []
        """(method, params) of every request, in order."""
        self.included: list[str] = []
        """Hashes it landed, in order."""
        self.signers: list[str] = []
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.url = ""

    async def _rpc(self, method: str, params: list[Any]) -> Any:
        assert self._session is not None
        payload = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        async with self._session.post(self.upstream, json=payload) as response:
            reply = await response.json(content_type=None)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            payload = json.loads(body)
        except json.JSONDecodeError:
            return web.json_response(
                {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}
            )
        rid, method, params = payload.get("id"), payload.get("method"), payload.get("params") or []
        self.received.append((method, params))
        if self.require_auth and not self._authorised(request.headers.get("X-Flashbots-Signature", ""), body):
            return _error(rid, -32600, "missing or invalid X-Flashbots-Signature")
        try:
            result = await self._answer(method, params)
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            return _error(rid, -32602, f"invalid params: {exc}")
        except RuntimeError as exc:
            return _error(rid, -32000, str(exc))
        return web.json_response({"jsonrpc": "2.0", "id": rid, "result": result})

    def _authorised(self, header: str, body: bytes) -> bool:
        address, _, signature = header.partition(":")
        try:
            signer = Account.recover_message(encode_defunct(text="0x" + keccak(body).hex()), signature=signature)
        except (ValueError, TypeError, IndexError):
            return False
        if signer.lower() != address.lower():
            return False
        self.signers.append(signer)
        return True

    async def _answer(self, method: str, params: list[Any]) -> Any:
        head = int(await self._rpc("eth_blockNumber", []), 16)
        if method == "eth_sendPrivateTransaction":
            raw = params[0]["tx"]
            last = int(params[0].get("maxBlockNumber") or hex(head + 25), 16)
            tx_hash = "0x" + keccak(bytes.fromhex(raw[2:])).hex()
            self.held.append(Held([raw], head + 1 + self.delay_blocks, last, False, [tx_hash]))
            await self._tick()
            return tx_hash
        if method == "eth_cancelPrivateTransaction":
            gone = [h for h in self.held if params[0]["txHash"] in h.hashes and not h.bundle]
            self.held = [h for h in self.held if h not in gone]
            return bool(gone)
        if method == "eth_sendBundle":
            raws = list(params[0]["txs"])
            if not raws:
                raise ValueError("empty bundle")
            block = int(params[0]["blockNumber"], 16)
            if block <= head:
                raise RuntimeError(f"block {block} is in the past (head {head})")
            hashes = ["0x" + keccak(bytes.fromhex(r[2:])).hex() for r in raws]
            self.held.append(Held(raws, max(block, head + 1 + self.delay_blocks), block, True, hashes))
            await self._tick()
            return {"bundleHash": "0x" + keccak(b"".join(bytes.fromhex(h[2:]) for h in hashes)).hex()}
        if method in ("eth_chainId", "eth_blockNumber"):
            return await self._rpc(method, params)
        raise RuntimeError(f"method {method} is not offered by this relay")

    async def _tick(self) -> None:
        """Build the next block if anything held is due for it; forget what can no longer land."""
        async with self._lock:
            head = int(await self._rpc("eth_blockNumber", []), 16)
            self.held = [h for h in self.held if h.last > head]
            due = [h for h in self.held if h.first <= head + 1 <= h.last] if self.mode == "include" else []
            if not due:
                return
            self.held = [h for h in self.held if h not in due]
            await self._build(due)

    async def _build(self, due: list[Held]) -> None:
        """The private transactions due in one block; then each bundle in a block of its own,
        taken back (evm_revert) unless every one of its transactions succeeded."""
        if not self.mine:
            self.included += [t for h in due for raw in h.raws if (t := await self._send(raw))]
            return
        await self._rpc("evm_setAutomine", [False])
        try:
            singles = [raw for h in due if not h.bundle for raw in h.raws]
            if singles:
                landed = [t for raw in singles if (t := await self._send(raw))]
                await self._rpc("evm_mine", [])
                self.included += landed
            for h in (h for h in due if h.bundle):
                snapshot = await self._rpc("evm_snapshot", [])
                landed = []
                for raw in h.raws:
                    if not (t := await self._send(raw)):
                        break
                    landed.append(t)
                await self._rpc("evm_mine", [])
                receipts = [await self._rpc("eth_getTransactionReceipt", [t]) for t in landed]
                if len(landed) < len(h.raws) or any(r is None or int(r["status"], 16) != 1 for r in receipts):
                    await self._rpc("evm_revert", [snapshot])
                    log.info("relay: bundle %s dropped (not every transaction succeeds)", h.hashes)
                    continue
                self.included += landed
        finally:
            await self._rpc("evm_setAutomine", [True])

    async def _send(self, raw: str) -> str:
        """Hand one transaction to the node for the block being built ('' when it refuses it)."""
        try:
            return str(await self._rpc("eth_sendRawTransaction", [raw]))
        except RuntimeError as exc:
            log.info("relay: %s... not taken by the node: %s", raw[:20], exc)
            return ""

    async def _ticks(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            with contextlib.suppress(aiohttp.ClientError, RuntimeError, OSError):
                await self._tick()

    async def start(self, port: int = 0) -> str:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_post("/", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        bound = self._runner.addresses[0][1]
        self._ticker = asyncio.create_task(self._ticks())
        self.url = f"http://127.0.0.1:{bound}"
        return self.url

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()


def _error(rid: Any, code: int, message: str) -> web.Response:
    return web.json_response({"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}})


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m keeper.devtools.relay", description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", default="http://127.0.0.1:8545", help="the anvil it builds blocks for")
    parser.add_argument("--port", type=int, default=8600)
    parser.add_argument("--mode", choices=("include", "drop"), default="include")
    parser.add_argument("--delay-blocks", type=int, default=0)
    parser.add_argument("--require-auth", action="store_true")
    parser.add_argument("--no-mine", action="store_true", help="the node mines on its own (anvil --block-time)")
    args = parser.parse_args()

    async def run() -> None:
        relay = LocalRelay(
            args.upstream, mode=args.mode, delay_blocks=args.delay_blocks, require_auth=args.require_auth
        )
        print(f"private relay on {await relay.start(args.port)} -> {args.upstream} (mode {args.mode})", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await relay.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
