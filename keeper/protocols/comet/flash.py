"""Compound v3 through keeper's FlashLiquidator (pure): absorb every liquidatable account, buy
the collateral that puts up for sale with base borrowed in a flash loan, sell it on Uniswap v3,
repay, in one transaction. Each purchase is sized for the sale's price impact (fractions of what
the protocol holds of the asset after the absorb); the whole pays after the loan's fee and gas
or it is not done."""

from __future__ import annotations

from collections.abc import Iterable

from keeper.protocols.base import LiquidationPlan, Skip
from keeper.protocols.comet import math as comet
from keeper.protocols.comet.actions import FlashAbsorb, FlashBuy
from keeper.risk.intmath import WAD
from keeper.settings import FlashSettings
from keeper.strategy.actions import Deleverage
from keeper.strategy.flash import Ask, FlashContext, flash_fee, min_out, pair, pick_lender


def _targets(positions: Iterable[comet.CometPosition], m: comet.CometMarket) -> list[comet.CometPosition]:
    """Accounts the replica and Comet itself call liquidatable (one Comet refuses would revert the batch)."""
    return [p for p in positions if comet.is_liquidatable(p, m) and p.liquidatable_onchain is not False]


def _for_sale(targets: list[comet.CometPosition], m: comet.CometMarket) -> tuple[int, list[int]]:
    """(base the absorb pays out, collateral the protocol holds per asset after it)."""
    quotes = [comet.absorb_quote(p, m) for p in targets]
    seized = [sum(q.seized[i] for q in quotes) for i in range(len(m.assets))]
    return sum(q.base_paid_out for q in quotes), [c + s for c, s in zip(m.collateral_reserves, seized, strict=True)]


def flash_asks(positions: Iterable[comet.CometPosition], m: comet.CometMarket) -> list[Ask]:
    targets = _targets(positions, m)
    if not targets:
        return []
    _, after = _for_sale(targets, m)
    return [Ask(a.asset, m.base_token, after[i]) for i, a in enumerate(m.assets) if after[i] > 0]


def decide_flash_comet(
    positions: Iterable[comet.CometPosition],
    m: comet.CometMarket,
    ctx: FlashContext,
    fs: FlashSettings,
    gas_cost_base: int,
    min_profit: int,
) -> LiquidationPlan:
    targets = _targets(positions, m)
    if not targets:
        return LiquidationPlan(())
    if m.paused(comet.PAUSE_ABSORB_OFFSET) or m.paused(comet.PAUSE_BUY_OFFSET):
        return LiquidationPlan((), _skips(targets, m, "flash: absorb or buyCollateral is paused on this market"))
    paid, after = _for_sale(targets, m)
    reserves = m.reserves - paid
    buys: list[FlashBuy] = []
    pools: set[str] = set()
    for i, a in enumerate(m.assets):
        curve = None if pair(a.asset, m.base_token) in ctx.busy else ctx.curves.get(pair(a.asset, m.base_token))
        if after[i] <= 0 or curve is None or not (reserves < 0 or reserves < m.target_reserves):
            continue
        best: tuple[int, int, int, int] | None = None  # (net, base, collateral, out)
        for f in fs.sizes:
            base_amount = comet.base_for_collateral(m, i, int(after[i] * f))
            got = comet.quote_collateral(m, i, base_amount)
            out = curve.out(got)
            if base_amount > 0 and (best is None or out - base_amount > best[0]):
                best = (out - base_amount, base_amount, got, out)
        if best is None or best[0] <= 0:
            continue
        _, base_amount, got, out = best
        buys.append(FlashBuy(a.asset, m.symbols[i], base_amount, got, "0x" + curve.path.hex(), out,
                             min_out(out, ctx.slippage_bps)))  # fmt: skip
        pools |= curve.pools
        reserves += base_amount
    if not buys:
        busy = [
            m.symbols[i] for i, a in enumerate(m.assets) if after[i] > 0 and pair(a.asset, m.base_token) in ctx.busy
        ]
        why = "flash: no purchase after the absorb sells at a profit"
        if busy:
            why = f"flash: {', '.join(busy)} is sold by another market's flash liquidation this block"
        return LiquidationPlan((), _skips(targets, m, why))
    borrowed = sum(b.base_amount for b in buys)
    lender = pick_lender(ctx, m.base_token, borrowed, frozenset(pools))
    if lender is None or lender.source == "aave":
        return LiquidationPlan((), _skips(targets, m, f"flash: no Uniswap v3 pool off the sale paths or Morpho lends "
                                                      f"{borrowed} {m.base_symbol}"))  # fmt: skip
    fee = flash_fee(lender, borrowed)
    net = sum(b.expected_out for b in buys) - borrowed - fee
    net_base = net * m.base_price // m.base_scale
    if net_base - gas_cost_base < min_profit:
        why = (f"flash: unprofitable: expected {net_base - gas_cost_base} < min {min_profit} (price units: sales less "
               f"purchases and loan fee {net_base}, gas {gas_cost_base})")  # fmt: skip
        return LiquidationPlan((), _skips(targets, m, why))
    action = FlashAbsorb(
        accounts=tuple(p.user for p in targets),
        health=tuple(comet.health_factor_wad(p, m) / WAD for p in targets),
        base_token=m.base_token,
        base_symbol=m.base_symbol,
        liquidator=ctx.liquidator,
        lender=lender.address,
        borrowed=borrowed,
        lender_source=lender.source,
        expected_fee=fee,
        buys=tuple(buys),
        expected_base_paid_out=paid,
        min_profit=max(1, -(-(gas_cost_base + min_profit) * m.base_scale // m.base_price)),
        expected_net=net,
        expected_gross_base=net_base,
        expected_gas_base=gas_cost_base,
    )
    return LiquidationPlan((action,))


def _skips(targets: list[comet.CometPosition], m: comet.CometMarket, reason: str) -> tuple[Skip, ...]:
    return tuple(Skip(p.user, reason, {"health_factor_wad": comet.health_factor_wad(p, m)}) for p in targets)


def flash_pairs(actions: Iterable[object]) -> set[tuple[str, str]]:
    """The (collateral, base) pairs these actions sell through Uniswap v3 (flash absorbs, deleverages)."""
    sold = {pair(a.collateral_asset, a.debt_asset) for a in actions if isinstance(a, Deleverage) and a.path}
    return sold | {pair(b.asset, a.base_token) for a in actions if isinstance(a, FlashAbsorb) for b in a.buys}
