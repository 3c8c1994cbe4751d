"""Compound v3 deleverage (pure): repay a protected account's borrow with its own collateral through
keeper's Deleverager (supplyTo the base asset, withdrawFrom the collateral after the account's
allow), sized to the target with Comet's integer math at the accrued indices (what supplyTo and
withdrawFrom compute with) and the sale's quoted curve (keeper.strategy.deleverage)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from keeper.protocols.comet import math as comet
from keeper.risk.intmath import MAX_UINT256
from keeper.settings import ProtectSettings
from keeper.strategy.actions import Deleverage
from keeper.strategy.deleverage import Leg, decide, quote_below_wad
from keeper.strategy.flash import Ask, FlashContext


def after_withdraw(pos: comet.CometPosition, i: int, amount: int) -> comet.CometPosition:
    """The position after withdrawFrom(account, collateral i, amount) (the asset leaves assetsIn at zero)."""
    coll = list(pos.collateral)
    coll[i] -= amount
    assets_in = pos.assets_in if coll[i] else pos.assets_in & ~(1 << i)
    return replace(pos, collateral=tuple(coll), assets_in=assets_in)


def _health(pos: comet.CometPosition, m: comet.CometMarket) -> int:
    """The health factor, 0 when Comet refuses the withdrawal (not borrow-collateralized)."""
    return comet.health_factor_wad(pos, m) if comet.is_borrow_collateralized(pos, m) else 0


def _usable(m: comet.CometMarket) -> bool:
    return not (m.paused(comet.PAUSE_SUPPLY_OFFSET) or m.paused(comet.PAUSE_WITHDRAW_OFFSET))


def _wanted(pos: comet.CometPosition, m: comet.CometMarket, ps: ProtectSettings) -> bool:
    hf = comet.health_factor_wad(pos, m)
    return hf != MAX_UINT256 and hf < quote_below_wad(ps)


def deleverage_asks(positions: Iterable[comet.CometPosition], m: comet.CometMarket, ps: ProtectSettings) -> list[Ask]:
    """Per collateral held: enough of it to repay the whole borrow (or all of it)."""
    asks = []
    for pos in positions:
        if not (_usable(m) and _wanted(pos, m, ps)):
            continue
        value = comet.debt_value(pos, m)
        for i, a in enumerate(m.assets):
            if pos.in_asset(i) and pos.collateral[i]:
                need = value * 12 // 10 * a.scale // max(1, m.prices[i])
                asks.append(Ask(a.asset, m.base_token, min(pos.collateral[i], need)))
    return asks


def decide_deleverage(
    pos: comet.CometPosition, m: comet.CometMarket, ctx: FlashContext, ps: ProtectSettings, target_wad: int
) -> Deleverage | None:
    """keeper.strategy.deleverage.decide over the collaterals the account holds."""
    hf_now = comet.health_factor_wad(pos, m)
    if hf_now == MAX_UINT256 or not _usable(m):
        return None
    borrow = comet.borrow_balance(pos, m)
    legs = []
    for i, a in enumerate(m.assets):
        if not (pos.in_asset(i) and pos.collateral[i]):
            continue

        def hf(r: int, w: int, i: int = i) -> int:
            return _health(after_withdraw(comet.after_supply_base(pos, m, r), i, w), m)

        legs.append(Leg(a.asset, m.symbols[i], a.asset, m.prices[i], a.scale, m.base_token, m.base_symbol,
                        m.base_price, m.base_scale, borrow, pos.collateral[i], hf))  # fmt: skip
    return decide(pos.user, legs, hf_now, ctx, ps, target_wad)
