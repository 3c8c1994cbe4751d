"""Deleverage sizing, protocol-neutral and pure: the smallest repayment of a debt, funded by a flash
loan and by selling the position's own collateral, that brings the position to its target.

For a repayment R the loan is R (the cheapest lender able to lend it that the sale does not swap
through) and its fee f; the collateral sold is the least W whose quoted sale, less the slippage
allowed, still covers R + f. The health factor after (R repaid, W taken) comes from the
protocol's own integer math (a callback), and grows with R while the collateral is worth more
than the debt plus the sale's costs, which is what a position near its trigger satisfies. So one
search bounds R by what can be funded and sold, and a second finds the smallest R that reaches
the target. Each protocol's levers build the callbacks (keeper/protocols/<name>/deleverage.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from keeper.risk.intmath import MAX_UINT256, WAD, wad_to_health
from keeper.settings import ProtectSettings
from keeper.strategy.actions import Deleverage
from keeper.strategy.flash import Curve, FlashContext, Lender, flash_fee, min_out, pair, pick_lender


@dataclass(frozen=True)
class Sizing:
    repay: int
    withdraw: int
    """Collateral units taken from the position and sold (repaid + fee when it is the debt asset)."""
    hf_wad: int
    lender: Lender
    fee: int
    out: int
    """What the sale is quoted to pay (debt-asset units; `withdraw` when nothing is sold)."""
    min_out: int


def needed_in(curve: Curve, amount_out: int) -> int | None:
    """The least amount in whose quoted out is at least `amount_out` (None: more than the
    curve's last quote pays)."""
    if amount_out <= 0:
        return 0
    lo_in, lo_out = 0, 0
    for x, y in curve.points:
        if y >= amount_out:
            guess = lo_in + -(-(amount_out - lo_out) * (x - lo_in) // max(1, y - lo_out))
            while curve.out(guess) < amount_out and guess < x:  # the floor divisions of `out`
                guess += 1
            return guess
        lo_in, lo_out = x, y
    return None


def funded(
    repay: int, debt: str, curve: Curve | None, ctx: FlashContext, slippage_bps: int, max_withdraw: int
) -> tuple[int, Lender, int, int, int] | None:
    """(collateral to sell, lender, fee, quoted out, min out) for repaying `repay`; None when no
    lender can lend it or the collateral cannot cover the loan and its fee."""
    lender = pick_lender(ctx, debt, repay, curve.pools if curve is not None else frozenset())
    if lender is None:
        return None
    fee = flash_fee(lender, repay)
    owed = repay + fee
    if curve is None:  # the collateral is the debt asset: no sale
        return (owed, lender, fee, owed, owed) if owed <= max_withdraw else None
    want = -(-owed * 10_000 // (10_000 - slippage_bps)) + 1
    w = needed_in(curve, want)
    if w is None or w > max_withdraw:
        return None
    out = curve.out(w)
    least = min_out(out, slippage_bps)
    return (w, lender, fee, out, least) if least >= owed else None


def size_to_target(
    hf_after: Callable[[int, int], int],
    max_repay: int,
    max_withdraw: int,
    debt: str,
    curve: Curve | None,
    ctx: FlashContext,
    target_wad: int,
) -> Sizing | None:
    """The smallest repayment in [1, max_repay] reaching `target_wad`, or the largest that can be
    funded when none does. `hf_after(repay, withdraw)` is the health factor (WAD) afterwards."""

    def at(repay: int) -> Sizing | None:
        got = funded(repay, debt, curve, ctx, ctx.slippage_bps, max_withdraw)
        if got is None:
            return None
        w, lender, fee, out, least = got
        return Sizing(repay, w, hf_after(repay, w), lender, fee, out, least)

    if max_repay <= 0 or at(1) is None:
        return None
    lo, hi = 1, max_repay  # the largest repayment that can be funded
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if at(mid) is not None:
            lo = mid
        else:
            hi = mid - 1
    top = at(lo)
    assert top is not None
    if top.hf_wad < target_wad:
        return top
    lo, hi = 1, top.repay
    while lo < hi:
        mid = (lo + hi) // 2
        s = at(mid)
        if s is not None and s.hf_wad >= target_wad:
            hi = mid
        else:
            lo = mid + 1
    return at(lo)


@dataclass(frozen=True)
class Leg:
    """A collateral/debt pair a protected position could deleverage with, from its market's math."""

    collateral: str
    collateral_symbol: str
    collateral_token: str
    """What the Deleverager takes from the account (Aave: the aToken; Comet: the asset)."""
    collateral_price: int
    collateral_unit: int
    debt: str
    debt_symbol: str
    debt_price: int
    debt_unit: int
    max_repay: int
    max_withdraw: int
    hf_after: Callable[[int, int], int]
    """(repaid, collateral taken) -> health factor afterwards (WAD), the market's integer math."""


def quote_below_wad(ps: ProtectSettings) -> int:
    """The health factor under which a protected position's sales are quoted each block: its
    trigger in static mode (the lever acts only below it), the highest target the predictive
    trigger may act for otherwise."""
    top = ps.trigger_hf if ps.mode == "static" else max(ps.trigger_hf, ps.target_hf, ps.predictive.max_target_hf)
    return int(top * WAD)


def decide(
    account: str, legs: Sequence[Leg], hf_now: int, ctx: FlashContext, ps: ProtectSettings, target_wad: int
) -> Deleverage | None:
    """The cheapest leg's deleverage reaching `target_wad`, or, when none does, the one that gets
    closest if it covers at least half the way (less is not worth its gas); None when nothing can
    be funded and sold."""
    options: list[tuple[Leg, Sizing, int]] = []
    for leg in legs:
        same = leg.collateral.lower() == leg.debt.lower()
        curve = None if same else ctx.curves.get(pair(leg.collateral, leg.debt))
        if not same and (curve is None or pair(leg.collateral, leg.debt) in ctx.busy):
            continue
        s = size_to_target(leg.hf_after, leg.max_repay, leg.max_withdraw, leg.debt, curve, ctx, target_wad)
        if s is not None and s.hf_wad > hf_now:
            sold = s.withdraw * leg.collateral_price // leg.collateral_unit
            options.append((leg, s, sold - (s.out - s.fee) * leg.debt_price // leg.debt_unit))
    reaching = [o for o in options if o[1].hf_wad >= target_wad]
    halfway = [o for o in options if o[1].hf_wad >= hf_now + (target_wad - hf_now) // 2]
    if reaching:
        leg, s, cost = min(reaching, key=lambda o: o[2])
    elif halfway:
        leg, s, cost = max(halfway, key=lambda o: o[1].hf_wad)
    else:
        return None
    tol = int(ps.deleverage_tolerance * WAD)
    reaches = s.hf_wad >= target_wad
    low = int(ps.target_hf * WAD) - tol if reaches else max(hf_now + 1, s.hf_wad - tol)
    high = MAX_UINT256 if s.hf_wad == MAX_UINT256 else max(int(ps.target_hf * WAD) + tol, s.hf_wad + tol // 2)
    curve = ctx.curves.get(pair(leg.collateral, leg.debt))
    return Deleverage(
        account=account,
        deleverager=ps.deleverager,
        collateral_asset=leg.collateral,
        collateral_symbol=leg.collateral_symbol,
        collateral_token=leg.collateral_token,
        debt_asset=leg.debt,
        debt_symbol=leg.debt_symbol,
        repay=s.repay,
        withdraw=s.withdraw,
        lender_source=s.lender.source,
        lender=s.lender.address,
        borrowed=s.repay,
        expected_fee=s.fee,
        path="0x" + curve.path.hex() if curve is not None and leg.collateral.lower() != leg.debt.lower() else "",
        expected_out=s.out,
        min_out=s.min_out,
        min_hf_wad=low,
        max_hf_wad=high,
        cost_base=cost,
        health_before=wad_to_health(hf_now),
        health_after=wad_to_health(s.hf_wad),
        reaches_target=reaches,
    )
