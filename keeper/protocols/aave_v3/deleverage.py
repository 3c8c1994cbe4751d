"""Aave v3 deleverage (pure): repay a protected account's variable debt with its own collateral
through keeper's Deleverager, sized exactly to the target with the Pool's integer math, the sale's
quoted curve and the loan's fee (keeper.strategy.deleverage)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

from keeper.protocols.aave_v3.math import Market, Position, account_data, after_repay, collateral_balance, variable_debt
from keeper.protocols.aave_v3.rounding import ray_div, ray_div_ceil
from keeper.risk.intmath import MAX_UINT256
from keeper.settings import ProtectSettings
from keeper.strategy.actions import Deleverage
from keeper.strategy.deleverage import Leg, decide, quote_below_wad
from keeper.strategy.flash import Ask, FlashContext

TRANSFER_MARGIN = 2
"""aToken units left behind when the most is taken: a transfer of the whole balance can round to
one scaled unit more than the account holds (and revert)."""


def after_withdraw(pos: Position, market: Market, i: int, amount: int) -> Position:
    """The position once `amount` of its column-i aTokens left it (the Deleverager's transferFrom:
    the scaled amount rounds half up, up from v3.5; the Pool clears the collateral flag when
    nothing is left)."""
    burn = ray_div_ceil if market.version.token_rounding else ray_div
    scaled = list(pos.scaled_collateral)
    scaled[i] = max(0, scaled[i] - burn(amount, market.income_ray[i]))
    config = pos.user_config if scaled[i] else pos.user_config & ~(1 << (2 * i + 1))
    return replace(pos, scaled_collateral=tuple(scaled), user_config=config)


def _pairs(pos: Position, market: Market) -> Iterator[tuple[int, int]]:
    """(collateral, debt) columns the Deleverager can use: enabled collateral held, variable debt,
    both reserves active and not paused."""
    usable = [cfg.active and not cfg.paused for cfg in market.configs]
    for c in range(len(market.reserves)):
        if usable[c] and pos.is_collateral(c) and collateral_balance(pos, market, c) > TRANSFER_MARGIN:
            for d in range(len(market.reserves)):
                if usable[d] and pos.is_borrowing(d) and variable_debt(pos, market, d):
                    yield c, d


def _wanted(pos: Position, market: Market, ps: ProtectSettings) -> bool:
    """Below where its trigger mode can act (keeper.strategy.deleverage.quote_below_wad)."""
    hf = account_data(pos, market).health_factor_wad
    return hf != MAX_UINT256 and hf < quote_below_wad(ps)


def deleverage_asks(positions: Iterable[Position], market: Market, ps: ProtectSettings) -> list[Ask]:
    """The sales to quote: per pair, enough collateral to repay the whole debt (or all of it held)."""
    asks = []
    for pos in positions:
        if not _wanted(pos, market, ps):
            continue
        for c, d in _pairs(pos, market):
            if c == d:
                continue
            value = variable_debt(pos, market, d) * market.prices_base[d] // market.configs[d].unit
            need = value * 12 // 10 * market.configs[c].unit // max(1, market.prices_base[c])
            amount = min(collateral_balance(pos, market, c), need)
            asks.append(Ask(market.reserves[c].asset, market.reserves[d].asset, amount))
    return asks


def decide_deleverage(
    pos: Position, market: Market, ctx: FlashContext, ps: ProtectSettings, target_wad: int
) -> Deleverage | None:
    """keeper.strategy.deleverage.decide over the account's usable pairs."""
    hf_now = account_data(pos, market).health_factor_wad
    if hf_now == MAX_UINT256:
        return None
    legs = []
    for c, d in _pairs(pos, market):

        def hf(r: int, w: int, c: int = c, d: int = d) -> int:
            return account_data(after_withdraw(after_repay(pos, market, d, r), market, c, w), market).health_factor_wad

        rc, rd, cc, cd = market.reserves[c], market.reserves[d], market.configs[c], market.configs[d]
        legs.append(Leg(rc.asset, rc.symbol, rc.a_token, market.prices_base[c], cc.unit,
                        rd.asset, rd.symbol, market.prices_base[d], cd.unit, variable_debt(pos, market, d),
                        collateral_balance(pos, market, c) - TRANSFER_MARGIN, hf))  # fmt: skip
    return decide(pos.user, legs, hf_now, ctx, ps, target_wad)
