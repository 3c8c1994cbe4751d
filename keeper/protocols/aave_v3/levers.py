"""Aave v3 levers (pure): the exact repay or supply that brings a watched account to its target,
and, for each account below HF 1, the collateral/debt pair and debt to cover that pays the most
after gas, within v3.3's close factor and dust rules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from keeper.protocols.aave_v3.actions import Liquidate
from keeper.protocols.aave_v3.math import (
    HEALTH_FACTOR_LIQUIDATION_THRESHOLD,
    Market,
    Position,
    account_data,
    after_repay,
    after_supply,
    collateral_balance,
    debt_balance,
    liquidation_quote,
    max_liquidatable_debt,
)
from keeper.protocols.base import LiquidationPlan, Skip
from keeper.risk.intmath import WAD
from keeper.settings import LiquidateSettings, ProtectSettings
from keeper.strategy.actions import Protect
from keeper.strategy.sizing import Lever, choose


def decide_protect(pos: Position, market: Market, wallet: Sequence[int], settings: ProtectSettings) -> Protect | None:
    """Aave v3: repay a variable debt, or supply a reserve that counts as collateral.
    `wallet` is indexed like the market's reserves."""

    def hf(p: Position) -> int:
        return account_data(p, market).health_factor_wad

    levers: list[Lever] = []
    for i, cfg in enumerate(market.configs):
        if not cfg.active or cfg.paused or wallet[i] <= 0:
            continue
        r = market.reserves[i]
        if pos.is_borrowing(i):
            levers.append(
                Lever(
                    "repay",
                    r.asset,
                    r.symbol,
                    min(wallet[i], debt_balance(pos, market, i)),
                    market.prices_base[i],
                    cfg.unit,
                    lambda a, i=i: hf(after_repay(pos, market, i, a)),  # type: ignore[misc]
                )
            )
        usable = pos.is_collateral(i) or (pos.scaled_collateral[i] == 0 and cfg.ltv_bps > 0)
        if not cfg.frozen and cfg.liquidation_threshold_bps and usable:
            levers.append(
                Lever(
                    "supply",
                    r.asset,
                    r.symbol,
                    wallet[i],
                    market.prices_base[i],
                    cfg.unit,
                    lambda a, i=i: hf(after_supply(pos, market, i, a)),  # type: ignore[misc]
                )
            )
    return choose(pos.user, levers, hf(pos), settings)


FULL_DEBT_HEADROOM = 10_000
"""A full-debt liquidation offers debt x (1 + 1/10,000): days of interest at usual rates."""


def best_liquidation(pos: Position, market: Market, wallet: Sequence[int], gas_cost_base: int) -> Liquidate | None:
    acct = account_data(pos, market)
    if acct.health_factor_wad >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD:
        return None
    best: Liquidate | None = None
    n = len(market.reserves)
    for c in range(n):
        if not (
            pos.is_collateral(c) and market.configs[c].liquidation_threshold_bps and collateral_balance(pos, market, c)
        ):
            continue
        for d in range(n):
            if not debt_balance(pos, market, d):
                continue
            max_debt = max_liquidatable_debt(pos, market, c, d, acct)
            for cover in {max_debt, min(max_debt, wallet[d])}:
                if cover <= 0:
                    continue
                q = liquidation_quote(pos, market, c, d, cover)
                if q.error or q.debt_repaid > wallet[d] or q.debt_repaid == 0:
                    continue
                cc, dc = market.configs[c], market.configs[d]
                gross = (
                    q.collateral_received * market.prices_base[c] // cc.unit
                    - q.debt_repaid * market.prices_base[d] // dc.unit
                )
                param = q.debt_repaid
                if q.debt_repaid == debt_balance(pos, market, d):
                    param = min(wallet[d], q.debt_repaid + q.debt_repaid // FULL_DEBT_HEADROOM + 1)
                if best is None or gross > best.expected_gross_base:
                    best = Liquidate(
                        account=pos.user,
                        collateral_asset=market.reserves[c].asset,
                        collateral_symbol=market.reserves[c].symbol,
                        debt_asset=market.reserves[d].asset,
                        debt_symbol=market.reserves[d].symbol,
                        debt_to_cover=param,
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
            a = best_liquidation(p, market, left, gas_cost_base)
            if a is None:
                reasons.append((p.user, "no collateral/debt pair that the wallet can fund without a revert"))
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
            elif action.debt_to_cover > left[d]:
                reasons.append(
                    (action.account, f"wallet has {left[d]} {action.debt_symbol} left, needs {action.debt_to_cover}")
                )
            else:
                left[d] -= action.debt_to_cover
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
