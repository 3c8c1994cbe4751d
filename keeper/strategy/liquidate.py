"""Liquidate. Aave v3: for each account below HF 1, the collateral/debt pair and debt to cover
that pays the most after gas, within v3.3's close factor and dust rules. Compound v3: absorb the
liquidatable accounts, then buy the protocol's collateral at its discount. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from keeper.config import LiquidateSettings
from keeper.protocols import comet, perps
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
from keeper.strategy.actions import Absorb, BuyCollateral, Liquidate, LiquidatePerps

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


# ---------------------------------------------------------------------------- Compound v3


@dataclass(frozen=True)
class CometPlan:
    absorb: Absorb | None
    """One absorb for every liquidatable account, when the purchases it opens up pay for it."""
    buys: list[BuyCollateral]
    """Purchases from the protocol's collateral reserves, in order, after the absorb."""
    skipped: list[tuple[str, str]]


def plan_buys(
    m: comet.CometMarket,
    reserves: int,
    collateral_reserves: Sequence[int],
    wallet_base: int,
    gas_cost_base: int,
    min_profit: int,
    slippage_bps: int,
    after_absorb: bool = False,
) -> list[BuyCollateral]:
    """buyCollateral calls that each clear `min_profit` after gas, best first, funded from the
    wallet's base, while the protocol's reserves (which each purchase raises) stay below target."""
    if m.paused(comet.PAUSE_BUY_OFFSET):
        return []
    quotes = []
    for i, a in enumerate(m.assets):
        if collateral_reserves[i] <= 0:
            continue
        base_amount = min(wallet_base, comet.base_for_collateral(m, i, collateral_reserves[i]))
        if base_amount <= 0:
            continue
        got = comet.quote_collateral(m, i, base_amount)
        gross = got * m.prices[i] // a.scale - base_amount * m.base_price // m.base_scale
        quotes.append((gross, i, base_amount, got))
    buys: list[BuyCollateral] = []
    left = wallet_base
    for gross, i, base_amount, got in sorted(quotes, reverse=True):
        if not (reserves < 0 or reserves < m.target_reserves):
            break
        if base_amount > left:
            base_amount = left
            got = comet.quote_collateral(m, i, base_amount)
            gross = got * m.prices[i] // m.assets[i].scale - base_amount * m.base_price // m.base_scale
        if base_amount <= 0 or gross - gas_cost_base < min_profit:
            continue
        buys.append(
            BuyCollateral(
                asset=m.assets[i].asset,
                symbol=m.symbols[i],
                base_token=m.base_token,
                base_symbol=m.base_symbol,
                base_amount=base_amount,
                min_amount=got * (10_000 - slippage_bps) // 10_000,
                expected_collateral=got,
                expected_gross_base=gross,
                expected_gas_base=gas_cost_base,
                after_absorb=after_absorb,
            )
        )
        left -= base_amount
        reserves += base_amount
    return buys


def decide_comet(
    positions: Iterable[comet.CometPosition],
    m: comet.CometMarket,
    wallet_base: int,
    settings: LiquidateSettings,
    gas_cost_base: int,
) -> CometPlan:
    """Absorb every liquidatable account in one call when the collateral it puts up for sale
    can be bought at a profit that covers the absorb's gas too (or always, with
    `comet_absorb_always`); then buy collateral while reserves are below target."""
    min_profit = int(settings.min_profit_usd * comet.PRICE_SCALE)
    targets = [p for p in positions if comet.is_liquidatable(p, m)]
    slip = settings.comet_slippage_bps
    if not settings.enabled:
        return CometPlan(None, [], [(p.user, "liquidation disabled") for p in targets])
    now = plan_buys(m, m.reserves, m.collateral_reserves, wallet_base, gas_cost_base, min_profit, slip)
    if not targets:
        return CometPlan(None, now, [])
    if m.paused(comet.PAUSE_ABSORB_OFFSET):
        return CometPlan(None, now, [(p.user, "absorb is paused on this market") for p in targets])
    quotes = [comet.absorb_quote(p, m) for p in targets]
    paid = sum(q.base_paid_out for q in quotes)
    seized = [sum(q.seized[i] for q in quotes) for i in range(len(m.assets))]
    after = [c + s for c, s in zip(m.collateral_reserves, seized, strict=True)]
    buys = plan_buys(m, m.reserves - paid, after, wallet_base, gas_cost_base, min_profit, slip, after_absorb=True)
    gain = sum(b.expected_gross_base - gas_cost_base for b in buys)
    if gain - gas_cost_base < min_profit and not settings.comet_absorb_always:
        why = (
            f"absorb unprofitable: purchases after it would gain {gain} - absorb gas {gas_cost_base} < "
            f"min {min_profit} (price units; wallet base {wallet_base}, reserves after {m.reserves - paid}, "
            f"target {m.target_reserves})"
        )
        return CometPlan(None, now, [(p.user, why) for p in targets])
    absorb = Absorb(
        accounts=tuple(p.user for p in targets),
        health_before=tuple(comet.health_factor_wad(p, m) / WAD for p in targets),
        expected_base_paid_out=paid,
        expected_seized=tuple((m.symbols[i], s) for i, s in enumerate(seized) if s),
        expected_gain_base=gain,
    )
    return CometPlan(absorb, buys, [])


# ---------------------------------------------------------------------------- Synthetix v3 perps


def decide_perps_liquidations(
    accounts: Iterable[perps.PerpsAccount], settings: LiquidateSettings, gas_cost_usd: int
) -> tuple[list[LiquidatePerps], list[tuple[str, str]]]:
    """`liquidate` for every account the market says it can liquidate (`canLiquidate`, read at the
    decision block) whose reward exceeds gas by `min_profit_usd`; richest first. Amounts in USD
    with 18 decimals."""
    min_profit = int(settings.min_profit_usd * perps.UNIT)
    chosen, skipped = [], []
    for a in accounts:
        if not a.can_liquidate:
            continue
        if not settings.enabled:
            skipped.append((a.user, "liquidation disabled"))
            continue
        profit = a.max_liquidation_reward - gas_cost_usd
        if profit < min_profit:
            skipped.append(
                (a.user, f"unprofitable: reward {a.max_liquidation_reward} - gas {gas_cost_usd} < {min_profit}")
            )
            continue
        chosen.append(
            LiquidatePerps(
                a.user,
                a.account_id,
                a.max_liquidation_reward,
                a.max_liquidation_reward,
                a.margin_ratio_wad / WAD,
            )
        )
    chosen.sort(key=lambda x: x.expected_reward, reverse=True)
    return chosen, skipped
