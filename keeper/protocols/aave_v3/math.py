"""Aave v3 (v3.0 to v3.7): the state keeper reads and the Pool's own account arithmetic.

Reads use the deployed Pool/AaveOracle/aToken/debt token interfaces (`abis/`), batched through
Multicall3 at one block. The integer math replicates Aave's rounding of the market's version
(WadRayMath, PercentageMath, TokenMath from v3.5, GenericLogic.calculateUserAccountData), so
amounts that go into calldata are the amounts the Pool will compute. What changes between
versions is in keeper.protocols.aave_v3.versions; liquidations are in .liquidation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from keeper.protocols.aave_v3.rounding import (
    PERCENTAGE_FACTOR,
    compounded_interest,
    percent_mul,
    percent_mul_floor,
    ray_div,
    ray_div_floor,
    ray_mul,
    ray_mul_ceil,
    ray_mul_floor,
    wad_div,
)
from keeper.protocols.aave_v3.rounding import (
    RAY as RAY,
)
from keeper.protocols.aave_v3.versions import VERSIONS, Version
from keeper.risk.engine import MarketArrays
from keeper.risk.guards import FeedRound
from keeper.risk.intmath import MAX_UINT256, WAD

NAME = "aave-v3"
HEALTH_FACTOR_LIQUIDATION_THRESHOLD = WAD
ZERO_ADDRESS = "0x" + "0" * 40
STABLE_RATE_MODE = 1
VARIABLE_RATE_MODE = 2
V3_3 = next(v for v in VERSIONS if v.name == "3.3")
"""The rules of our own test Pool (contracts/Pool.sol, POOL_REVISION 7)."""


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
    emode_category: int = 0
    """v3.0-v3.1: the reserve's e-mode category (bits 168-175)."""
    supply_cap: int = 0
    """Whole tokens; 0 = no cap."""
    debt_ceiling: int = 0
    """Isolation mode: non-zero makes the reserve an isolated collateral (2 decimals of USD)."""
    siloed: bool = False
    flashloan_enabled: bool = False

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
            emode_category=(data >> 168) & 0xFF,
            supply_cap=(data >> 116) & (2**36 - 1),
            debt_ceiling=(data >> 212) & (2**40 - 1),
            siloed=bool((data >> 62) & 1),
            flashloan_enabled=bool((data >> 63) & 1),
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
            | int(self.siloed) << 62
            | int(self.flashloan_enabled) << 63
            | self.reserve_factor_bps << 64
            | self.supply_cap << 116
            | self.liquidation_protocol_fee_bps << 152
            | self.emode_category << 168
            | self.debt_ceiling << 212
        )

    @property
    def unit(self) -> int:
        return 10**self.decimals


@dataclass(frozen=True)
class Reserve:
    asset: str
    id: int
    """The reserve's id (getReserveData): its bit pair in users' configuration bitmaps."""
    a_token: str
    variable_debt_token: str
    symbol: str
    price_source: str = ""
    """The AaveOracle's source for this asset (a Chainlink-style aggregator), if it reports one."""
    stable_debt_token: str = ""
    """v3.0-v3.1: the stable debt token ('' when the version has none)."""
    feed: str = ""
    """The Chainlink-style feed whose latestRoundData dates this reserve's price: the source
    itself, or the feed a price adapter (CAPO) wraps; '' when its age cannot be judged."""
    feed_note: str = ""


@dataclass(frozen=True)
class EMode:
    """One e-mode category, with its reserves as columns of the market."""

    id: int
    ltv_bps: int
    liquidation_threshold_bps: int
    liquidation_bonus_bps: int
    collateral: frozenset[int]
    """Columns whose collateral takes the category's LTV, threshold and bonus."""
    price: int = 0
    """v3.0-v3.1: the price of the category's price source (0: none; the assets keep their own)."""


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
    version: Version = V3_3
    emodes: tuple[EMode, ...] = ()
    """The e-mode categories accounts of this market are in."""
    grace_until: tuple[int, ...] = ()
    """v3.1+: per reserve, the timestamp until which its liquidations are held off (0: none)."""
    supplied: tuple[int, ...] = ()
    """Per reserve, what its supply cap counts: aToken supply plus the treasury's accrued share."""

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

    def emode(self, category: int) -> EMode | None:
        for e in self.emodes:
            if e.id == category:
                return e
        return None


@dataclass(frozen=True)
class StableDebt:
    """v3.0-v3.1: a user's stable debt in one reserve (StableDebtToken's stored state)."""

    principal: int
    rate_ray: int
    last_updated: int

    def balance(self, now: int) -> int:
        if not self.principal:
            return 0
        return ray_mul(self.principal, compounded_interest(self.rate_ray, self.last_updated, now))


@dataclass(frozen=True)
class Position:
    """One account's raw balances, as the aToken/debt token contracts store them. The bits of
    `user_config` are in column order (bit 2i: borrowing column i, 2i+1: its collateral), mapped
    from the Pool's reserve-id order when read."""

    user: str
    block: int
    user_config: int
    emode: int
    scaled_collateral: tuple[int, ...]
    scaled_debt: tuple[int, ...]
    stable: tuple[StableDebt | None, ...] = ()
    """v3.0-v3.1, per column (empty when the account has no stable debt)."""

    def is_collateral(self, i: int) -> bool:
        return bool((self.user_config >> (2 * i + 1)) & 1)

    def is_borrowing(self, i: int) -> bool:
        return bool((self.user_config >> (2 * i)) & 1)

    @property
    def has_stable_debt(self) -> bool:
        return any(s is not None and s.principal for s in self.stable)

    def stable_balance(self, i: int, now: int) -> int:
        s = self.stable[i] if i < len(self.stable) else None
        return s.balance(now) if s is not None else 0

    def rows(self) -> tuple[list[float], list[float]]:
        """Book rows: scaled collateral where enabled as collateral, scaled debt where borrowing.
        (Stable debt and e-mode are not in the rows: the adapter checks such accounts exactly.)"""
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
    """aToken balance (v3.5+ rounds down)."""
    mul = ray_mul_floor if market.version.token_rounding else ray_mul
    return mul(pos.scaled_collateral[i], market.income_ray[i])


def variable_debt(pos: Position, market: Market, i: int) -> int:
    """Variable debt token balance (v3.5+ rounds up)."""
    s = pos.scaled_debt[i]
    if not s:
        return 0
    return (ray_mul_ceil if market.version.token_rounding else ray_mul)(s, market.debt_index_ray[i])


def debt_balance(pos: Position, market: Market, i: int) -> int:
    """All of the account's debt in column i (variable, and stable through v3.1)."""
    return variable_debt(pos, market, i) + pos.stable_balance(i, market.timestamp)


def emode_of(pos: Position, market: Market, i: int) -> EMode | None:
    """The account's e-mode category when it applies to column i's collateral."""
    if not pos.emode:
        return None
    e = market.emode(pos.emode)
    return e if e is not None and i in e.collateral else None


def price_of(pos: Position, market: Market, i: int) -> int:
    """The price the Pool values column i at for this account (v3.0-v3.1: an e-mode category's
    price source replaces the price of the category's own assets)."""
    e = emode_of(pos, market, i)
    return e.price if e is not None and e.price else market.prices_base[i]


def liquidation_threshold_of(pos: Position, market: Market, i: int) -> int:
    e = emode_of(pos, market, i)
    return e.liquidation_threshold_bps if e is not None else market.configs[i].liquidation_threshold_bps


def counts_as_collateral(pos: Position, market: Market, i: int) -> bool:
    if not pos.is_collateral(i):
        return False
    return market.version.collateral_without_lt or market.configs[i].liquidation_threshold_bps > 0


def account_data(pos: Position, market: Market) -> AccountData:
    """GenericLogic.calculateUserAccountData with the version's rounding and e-mode rules."""
    v = market.version
    total_c = total_d = avg_ltv = sum_lt = 0
    for i, cfg in enumerate(market.configs):
        coll, borrowing = counts_as_collateral(pos, market, i), pos.is_borrowing(i)
        if not (coll or borrowing):
            continue
        price = price_of(pos, market, i)
        if coll:
            bal = collateral_balance(pos, market, i) * price // cfg.unit
            total_c += bal
            e = emode_of(pos, market, i)
            if cfg.ltv_bps:
                avg_ltv += bal * (e.ltv_bps if e is not None else cfg.ltv_bps)
            sum_lt += bal * liquidation_threshold_of(pos, market, i)
        if borrowing:
            value = debt_balance(pos, market, i) * price
            total_d += -(-value // cfg.unit) if v.token_rounding else value // cfg.unit
    avg_ltv = avg_ltv // total_c if total_c else 0
    avg_lt = sum_lt // total_c if total_c else 0
    if total_d == 0:
        hf = MAX_UINT256
    elif v.token_rounding:
        hf = wad_div(sum_lt, total_d) // PERCENTAGE_FACTOR
    else:
        hf = wad_div(percent_mul(total_c, avg_lt), total_d)
    available = (percent_mul_floor if v.token_rounding else percent_mul)(total_c, avg_ltv)
    return AccountData(total_c, total_d, available - total_d if available > total_d else 0, avg_lt, avg_ltv, hf)


def value_exposures(pos: Position, market: Market) -> tuple[list[float], list[float]]:
    """Per reserve: (collateral value x liquidation threshold, debt value), base currency; the
    inputs of keeper.risk.predict (health under a price scenario, sensitivities)."""
    coll, debt = [], []
    for i, cfg in enumerate(market.configs):
        px = price_of(pos, market, i) / cfg.unit
        c = collateral_balance(pos, market, i) if counts_as_collateral(pos, market, i) else 0
        coll.append(c * px * liquidation_threshold_of(pos, market, i) / PERCENTAGE_FACTOR)
        debt.append(debt_balance(pos, market, i) * px)
    return coll, debt


def after_repay(pos: Position, market: Market, i: int, amount: int, stable: bool = False) -> Position:
    """The position after `repay(asset i, amount)` of its variable debt (or its stable debt),
    as the Pool would leave it."""
    if stable:
        owed = pos.stable_balance(i, market.timestamp)
        pay = min(amount, owed)
        rows = list(pos.stable)
        old = rows[i]
        assert old is not None
        rows[i] = StableDebt(owed - pay, old.rate_ray, market.timestamp) if owed > pay else None
        left = variable_debt(pos, market, i)
        after = replace(pos, stable=tuple(rows))
    else:
        owed = variable_debt(pos, market, i)
        pay = min(amount, owed)
        burn = ray_div_floor if market.version.token_rounding else ray_div
        scaled = list(pos.scaled_debt)
        scaled[i] = 0 if pay == owed else max(0, scaled[i] - burn(pay, market.debt_index_ray[i]))
        left = pos.stable_balance(i, market.timestamp)
        after = replace(pos, scaled_debt=tuple(scaled))
    if pay == owed and not left:
        after = replace(after, user_config=after.user_config & ~(1 << (2 * i)))
    return after


def after_supply(pos: Position, market: Market, i: int, amount: int) -> Position:
    """The position after `supply(asset i, amount)` (a first supply enables it as collateral
    when its LTV > 0 and it is not an isolated reserve joining other collateral)."""
    scaled = list(pos.scaled_collateral)
    first = scaled[i] == 0
    mint = ray_div_floor if market.version.token_rounding else ray_div
    scaled[i] += mint(amount, market.income_ray[i])
    cfg = pos.user_config
    if first and can_enable_collateral(pos, market, i):
        cfg |= 1 << (2 * i + 1)
    return replace(pos, scaled_collateral=tuple(scaled), user_config=cfg)


def collateral_columns(pos: Position) -> list[int]:
    n = len(pos.scaled_collateral)
    return [i for i in range(n) if pos.is_collateral(i)]


def can_enable_collateral(pos: Position, market: Market, i: int) -> bool:
    """ValidationLogic.validateAutomaticUseAsCollateral: a first supply enables the reserve as
    collateral when its LTV > 0, except an isolated reserve (debt ceiling > 0: only a holder of
    ISOLATED_COLLATERAL_SUPPLIER_ROLE, which a keeper is not), or beside an isolated collateral."""
    cfg = market.configs[i]
    if not cfg.ltv_bps:
        return False
    if not market.version.isolation:
        return True
    if cfg.debt_ceiling:
        return False
    return not any(market.configs[j].debt_ceiling for j in collateral_columns(pos) if j != i)
