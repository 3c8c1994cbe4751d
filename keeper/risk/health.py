"""Vectorised health of every account in one expression (pure numpy, no I/O).

Shapes: P accounts x A assets. Balances are the protocol's *scaled* balances (token base units
divided by the reserve index), so an index change touches one column, not every row.

float64 is for screening and ranking; amounts that go into a transaction are recomputed with
the protocol's integer math (keeper.protocols) and simulated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]
RAY = 1e27
_FLOOR_EPS = 1e-9
"""Guards floor() of a ratio that is an exact integer in Aave's integer math against float error."""


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


def health(scaled_coll: F64, scaled_debt: F64, coll_on: B, borrow_on: B, m: MarketArrays) -> Health:
    """Aave's health factor for all accounts.

    Follows GenericLogic.calculateUserAccountData: per-asset value floored to base units, the
    weighted liquidation threshold floored to whole basis points, HF = C x LT / D.
    """
    usable = coll_on & (m.liquidation_threshold_bps > 0)
    # rayMul rounds token amounts half-up before they are priced; both steps floor like Aave.
    coll_tok = np.floor(scaled_coll * (m.income_ray / RAY) + 0.5)
    debt_tok = np.floor(scaled_debt * (m.debt_index_ray / RAY) + 0.5)
    coll_base = np.floor(coll_tok * m.price_base / m.unit) * usable
    debt_base = np.floor(debt_tok * m.price_base / m.unit) * borrow_on
    total_c = coll_base.sum(axis=1)
    total_d = debt_base.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        avg_lt = np.where(total_c > 0, np.floor(coll_base @ m.liquidation_threshold_bps / total_c + _FLOOR_EPS), 0.0)
        hf = np.where(total_d > 0, total_c * avg_lt / 1e4 / total_d, np.inf)
    return Health(hf, total_c, total_d, avg_lt)


def liquidation_prices(scaled_coll: F64, scaled_debt: F64, coll_on: B, borrow_on: B, m: MarketArrays) -> F64:
    """(P, A) price of each asset, others fixed, at which HF reaches 1 (base units per token).

    p_a* = (D_others - C_LT_others) / (q_a x LT_a - d_a): covers collateral (price falls to p*)
    and debt exposure (price rises to p*). NaN where the asset's price cannot liquidate the account.
    """
    usable = coll_on & (m.liquidation_threshold_bps > 0)
    coll_tok = scaled_coll * (m.income_ray / RAY) / m.unit * usable
    debt_tok = scaled_debt * (m.debt_index_ray / RAY) / m.unit * borrow_on
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
