"""The backtest's deleverage lever: the live keeper's sizing (keeper.protocols.aave_v3.deleverage)
against a simulated Uniswap v3 full-range pool that the market's arbitrage keeps at the market
price (constant product, the pool's fee taken on the way in), and a flash loan at a fixed fee.
The sale lands `reaction_s` later at that moment's market price; it reverts as the Deleverager
would when its proceeds no longer cover the loan or the health factor leaves the range."""

from __future__ import annotations

from dataclasses import dataclass

from keeper.offline.scenario import BacktestKnobs
from keeper.protocols.aave_v3 import math as aave
from keeper.protocols.aave_v3.deleverage import after_withdraw, decide_deleverage
from keeper.settings import ProtectSettings
from keeper.strategy.actions import Deleverage
from keeper.strategy.flash import Curve, FlashContext, Lender, pair
from keeper.strategy.sizing import target_wad

POINTS = 24
SIMULATED = "0x" + "de" * 20
"""Stands for the Deleverager, the pool and the lender: nothing is called."""


def pool_out(amount_in: int, price_in: float, price_out: float, unit_in: int, unit_out: int, k: BacktestKnobs) -> int:
    """What selling `amount_in` pays in a full-range pool holding dex_depth_usd at the market price."""
    x0 = k.dex_depth_usd / 2 / price_in * unit_in
    y0 = k.dex_depth_usd / 2 / price_out * unit_out
    dx = amount_in * (1 - k.dex_fee_ppm / 1e6)
    return int(y0 * dx / (x0 + dx))


def context(market: aave.Market, market_usd: list[float], pos: aave.Position, k: BacktestKnobs) -> FlashContext:
    """Quotes of every collateral/debt pair the position holds, at the market's prices."""
    curves = {}
    for c, cr in enumerate(market.reserves):
        held = aave.collateral_balance(pos, market, c)
        for d, dr in enumerate(market.reserves):
            if c == d or not held or not aave.debt_balance(pos, market, d):
                continue
            units = (market.configs[c].unit, market.configs[d].unit)
            points = tuple(
                (x, pool_out(x, market_usd[c], market_usd[d], *units, k))
                for x in (held * (j + 1) // POINTS for j in range(POINTS))
            )
            curves[pair(cr.asset, dr.asset)] = Curve(b"\x01", frozenset(), points)
    lenders = {r.asset.lower(): [Lender("uniswap", SIMULATED, k.flash_fee_ppm, 10**40)] for r in market.reserves}
    return FlashContext("", curves, lenders, k.slippage_bps)


def decide(pos: aave.Position, market: aave.Market, market_usd: list[float], ps: ProtectSettings,
           k: BacktestKnobs) -> Deleverage | None:  # fmt: skip
    ps = ps.model_copy(update={"deleverager": SIMULATED})
    return decide_deleverage(pos, market, context(market, market_usd, pos, k), ps, target_wad(ps))


@dataclass(frozen=True)
class Landed:
    pos: aave.Position
    cost_usd: float
    """The collateral's market value sold less what came back in the debt asset (fees, impact)."""


def land(a: Deleverage, pos: aave.Position, market: aave.Market, market_usd: list[float],
         k: BacktestKnobs) -> Landed | None:  # fmt: skip
    """The deleverage at inclusion (None: the contract would revert)."""
    c, d = market.index_of(a.collateral_asset), market.index_of(a.debt_asset)
    cu, du = market.configs[c].unit, market.configs[d].unit
    out = pool_out(a.withdraw, market_usd[c], market_usd[d], cu, du, k)
    if out < max(a.min_out, a.repay + a.expected_fee):
        return None  # min out / SaleTooSmall
    after = after_withdraw(aave.after_repay(pos, market, d, a.repay), market, c, a.withdraw)
    if not a.min_hf_wad <= aave.account_data(after, market).health_factor_wad <= a.max_hf_wad:
        return None  # HealthOutOfRange
    sold = a.withdraw / cu * market_usd[c]
    return Landed(after, sold - (out - a.expected_fee) / du * market_usd[d])
