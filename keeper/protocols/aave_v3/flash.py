"""Aave v3 liquidations funded by a flash loan (pure): for each account below 1, candidate sizes of
each collateral/debt pair computed exactly as the Pool would (close factor, capped branch, dust
rule, protocol fee), the sales they need quoted, and the size whose sale pays the most once the
loan's fee, gas and slippage are counted (price impact makes the largest not always the best)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from keeper.protocols.aave_v3.actions import FlashLiquidate
from keeper.protocols.aave_v3.levers import FULL_DEBT_HEADROOM, _skip
from keeper.protocols.aave_v3.liquidation import liquidation_quote, max_liquidatable_debt, user_reserve_debt
from keeper.protocols.aave_v3.math import (
    HEALTH_FACTOR_LIQUIDATION_THRESHOLD,
    Market,
    Position,
    account_data,
    collateral_balance,
)
from keeper.protocols.base import LiquidationPlan, Skip
from keeper.risk.intmath import MAX_UINT256, WAD
from keeper.settings import FlashSettings
from keeper.strategy.actions import Deleverage
from keeper.strategy.flash import Ask, FlashContext, Sized, best_size, min_out, pair


@dataclass(frozen=True)
class Size:
    debt_to_cover: int
    """The liquidationCall argument (MAX_UINT256: all the Pool allows, sized at inclusion)."""
    repaid: int
    received: int
    headroom: int


def sizes(pos: Position, market: Market, c: int, d: int, fractions: Sequence[float], liquidator: str) -> list[Size]:
    """Candidate liquidations of the pair: the largest the Pool allows, then fractions of it."""
    acct = account_data(pos, market)
    max_debt = max_liquidatable_debt(pos, market, c, d, acct)
    whole_debt = user_reserve_debt(pos, market, d)
    out: list[Size] = []
    seen: set[int] = set()
    for f in fractions:
        cover = max_debt if f >= 1 else int(max_debt * f)
        if cover <= 0:
            continue
        q = liquidation_quote(pos, market, c, d, cover, liquidator)
        if q.error or q.debt_repaid == 0 or q.debt_repaid in seen:
            continue
        seen.add(q.debt_repaid)
        whole = q.capped or q.debt_repaid == whole_debt
        arg = MAX_UINT256 if whole else q.debt_repaid
        headroom = q.debt_repaid // FULL_DEBT_HEADROOM + 1 if whole else 0
        out.append(Size(arg, q.debt_repaid, q.collateral_received, headroom))
    return out


def pairs(pos: Position, market: Market) -> Iterable[tuple[int, int]]:
    n = len(market.reserves)
    for c in range(n):
        if pos.is_collateral(c) and collateral_balance(pos, market, c):
            for d in range(n):
                if user_reserve_debt(pos, market, d):
                    yield c, d


def flash_asks(positions: Iterable[Position], market: Market, fs: FlashSettings, liquidator: str) -> list[Ask]:
    """The largest sale each liquidatable account's pairs would make (they size the curves)."""
    asks: list[Ask] = []
    for pos in positions:
        if account_data(pos, market).health_factor_wad >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD:
            continue
        for c, d, options in candidates(pos, market, fs, liquidator):
            if options and c != d:
                received = max(s.received for s in options)
                asks.append(Ask(market.reserves[c].asset, market.reserves[d].asset, received))
    return asks


Candidates = list[tuple[int, int, list[Size]]]
"""(collateral, debt, candidate sizes) of one account's pairs."""


def candidates(pos: Position, market: Market, fs: FlashSettings, liquidator: str) -> Candidates:
    return [(c, d, sizes(pos, market, c, d, fs.sizes, liquidator)) for c, d in pairs(pos, market)]


def _best(
    market: Market, ctx: FlashContext, options: Candidates, sold: dict[tuple[str, str], int]
) -> tuple[int, int, Size, Sized] | None:
    """The account's best (collateral, debt, size, priced) after what this block already sells."""
    best = None
    for c, d, found in options:
        ca, da = market.reserves[c].asset, market.reserves[d].asset
        pick = best_size(ctx, ca, da, [(s.repaid, s.received, s.headroom) for s in found], sold.get(pair(ca, da), 0))
        if pick is None:
            continue
        value = pick.net * market.prices_base[d] // market.configs[d].unit
        if best is None or value > best[0]:
            best = (value, c, d, found[pick.index], pick)
    return None if best is None else best[1:]


def decide_flash(
    positions: Iterable[Position],
    market: Market,
    ctx: FlashContext,
    fs: FlashSettings,
    gas_cost_base: int,
    min_profit_base: int,
) -> LiquidationPlan:
    """The best flash-funded liquidation of each account that pays min_profit after gas, in the
    order they execute: the most profitable first, each later sale of a pair priced after the
    earlier ones (they go through the same pool in the same block)."""
    liquidatable = [
        p for p in positions if account_data(p, market).health_factor_wad < HEALTH_FACTOR_LIQUIDATION_THRESHOLD
    ]
    options = {p.user: candidates(p, market, fs, ctx.liquidator) for p in liquidatable}  # exact math, once
    alone = {p.user: _best(market, ctx, options[p.user], {}) for p in liquidatable}

    def standalone(p: Position) -> int:
        found = alone[p.user]
        return -1 if found is None else found[3].net * market.prices_base[found[1]] // market.configs[found[1]].unit

    sold: dict[tuple[str, str], int] = {}
    chosen: list[FlashLiquidate] = []
    skipped: list[Skip] = []
    for pos in sorted(liquidatable, key=standalone, reverse=True):
        found = _best(market, ctx, options[pos.user], sold) if alone[pos.user] is not None else None
        if found is None:
            busy = {market.reserves[c].symbol for c, d, _ in options[pos.user]
                    if pair(market.reserves[c].asset, market.reserves[d].asset) in ctx.busy}  # fmt: skip
            why = "flash: no lender and priced sale for any collateral/debt pair"
            if busy:
                why = f"flash: {', '.join(sorted(busy))} is sold by another market's flash liquidation this block"
            skipped.append(_skip(pos, market, why))
            continue
        c, d, size, pick = found
        price, unit = market.prices_base[d], market.configs[d].unit
        net_base = pick.net * price // unit
        if net_base - gas_cost_base < min_profit_base:
            why = (f"flash: unprofitable: expected {net_base - gas_cost_base} < min {min_profit_base} (base units: "
                   f"sale less repaid and loan fee {net_base}, gas {gas_cost_base})")  # fmt: skip
            skipped.append(_skip(pos, market, why))
            continue
        ca, da = market.reserves[c].asset, market.reserves[d].asset
        curve = ctx.curves.get(pair(ca, da)) if c != d else None
        sold[pair(ca, da)] = sold.get(pair(ca, da), 0) + pick.sold
        chosen.append(
            FlashLiquidate(
                account=pos.user,
                collateral_asset=ca,
                collateral_symbol=market.reserves[c].symbol,
                debt_asset=da,
                debt_symbol=market.reserves[d].symbol,
                debt_to_cover=size.debt_to_cover,
                max_spend=0,
                expected_debt_repaid=size.repaid,
                expected_collateral=size.received,
                expected_gross_base=net_base,
                expected_gas_base=gas_cost_base,
                health_before=account_data(pos, market).health_factor_wad / WAD,
                liquidator=ctx.liquidator,
                lender_source=pick.lender.source,
                lender=pick.lender.address,
                borrowed=pick.borrowed,
                expected_fee=pick.fee,
                path="0x" + curve.path.hex() if curve is not None else "",
                expected_out=pick.received_out,
                min_out=min_out(pick.received_out, ctx.slippage_bps) if curve is not None else 0,
                min_profit=max(1, -(-(gas_cost_base + min_profit_base) * unit // price)),
                expected_net=pick.net,
            )
        )
    return LiquidationPlan(tuple(chosen), tuple(skipped))


def flash_pairs(actions: Iterable[object]) -> set[tuple[str, str]]:
    """The (collateral, debt) pairs these actions sell through Uniswap v3 (flash liquidations, deleverages)."""
    return {
        pair(a.collateral_asset, a.debt_asset) for a in actions if isinstance(a, FlashLiquidate | Deleverage) and a.path
    }
