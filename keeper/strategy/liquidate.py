"""Liquidate: for each account below HF 1, the collateral/debt pair and debt to cover that pays
the most after gas, within Aave v3.3's close factor and dust rules. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from keeper.config import LiquidateSettings
from keeper.protocols.aave_v3 import (
    HEALTH_FACTOR_LIQUIDATION_THRESHOLD,
    WAD,
    Market,
    Position,
    account_data,
    collateral_balance,
    debt_balance,
    liquidation_quote,
    max_liquidatable_debt,
)
from keeper.strategy.actions import Liquidate

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


@dataclass(frozen=True)
class LiquidationPlan:
    chosen: list[Liquidate]
    """To execute, most profitable first."""
    skipped: list[tuple[str, str]]
    """(account, reason) for every account below HF 1 that is not liquidated."""


def decide_liquidations(
    positions: Iterable[Position],
    market: Market,
    wallet: Sequence[int],
    settings: LiquidateSettings,
    gas_cost_base: int,
    base_unit: int = 10**8,
) -> LiquidationPlan:
    """Profitable liquidations, most profitable first, each funded from what the wallet has left."""
    positions = list(positions)
    if not settings.enabled:
        return LiquidationPlan([], [(p.user, "liquidation disabled") for p in positions])
    left = list(wallet)
    chosen: list[Liquidate] = []
    skipped: list[tuple[str, str]] = []
    found: list[Liquidate] = []
    for p in positions:
        a = best_liquidation(p, market, left, gas_cost_base)
        if a is None:
            skipped.append((p.user, "no collateral/debt pair that the wallet can fund without a revert"))
        else:
            found.append(a)
    min_profit = int(settings.min_profit_usd * base_unit)
    for action in sorted(found, key=lambda a: a.expected_gross_base, reverse=True):
        d = market.index_of(action.debt_asset)
        profit = action.expected_gross_base - gas_cost_base
        if profit < min_profit:
            skipped.append(
                (
                    action.account,
                    f"unprofitable: expected {profit} < min {min_profit} (base units, "
                    f"gross {action.expected_gross_base}, gas {gas_cost_base})",
                )
            )
            continue
        if action.debt_to_cover > left[d]:
            skipped.append(
                (action.account, f"wallet has {left[d]} {action.debt_symbol} left, needs {action.debt_to_cover}")
            )
            continue
        left[d] -= action.debt_to_cover
        chosen.append(action)
    return LiquidationPlan(chosen, skipped)
