"""Compound v3 (Comet): the exact integer replica of the contract's math (pure).

The integer math replicates Comet's
(signed base principal, BASE_INDEX_SCALE indices, mulPrice/mulFactor truncation,
isLiquidatable/isBorrowCollateralized, absorb, quoteCollateral), so the keeper's classification and
the amounts it sends are the ones the contract computes.

Columns: a Comet market is laid out as column 0 = the base asset (the only one that can be
borrowed), columns 1..n = the collateral assets in `getAssetInfo` order (offset + 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from eth_utils import to_checksum_address

from keeper.risk.engine import MarketArrays
from keeper.risk.guards import FeedRound
from keeper.risk.intmath import MAX_UINT256, WAD, tdiv

NAME = "comet"
ABI = "Comet"
FACTOR_SCALE = 10**18
BASE_INDEX_SCALE = 10**15
PRICE_SCALE = 10**8
PAUSE_SUPPLY_OFFSET, PAUSE_WITHDRAW_OFFSET, PAUSE_ABSORB_OFFSET, PAUSE_BUY_OFFSET = 0, 2, 3, 4
RATE_PARAMS = (
    "supplyKink",
    "supplyPerSecondInterestRateSlopeLow",
    "supplyPerSecondInterestRateSlopeHigh",
    "supplyPerSecondInterestRateBase",
    "borrowKink",
    "borrowPerSecondInterestRateSlopeLow",
    "borrowPerSecondInterestRateSlopeHigh",
    "borrowPerSecondInterestRateBase",
)
"""Comet's public immutables of its two kinked rate curves, in this order."""


def mul_factor(n: int, factor: int) -> int:
    return n * factor // FACTOR_SCALE


def mul_price(n: int, price: int, from_scale: int) -> int:
    return n * price // from_scale


@dataclass(frozen=True)
class AssetInfo:
    """Comet's AssetInfo struct."""

    offset: int
    asset: str
    price_feed: str
    scale: int
    borrow_collateral_factor: int
    liquidate_collateral_factor: int
    liquidation_factor: int
    supply_cap: int

    @classmethod
    def decode(cls, t: Sequence[Any]) -> AssetInfo:
        return cls(
            int(t[0]),
            to_checksum_address(t[1]),
            to_checksum_address(t[2]),
            int(t[3]),
            int(t[4]),
            int(t[5]),
            int(t[6]),
            int(t[7]),
        )


@dataclass(frozen=True)
class CometMarket:
    """One block's state of a Comet market. Indices are the stored ones (what isLiquidatable uses)."""

    block: int
    timestamp: int
    base_token: str
    base_symbol: str
    base_price_feed: str
    base_scale: int
    assets: tuple[AssetInfo, ...]
    symbols: tuple[str, ...]
    """Collateral symbols, in asset order."""
    base_price: int
    prices: tuple[int, ...]
    """getPrice of each collateral's feed (PRICE_SCALE 1e8)."""
    base_supply_index: int
    base_borrow_index: int
    pause_flags: int
    reserves: int
    """getReserves(): base units, may be negative."""
    target_reserves: int
    store_front_price_factor: int
    base_borrow_min: int
    collateral_reserves: tuple[int, ...]
    """getCollateralReserves per asset: collateral the protocol holds for sale."""
    total_collateral: tuple[int, ...]
    """totalsCollateral(asset).totalSupplyAsset, for supply caps."""
    feeds: tuple[FeedRound | None, ...] = ()
    """latestRoundData by column (base first)."""
    total_supply_base: int = 0
    total_borrow_base: int = 0
    last_accrual_time: int = 0
    rates: tuple[int, ...] = ()
    """RATE_PARAMS values."""

    def utilization(self) -> int:
        supply = self.total_supply_base * self.base_supply_index // BASE_INDEX_SCALE
        borrow = self.total_borrow_base * self.base_borrow_index // BASE_INDEX_SCALE
        return 0 if supply == 0 else borrow * FACTOR_SCALE // supply

    def accrued(self, now: int | None = None) -> CometMarket:
        """The market with the indices accrueInternal would store at time `now` (the block's
        timestamp by default): what absorb, supply and withdraw compute with. isLiquidatable and
        the other views use the stored indices (`self`)."""
        elapsed = (self.timestamp if now is None else now) - self.last_accrual_time
        if elapsed <= 0 or not self.rates:
            return self
        u = self.utilization()
        s_kink, s_low, s_high, s_base, b_kink, b_low, b_high, b_base = self.rates

        def rate(u: int, kink: int, low: int, high: int, base: int) -> int:
            if u <= kink:
                return base + mul_factor(low, u)
            return base + mul_factor(low, kink) + mul_factor(high, u - kink)

        supply_rate, borrow_rate = rate(u, s_kink, s_low, s_high, s_base), rate(u, b_kink, b_low, b_high, b_base)
        return replace(
            self,
            base_supply_index=self.base_supply_index + mul_factor(self.base_supply_index, supply_rate * elapsed),
            base_borrow_index=self.base_borrow_index + mul_factor(self.base_borrow_index, borrow_rate * elapsed),
            last_accrual_time=self.timestamp if now is None else now,
        )

    # -- columns (base, then collateral assets)
    @property
    def tokens(self) -> tuple[str, ...]:
        return (self.base_token, *(a.asset for a in self.assets))

    @property
    def column_prices(self) -> tuple[int, ...]:
        return (self.base_price, *self.prices)

    @property
    def column_units(self) -> tuple[int, ...]:
        return (self.base_scale, *(a.scale for a in self.assets))

    def column_of(self, token: str) -> int:
        token = to_checksum_address(token)
        if token == self.base_token:
            return 0
        for a in self.assets:
            if a.asset == token:
                return a.offset + 1
        raise KeyError(f"{token} is not listed on this Comet market")

    def arrays(self) -> MarketArrays:
        """Columns of the numpy engine (`comet_health`): base first, then the collateral assets."""
        n = len(self.assets)
        return MarketArrays(
            price_base=np.array(self.column_prices, dtype=float),
            unit=np.array(self.column_units, dtype=float),
            income_ray=np.full(n + 1, 1e27),
            debt_index_ray=np.array([self.base_borrow_index * 1e12] + [1e27] * n),
            liquidation_threshold_bps=np.array([0.0] + [a.liquidate_collateral_factor / 1e14 for a in self.assets]),
        )

    def paused(self, offset: int) -> bool:
        return bool((self.pause_flags >> offset) & 1)


@dataclass(frozen=True)
class CometPosition:
    """userBasic + userCollateral of one account."""

    user: str
    block: int
    principal: int
    """Signed base principal: > 0 supplies base, < 0 borrows it."""
    assets_in: int
    """Bit i: the account holds collateral i. Bits 0-15 are userBasic.assetsIn; bits 16-23 are
    userBasic._reserved, where CometWithExtendedAssetList keeps the flags of collaterals 16-23."""
    collateral: tuple[int, ...]
    """userCollateral(account, asset).balance per asset."""
    liquidatable_onchain: bool | None = None
    """Comet's own isLiquidatable at `block` (read with the position; None when not read)."""

    def in_asset(self, i: int) -> bool:
        return bool((self.assets_in >> i) & 1)

    def rows(self) -> tuple[list[float], list[float]]:
        """Book rows by column: collateral counted for health, base borrow principal."""
        coll = [0.0] + [float(b) if self.in_asset(i) else 0.0 for i, b in enumerate(self.collateral)]
        debt = [float(-self.principal) if self.principal < 0 else 0.0] + [0.0] * len(self.collateral)
        return coll, debt


# ---------------------------------------------------------------------------- Comet's math


def present_value(principal: int, m: CometMarket) -> int:
    if principal >= 0:
        return principal * m.base_supply_index // BASE_INDEX_SCALE
    return -(-principal * m.base_borrow_index // BASE_INDEX_SCALE)


def principal_value(balance: int, m: CometMarket) -> int:
    if balance >= 0:
        return balance * BASE_INDEX_SCALE // m.base_supply_index
    return -((-balance * BASE_INDEX_SCALE + m.base_borrow_index - 1) // m.base_borrow_index)


def borrow_balance(pos: CometPosition, m: CometMarket) -> int:
    """borrowBalanceOf at the stored index (the contract's view accrues to now)."""
    return -present_value(pos.principal, m) if pos.principal < 0 else 0


def debt_value(pos: CometPosition, m: CometMarket) -> int:
    """-signedMulPrice(presentValue(principal), basePrice, baseScale) for a borrower, else 0."""
    if pos.principal >= 0:
        return 0
    return -tdiv(present_value(pos.principal, m) * m.base_price, m.base_scale)


def collateral_value(pos: CometPosition, m: CometMarket, *, liquidate: bool = True) -> int:
    """Sum over assets in use of mulFactor(mulPrice(balance, price, scale), collateral factor)."""
    total = 0
    for i, a in enumerate(m.assets):
        if pos.in_asset(i):
            factor = a.liquidate_collateral_factor if liquidate else a.borrow_collateral_factor
            total += mul_factor(mul_price(pos.collateral[i], m.prices[i], a.scale), factor)
    return total


def is_liquidatable(pos: CometPosition, m: CometMarket) -> bool:
    return pos.principal < 0 and collateral_value(pos, m) - debt_value(pos, m) < 0


def is_borrow_collateralized(pos: CometPosition, m: CometMarket) -> bool:
    return pos.principal >= 0 or collateral_value(pos, m, liquidate=False) - debt_value(pos, m) >= 0


def health_factor_wad(pos: CometPosition, m: CometMarket) -> int:
    """Liquidation collateral value / debt value, WAD; below 1e18 exactly when isLiquidatable."""
    d = debt_value(pos, m)
    if d == 0:
        return MAX_UINT256
    return collateral_value(pos, m) * WAD // d


def after_supply_base(pos: CometPosition, m: CometMarket, amount: int) -> CometPosition:
    """The position after supplyTo(account, baseToken, amount) (repays a borrow first)."""
    return replace(pos, principal=principal_value(present_value(pos.principal, m) + amount, m))


def after_supply_collateral(pos: CometPosition, m: CometMarket, i: int, amount: int) -> CometPosition:
    coll = list(pos.collateral)
    coll[i] += amount
    assets_in = pos.assets_in | (1 << i) if amount else pos.assets_in
    return replace(pos, collateral=tuple(coll), assets_in=assets_in)


@dataclass(frozen=True)
class AbsorbQuote:
    seized: tuple[int, ...]
    """Collateral per asset that moves to the protocol (then for sale)."""
    base_paid_out: int
    """Base the protocol pays from reserves (debt forgiven + any surplus credited to the account)."""


def absorb_quote(pos: CometPosition, m: CometMarket) -> AbsorbQuote:
    """What absorbInternal does to one account at this market state."""
    old_balance = present_value(pos.principal, m)
    delta_value = 0
    seized = []
    for i, a in enumerate(m.assets):
        amount = pos.collateral[i] if pos.in_asset(i) else 0
        seized.append(amount)
        delta_value += mul_factor(mul_price(amount, m.prices[i], a.scale), a.liquidation_factor)
    delta_balance = delta_value * m.base_scale // m.base_price
    new_balance = max(0, old_balance + delta_balance)
    return AbsorbQuote(tuple(seized), new_balance - old_balance)


def quote_collateral(m: CometMarket, i: int, base_amount: int) -> int:
    """quoteCollateral(asset i, baseAmount): collateral units at the store-front discount."""
    a = m.assets[i]
    discount = mul_factor(m.store_front_price_factor, FACTOR_SCALE - a.liquidation_factor)
    discounted = mul_factor(m.prices[i], FACTOR_SCALE - discount)
    return m.base_price * base_amount * a.scale // discounted // m.base_scale


def base_for_collateral(m: CometMarket, i: int, collateral: int) -> int:
    """Largest base amount whose quote does not exceed `collateral` (buyCollateral reverts with
    InsufficientReserves when the quote exceeds what the protocol holds)."""
    a = m.assets[i]
    discount = mul_factor(m.store_front_price_factor, FACTOR_SCALE - a.liquidation_factor)
    discounted = mul_factor(m.prices[i], FACTOR_SCALE - discount)
    guess = (collateral + 1) * discounted * m.base_scale // (m.base_price * a.scale)
    while guess > 0 and quote_collateral(m, i, guess) > collateral:
        guess -= 1
    while quote_collateral(m, i, guess + 1) <= collateral:
        guess += 1
    return guess
