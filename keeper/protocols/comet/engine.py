"""Compound v3's liquidation health for every account in one pass (pure numpy, no I/O)."""

from __future__ import annotations

import numpy as np

from keeper.risk.engine import _FLOOR_EPS, F64, RAY, Engine, Health, MarketArrays, liquidation_prices


def comet_health(coll: F64, borrow: F64, m: MarketArrays, *, workers: int = 1) -> Health:
    """Compound v3's liquidation health for all accounts, on the same footing as Aave's health
    factor: HF = sum(mulFactor(mulPrice(balance, price, scale), liquidateCollateralFactor)) /
    (borrow present value x base price / base scale); below 1 exactly where isLiquidatable.

    `coll` holds collateral balances (column 0, the base asset, is 0), `borrow` the base borrow
    principal in column 0; `debt_index_ray` carries baseBorrowIndex x 1e12 and
    `liquidation_threshold_bps` the liquidate collateral factor / 1e14. Comet truncates each
    product; the floors below follow it.
    """
    del workers  # one column of debt: the pass is cheap
    g = m.price_base / m.unit
    debt = np.floor(np.floor(borrow * (m.debt_index_ray / RAY)) * g).sum(axis=1)
    value = np.floor(coll * g)
    total_value = value.sum(axis=1)
    weighted = np.floor(value * (m.liquidation_threshold_bps / 1e4) + _FLOOR_EPS).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        hf = np.where(debt > 0, weighted / debt, np.inf)
        avg = np.where(total_value > 0, weighted / total_value * 1e4, 0.0)
    return Health(hf, total_value, debt, avg)


ENGINE = Engine(comet_health, liquidation_prices)
