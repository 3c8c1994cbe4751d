"""Deleverage sizing, pure: the collateral a sale needs for a given proceeds (inverting the quoted
curve), a repayment funded only when the sale less slippage covers the loan and its fee, and the
Aave lever landing on the target with the Pool's integer math: the smallest repayment that does,
the range the contract checks, a shallow pool costing more, and what cannot be funded."""

from keeper.protocols.aave_v3.deleverage import TRANSFER_MARGIN, after_withdraw, decide_deleverage
from keeper.protocols.aave_v3.math import WAD, account_data, after_repay, collateral_balance
from keeper.settings import ProtectSettings
from keeper.strategy.deleverage import funded, needed_in
from keeper.strategy.flash import Curve, FlashContext, Lender, flash_fee, min_out, pair
from tests.unit.test_aave_math import market, position
from tests.unit.test_flash_sizing import shallow_curve

E18, E6 = 10**18, 10**6
DELEVERAGER = "0x" + "dd" * 20
LENDER = Lender("uniswap", "0x" + "0b" * 20, 500, 10**30)


def context(m, curve: Curve, lenders=(LENDER,)) -> FlashContext:
    weth, usdc = m.reserves[0].asset, m.reserves[1].asset
    return FlashContext("", {pair(weth, usdc): curve}, {usdc.lower(): list(lenders)}, slippage_bps=50)


def test_needed_in_inverts_the_curve_to_the_unit():
    c = Curve(b"", frozenset(), ((10, 100), (20, 150), (40, 151)))
    for want in (1, 50, 100, 101, 149, 150, 151):
        x = needed_in(c, want)
        assert x is not None and c.out(x) >= want and c.out(x - 1) < want, (want, x)
    assert needed_in(c, 152) is None  # beyond the last quote: never assumed


def test_a_repayment_is_funded_only_when_the_sale_less_slippage_covers_loan_and_fee():
    curve = shallow_curve(2_000.0, 500.0)
    ctx = FlashContext("", {}, {"usdc": [LENDER]}, slippage_bps=50)
    got = funded(10_000 * E6, "usdc", curve, ctx, 50, 100 * E18)
    assert got is not None
    w, lender, fee, out, least = got
    assert lender == LENDER
    assert fee == flash_fee(LENDER, 10_000 * E6) and least == min_out(out, 50) >= 10_000 * E6 + fee
    assert min_out(curve.out(w - 10**12), 50) < 10_000 * E6 + fee  # hardly any more sold than needed
    assert funded(10_000 * E6, "usdc", curve, ctx, 50, w - 1) is None  # the account holds too little
    assert funded(10_000 * E6, "usdc", curve, FlashContext("", {}, {}), 50, 100 * E18) is None  # no lender


def test_aave_deleverage_lands_on_target_with_the_smallest_repayment():
    m = market(eth_price=2_000)
    p = position(10, 15_000)  # HF 10 x 2,000 x 0.83 / 15,000 = 1.1067
    ps = ProtectSettings(trigger_hf=1.15, target_hf=1.3, deleverager=DELEVERAGER)
    target = int(1.3 * WAD) * 10_002 // 10_000
    ctx = context(m, shallow_curve(2_000.0, 5_000.0))
    a = decide_deleverage(p, m, ctx, ps, target)
    assert a is not None and a.reaches_target and a.deleverager.lower() == DELEVERAGER
    assert a.collateral_token == m.reserves[0].a_token and a.borrowed == a.repay and a.path == "0x01"

    def hf(repay: int, withdraw: int) -> int:
        return account_data(after_withdraw(after_repay(p, m, 1, repay), m, 0, withdraw), m).health_factor_wad

    assert hf(a.repay, a.withdraw) >= target and abs(hf(a.repay, a.withdraw) / WAD - a.health_after) < 1e-12
    assert hf(a.repay, a.withdraw) / WAD < 1.3 * 1.001  # on target, not past it
    smaller = funded(a.repay - 1, m.reserves[1].asset, ctx.curves[pair(m.reserves[0].asset, m.reserves[1].asset)],
                     ctx, 50, collateral_balance(p, m, 0) - TRANSFER_MARGIN)  # fmt: skip
    assert smaller is not None and hf(a.repay - 1, smaller[0]) < target  # the smallest repayment that does
    assert a.min_out >= a.repay + a.expected_fee and a.expected_out >= a.min_out
    assert a.min_hf_wad == int(1.3 * WAD) - int(0.05 * WAD) and a.max_hf_wad == int(1.3 * WAD) + int(0.05 * WAD)
    assert a.cost_base > 0  # the loan's fee and the sale's impact


def test_a_shallow_pool_costs_more_and_an_unsellable_position_is_left_to_the_alert():
    m = market(eth_price=2_000)
    p = position(10, 15_000)
    ps = ProtectSettings(trigger_hf=1.15, target_hf=1.3, deleverager=DELEVERAGER)
    target = int(1.3 * WAD)
    deep = decide_deleverage(p, m, context(m, shallow_curve(2_000.0, 50_000.0)), ps, target)
    shallow = decide_deleverage(p, m, context(m, shallow_curve(2_000.0, 60.0)), ps, target)
    assert deep is not None and shallow is not None and shallow.cost_base > deep.cost_base
    assert shallow.withdraw > deep.withdraw
    tiny = Curve(b"\x01", frozenset(), ((10**15, 2 * E6),))  # the pool pays at most 2 USDC
    assert decide_deleverage(p, m, context(m, tiny), ps, target) is None
    assert decide_deleverage(p, m, context(m, shallow_curve(2_000.0, 5_000.0), lenders=()), ps, target) is None


def test_withdrawing_every_atoken_clears_the_collateral_flag():
    m = market()
    p = position(10, 0)
    assert p.is_collateral(0)
    assert not after_withdraw(p, m, 0, 10 * E18).is_collateral(0)
    assert after_withdraw(p, m, 0, 5 * E18).is_collateral(0)


class _Market:
    """Just what the planner's lever choice reads of a market."""

    def __init__(self, delev):
        from keeper.protocols.base import Capabilities

        self.capabilities = Capabilities(protect=("repay", "supply", "deleverage"), liquidation="", deleverage=True)
        self.delev = delev

    def deleverage(self, pos, ctx, ps):
        return self.delev


def test_prefer_orders_the_wallet_and_the_deleverage_among_those_reaching_the_target():
    from dataclasses import replace

    from keeper.strategy.actions import Protect
    from keeper.strategy.planner import _with_deleverage

    m = market(eth_price=2_000)
    p = position(10, 15_000)
    ps = ProtectSettings(trigger_hf=1.15, target_hf=1.3, deleverager=DELEVERAGER)
    delev = decide_deleverage(p, m, context(m, shallow_curve(2_000.0, 5_000.0)), ps, int(1.3 * WAD))
    assert delev is not None
    repay = Protect("repay", p.user, m.reserves[1].asset, "USDC", 1, 1, 1.1, 1.3, True)
    ctx = context(m, shallow_curve(2_000.0, 5_000.0))
    assert _with_deleverage(_Market(delev), p, [repay], ctx, ps) == [repay]  # unlisted: last
    first = ps.model_copy(update={"prefer": ("deleverage", "repay")})
    assert _with_deleverage(_Market(delev), p, [repay], ctx, first) == [delev]
    short = replace(repay, reaches_target=False, health_after=1.12)
    assert _with_deleverage(_Market(delev), p, [short], ctx, ps) == [delev]  # the wallet cannot: deleverage
    assert _with_deleverage(_Market(delev), p, [], ctx, ps) == [delev]
    assert _with_deleverage(_Market(None), p, [short], ctx, ps) == [short]
    assert _with_deleverage(_Market(delev), p, [repay], None, first) == [repay]  # no quotes this block
    unset = ps.model_copy(update={"deleverager": "", "prefer": ("deleverage",)})
    assert _with_deleverage(_Market(delev), p, [], ctx, unset) == []
