"""Synthetix v3 perps (PerpsMarketProxy): everything keeper knows about the protocol lives here.

Reads use the deployed proxy's interface (`abis/PerpsMarketProxy.json`), batched through
Multicall3 at one block: per market the index price, skew and margin/funding parameters; per
account the collateral, each open position (`getOpenPosition`: pnl with funding, size) and the
protocol's own verdict (`getAvailableMargin`, `getRequiredMargins`, `canLiquidate`). The integer
math below replicates Synthetix's margin requirements and fill price (decimal math with 18
digits, truncating), so a protective action's size is the one the market will accept.

Units: USD and sizes with 18 decimals; prices are USD per unit of the market's asset (1e18).
Columns: one per market, in `getMarkets()` order. An account is keyed in the book as "#<id>".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from keeper.protocols.synthetix_perps.engine import PerpArrays
from keeper.risk.intmath import MAX_UINT256, tdiv

NAME = "perps"
ABI = "PerpsMarketProxy"
UNIT = 10**18


def account_key(account_id: int) -> str:
    return f"#{account_id}"


@dataclass(frozen=True)
class PerpMarket:
    market_id: int
    symbol: str
    skew_scale: int
    max_funding_velocity: int
    initial_margin_ratio: int
    minimum_initial_margin_ratio: int
    maintenance_margin_scalar: int
    flag_reward_ratio: int
    minimum_position_margin: int


@dataclass(frozen=True)
class PerpsState:
    """One block of the perps market: every market's index price and skew, the reward guards."""

    block: int
    timestamp: int
    markets: tuple[PerpMarket, ...]
    prices: tuple[int | None, ...]
    """indexPrice per market (None: the market refused to price, e.g. a stale oracle)."""
    skews: tuple[int, ...]
    min_keeper_reward: int
    max_keeper_reward: int

    def column_of_market(self, market_id: int) -> int:
        for i, m in enumerate(self.markets):
            if m.market_id == market_id:
                return i
        raise KeyError(f"perps market {market_id} is not listed")

    def arrays(self) -> PerpArrays:
        def col(values: Iterable[float]) -> np.ndarray:
            return np.array(list(values), dtype=float)

        ms = self.markets
        return PerpArrays(
            price_base=col((p or 0) / UNIT for p in self.prices),
            skew_scale=col(m.skew_scale / UNIT for m in ms),
            initial_margin_ratio=col(m.initial_margin_ratio / UNIT for m in ms),
            minimum_initial_margin_ratio=col(m.minimum_initial_margin_ratio / UNIT for m in ms),
            maintenance_margin_scalar=col(m.maintenance_margin_scalar / UNIT for m in ms),
            flag_reward_ratio=col(m.flag_reward_ratio / UNIT for m in ms),
            minimum_position_margin=col(m.minimum_position_margin / UNIT for m in ms),
            min_keeper_reward=self.min_keeper_reward / UNIT,
            max_keeper_reward=self.max_keeper_reward / UNIT,
        )


@dataclass(frozen=True)
class PerpsAccount:
    """One account at one block, with the market's own margin figures."""

    user: str
    account_id: int
    block: int
    collateral: int
    sizes: tuple[int, ...]
    """Position size per market column (signed, 18 decimals)."""
    total_pnl: tuple[int, ...]
    """getOpenPosition totalPnl (pnl at the index price + accrued funding) per market column."""
    accrued_funding: tuple[int, ...]
    available_margin: int
    required_initial_margin: int
    """Including the liquidation reward, as getRequiredMargins returns it."""
    required_maintenance_margin: int
    """Including the liquidation reward: the account is liquidatable below it."""
    max_liquidation_reward: int
    can_liquidate: bool
    prices: tuple[int, ...]
    """The index prices the figures above were computed at."""

    def rows(self) -> tuple[list[float], list[float]]:
        """Book rows: sizes (tokens), and the price-independent part of the margin
        (collateral in column 0, plus each position's pnl - size x price)."""
        sizes = [s / UNIT for s in self.sizes]
        const = [(pnl - s * p / UNIT) / UNIT for pnl, s, p in zip(self.total_pnl, self.sizes, self.prices, strict=True)]
        if const:
            const[0] += self.collateral / UNIT
        return sizes, const

    @property
    def margin_ratio_wad(self) -> int:
        """available margin / (maintenance margin + reward), WAD; below 1e18 exactly when canLiquidate."""
        if not any(self.sizes) or self.required_maintenance_margin == 0:
            return MAX_UINT256
        return max(0, self.available_margin) * UNIT // self.required_maintenance_margin


# ---------------------------------------------------------------------------- Synthetix's math


def fill_price(skew: int, skew_scale: int, size: int, price: int) -> int:
    """The price an order of `size` fills at: the index price with the average skew premium."""
    if skew_scale == 0:
        return price
    pd_before = tdiv(skew * UNIT, skew_scale)
    pd_after = tdiv((skew + size) * UNIT, skew_scale)
    before = price + tdiv(price * pd_before, UNIT)
    after = price + tdiv(price * pd_after, UNIT)
    return (before + after) * UNIT // (2 * UNIT)


def position_margins(m: PerpMarket, size: int, price: int) -> tuple[int, int, int]:
    """(initial margin, maintenance margin, flag reward) of one position."""
    if size == 0:
        return 0, 0, 0
    size_abs = abs(size)
    impact = size_abs * UNIT // m.skew_scale if m.skew_scale else 0
    initial_ratio = impact * m.initial_margin_ratio // UNIT + m.minimum_initial_margin_ratio
    maintenance_ratio = initial_ratio * m.maintenance_margin_scalar // UNIT
    notional = size_abs * price // UNIT
    return (
        notional * initial_ratio // UNIT + m.minimum_position_margin,
        notional * maintenance_ratio // UNIT + m.minimum_position_margin,
        notional * m.flag_reward_ratio // UNIT,
    )


def required_margins(state: PerpsState, sizes: Sequence[int]) -> tuple[int, int, int]:
    """getRequiredMargins for these sizes at the state's prices: (initial + reward,
    maintenance + reward, reward)."""
    im = mm = flag = 0
    for m, size, price in zip(state.markets, sizes, state.prices, strict=True):
        if size:
            a, b, c = position_margins(m, size, price or 0)
            im, mm, flag = im + a, mm + b, flag + c
    if not any(sizes):
        return 0, 0, 0
    reward = min(max(flag, state.min_keeper_reward), state.max_keeper_reward)
    return im + reward, mm + reward, reward


def margin_ratio_after_reduce(acct: PerpsAccount, state: PerpsState, col: int, size_delta: int) -> int:
    """Margin ratio (WAD) after an order of `size_delta` in market column `col` settles at its
    fill price: the available margin moves by -size_delta x (fill - index)."""
    price = state.prices[col] or 0
    fill = fill_price(state.skews[col], state.markets[col].skew_scale, size_delta, price)
    available = acct.available_margin - tdiv(size_delta * (fill - price), UNIT)
    sizes = list(acct.sizes)
    sizes[col] += size_delta
    _, mm, _ = required_margins(state, sizes)
    if mm == 0:
        return MAX_UINT256
    return max(0, available) * UNIT // mm
