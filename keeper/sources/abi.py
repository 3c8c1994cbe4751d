"""Contract ABIs from `abis/` and fast call encoding/decoding with eth-abi."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from eth_abi import decode, encode
from eth_abi.exceptions import DecodingError
from eth_utils import event_abi_to_log_topic, function_abi_to_4byte_selector, keccak

from keeper.errors import TransientError

DECODE_ERRORS: tuple[type[Exception], ...] = (DecodingError, ValueError, TypeError, IndexError, KeyError, OverflowError)
"""What decoding a reply that is not what the ABI says can raise (eth-abi, and unpacking its result)."""

_REPO_ABIS = Path(__file__).resolve().parents[2] / "abis"


@cache
def load_abi(name: str) -> list[dict[str, Any]]:
    """ABI JSON by file stem (e.g. 'AaveV3Pool'), from the installed package or the source tree."""
    try:
        text = resources.files("keeper.abis").joinpath(f"{name}.json").read_text()
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        text = (_REPO_ABIS / f"{name}.json").read_text()
    return list(json.loads(text))


def _type(param: dict[str, Any]) -> str:
    t = str(param["type"])
    if t.startswith("tuple"):
        return "(" + ",".join(_type(c) for c in param["components"]) + ")" + t[len("tuple") :]
    return t


@dataclass(frozen=True)
class Fn:
    """One contract function: selector, argument and return types."""

    name: str
    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    def encode(self, *args: Any) -> bytes:
        return self.selector + encode(list(self.inputs), list(args))

    def decode(self, data: bytes) -> tuple[Any, ...]:
        return tuple(decode(list(self.outputs), data))


@cache
def fn(abi_name: str, name: str) -> Fn:
    for item in load_abi(abi_name):
        if item.get("type") == "function" and item["name"] == name:
            return Fn(
                name=name,
                selector=bytes(function_abi_to_4byte_selector(item)),  # type: ignore[arg-type]
                inputs=tuple(_type(p) for p in item["inputs"]),
                outputs=tuple(_type(p) for p in item["outputs"]),
            )
    raise KeyError(f"{abi_name} has no function {name}")


@dataclass(frozen=True)
class Event:
    name: str
    topic: bytes
    indexed: tuple[tuple[str, str], ...]
    data: tuple[tuple[str, str], ...]

    def decode(self, topics: list[bytes], data: bytes) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for (pname, ptype), topic in zip(self.indexed, topics[1:], strict=True):
            out[pname] = decode([ptype], bytes(topic))[0]
        values = decode([t for _, t in self.data], bytes(data))
        out.update({pname: v for (pname, _), v in zip(self.data, values, strict=True)})
        return out


@cache
def event(abi_name: str, name: str) -> Event:
    for item in load_abi(abi_name):
        if item.get("type") == "event" and item["name"] == name:
            return Event(
                name=name,
                topic=bytes(event_abi_to_log_topic(item)),  # type: ignore[arg-type]
                indexed=tuple((p["name"], _type(p)) for p in item["inputs"] if p["indexed"]),
                data=tuple((p["name"], _type(p)) for p in item["inputs"] if not p["indexed"]),
            )
    raise KeyError(f"{abi_name} has no event {name}")


@cache
def _errors() -> dict[bytes, str]:
    """Custom error selector -> signature, from every ABI in abis/ (Comet reverts with these)."""
    out: dict[bytes, str] = {}
    names = [p.stem for p in _REPO_ABIS.glob("*.json")] or ["Comet", "AaveV3Pool"]
    for abi_name in names:
        for item in load_abi(abi_name):
            if isinstance(item, dict) and item.get("type") == "error":
                sig = f"{item['name']}({','.join(_type(p) for p in item['inputs'])})"
                out[keccak(text=sig)[:4]] = item["name"]
    return out


ERROR_STRING = keccak(text="Error(string)")[:4]
PANIC = keccak(text="Panic(uint256)")[:4]
_PANICS = {0x01: "assert failed", 0x11: "arithmetic overflow or underflow", 0x12: "division by zero",
           0x21: "invalid enum value", 0x31: "pop of an empty array", 0x32: "array index out of bounds",
           0x41: "out of memory", 0x51: "call to an uninitialised function"}  # fmt: skip


@cache
def _reason_codes() -> dict[str, str]:
    """Numeric revert reasons -> names (Aave v3.0-v3.3 revert with Error("103") and the like)."""
    try:
        text = resources.files("keeper.abis").joinpath("AaveV3ErrorCodes.json").read_text()
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        text = (_REPO_ABIS / "AaveV3ErrorCodes.json").read_text()
    return dict(json.loads(text))


def reason_text(reason: str) -> str:
    """A revert string with its name when it is a known numeric code: '103 (MUST_NOT_LEAVE_DUST)'."""
    name = _reason_codes().get(reason.strip())
    return f"{reason.strip()} ({name})" if name else reason


def error_name(data: bytes) -> str | None:
    """The revert reason from revert data: a custom error's name, or an Error(string) message
    (with the name of a numeric code); None for data keeper cannot read."""
    data = bytes(data)
    if data[:4] == ERROR_STRING:
        try:
            (message,) = decode(["string"], data[4:])
        except DECODE_ERRORS:
            return None
        return reason_text(str(message))
    if data[:4] == PANIC and len(data) >= 36:
        code = int.from_bytes(data[4:36], "big")
        return f"Panic 0x{code:02x} ({_PANICS.get(code, 'unknown panic code')})"
    return _errors().get(data[:4]) if len(data) >= 4 else None


def need(data: bytes | None, what: str) -> bytes:
    """A multicall result that must be there: None (the call reverted) is a TransientError."""
    if data is None:
        raise TransientError(f"{what} reverted inside the multicall")
    return data


def word(data: bytes | None, what: str) -> int:
    """One uint256 return value; a missing or undecodable reply is a TransientError."""
    data = need(data, what)
    try:
        return int(decode(["uint256"], data)[0])
    except DECODE_ERRORS as exc:
        raise TransientError(f"{what}: undecodable reply {data!r:.80}") from exc


def token_symbol(raw: bytes | None, token: str) -> str:
    """ERC20 `symbol()` from its multicall reply; the address prefix when the call reverted or
    the token returns a bytes32 symbol (MKR-style) instead of a string."""
    if not raw:
        return token[:10]
    try:
        return str(fn("ERC20", "symbol").decode(raw)[0])
    except DECODE_ERRORS:  # a bytes32 symbol does not decode as a string
        return token[:10]
