"""Aave v3 (v3.3 rules): everything keeper knows about the protocol lives here.

Reads use the deployed Pool/AaveOracle/aToken/variableDebtToken interfaces (`abis/`), batched
through Multicall3 at one block. The integer math below replicates Aave's own rounding
(WadRayMath, PercentageMath, GenericLogic.calculateUserAccountData, LiquidationLogic), so amounts
that go into calldata are the amounts the Pool will compute. E-mode is not modelled: accounts in
an e-mode category are reported and skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from keeper.risk.engine import MarketArrays
from keeper.risk.guards import FeedRound
from keeper.risk.intmath import MAX_UINT256, WAD

NAME = "aave-v3"
RAY = 10**27
HALF_RAY = RAY // 2
PERCENTAGE_FACTOR = 10_000
HEALTH_FACTOR_LIQUIDATION_THRESHOLD = WAD
CLOSE_FACTOR_HF_THRESHOLD = 95 * 10**16
DEFAULT_LIQUIDATION_CLOSE_FACTOR = 5_000
MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD = 2_000 * 10**8
MIN_LEFTOVER_BASE = 1_000 * 10**8
ZERO_ADDRESS = "0x" + "0" * 40
VARIABLE_RATE_MODE = 2


def ray_mul(a: int, b: int) -> int:
    return (a * b + HALF_RAY) // RAY


def ray_div(a: int, b: int) -> int:
    return (a * RAY + b // 2) // b


def wad_div(a: int, b: int) -> int:
    return (a * WAD + b // 2) // b


def percent_mul(value: int, percentage: int) -> int:
    return (value * percentage + PERCENTAGE_FACTOR // 2) // PERCENTAGE_FACTOR


def percent_div(value: int, percentage: int) -> int:
    return (value * PERCENTAGE_FACTOR + percentage // 2) // percentage


@dataclass(frozen=True)
class ReserveConfig:
    """Decoded ReserveConfigurationMap (bit layout of Aave v3's ReserveConfiguration)."""

    ltv_bps: int
    liquidation_threshold_bps: int
    liquidation_bonus_bps: int
    decimals: int
    active: bool
    frozen: bool
    borrowing_enabled: bool
    paused: bool
    reserve_factor_bps: int
    liquidation_protocol_fee_bps: int

    @classmethod
    def from_bitmap(cls, data: int) -> ReserveConfig:
        return cls(
            ltv_bps=data & 0xFFFF,
            liquidation_threshold_bps=(data >> 16) & 0xFFFF,
            liquidation_bonus_bps=(data >> 32) & 0xFFFF,
            decimals=(data >> 48) & 0xFF,
            active=bool((data >> 56) & 1),
            frozen=bool((data >> 57) & 1),
            borrowing_enabled=bool((data >> 58) & 1),
            paused=bool((data >> 60) & 1),
            reserve_factor_bps=(data >> 64) & 0xFFFF,
            liquidation_protocol_fee_bps=(data >> 152) & 0xFFFF,
        )

    def to_bitmap(self) -> int:
        return (
            self.ltv_bps
            | self.liquidation_threshold_bps << 16
            | self.liquidation_bonus_bps << 32
            | self.decimals << 48
            | int(self.active) << 56
            | int(self.frozen) << 57
            | int(self.borrowing_enabled) << 58
            | int(self.paused) << 60
            | self.reserve_factor_bps << 64
            | self.liquidation_protocol_fee_bps << 152
        )

    @property
    def unit(self) -> int:
        return 10**self.decimals


@dataclass(frozen=True)
class Reserve:
    asset: str
    id: int
    a_token: str
    variable_debt_token: str
    symbol: str
    price_source: str = ""
    """The AaveOracle's source for this asset (a Chainlink-style aggregator), if it reports one."""


@dataclass(frozen=True)
class Market:
    """One block's market state. Indices are normalized to that block's timestamp."""

    block: int
    timestamp: int
    reserves: tuple[Reserve, ...]
    configs: tuple[ReserveConfig, ...]
    prices_base: tuple[int, ...]
    """Oracle prices, base-currency units (1e8 = 1 USD on Aave's USD markets)."""
    income_ray: tuple[int, ...]
    """getReserveNormalizedIncome per reserve."""
    debt_index_ray: tuple[int, ...]
    """getReserveNormalizedVariableDebt per reserve."""
    feeds: tuple[FeedRound | None, ...] = ()
    """latestRoundData of each reserve's price source (None where the source has none)."""

    def arrays(self) -> MarketArrays:
        """The per-asset columns of the numpy engine."""
        return MarketArrays(
            price_base=np.array(self.prices_base, dtype=float),
            unit=np.array([c.unit for c in self.configs], dtype=float),
            income_ray=np.array(self.income_ray, dtype=float),
            debt_index_ray=np.array(self.debt_index_ray, dtype=float),
            liquidation_threshold_bps=np.array([c.liquidation_threshold_bps for c in self.configs], dtype=float),
        )

    def index_of(self, asset: str) -> int:
        key = asset.lower()
        for i, r in enumerate(self.reserves):
            if r.asset.lower() == key:
                return i
        raise KeyError(f"{asset} is not a reserve of this market")


@dataclass(frozen=True)
class Position:
    """One account's raw balances, as the aToken/debt token contracts store them."""

    user: str
    block: int
    user_config: int
    emode: int
    scaled_collateral: tuple[int, ...]
    scaled_debt: tuple[int, ...]

    def is_collateral(self, i: int) -> bool:
        return bool((self.user_config >> (2 * i + 1)) & 1)

    def is_borrowing(self, i: int) -> bool:
        return bool((self.user_config >> (2 * i)) & 1)

    def rows(self) -> tuple[list[float], list[float]]:
        """Book rows: scaled collateral where enabled as collateral, scaled debt where borrowing."""
        coll = [float(x) if self.is_collateral(i) else 0.0 for i, x in enumerate(self.scaled_collateral)]
        debt = [float(x) if self.is_borrowing(i) else 0.0 for i, x in enumerate(self.scaled_debt)]
        return coll, debt


@dataclass(frozen=True)
class AccountData:
    """What Pool.getUserAccountData returns, computed off-chain."""

    total_collateral_base: int
    total_debt_base: int
    available_borrows_base: int
    avg_liquidation_threshold_bps: int
    avg_ltv_bps: int
    health_factor_wad: int


def collateral_balance(pos: Position, market: Market, i: int) -> int:
    return ray_mul(pos.scaled_collateral[i], market.income_ray[i])


def debt_balance(pos: Position, market: Market, i: int) -> int:
    s = pos.scaled_debt[i]
    return ray_mul(s, market.debt_index_ray[i]) if s else 0


def account_data(pos: Position, market: Market) -> AccountData:
    """GenericLogic.calculateUserAccountData with Aave's rounding (no e-mode)."""
    total_c = total_d = avg_ltv = avg_lt = 0
    for i, cfg in enumerate(market.configs):
        coll, borrowing = pos.is_collateral(i), pos.is_borrowing(i)
        if not (coll or borrowing):
            continue
        price = market.prices_base[i]
        if coll and cfg.liquidation_threshold_bps:
            bal = collateral_balance(pos, market, i) * price // cfg.unit
            total_c += bal
            avg_ltv += bal * cfg.ltv_bps
            avg_lt += bal * cfg.liquidation_threshold_bps
        if borrowing:
            total_d += price * debt_balance(pos, market, i) // cfg.unit
    avg_ltv = avg_ltv // total_c if total_c else 0
    avg_lt = avg_lt // total_c if total_c else 0
    hf = MAX_UINT256 if total_d == 0 else wad_div(percent_mul(total_c, avg_lt), total_d)
    available = percent_mul(total_c, avg_ltv)
    return AccountData(total_c, total_d, available - total_d if available > total_d else 0, avg_lt, avg_ltv, hf)


def value_exposures(pos: Position, market: Market) -> tuple[list[float], list[float]]:
    """Per reserve: (collateral value x liquidation threshold, debt value), base currency; the
    inputs of keeper.risk.predict (health under a price scenario, sensitivities)."""
    coll, debt = [], []
    for i, cfg in enumerate(market.configs):
        px = market.prices_base[i] / cfg.unit
        c = collateral_balance(pos, market, i) if pos.is_collateral(i) else 0
        coll.append(c * px * cfg.liquidation_threshold_bps / PERCENTAGE_FACTOR)
        debt.append(debt_balance(pos, market, i) * px)
    return coll, debt


def after_repay(pos: Position, market: Market, i: int, amount: int) -> Position:
    """The position after `repay(asset i, amount)`, as the Pool would leave it."""
    debt = debt_balance(pos, market, i)
    pay = min(amount, debt)
    scaled = list(pos.scaled_debt)
    scaled[i] = max(0, scaled[i] - ray_div(pay, market.debt_index_ray[i]))
    cfg = pos.user_config & ~(1 << (2 * i)) if pay == debt else pos.user_config
    return replace(pos, scaled_debt=tuple(scaled), user_config=cfg)


def after_supply(pos: Position, market: Market, i: int, amount: int) -> Position:
    """The position after `supply(asset i, amount)` (first supply enables it as collateral when LTV > 0)."""
    scaled = list(pos.scaled_collateral)
    first = scaled[i] == 0
    scaled[i] += ray_div(amount, market.income_ray[i])
    cfg = pos.user_config
    if first and market.configs[i].ltv_bps:
        cfg |= 1 << (2 * i + 1)
    return replace(pos, scaled_collateral=tuple(scaled), user_config=cfg)


@dataclass(frozen=True)
class LiquidationQuote:
    """What `liquidationCall(c, d, user, debt_to_cover, false)` does, computed as the Pool does."""

    debt_repaid: int
    """Debt asset units the liquidator pays."""
    collateral_received: int
    """Collateral asset units the liquidator receives (after the protocol's fee)."""
    protocol_fee: int
    max_liquidatable_debt: int
    error: str | None = None
    """The Pool's revert reason if this call would revert (e.g. '103' MUST_NOT_LEAVE_DUST)."""


def max_liquidatable_debt(pos: Position, market: Market, c: int, d: int, acct: AccountData | None = None) -> int:
    """v3.3 close factor: all of the reserve's debt, or 50% of the total debt (in base) when this
    reserve's collateral and debt are both >= $2,000 and HF > 0.95."""
    acct = acct or account_data(pos, market)
    ccfg, dcfg = market.configs[c], market.configs[d]
    user_coll = collateral_balance(pos, market, c)
    user_debt = debt_balance(pos, market, d)
    debt_base = user_debt * market.prices_base[d] // dcfg.unit
    if (
        user_coll * market.prices_base[c] // ccfg.unit >= MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD
        and debt_base >= MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD
        and acct.health_factor_wad > CLOSE_FACTOR_HF_THRESHOLD
    ):
        default_base = percent_mul(acct.total_debt_base, DEFAULT_LIQUIDATION_CLOSE_FACTOR)
        if debt_base > default_base:
            return default_base * dcfg.unit // market.prices_base[d]
    return user_debt


def liquidation_quote(pos: Position, market: Market, c: int, d: int, debt_to_cover: int) -> LiquidationQuote:
    acct = account_data(pos, market)
    ccfg, dcfg = market.configs[c], market.configs[d]
    user_coll = collateral_balance(pos, market, c)
    user_debt = debt_balance(pos, market, d)
    max_debt = max_liquidatable_debt(pos, market, c, d, acct)

    def fail(reason: str) -> LiquidationQuote:
        return LiquidationQuote(0, 0, 0, max_debt, reason)

    if acct.health_factor_wad >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD:
        return fail("45")  # HEALTH_FACTOR_NOT_BELOW_THRESHOLD
    if not (ccfg.liquidation_threshold_bps and pos.is_collateral(c)):
        return fail("46")  # COLLATERAL_CANNOT_BE_LIQUIDATED
    if user_debt == 0:
        return fail("47")  # SPECIFIED_CURRENCY_NOT_BORROWED_BY_USER
    pc, pd = market.prices_base[c], market.prices_base[d]
    actual_debt = min(debt_to_cover, max_debt)
    max_coll = percent_mul(pd * actual_debt * ccfg.unit // (pc * dcfg.unit), ccfg.liquidation_bonus_bps)
    if max_coll > user_coll:
        coll = user_coll
        actual_debt = percent_div(pc * coll * dcfg.unit // (pd * ccfg.unit), ccfg.liquidation_bonus_bps)
    else:
        coll = max_coll
    fee = 0
    if ccfg.liquidation_protocol_fee_bps:
        bonus = coll - percent_div(coll, ccfg.liquidation_bonus_bps)
        fee = percent_mul(bonus, ccfg.liquidation_protocol_fee_bps)
        coll -= fee
    if actual_debt < user_debt and coll + fee < user_coll:
        debt_left = (user_debt - actual_debt) * pd // dcfg.unit
        coll_left = (user_coll - coll) * pc // ccfg.unit
        if debt_left < MIN_LEFTOVER_BASE or coll_left < MIN_LEFTOVER_BASE:
            return fail("103")  # MUST_NOT_LEAVE_DUST
    return LiquidationQuote(actual_debt, coll, fee, max_debt)
