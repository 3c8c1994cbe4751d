"""Chain access: the only module (with execution/) that talks JSON-RPC.

`Chain` wraps an AsyncWeb3 and offers what the keeper reads: the head, batched calls through
Multicall3 `aggregate3` pinned to one block, and chunked `eth_getLogs` that halves its range
when a node refuses it. Failures and garbage replies become `TransientError`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from eth_utils import to_checksum_address
from web3 import AsyncWeb3
from web3.exceptions import ContractLogicError, ProviderConnectionError, TransactionNotFound, Web3Exception

from keeper.errors import FatalError, TransientError
from keeper.sources.abi import DECODE_ERRORS, fn
from keeper.sources.failures import (
    TRANSPORT,
    ProviderConnectionErrors,
    SendOutcome,
    call_failures,
    classified,
    revert_text,
    send_outcome,
)

log = logging.getLogger("keeper.chain")
T = TypeVar("T")

AGGREGATE3 = fn("Multicall3", "aggregate3")


@dataclass(frozen=True)
class Call:
    """One read: `target.call(data)`; `allow_failure` lets the batch go on when it reverts."""

    target: str
    data: bytes
    allow_failure: bool = False


@dataclass(frozen=True)
class Head:
    number: int
    timestamp: int
    base_fee_wei: int
    hash: bytes
    parent_hash: bytes = b""


class Chain:
    def __init__(self, w3: AsyncWeb3[Any], multicall3: str, *, multicall_chunk: int = 400, log_chunk: int = 5_000):
        self.w3 = w3
        self.multicall3 = to_checksum_address(multicall3)
        self.multicall_chunk = multicall_chunk
        self.log_chunk = log_chunk
        self.requests = 0
        self.errors = 0
        """Failed or unusable replies (metrics)."""
        self.latency_s = 0.0
        """Moving average of the head request's round trip (metrics)."""
        """JSON-RPC requests this Chain has sent (for reports and benchmarks)."""

    async def close(self) -> None:
        """Close the provider's connections (HTTP session or WebSocket)."""
        disconnect = getattr(self.w3.provider, "disconnect", None)
        if disconnect is not None:
            try:
                await disconnect()
            except (Web3Exception, OSError, RuntimeError) as exc:  # closing must not mask the real outcome
                log.debug("closing the provider failed: %s", exc)

    async def _read(self, what: str, request: Awaitable[T], *, blame: bool = False) -> T:
        """One request; its failure a TransientError naming it (`blame`: the endpoint is told)."""
        self.requests += 1
        try:
            return await request
        except TRANSPORT as exc:
            if blame:
                self._blame(str(exc))
            raise TransientError(f"{what} failed: {exc}") from exc

    async def chain_id(self) -> int:
        return int(await self._read("eth_chainId", self.w3.eth.chain_id))

    def _blame(self, why: str) -> None:
        """Tell a failover provider that its last reply was unusable (another endpoint next time)."""
        self.errors += 1
        penalize = getattr(self.w3.provider, "penalize_last", None)
        if penalize is not None:
            penalize(why)

    async def check_chain_id(self, expected: int) -> None:
        probe = getattr(self.w3.provider, "probe", None)
        if probe is not None:  # several endpoints: every one must be on the expected chain
            self.requests += 2
            await probe(expected)
        try:
            actual = await self.chain_id()
        except TransientError as exc:
            why = getattr(self.w3.provider, "not_jsonrpc", lambda: "")()
            if why:  # an HTTP server, but not a node's JSON-RPC: a wrong URL, not a passing fault
                raise FatalError(f"the RPC URL does not answer JSON-RPC ({why}): check KEEPER_RPC_URL") from exc
            raise
        if actual != expected:
            raise FatalError(
                f"the RPC is on chain id {actual} but the configuration says {expected}: refusing to start"
            )

    async def head(self, block: int | str = "latest") -> Head:
        self.requests += 1
        try:
            start = time.monotonic()
            b = await self.w3.eth.get_block(block)  # type: ignore[arg-type]
            took = time.monotonic() - start
            self.latency_s = took if not self.latency_s else 0.8 * self.latency_s + 0.2 * took
            return Head(
                number=int(b["number"]),
                timestamp=int(b["timestamp"]),
                base_fee_wei=int(b.get("baseFeePerGas", 0) or 0),
                hash=bytes(b["hash"]),
                parent_hash=bytes(b.get("parentHash", b"")),
            )
        except TRANSPORT as exc:
            self._blame(str(exc))
            raise TransientError(f"eth_getBlockByNumber({block}) failed: {exc}") from exc

    async def call(
        self, to: str, data: bytes, block: int | str = "latest", sender: str | None = None, *, value: int = 0
    ) -> bytes:
        self.requests += 1
        tx: dict[str, Any] = {"to": to_checksum_address(to), "data": data}
        if sender:
            tx["from"] = to_checksum_address(sender)
        if value:
            tx["value"] = value
        try:
            return bytes(await self.w3.eth.call(tx, block))  # type: ignore[arg-type]
        except call_failures() as exc:  # a revert (named), or a transient failure
            raise classified(exc, f"eth_call to {to}") from exc

    async def estimate(self, sender: str, to: str, data: bytes, value: int = 0) -> int:
        """eth_call then eth_estimateGas from `sender` at the latest block: the gas estimate, or
        ContractLogicError (named revert reason) / TransientError."""
        tx: dict[str, Any] = {"from": to_checksum_address(sender), "to": to_checksum_address(to), "data": data}
        tx["value"] = value
        await self.call(to, data, "latest", sender, value=value)
        self.requests += 1
        try:
            return int(await self.w3.eth.estimate_gas(tx))  # type: ignore[arg-type]
        except call_failures() as exc:  # a revert (named), or a transient failure
            raise classified(exc, f"eth_estimateGas to {to}") from exc

    async def estimate_creation(self, sender: str, initcode: bytes) -> tuple[int, bytes]:
        """A contract creation from `sender`, simulated (eth_call without `to`) and estimated:
        (gas, the runtime code it would deploy); ContractLogicError when the constructor reverts."""
        tx: dict[str, Any] = {"from": to_checksum_address(sender), "data": initcode}
        self.requests += 2
        try:
            code = bytes(await self.w3.eth.call(tx, "latest"))  # type: ignore[arg-type]
            return int(await self.w3.eth.estimate_gas(tx)), code  # type: ignore[arg-type]
        except call_failures() as exc:
            raise classified(exc, "contract creation") from exc

    async def block_number(self) -> int:
        """eth_blockNumber (the node's head, without the block itself)."""
        return int(await self._read("eth_blockNumber", self.w3.eth.block_number))

    async def code(self, address: str, block: int | str = "latest") -> bytes:
        """The contract code at `address` (b'' when there is none)."""
        request = self.w3.eth.get_code(to_checksum_address(address), block)  # type: ignore[arg-type]
        return bytes(await self._read(f"eth_getCode({address})", request))

    async def nonce(self, address: str, block: int | str = "latest") -> int:
        """The account's transaction count at `block` ('pending': including the node's mempool)."""
        request = self.w3.eth.get_transaction_count(to_checksum_address(address), block)  # type: ignore[arg-type]
        return int(await self._read(f"eth_getTransactionCount({block})", request, blame=True))

    async def send_raw(self, raw: bytes) -> SendOutcome:
        """eth_sendRawTransaction, classified (never raises for the node or the connection)."""
        self.requests += 1
        try:
            await self.w3.eth.send_raw_transaction(raw)
        except ProviderConnectionErrors as exc:
            return send_outcome(exc)
        except TRANSPORT as exc:  # the node's answer: a refusal
            return send_outcome(getattr(exc, "message", None) or str(exc))
        return SendOutcome("accepted")

    async def receipt(self, tx_hash: str, *, strict: bool = False) -> dict[str, Any] | None:
        """The transaction's receipt, None while it is not mined. When the node cannot say: None,
        or with `strict` a TransientError (a reconciliation must not take 'unknown' for 'not mined')."""
        self.requests += 1
        try:
            receipt = await self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        except TRANSPORT as exc:
            if strict:
                raise TransientError(f"eth_getTransactionReceipt({tx_hash}) failed: {exc}") from exc
            log.info("receipt of %s: %s", tx_hash, exc)
            return None
        return dict(receipt) if receipt is not None else None

    async def send_raw_batch(self, raws: Sequence[bytes]) -> list[SendOutcome] | None:
        """Broadcast signed transactions in one JSON-RPC batch, in nonce order, each send
        classified. None when the provider cannot batch (the caller sends them one by one)."""
        batch = getattr(self.w3.provider, "make_batch_request", None)
        if batch is None or not raws:
            return None
        self.requests += 1
        try:
            replies = await batch([("eth_sendRawTransaction", ["0x" + raw.hex()]) for raw in raws])
        except NotImplementedError:
            return None
        except TRANSPORT as exc:
            return [send_outcome(ProviderConnectionError(str(exc)))] * len(raws)  # tracking settles each
        if not isinstance(replies, list) or len(replies) != len(raws):
            self._blame("eth_sendRawTransaction batch: not a batch reply")
            return [SendOutcome("lost", f"unusable batch reply: {str(replies)[:120]}")] * len(raws)
        out: list[SendOutcome] = []
        for r in replies:
            if isinstance(r, dict) and "result" in r:
                out.append(SendOutcome("accepted"))
            elif isinstance(r, dict) and isinstance(r.get("error"), dict):
                out.append(send_outcome(str(r["error"].get("message", r["error"]))))
            else:
                out.append(SendOutcome("lost", f"unusable reply: {str(r)[:120]}"))
        return out

    async def call_with_state(self, sender: str, to: str, data: bytes, state: dict[str, Any]) -> bytes:
        """eth_call on the latest state with a state override (`{address: {"stateDiff": {slot:
        value}}}`, hex). A revert raises ContractLogicError with the named reason; a node that
        does not take overrides raises TransientError."""
        self.requests += 1
        call = {"from": sender.lower(), "to": to.lower(), "data": "0x" + data.hex()}
        try:
            reply = await self.w3.provider.make_request("eth_call", [call, "latest", state])
        except TRANSPORT as exc:  # TypeError: takes no override
            raise TransientError(f"eth_call with a state override failed: {exc}") from exc
        if isinstance(reply, dict) and isinstance(reply.get("result"), str):
            return bytes.fromhex(reply["result"].removeprefix("0x"))
        error = reply.get("error") if isinstance(reply, dict) else None
        if isinstance(error, dict) and (error.get("data") or "revert" in str(error.get("message", ""))):
            raise ContractLogicError(revert_text(ContractLogicError(str(error.get("message")), data=error.get("data"))))
        raise TransientError(f"eth_call with a state override: {str(reply)[:200]}")

    async def simulate_bundle(self, sender: str, txs: Sequence[tuple[str, bytes, int]]) -> list[tuple[int, str]] | None:
        """Simulate transactions (to, data, value) from `sender` one after the other on the latest
        state, as a block would run them (`eth_simulateV1`, one request). Per transaction:
        (gas used, '') or (0, revert reason). None when the node does not offer eth_simulateV1."""
        self.requests += 1
        calls = [
            {
                "from": sender.lower(),
                "to": to.lower(),
                "data": "0x" + data.hex(),
                "value": hex(v),
            }
            for to, data, v in txs
        ]
        try:
            reply = await self.w3.provider.make_request(
                "eth_simulateV1",
                [{"blockStateCalls": [{"calls": calls}]}, "latest"],
            )
        except TRANSPORT as exc:
            raise TransientError(f"eth_simulateV1 failed: {exc}") from exc
        if not isinstance(reply, dict) or "result" not in reply:
            error = reply.get("error") if isinstance(reply, dict) else None
            if isinstance(error, dict):  # method not found, or not enabled on this node
                log.info("eth_simulateV1 unavailable (%s): simulating one by one", error.get("message"))
                return None
            self._blame("eth_simulateV1: not a JSON-RPC reply")
            raise TransientError(f"eth_simulateV1: unexpected reply {str(reply)[:200]}")
        try:
            results = reply["result"][0]["calls"]
            if len(results) != len(txs):
                raise ValueError(f"{len(results)} results for {len(txs)} calls")
            out = []
            for r in results:
                if int(r["status"], 16) == 1:
                    out.append((int(r["gasUsed"], 16), ""))
                else:
                    err = r.get("error") or {}
                    failure = ContractLogicError(
                        str(err.get("message", "reverted")), data=err.get("data") or r.get("returnData")
                    )
                    out.append((0, revert_text(failure)))
            return out
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            self._blame(f"eth_simulateV1: {exc}")
            raise TransientError(f"eth_simulateV1: malformed reply ({exc})") from exc

    async def multicall(self, calls: Sequence[Call], block: int) -> list[bytes | None]:
        """Results in order; None where an allow_failure call reverted. One request per chunk."""
        out: list[bytes | None] = []
        for start in range(0, len(calls), self.multicall_chunk):
            chunk = calls[start : start + self.multicall_chunk]
            payload = AGGREGATE3.encode([(to_checksum_address(c.target), c.allow_failure, c.data) for c in chunk])
            try:
                raw = await self.call(self.multicall3, payload, block)
                (results,) = AGGREGATE3.decode(raw)
            except ContractLogicError as exc:
                raise TransientError(f"multicall at block {block} reverted: {exc}") from exc
            except DECODE_ERRORS as exc:  # eth-abi decoding of a garbage reply
                if isinstance(exc, TransientError):
                    raise
                self._blame(str(exc))
                raise TransientError(f"multicall at block {block}: undecodable reply: {exc}") from exc
            if len(results) != len(chunk):
                raise TransientError(f"multicall returned {len(results)} results for {len(chunk)} calls")
            out.extend(bytes(data) if ok else None for ok, data in results)
        return out

    async def get_logs(
        self, address: str | Sequence[str], topics: list[Any], from_block: int, to_block: int
    ) -> list[dict[str, Any]]:
        """All logs of `address` (one or several contracts) in [from_block, to_block], in chunks;
        a refused range is halved and retried."""
        where: Any = (
            to_checksum_address(address) if isinstance(address, str) else [to_checksum_address(a) for a in address]
        )
        logs: list[dict[str, Any]] = []
        start, size = from_block, self.log_chunk
        total = to_block - from_block + 1
        shown = 0
        while start <= to_block:
            end = min(to_block, start + size - 1)
            self.requests += 1
            try:
                got = await self.w3.eth.get_logs(
                    {"address": where, "topics": topics, "fromBlock": start, "toBlock": end}
                )
            except TRANSPORT as exc:
                if end > start:
                    size = max(1, (end - start + 1) // 2)
                    log.info("eth_getLogs %d-%d refused (%s); retrying with %d blocks", start, end, exc, size)
                    continue
                raise TransientError(f"eth_getLogs at block {start} failed: {exc}") from exc
            logs.extend(dict(entry) for entry in got)
            start = end + 1
            done = (start - from_block) * 10 // max(total, 1)
            if total > 10 * self.log_chunk and done > shown:  # a long backfill: progress in tenths
                shown = done
                log.info("backfill: %d%% (block %d of %d, %d logs)", done * 10, end, to_block, len(logs))
        return logs
