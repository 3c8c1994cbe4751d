"""Vectorised health of every account in one pass (pure numpy, no I/O).

Shapes: P accounts x A assets. Balances are the protocol's *scaled* balances (token base units
divided by the reserve index), so an index change touches one column, not every row. Entries
that do not count (collateral not enabled, reserve not borrowed) are stored as 0 by the book.

float64 is for screening and ranking; amounts that go into a transaction are recomputed with
the protocol's integer math (keeper.protocols) and simulated.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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


@dataclass(frozen=True)
class PerpArrays:
    """Per-market columns of a Synthetix v3 perps market, in natural units (USD, tokens)."""

    price_base: F64
    skew_scale: F64
    initial_margin_ratio: F64
    minimum_initial_margin_ratio: F64
    maintenance_margin_scalar: F64
    flag_reward_ratio: F64
    minimum_position_margin: F64
    min_keeper_reward: float
    max_keeper_reward: float

    def maintenance_ratio(self, size_abs: F64) -> F64:
        with np.errstate(divide="ignore", invalid="ignore"):
            impact = np.where(self.skew_scale > 0, size_abs / self.skew_scale, 0.0)
        return (impact * self.initial_margin_ratio + self.minimum_initial_margin_ratio) * self.maintenance_margin_scalar


def _perps_parts(sizes: F64, const: F64, a: PerpArrays) -> tuple[F64, F64, F64, npt.NDArray[np.bool_]]:
    """(margin, maintenance margin without reward, summed flag reward, has a position)."""
    size_abs = np.abs(sizes)
    notional = size_abs * a.price_base
    margin = sizes @ a.price_base + const.sum(axis=1)
    open_ = sizes != 0
    mm = np.where(open_, notional * a.maintenance_ratio(size_abs) + a.minimum_position_margin, 0.0).sum(axis=1)
    flag = (notional * a.flag_reward_ratio).sum(axis=1)
    return margin, mm, flag, open_.any(axis=1)


def perps_health(sizes: F64, const: F64, a: PerpArrays, *, workers: int = 1) -> Health:
    """Margin ratio of every account, on the same footing as a lending health factor:
    available margin / (maintenance margin + liquidation reward), below 1 exactly where Synthetix's
    `canLiquidate` is true. `sizes` holds position sizes by market; `const` the part of the margin
    that does not move with prices (collateral + pnl - size x price)."""
    del workers
    margin, mm, flag, has = _perps_parts(sizes, const, a)
    required = mm + np.clip(flag, a.min_keeper_reward, a.max_keeper_reward)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(has & (required > 0), np.maximum(margin, 0.0) / required, np.inf)
    return Health(ratio, margin, np.where(has, required, 0.0), np.zeros(len(ratio)))


def perps_liquidation_prices(sizes: F64, const: F64, a: PerpArrays) -> F64:
    """(P, M) index price of each market, others fixed, at which the margin falls to the
    maintenance margin + reward. Margin and requirement are linear in one market's price within
    each regime of the reward (at the floor, proportional, at the cap): each regime's root is kept
    where it is consistent, the one nearest today's price wins. NaN where none exists."""
    margin, mm, flag, _ = _perps_parts(sizes, const, a)
    size_abs = np.abs(sizes)
    p0 = a.price_base
    c = size_abs * a.maintenance_ratio(size_abs)  # maintenance margin per unit of price, per market
    f = size_abs * a.flag_reward_ratio  # flag reward per unit of price
    fixed_margin = margin[:, None] - sizes * p0  # margin without this market's price term
    fixed_mm = mm[:, None] - c * p0
    fixed_flag = flag[:, None] - f * p0
    best = np.full(sizes.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        for regime in ("floor", "proportional", "cap"):
            if regime == "proportional":
                p = (fixed_mm + fixed_flag - fixed_margin) / (sizes - c - f)
            else:
                reward = a.min_keeper_reward if regime == "floor" else a.max_keeper_reward
                p = (fixed_mm + reward - fixed_margin) / (sizes - c)
            flag_at = fixed_flag + f * p
            if regime == "floor":
                ok = flag_at < a.min_keeper_reward
            elif regime == "cap":
                ok = flag_at > a.max_keeper_reward
            else:
                ok = (flag_at >= a.min_keeper_reward) & (flag_at <= a.max_keeper_reward)
            ok = ok & np.isfinite(p) & (p > 0) & (sizes != 0)
            nearer = ok & (np.isnan(best) | (np.abs(p - p0) < np.abs(best - p0)))
            best = np.where(nearer, p, best)
    return best


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


AAVE = Engine(health, liquidation_prices)
COMET = Engine(comet_health, liquidation_prices)
PERPS = Engine(perps_health, perps_liquidation_prices)
