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
    names = [p.stem for p in _REPO_ABIS.glob("*.json")] or ["Comet"]
    for abi_name in names:
        for item in load_abi(abi_name):
            if item.get("type") == "error":
                sig = f"{item['name']}({','.join(_type(p) for p in item['inputs'])})"
                out[keccak(text=sig)[:4]] = item["name"]
    return out


def error_name(data: bytes) -> str | None:
    """The name of a custom error from its revert data, if it is one keeper knows."""
    return _errors().get(bytes(data[:4])) if len(data) >= 4 else None


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
