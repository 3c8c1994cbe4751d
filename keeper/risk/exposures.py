"""A position's risk inputs for the predictive trigger, assembled one way for the live keeper and
the backtester (pure numpy): the health at the predicted next oracle answers and the volatility
of ln(health) from the per-column value exposures."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keeper.risk.engine import F64
from keeper.risk.predict import health_sigma, health_under, next_oracle_answer


@dataclass(frozen=True)
class Risk:
    """One position's risk at one moment."""

    health: float
    """Health factor at the oracle's current answers."""
    health_predicted: float
    """Health factor at the predicted next answers (equal to `health` without a look-ahead)."""
    sigma: float
    """Volatility of ln(health factor), per sqrt(second)."""
    horizon_variance_ratio: float = 1.0
    """GARCH: expected variance over the target horizon relative to the current rate (1 for EWMA)."""


def lookahead_factors(oracle: F64, market: F64, updated_s: F64, now_s: float, deviation: F64, heartbeat_s: F64) -> F64:
    """(A,) predicted next oracle answer / current answer per column (1 where nothing is predicted)."""
    nxt, _ = next_oracle_answer(oracle, market, updated_s, now_s, deviation, heartbeat_s)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(oracle > 0, nxt / oracle, 1.0)


def position_risk(
    health: float, coll_lt: F64, debt: F64, factors: F64, cov: F64, horizon_variance_ratio: float = 1.0
) -> Risk:
    """`coll_lt`, `debt`: (A,) collateral value x liquidation threshold and debt value per column;
    `factors`: (A,) price moves to the predicted answers; `cov`: (A, A) covariance rate of log
    returns per second."""
    c, d = np.asarray(coll_lt, dtype=float)[None, :], np.asarray(debt, dtype=float)[None, :]
    predicted = float(health_under(c, d, np.asarray(factors, dtype=float)[None, :])[0, 0])
    sigma = float(health_sigma(c, d, cov)[0])
    return Risk(health, predicted, sigma, horizon_variance_ratio)
