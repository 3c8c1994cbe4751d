"""Integer helpers the protocols' exact replicas share: Solidity's signed division, the WAD unit,
and the conversion of an on-chain health figure (WAD, MAX_UINT256 for "no debt") to a float."""

from __future__ import annotations

WAD = 10**18
MAX_UINT256 = 2**256 - 1
INFINITE_ABOVE = 2**255
"""Health figures at or above this mean "no debt" (Aave and Comet return type(uint256).max)."""


def tdiv(a: int, b: int) -> int:
    """Solidity's signed division: truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def wad_to_health(wad: int) -> float:
    """A health factor / margin ratio in WAD as a float; +inf for "no debt"."""
    return float("inf") if wad >= INFINITE_ABOVE else wad / WAD
