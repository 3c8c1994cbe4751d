"""The private relay port: JSON-RPC to a Flashbots-Protect style endpoint over aiohttp.

Three methods, as the relays name them:
- `eth_sendPrivateTransaction` `[{tx, maxBlockNumber, preferences}]` -> the transaction hash: one
  signed transaction, kept out of the public mempool, valid up to maxBlockNumber;
- `eth_cancelPrivateTransaction` `[{txHash}]` -> bool;
- `eth_sendBundle` `[{txs, blockNumber}]` -> `{bundleHash}`: transactions that land together, in
  order, in that block or not at all (one request per target block).

A request the relay cannot answer (connection, timeout, a garbage reply) is a TransientError;
a JSON-RPC error reply is a `RelayRefused` (the relay said no: the transaction was not taken).
With an auth signer, each request carries `X-Flashbots-Signature: <address>:<signature>`, the
signature (EIP-191) over the hex keccak of the body, made in keeper.execution.signer.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from keeper.errors import ExecutionError, TransientError

log = logging.getLogger("keeper.relay")


class RelayRefused(ExecutionError):
    """The relay answered with a JSON-RPC error: it did not take the submission."""


class Relay:
    def __init__(self, url: str, *, timeout_s: float = 5.0, auth: Callable[[bytes], str] | None = None):
        self._url = url
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._auth = auth
        self._ids = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None
        self.sent: list[str] = []
        """Methods called, latest last (metrics, tests)."""

    def __repr__(self) -> str:  # the URL may carry an API key
        return "Relay(<private_rpc_url>)"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(self, method: str, params: list[Any]) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}).encode()
        headers = {"Content-Type": "application/json"}
        if self._auth is not None:
            headers["X-Flashbots-Signature"] = self._auth(body)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        self.sent.append(method)
        del self.sent[:-1000]
        try:
            async with self._session.post(self._url, data=body, headers=headers) as response:
                text = await response.text()
                if response.status >= 500 or response.status == 429:
                    raise TransientError(f"private relay: {method}: HTTP {response.status}")
                reply = json.loads(text)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TransientError(f"private relay: {method}: {type(exc).__name__}: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise TransientError(f"private relay: {method}: the reply is not JSON ({text[:80]!r})") from exc
        if not isinstance(reply, dict) or ("result" not in reply and "error" not in reply):
            raise TransientError(f"private relay: {method}: not a JSON-RPC reply ({str(reply)[:80]})")
        if reply.get("error") is not None:
            error = reply["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise RelayRefused(f"private relay refused {method}: {str(message)[:200]}")
        return reply["result"]

    async def send_private(self, raw: bytes, max_block: int) -> str:
        """Hand one signed transaction to the relay, valid up to block `max_block`."""
        params = [{"tx": "0x" + raw.hex(), "maxBlockNumber": hex(max_block), "preferences": {"fast": True}}]
        result = await self._call("eth_sendPrivateTransaction", params)
        if not isinstance(result, str):
            raise TransientError(f"private relay: eth_sendPrivateTransaction: unexpected result {str(result)[:80]}")
        return result

    async def cancel_private(self, tx_hash: str) -> bool:
        """Ask the relay to drop a private transaction (best effort: False when it could not say)."""
        try:
            return bool(await self._call("eth_cancelPrivateTransaction", [{"txHash": tx_hash}]))
        except (TransientError, RelayRefused) as exc:
            log.info("cancelling private %s: %s", tx_hash, exc)
            return False

    async def send_bundle(self, raws: list[bytes], block: int) -> str:
        """Hand a bundle to the relay for one target block; its bundle hash."""
        params = [{"txs": ["0x" + r.hex() for r in raws], "blockNumber": hex(block)}]
        result = await self._call("eth_sendBundle", params)
        if not isinstance(result, dict) or not isinstance(result.get("bundleHash"), str):
            raise TransientError(f"private relay: eth_sendBundle: unexpected result {str(result)[:80]}")
        return str(result["bundleHash"])

    async def send_bundle_for(self, raws: list[bytes], first: int, blocks: int) -> list[str]:
        """The bundle for each of `blocks` target blocks from `first` (concurrently). Raises
        when no target took it; a target the relay refused is logged."""
        got = await asyncio.gather(
            *(self.send_bundle(raws, b) for b in range(first, first + blocks)), return_exceptions=True
        )
        hashes = [g for g in got if isinstance(g, str)]
        for g in got:
            if isinstance(g, BaseException) and not isinstance(g, TransientError | RelayRefused):
                raise g
        if not hashes:
            first_error = next(g for g in got if isinstance(g, BaseException))
            raise first_error
        if len(hashes) < blocks:
            log.info("private relay took the bundle for %d of %d target blocks", len(hashes), blocks)
        return hashes
