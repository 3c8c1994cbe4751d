"""Aave v3 versions: what changes between v3.0 and v3.7, keyed by the Pool's POOL_REVISION.

Every rule below was read off the upstream sources at the version's tag (aave/aave-v3-core for
v3.0.x, aave-dao/aave-v3-origin from v3.1) and is checked against the real bytecode of v3.0.2,
v3.3 and v3.7 in tests/anvil/test_aave_versions.py.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Version:
    name: str
    revisions: tuple[int, ...]
    stable_debt: bool
    """Stable-rate debt exists (removed in v3.2)."""
    emode_bitmaps: bool
    """v3.2+: liquid e-modes (collateral/borrowable bitmaps by reserve id); before, one category
    per reserve (reserve configuration bits 168-175) with an optional category price source."""
    position_close_factor: bool
    """v3.3+: all of the reserve's debt may be liquidated, except 50% of the *total* debt when
    this reserve's collateral and debt are both >= $2,000 and HF > 0.95; leftovers under $1,000
    revert (dust rule); no collateral left writes the remaining debt off as a deficit. Before:
    50% of the debt reserve when HF > 0.95, 100% below, no dust rule."""
    custom_errors: bool
    """v3.4+: reverts are custom errors; before, Error(string) with a numeric code."""
    no_self_liquidation: bool
    """v3.4+: a borrower cannot liquidate itself (SelfLiquidation())."""
    token_rounding: bool
    """v3.5+: aToken balances round down, debt rounds up (also in base currency), and HF is
    sum(collateral x LT).wadDiv(debt) / 1e4 instead of collateral.percentMul(avg LT).wadDiv(debt)."""
    collateral_without_lt: bool
    """v3.6+: a collateral whose liquidation threshold is 0 still counts in total collateral."""
    floor_bonus: bool
    """v3.7: the seized collateral rounds down (percentMulFloor), its bonus part down, the
    protocol fee up."""
    grace_period: bool
    """v3.1+: liquidations of a reserve can be held off until a timestamp (getLiquidationGracePeriod)."""
    isolation: bool
    """Isolation mode (debt ceilings) and siloed borrowing exist (removed in v3.7)."""


def _v(name: str, revisions: tuple[int, ...], n: int) -> Version:
    """Version `name` with the cumulative rules of minor version `n` (0 = v3.0 ... 7 = v3.7)."""
    return Version(
        name=name,
        revisions=revisions,
        stable_debt=n <= 1,
        emode_bitmaps=n >= 2,
        position_close_factor=n >= 3,
        custom_errors=n >= 4,
        no_self_liquidation=n >= 4,
        token_rounding=n >= 5,
        collateral_without_lt=n >= 6,
        floor_bonus=n >= 7,
        grace_period=n >= 1,
        isolation=n <= 6,
    )


VERSIONS = (
    _v("3.0", (1, 2, 3), 0),
    _v("3.1", (4,), 1),
    _v("3.2", (5, 6), 2),
    _v("3.3", (7,), 3),
    _v("3.4", (8,), 4),
    _v("3.5", (9,), 5),
    _v("3.6", (10,), 6),
    _v("3.7", (11,), 7),
)
BY_REVISION = {r: v for v in VERSIONS for r in v.revisions}


def version_of(revision: int) -> Version | None:
    """The version a Pool's POOL_REVISION names; None when keeper does not know it."""
    return BY_REVISION.get(revision)
