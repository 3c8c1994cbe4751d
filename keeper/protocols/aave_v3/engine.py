"""Aave v3's health factor for every account in one pass (pure numpy, no I/O)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from keeper.risk.engine import _FLOOR_EPS, BLOCK_ROWS, F64, RAY, Engine, Health, MarketArrays, liquidation_prices


def health(scaled_coll: F64, scaled_debt: F64, m: MarketArrays, *, workers: int = 1) -> Health:
    """Aave's health factor for all accounts.

    Follows GenericLogic.calculateUserAccountData: token amounts rounded half-up (rayMul), each
    asset's value floored to base units, the weighted liquidation threshold floored to whole
    basis points, HF = C x LT / D. `workers` > 1 splits the rows across threads (numpy releases
    the GIL), which helps from a few hundred thousand rows up.
    """
    n = scaled_coll.shape[0]
    out = Health(np.empty(n), np.empty(n), np.empty(n), np.empty(n))
    spans = [(s, min(n, s + BLOCK_ROWS)) for s in range(0, n, BLOCK_ROWS)]
    if workers <= 1 or len(spans) < 2:
        _health_spans(scaled_coll, scaled_debt, m, spans, out)
    else:
        parts = [spans[k::workers] for k in range(workers)]
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda p: _health_spans(scaled_coll, scaled_debt, m, p, out), parts))
    return out


def _health_spans(sc: F64, sd: F64, m: MarketArrays, spans: list[tuple[int, int]], out: Health) -> None:
    g = m.price_base / m.unit
    g_coll = np.where(m.liquidation_threshold_bps > 0, g, 0.0)
    f_coll, f_debt = m.income_ray / RAY, m.debt_index_ray / RAY
    c_buf = np.empty((BLOCK_ROWS, sc.shape[1]))
    d_buf = np.empty_like(c_buf)
    for s, e in spans:
        c, d = c_buf[: e - s], d_buf[: e - s]
        np.multiply(sc[s:e], f_coll, out=c)
        np.rint(c, out=c)
        c *= g_coll
        np.floor(c, out=c)
        np.multiply(sd[s:e], f_debt, out=d)
        np.rint(d, out=d)
        d *= g
        np.floor(d, out=d)
        total_c = c.sum(axis=1)
        total_d = d.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            avg_lt = np.where(total_c > 0, np.floor(c @ m.liquidation_threshold_bps / total_c + _FLOOR_EPS), 0.0)
            out.health_factor[s:e] = np.where(total_d > 0, total_c * avg_lt / 1e4 / total_d, np.inf)
        out.collateral_base[s:e] = total_c
        out.debt_base[s:e] = total_d
        out.avg_liquidation_threshold_bps[s:e] = avg_lt


ENGINE = Engine(health, liquidation_prices)
