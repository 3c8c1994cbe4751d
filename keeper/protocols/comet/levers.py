"""Compound v3 levers (pure): the exact base supply (repay) or collateral supply that brings a
watched account to its target; absorb the liquidatable accounts, then buy the protocol's
collateral at its store-front discount."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from keeper.protocols.base import LiquidationPlan, Skip
from keeper.protocols.comet import math as comet
from keeper.protocols.comet.actions import Absorb, BuyCollateral
from keeper.risk.intmath import WAD
from keeper.settings import LiquidateSettings, ProtectSettings
from keeper.strategy.actions import Protect
from keeper.strategy.sizing import Lever, choose


def decide_protect(
    pos: comet.CometPosition, m: comet.CometMarket, wallet: Sequence[int], settings: ProtectSettings
) -> Protect | None:
    """Compound v3: repay = supply the base asset to the account; supply = supply collateral
    (within its supply cap). `wallet` is indexed by column (base first)."""
    if m.paused(comet.PAUSE_SUPPLY_OFFSET):
        return None
    levers = [
        Lever(
            "repay",
            m.base_token,
            m.base_symbol,
            min(wallet[0], comet.borrow_balance(pos, m)),
            m.base_price,
            m.base_scale,
            lambda a: comet.health_factor_wad(comet.after_supply_base(pos, m, a), m),
        )
    ]
    for i, a in enumerate(m.assets):
        room = max(0, a.supply_cap - m.total_collateral[i])
        if a.liquidate_collateral_factor == 0:
            continue
        levers.append(
            Lever(
                "supply",
                a.asset,
                m.symbols[i],
                min(wallet[i + 1], room),
                m.prices[i],
                a.scale,
                lambda x, i=i: comet.health_factor_wad(comet.after_supply_collateral(pos, m, i, x), m),  # type: ignore[misc]
            )
        )
    return choose(pos.user, levers, comet.health_factor_wad(pos, m), settings)


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
) -> LiquidationPlan:
    """Absorb every liquidatable account in one call when the collateral it puts up for sale
    can be bought at a profit that covers the absorb's gas too (or always, with
    `comet_absorb_always`); then buy collateral while reserves are below target."""
    min_profit = int(settings.min_profit_usd * comet.PRICE_SCALE)
    replica = [p for p in positions if comet.is_liquidatable(p, m)]
    # the absorb batch holds only accounts Comet itself calls liquidatable at this block: one
    # account the replica gets wrong (or that changed since) cannot make the whole batch revert
    targets = [p for p in replica if p.liquidatable_onchain is not False]
    refused = [p for p in replica if p.liquidatable_onchain is False]
    slip = settings.comet_slippage_bps
    if not settings.enabled:
        return LiquidationPlan((), _skips(replica, m, "liquidation disabled"))
    if refused:
        plan = decide_comet(targets, m, wallet_base, settings, gas_cost_base)
        why = "Comet's isLiquidatable is false at this block (the replica says liquidatable): left out of the absorb"
        return LiquidationPlan(plan.actions, plan.skipped + _skips(refused, m, why))
    now = tuple(plan_buys(m, m.reserves, m.collateral_reserves, wallet_base, gas_cost_base, min_profit, slip))
    if not targets:
        return LiquidationPlan(now)
    if m.paused(comet.PAUSE_ABSORB_OFFSET):
        return LiquidationPlan(now, _skips(targets, m, "absorb is paused on this market"))
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
        return LiquidationPlan(now, _skips(targets, m, why))
    absorb = Absorb(
        accounts=tuple(p.user for p in targets),
        health=tuple(comet.health_factor_wad(p, m) / WAD for p in targets),
        expected_base_paid_out=paid,
        expected_seized=tuple((m.symbols[i], s) for i, s in enumerate(seized) if s),
        expected_gain_base=gain,
        bounded=not settings.comet_absorb_always,
    )
    return LiquidationPlan((absorb, *buys))


def _skips(positions: Iterable[comet.CometPosition], m: comet.CometMarket, reason: str) -> tuple[Skip, ...]:
    return tuple(
        Skip(
            p.user,
            reason,
            {
                "health_factor_wad": comet.health_factor_wad(p, m),
                "collateral_value": comet.collateral_value(p, m),
                "debt_value": comet.debt_value(p, m),
            },
        )
        for p in positions
    )
