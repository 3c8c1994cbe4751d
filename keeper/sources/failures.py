"""Failures at the Chain port, classified: what a failed request can raise (a TransientError
above the port), a revert and its named reason, node-specific JSON-RPC error replies (retried
on another endpoint), and what became of a sent transaction (`SendOutcome`)."""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from typing import Any

import aiohttp
from web3.exceptions import ContractLogicError, ProviderConnectionError, Web3Exception

from keeper.errors import KeeperError, TransientError
from keeper.sources.abi import error_name, reason_text

ProviderConnectionErrors = (ProviderConnectionError, aiohttp.ClientError, OSError, TimeoutError)
"""A send no node answered (the connection failed, before or after the node got it)."""


NODE_SPECIFIC = re.compile(
    r"header not found|missing trie node|unknown block|block not found|not yet synced|rate limit|"
    r"too many requests|request limit|capacity exceeded|request timed out|upstream|backend|internal error",
    re.IGNORECASE,
)
"""JSON-RPC error replies that speak of the node, not of the request: another endpoint, or the
same one a moment later, can answer (unlike a revert or a refused log range)."""


def node_specific(response: Any) -> str:
    """Why a JSON-RPC error reply is the node's trouble rather than an answer ('' when it is an
    answer: a result, a revert, a refused range)."""
    error = response.get("error")
    if not isinstance(error, dict):
        return ""
    message = str(error.get("message", ""))
    if error.get("data") or "revert" in message.lower():
        return ""
    if NODE_SPECIFIC.search(message) or error.get("code") in (-32603, 429):
        return f"node error {error.get('code')}: {message[:120]}"
    return ""


def is_revert(exc: BaseException) -> bool:
    """True for a contract revert (see `reverts`)."""
    return isinstance(exc, reverts())


def revert_text(exc: BaseException) -> str:
    """The revert reason: Aave's error code string, or the name of a custom error (Comet's)."""
    for raw in (getattr(exc, "data", None), *getattr(exc, "args", ())):
        if isinstance(raw, str):
            raw = raw.removeprefix("execution reverted: ")
        data = raw if isinstance(raw, bytes) else None
        try:
            if isinstance(raw, str) and raw.startswith("0x"):
                data = bytes.fromhex(raw[2:])
            elif isinstance(raw, str) and raw.startswith(("b'", 'b"')):  # eth-tester: repr of the bytes
                data = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            data = None
        if data is not None and (name := error_name(data)):
            return name
    msg = getattr(exc, "message", None) or str(exc)
    text = str(msg).replace("execution reverted: ", "").replace("execution reverted", "").strip()
    return reason_text(text) if text else "reverted"


TRANSPORT: tuple[type[Exception], ...] = (
    Web3Exception,
    aiohttp.ClientError,
    OSError,
    TimeoutError,
    ValueError,
    TypeError,
    KeyError,
)
"""What a failed or garbled request can raise below the Chain port (connection lost, timeout,
HTTP 429, a body that is not JSON, a reply missing its fields): a TransientError above it."""


def reverts() -> tuple[type[Exception], ...]:
    """What a contract revert can raise: web3's ContractLogicError, and eth-tester's
    TransactionFailed when the in-process test provider is loaded (it raises it as is; eth-tester
    is not imported here: it is a test extra, and slow to import)."""
    tester = sys.modules.get("eth_tester.exceptions")
    return (ContractLogicError, tester.TransactionFailed) if tester is not None else (ContractLogicError,)


def call_failures() -> tuple[type[Exception], ...]:
    """What an eth_call or eth_estimateGas can raise: a revert, or a failure of the request."""
    return (*reverts(), *TRANSPORT)


UNFORESEEN: tuple[type[Exception], ...] = (
    KeeperError,
    *TRANSPORT,
    LookupError,
    AttributeError,
    ArithmeticError,
    AssertionError,
    RuntimeError,
)
"""What a task beside the loop (a market's execution, recovery, reconciliation) may meet that no
layer below classified: the keeper's own errors, a failed request, and the shapes bugs take. Such
a task logs and counts it and stops only itself."""

ALREADY_KNOWN = re.compile(r"already known|known transaction|already imported|AlreadyKnown", re.IGNORECASE)
UNDERPRICED = re.compile(
    r"underpriced|fee too low|less than (the )?block base fee|feecap|tip too low|max fee per gas less", re.IGNORECASE
)
NONCE_TOO_LOW = re.compile(r"nonce too low|nonce has already been used|old nonce|NonceTooLow", re.IGNORECASE)


@dataclass(frozen=True)
class SendOutcome:
    """What became of one eth_sendRawTransaction: `accepted`, `already_known` (a node has it: a
    retried send), `underpriced`, `nonce_too_low` (the nonce is used: by this very transaction
    if it was mined, else by another), `lost` (no answer: the connection failed before or after
    the node got it) or `rejected` (any other refusal: insufficient funds, intrinsic gas...)."""

    kind: str
    detail: str = ""

    @property
    def out(self) -> bool:
        """The transaction is known to a node."""
        return self.kind in ("accepted", "already_known")

    @property
    def refused(self) -> bool:
        """A node answered and refused it."""
        return self.kind in ("underpriced", "nonce_too_low", "rejected")


def send_outcome(error: BaseException | str | None) -> SendOutcome:
    """Classify a send's failure (an exception, or a JSON-RPC error message); None: accepted."""
    if error is None:
        return SendOutcome("accepted")
    if isinstance(error, ProviderConnectionErrors):
        return SendOutcome("lost", f"{type(error).__name__}: {error}"[:200])
    text = str(error)
    if NODE_SPECIFIC.search(text) and not UNDERPRICED.search(text):  # the node could not take it now
        return SendOutcome("lost", text[:200])
    kinds = (("already_known", ALREADY_KNOWN), ("underpriced", UNDERPRICED), ("nonce_too_low", NONCE_TOO_LOW))
    for kind, pattern in kinds:
        if pattern.search(text):
            return SendOutcome(kind, text[:200])
    return SendOutcome("rejected", text[:200])


def classified(exc: Exception, what: str) -> Exception:
    """A call's failure as what the caller acts on: a revert (ContractLogicError with the named
    reason), a TransientError (the node or the connection), or the exception itself (a bug)."""
    if is_revert(exc):
        return ContractLogicError(revert_text(exc))
    if isinstance(exc, TRANSPORT):
        return TransientError(f"{what} failed: {exc}")
    return exc
