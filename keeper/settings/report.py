"""Validation errors as the lines of the one configuration report: where (TOML table and key)
and what was expected."""

from __future__ import annotations

import re
from typing import Any


def where_text(loc: tuple[Any, ...]) -> str:
    """('protect', 'positions', '0xab..', 'colour') -> '[protect.positions.0xab..] colour'."""
    names = [str(x) for x in loc if not isinstance(x, int)]
    index = next((x for x in loc if isinstance(x, int)), None)
    if len(names) <= 1 and index is None:
        return names[0] if names else "(top level)"
    table, key = (names[:-1], names[-1]) if len(names) > 1 else (names, "")
    if index is not None:
        return f"[[{'.'.join(table)}]] #{index + 1} {key}".rstrip()
    return f"[{'.'.join(table)}] {key}".rstrip()


_EXPECTED = {
    "int_type": "expected int",
    "int_from_float": "expected int",
    "float_type": "expected float (a number)",
    "bool_type": "expected bool (true or false)",
    "string_type": "expected str",
    "dict_type": "expected a table",
    "tuple_type": "expected a list",
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
}


def message(err: Any) -> str:
    """A validation error as 'required', 'unknown key', 'expected int, got ...'."""
    kind, got = err["type"], err.get("input")
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "literal_error":
        expected = re.sub(r"'([^']*)'", r"\1", str(err.get("ctx", {}).get("expected", "")))
        return f"one of {expected.replace(' or ', ', ')} (got {got!r})"
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    if kind in _EXPECTED:
        return f"{_EXPECTED[kind]}, got {got!r}"
    return f"{err['msg']} (got {got!r})"
