"""The flash path's arithmetic, pure: the lenders' fees rounded as they round them, the sale curve
(linear between quotes, never above the last), the cheapest lender outside the sale's pools,
and sizing for price impact: where the pool is shallow the best liquidation is not the largest."""

from keeper.strategy.flash import Curve, FlashContext, Lender, best_size, flash_fee, min_out, pair, pick_lender

WETH, USDC = "0x" + "aa" * 20, "0x" + "bb" * 20
E18, E6 = 10**18, 10**6


def test_fees_round_as_the_lenders_do():
    uni = Lender("uniswap", "0x" + "01" * 20, 500, 10**30)
    aave = Lender("aave", "0x" + "02" * 20, 5 * 100, 10**30)
    assert flash_fee(uni, 1_000_001) == 501  # mulDivRoundingUp(1,000,001 x 500 / 1e6) = 500.0005 -> 501
    assert flash_fee(aave, 1_000_001) == 500  # percentMul(1,000,001, 5): 500.0005 half-up -> 500
    assert flash_fee(aave, 1_000_000 + 1_000) == 501  # 500.5 -> 501 (half up)
    assert min_out(10_000, 50) == 9_950
    morpho = Lender("morpho", "0x" + "03" * 20, 0, 10**30)
    assert flash_fee(morpho, 10**24) == 0  # Morpho Blue lends for free
    ctx = FlashContext("", {}, {USDC: [uni, aave, morpho]})
    assert pick_lender(ctx, USDC, 1_000_000, frozenset()) == morpho


def test_curve_is_linear_between_quotes_and_capped_at_the_last():
    c = Curve(b"", frozenset(), ((10, 100), (20, 150)))
    assert [c.out(x) for x in (0, 5, 10, 15, 20, 30)] == [0, 50, 100, 125, 150, 150]
    assert c.marginal(10, 10) == 50  # a sale after the first 10 units pays the second segment


def test_the_lender_is_the_cheapest_that_is_not_on_the_sale_path():
    sale_pool = "0x" + "0a" * 20
    cheap_but_on_path = Lender("uniswap", sale_pool, 100, 10**30)
    other = Lender("uniswap", "0x" + "0b" * 20, 500, 10**30)
    too_small = Lender("aave", "0x" + "0c" * 20, 0, 10)
    ctx = FlashContext("0x" + "ff" * 20, {}, {USDC: [cheap_but_on_path, other, too_small]})
    assert pick_lender(ctx, USDC, 1_000, frozenset({sale_pool})) == other
    assert pick_lender(ctx, USDC, 1_000, frozenset()) == cheap_but_on_path
    assert pick_lender(ctx, USDC, 10**31, frozenset()) is None


def shallow_curve(price: float, depth_weth: float, points: int = 40) -> Curve:
    """A constant-product pool's proceeds for selling WETH (no fee), quoted at `points` amounts."""
    x0, y0 = depth_weth * E18, depth_weth * price * E6
    pts = []
    for k in range(1, points + 1):
        dx = int(40 * E18 * k / points)
        pts.append((dx, int(y0 - x0 * y0 / (x0 + dx))))
    return Curve(b"\x01", frozenset({"0x" + "0a" * 20}), tuple(pts))


def test_price_impact_makes_a_partial_liquidation_pay_more_than_the_largest():
    # repay r USDC, receive r / 2300 x 1.05 WETH (5% bonus), sell it in a pool of 200 WETH
    lender = Lender("uniswap", "0x" + "0b" * 20, 500, 10**30)
    ctx = FlashContext("0x" + "ff" * 20, {pair(WETH, USDC): shallow_curve(2_300.0, 200.0)}, {USDC: [lender]})
    sizes = [(int(r * E6), int(r / 2_300 * 1.05 * E18), 0) for r in (80_000, 56_000, 40_000, 24_000, 12_000)]
    best = best_size(ctx, WETH, USDC, sizes)
    assert best is not None
    nets = [best_size(ctx, WETH, USDC, [s]).net for s in sizes]  # type: ignore[union-attr]
    assert nets[0] < max(nets), nets  # the largest loses to impact
    assert best.index == nets.index(max(nets)) and best.index > 0
    # in a deep pool the largest wins
    deep = FlashContext(ctx.liquidator, {pair(WETH, USDC): shallow_curve(2_300.0, 200_000.0)}, ctx.lenders)
    assert best_size(deep, WETH, USDC, sizes).index == 0  # type: ignore[union-attr]
    # after this block's earlier sales of the pair, the same size pays less
    later = best_size(deep, WETH, USDC, sizes[:1], sold_before=30 * E18)
    assert later is not None and later.received_out < best_size(deep, WETH, USDC, sizes[:1]).received_out  # type: ignore[union-attr]


def test_a_pair_another_market_sells_this_block_is_left_for_the_next():
    lender = Lender("uniswap", "0x" + "0b" * 20, 500, 10**30)
    curves = {pair(WETH, USDC): shallow_curve(2_300.0, 200_000.0)}
    sizes = [(int(2_000 * E6), int(2_000 / 2_300 * 1.05 * E18), 0)]
    free = FlashContext("0x" + "ff" * 20, curves, {USDC: [lender]})
    busy = FlashContext(free.liquidator, curves, free.lenders, busy=frozenset({pair(WETH, USDC)}))
    assert best_size(free, WETH, USDC, sizes) is not None
    assert best_size(busy, WETH, USDC, sizes) is None
