"""Aave v3 levers (pure): the exact repay or supply that brings a watched account to its target,
and, for each account below HF 1, the collateral/debt pair and debt to cover that pays the most
after gas, within the close factor and dust rules of the market's version."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from keeper.protocols.aave_v3.actions import Liquidate, RepayStable
from keeper.protocols.aave_v3.liquidation import blocked, liquidation_quote, max_liquidatable_debt, user_reserve_debt
from keeper.protocols.aave_v3.math import (
    HEALTH_FACTOR_LIQUIDATION_THRESHOLD,
    Market,
    Position,
    account_data,
    after_repay,
    after_supply,
    can_enable_collateral,
    collateral_balance,
    variable_debt,
)
from keeper.protocols.base import LiquidationPlan, Skip
from keeper.risk.intmath import MAX_UINT256, WAD
from keeper.settings import LiquidateSettings, ProtectSettings
from keeper.strategy.actions import Protect, fields_of
from keeper.strategy.sizing import Lever, choose


def decide_protect(pos: Position, market: Market, wallet: Sequence[int], settings: ProtectSettings) -> Protect | None:
    """Aave v3: repay a debt (variable; stable through v3.1), or supply a reserve that counts as
    collateral, within the supply cap. `wallet` is indexed like the market's reserves."""

    def hf(p: Position) -> int:
        return account_data(p, market).health_factor_wad

    levers: list[Lever] = []
    stable_levers: set[str] = set()
    for i, cfg in enumerate(market.configs):
        if not cfg.active or cfg.paused or wallet[i] <= 0:
            continue
        r = market.reserves[i]
        variable, stable = variable_debt(pos, market, i), pos.stable_balance(i, market.timestamp)
        if pos.is_borrowing(i) and (variable or stable):
            on_stable = not variable
            if on_stable:
                stable_levers.add(r.asset)
            levers.append(
                Lever(
                    "repay",
                    r.asset,
                    r.symbol,
                    min(wallet[i], stable if on_stable else variable),
                    market.prices_base[i],
                    cfg.unit,
                    lambda a, i=i, s=on_stable: hf(after_repay(pos, market, i, a, stable=s)),  # type: ignore[misc]
                )
            )
        usable = pos.is_collateral(i) or (pos.scaled_collateral[i] == 0 and can_enable_collateral(pos, market, i))
        room = supply_room(market, i)
        if not cfg.frozen and cfg.liquidation_threshold_bps and usable and room > 0:
            levers.append(
                Lever(
                    "supply",
                    r.asset,
                    r.symbol,
                    min(wallet[i], room),
                    market.prices_base[i],
                    cfg.unit,
                    lambda a, i=i: hf(after_supply(pos, market, i, a)),  # type: ignore[misc]
                )
            )
    action = choose(pos.user, levers, hf(pos), settings)
    if action is not None and action.kind == "repay" and action.asset in stable_levers:
        return RepayStable(**fields_of(action))
    return action


def supply_room(market: Market, i: int) -> int:
    """How much more the supply cap admits (token units); unbounded without a cap. The cap counts
    the aToken supply plus the treasury's accrued share, which the market read does not carry:
    the headroom is taken from `supplied`, kept per reserve when the reader knows it."""
    cap = market.configs[i].supply_cap
    if not cap:
        return 2**255
    supplied = market.supplied[i] if i < len(market.supplied) else 0
    return max(0, cap * market.configs[i].unit - supplied)


FULL_DEBT_HEADROOM = 10_000
"""A liquidation that takes all the Pool allows approves the expected amount x (1 + 1/10,000):
days of interest at usual rates."""


def best_liquidation(
    pos: Position, market: Market, wallet: Sequence[int], gas_cost_base: int, liquidator: str = ""
) -> Liquidate | None:
    acct = account_data(pos, market)
    if acct.health_factor_wad >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD:
        return None
    best: Liquidate | None = None
    n = len(market.reserves)
    for c in range(n):
        if not (pos.is_collateral(c) and collateral_balance(pos, market, c)):
            continue
        for d in range(n):
            if not user_reserve_debt(pos, market, d):
                continue
            max_debt = max_liquidatable_debt(pos, market, c, d, acct)
            for cover in {max_debt, min(max_debt, wallet[d])}:
                if cover <= 0:
                    continue
                q = liquidation_quote(pos, market, c, d, cover, liquidator)
                if q.error or q.debt_repaid == 0:
                    continue
                if q.debt_repaid > wallet[d]:
                    continue
                # all of the reserve's debt, or the collateral-capped branch: debtToCover = max lets
                # the Pool size it at inclusion (an exact amount lands below the capped branch, and
                # one block of interest would leave dust); the approval bounds what it can take. A
                # partial liquidation (the 50% close factor) passes its exact amount.
                whole = q.capped or q.debt_repaid == user_reserve_debt(pos, market, d)
                spend = (
                    min(wallet[d], q.debt_repaid + q.debt_repaid // FULL_DEBT_HEADROOM + 1) if whole else q.debt_repaid
                )
                cc, dc = market.configs[c], market.configs[d]
                gross = (
                    q.collateral_received * market.prices_base[c] // cc.unit
                    - q.debt_repaid * market.prices_base[d] // dc.unit
                )
                if best is None or gross > best.expected_gross_base:
                    best = Liquidate(
                        account=pos.user,
                        collateral_asset=market.reserves[c].asset,
                        collateral_symbol=market.reserves[c].symbol,
                        debt_asset=market.reserves[d].asset,
                        debt_symbol=market.reserves[d].symbol,
                        debt_to_cover=MAX_UINT256 if whole else q.debt_repaid,
                        max_spend=spend,
                        expected_debt_repaid=q.debt_repaid,
                        expected_collateral=q.collateral_received,
                        expected_gross_base=gross,
                        expected_gas_base=gas_cost_base,
                        health_before=acct.health_factor_wad / WAD,
                    )
    return best


def decide_liquidations(
    positions: Iterable[Position],
    market: Market,
    wallet: Sequence[int],
    settings: LiquidateSettings,
    gas_cost_base: int,
    base_unit: int = 10**8,
    liquidator: str = "",
) -> LiquidationPlan:
    """Profitable liquidations, most profitable first, each funded from what the wallet has left;
    every account not liquidated is skipped with its reason and account figures."""
    by_user = {p.user: p for p in positions}
    reasons: list[tuple[str, str]] = []
    chosen: list[Liquidate] = []
    if not settings.enabled:
        reasons = [(u, "liquidation disabled") for u in by_user]
    else:
        left = list(wallet)
        found: list[Liquidate] = []
        for p in by_user.values():
            a = best_liquidation(p, market, left, gas_cost_base, liquidator)
            if a is None:
                refused = refusals(p, market, liquidator)
                why = (
                    f"the Pool refuses: {', '.join(sorted(refused))}"
                    if refused
                    else "no collateral/debt pair that the wallet can fund without a revert"
                )
                reasons.append((p.user, why))
            else:
                found.append(a)
        min_profit = int(settings.min_profit_usd * base_unit)
        for action in sorted(found, key=lambda a: a.expected_gross_base, reverse=True):
            d = market.index_of(action.debt_asset)
            profit = action.expected_gross_base - gas_cost_base
            if profit < min_profit:
                why = (
                    f"unprofitable: expected {profit} < min {min_profit} (base units, "
                    f"gross {action.expected_gross_base}, gas {gas_cost_base})"
                )
                reasons.append((action.account, why))
            elif action.max_spend > left[d]:
                reasons.append(
                    (action.account, f"wallet has {left[d]} {action.debt_symbol} left, needs {action.max_spend}")
                )
            else:
                left[d] -= action.max_spend
                chosen.append(action)
    return LiquidationPlan(tuple(chosen), tuple(_skip(by_user[u], market, why) for u, why in reasons))


def _skip(pos: Position, market: Market, reason: str) -> Skip:
    acct = account_data(pos, market)
    inputs = {
        "health_factor_wad": acct.health_factor_wad,
        "collateral_base": acct.total_collateral_base,
        "debt_base": acct.total_debt_base,
    }
    return Skip(pos.user, reason, inputs)


def refusals(pos: Position, market: Market, liquidator: str = "") -> set[str]:
    """The Pool's reasons to refuse every collateral/debt pair of this account (empty when at
    least one pair is allowed: the wallet or the amounts decided instead)."""
    out: set[str] = set()
    n = len(market.reserves)
    for c in range(n):
        if not pos.is_collateral(c):
            continue
        for d in range(n):
            if not pos.is_borrowing(d):
                continue
            why = blocked(pos, market, c, d, liquidator)
            if why is None:
                return set()
            out.add(why)
    return out
