"""Synthetix v3 perps: margin ratio and liquidation prices of every account (pure numpy, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from keeper.risk.engine import F64, Engine, Health


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


ENGINE = Engine(perps_health, perps_liquidation_prices)
