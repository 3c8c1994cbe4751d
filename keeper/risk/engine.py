"""The protocol-neutral part of the numpy engine (pure, no I/O): the lending market's columns,
the health result, liquidation prices and distance to liquidation. Each protocol's health kernel
lives in its package (`keeper/protocols/<name>/engine.py`) and is paired with these in an `Engine`.

Shapes: P accounts x A assets. Balances are the protocol's *scaled* balances (token base units
divided by the reserve index), so an index change touches one column, not every row. Entries
that do not count (collateral not enabled, reserve not borrowed) are stored as 0 by the book.

float64 is for screening and ranking; amounts that go into a transaction are recomputed with
the protocol's integer math (keeper.protocols) and simulated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
RAY = 1e27
_FLOOR_EPS = 1e-9
"""Guards floor() of a ratio that is an exact integer in Aave's integer math against float error."""
BLOCK_ROWS = 8192
"""Rows per block: the temporaries of one block stay in the CPU cache (about 2x faster than
whole-array passes at 1M x 8)."""


@dataclass(frozen=True)
class MarketArrays:
    """Per-asset columns, shape (A,)."""

    price_base: F64
    unit: F64
    income_ray: F64
    debt_index_ray: F64
    liquidation_threshold_bps: F64


@dataclass(frozen=True)
class Health:
    health_factor: F64
    """(P,) Aave health factor; +inf without debt."""
    collateral_base: F64
    """(P,) total collateral, base currency units (1e8 = 1 USD on Aave)."""
    debt_base: F64
    """(P,) total debt, base currency units."""
    avg_liquidation_threshold_bps: F64
    """(P,) collateral-weighted liquidation threshold, floored as Aave does."""


@dataclass(frozen=True)
class Engine:
    """One protocol's risk rule over the book's arrays."""

    health: Callable[..., Health]
    liquidation_prices: Callable[[F64, F64, Any], F64]


def liquidation_prices(scaled_coll: F64, scaled_debt: F64, m: MarketArrays) -> F64:
    """(P, A) price of each asset, others fixed, at which HF reaches 1 (base units per token).

    p_a* = (D_others - C_LT_others) / (q_a x LT_a - d_a): covers collateral (price falls to p*)
    and debt exposure (price rises to p*). NaN where the asset's price cannot liquidate the account.
    """
    coll_tok = scaled_coll * (m.income_ray / RAY) / m.unit
    debt_tok = scaled_debt * (m.debt_index_ray / RAY) / m.unit
    lt = m.liquidation_threshold_bps / 1e4
    c_lt = coll_tok * m.price_base * lt
    d = debt_tok * m.price_base
    others = (d.sum(axis=1, keepdims=True) - d) - (c_lt.sum(axis=1, keepdims=True) - c_lt)
    denom = coll_tok * lt - debt_tok
    with np.errstate(divide="ignore", invalid="ignore"):
        p = others / denom
    return np.where((denom != 0) & (p > 0) & np.isfinite(p), p, np.nan)


def distance_to_liquidation(liq_price: F64, price_base: F64, health_factor: F64) -> F64:
    """(P,) smallest relative price move of a single asset that liquidates the account
    (0.25 = a 25% move); 0 when already liquidatable; +inf when no single asset can."""
    with np.errstate(invalid="ignore"):
        move = np.abs(liq_price / price_base - 1.0)
    move = np.where(np.isnan(move), np.inf, move)
    nearest = move.min(axis=1) if move.shape[1] else np.full(move.shape[0], np.inf)
    return np.where(health_factor < 1.0, 0.0, nearest)
