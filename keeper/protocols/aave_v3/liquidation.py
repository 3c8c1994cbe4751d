"""Aave v3 liquidationCall, computed as the Pool of the market's version computes it
(LiquidationLogic.executeLiquidationCall: close factor, e-mode bonus and prices, the capped
branch, the protocol fee and, from v3.3, the dust rule)."""

from __future__ import annotations

from dataclasses import dataclass

from keeper.protocols.aave_v3.math import (
    HEALTH_FACTOR_LIQUIDATION_THRESHOLD,
    AccountData,
    Market,
    Position,
    account_data,
    collateral_balance,
    debt_balance,
    emode_of,
    variable_debt,
)
from keeper.protocols.aave_v3.rounding import (
    percent_div,
    percent_div_ceil,
    percent_div_floor,
    percent_mul,
    percent_mul_ceil,
    percent_mul_floor,
)

CLOSE_FACTOR_HF_THRESHOLD = 95 * 10**16
DEFAULT_LIQUIDATION_CLOSE_FACTOR = 5_000
MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD = 2_000 * 10**8
MIN_LEFTOVER_BASE = 1_000 * 10**8

# the revert of each check: v3.0-v3.3 Error(string) code, v3.4+ custom error
_REASONS = {
    "45": "HealthFactorNotBelowThreshold",
    "46": "CollateralCannotBeLiquidated",
    "47": "SpecifiedCurrencyNotBorrowedByUser",
    "103": "MustNotLeaveDust",
    "27": "ReserveInactive",
    "29": "ReservePaused",
    "97": "LiquidationGraceSentinelCheckFailed",
    "SelfLiquidation": "SelfLiquidation",
}


@dataclass(frozen=True)
class LiquidationQuote:
    """What `liquidationCall(c, d, user, debt_to_cover, false)` does, computed as the Pool does."""

    debt_repaid: int
    """Debt asset units the liquidator pays (the event's debtToCover)."""
    collateral_received: int
    """Collateral asset units the liquidator receives, after the protocol's fee (the event's
    liquidatedCollateralAmount)."""
    protocol_fee: int
    max_liquidatable_debt: int
    capped: bool = False
    """The account's collateral in this reserve limits the liquidation (the Pool's capped branch)."""
    error: str | None = None
    """The Pool's revert reason if this call would revert (e.g. '103' / MustNotLeaveDust)."""


def reason(market: Market, code: str) -> str:
    """The revert a check raises on this market's version."""
    if market.version.custom_errors or code == "SelfLiquidation":
        return _REASONS.get(code, code)
    return code


def user_reserve_debt(pos: Position, market: Market, d: int) -> int:
    """The debt the liquidation works on: v3.0-v3.1 stable + variable, from v3.2 variable only."""
    return debt_balance(pos, market, d) if market.version.stable_debt else variable_debt(pos, market, d)


def liquidation_prices(pos: Position, market: Market, c: int, d: int) -> tuple[int, int]:
    """(collateral price, debt price) the liquidation uses. v3.0-v3.1: with an e-mode price
    source, the collateral's when it is in the category, and the debt's always."""
    pc, pd = market.prices_base[c], market.prices_base[d]
    if pos.emode and not market.version.emode_bitmaps:
        e = market.emode(pos.emode)
        if e is not None and e.price:
            pd = e.price
            if c in e.collateral:
                pc = e.price
    return pc, pd


def liquidation_bonus(pos: Position, market: Market, c: int) -> int:
    e = emode_of(pos, market, c)
    return e.liquidation_bonus_bps if e is not None else market.configs[c].liquidation_bonus_bps


def max_liquidatable_debt(pos: Position, market: Market, c: int, d: int, acct: AccountData | None = None) -> int:
    """The close factor. v3.3+: all of the reserve's debt, or 50% of the total debt (in base)
    when this reserve's collateral and debt are both >= $2,000 and HF > 0.95. Before v3.3: 50%
    of the reserve's debt when HF > 0.95, all of it below."""
    acct = acct or account_data(pos, market)
    user_debt = user_reserve_debt(pos, market, d)
    if not market.version.position_close_factor:
        if acct.health_factor_wad > CLOSE_FACTOR_HF_THRESHOLD:
            return percent_mul(user_debt, DEFAULT_LIQUIDATION_CLOSE_FACTOR)
        return user_debt
    ccfg, dcfg = market.configs[c], market.configs[d]
    pc, pd = market.prices_base[c], market.prices_base[d]
    value = user_debt * pd
    debt_base = -(-value // dcfg.unit) if market.version.token_rounding else value // dcfg.unit
    if (
        collateral_balance(pos, market, c) * pc // ccfg.unit >= MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD
        and debt_base >= MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD
        and acct.health_factor_wad > CLOSE_FACTOR_HF_THRESHOLD
    ):
        default_base = percent_mul(acct.total_debt_base, DEFAULT_LIQUIDATION_CLOSE_FACTOR)
        if debt_base > default_base:
            return default_base * dcfg.unit // pd
    return user_debt


def blocked(pos: Position, market: Market, c: int, d: int, liquidator: str = "") -> str | None:
    """Why the Pool refuses to liquidate this pair before any amount is computed (None: it does not)."""
    acct = account_data(pos, market)
    ccfg, dcfg = market.configs[c], market.configs[d]
    if not (ccfg.active and dcfg.active):
        return reason(market, "27")
    if ccfg.paused or dcfg.paused:
        return reason(market, "29")
    grace = market.grace_until
    if grace and (grace[c] >= market.timestamp or grace[d] >= market.timestamp):
        return reason(market, "97")
    if acct.health_factor_wad >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD:
        return reason(market, "45")
    if not (pos.is_collateral(c) and (ccfg.liquidation_threshold_bps or market.version.collateral_without_lt)):
        return reason(market, "46")
    if user_reserve_debt(pos, market, d) == 0:
        return reason(market, "47")
    if market.version.no_self_liquidation and liquidator and liquidator.lower() == pos.user.lower():
        return reason(market, "SelfLiquidation")
    return None


def liquidation_quote(
    pos: Position, market: Market, c: int, d: int, debt_to_cover: int, liquidator: str = ""
) -> LiquidationQuote:
    acct = account_data(pos, market)
    v = market.version
    ccfg, dcfg = market.configs[c], market.configs[d]
    user_coll = collateral_balance(pos, market, c)
    user_debt = user_reserve_debt(pos, market, d)
    max_debt = max_liquidatable_debt(pos, market, c, d, acct)
    if why := blocked(pos, market, c, d, liquidator):
        return LiquidationQuote(0, 0, 0, max_debt, error=why)
    pc, pd = liquidation_prices(pos, market, c, d)
    bonus = liquidation_bonus(pos, market, c)
    actual_debt = min(debt_to_cover, max_debt)
    base_coll = pd * actual_debt * ccfg.unit // (pc * dcfg.unit)
    max_coll = (percent_mul_floor if v.floor_bonus else percent_mul)(base_coll, bonus)
    capped = max_coll > user_coll
    if capped:
        coll = user_coll
        worth = pc * coll * dcfg.unit // (pd * ccfg.unit)
        actual_debt = (percent_div_ceil if v.token_rounding else percent_div)(worth, bonus)
    else:
        coll = max_coll
    fee = 0
    if ccfg.liquidation_protocol_fee_bps:
        bonus_part = coll - (percent_div_floor if v.floor_bonus else percent_div)(coll, bonus)
        fee = (percent_mul_ceil if v.floor_bonus else percent_mul)(bonus_part, ccfg.liquidation_protocol_fee_bps)
        coll -= fee
    if v.position_close_factor and actual_debt < user_debt and coll + fee < user_coll:
        value = (user_debt - actual_debt) * pd
        debt_left = -(-value // dcfg.unit) if v.token_rounding else value // dcfg.unit
        coll_left = (user_coll - coll - fee) * pc // ccfg.unit
        if debt_left < MIN_LEFTOVER_BASE or coll_left < MIN_LEFTOVER_BASE:
            return LiquidationQuote(0, 0, 0, max_debt, capped, reason(market, "103"))
    return LiquidationQuote(actual_debt, coll, fee, max_debt, capped)
