"""Flash-funded liquidation, protocol-neutral and pure: the sales a liquidation must quote, the
lenders that can fund it, the loan's fee, and the sizing that pays the most once the sale's price
impact, the fee and gas are counted. Each protocol's levers build the candidate sizes (exact, from
its own math); the app fetches the quotes (keeper.sources.uniswap); this module compares them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Source = Literal["uniswap", "aave", "morpho"]
LOAN_SOURCES: dict[str, int] = {"uniswap": 0, "aave": 1, "morpho": 2}
"""FlashBase.Source, by lender source."""


@dataclass(frozen=True)
class Ask:
    """A sale a liquidation would make: `amount_in` of token_in sold for token_out (the largest
    size of one account's liquidation; a block's asks of a pair are summed to size its curve)."""

    token_in: str
    token_out: str
    amount_in: int


@dataclass(frozen=True)
class Curve:
    """What selling along `path` pays at a block, quoted at amounts up to what the block's
    liquidations of the pair could sell together: (amount in, amount out), increasing. Between
    points it is linear, below the true (concave) curve: a conservative estimate."""

    path: bytes
    pools: frozenset[str]
    """The pools the path swaps through (lowercase): none of them may lend (their lock)."""
    points: tuple[tuple[int, int], ...]

    def out(self, amount_in: int) -> int:
        lo_in, lo_out = 0, 0
        for x, y in self.points:
            if amount_in <= x:
                return lo_out + (y - lo_out) * (amount_in - lo_in) // max(1, x - lo_in)
            lo_in, lo_out = x, y
        return lo_out  # beyond the last quote: no more than it (never above what was quoted)

    def marginal(self, sold_before: int, amount_in: int) -> int:
        """What a sale of `amount_in` pays after `sold_before` was sold along the path this block."""
        return self.out(sold_before + amount_in) - self.out(sold_before)


def pair(token_in: str, token_out: str) -> tuple[str, str]:
    return token_in.lower(), token_out.lower()


@dataclass(frozen=True)
class Lender:
    source: Source
    address: str
    """The Uniswap v3 pool, the Aave Pool or the Morpho contract."""
    fee_ppm: int
    """Uniswap: the pool's fee (hundredths of a bip); Aave: FLASHLOAN_PREMIUM_TOTAL x 100; Morpho: 0."""
    available: int
    """What it can lend of the token (the pool's balance, the reserve's liquidity)."""


@dataclass(frozen=True)
class FlashContext:
    """What the flash path needs at a block: a sale curve per pair and the lenders per token."""

    liquidator: str
    curves: Mapping[tuple[str, str], Curve] = field(default_factory=dict)
    """(token in, token out), lowercase -> the route's curve."""
    lenders: Mapping[str, Sequence[Lender]] = field(default_factory=dict)
    """Lowercase token -> who can lend it."""
    slippage_bps: int = 50
    busy: frozenset[tuple[str, str]] = frozenset()
    """Pairs another market's flash liquidations sell this block: left for the next block here
    (two markets' sales through one pool in one block would each be priced without the other's)."""


def flash_fee(lender: Lender, amount: int) -> int:
    """The loan's fee as the lender computes it: Uniswap v3 rounds up (FullMath.mulDivRoundingUp),
    Aave v3's percentMul rounds half up (premium in basis points), Morpho Blue lends for free."""
    if lender.source == "morpho":
        return 0
    if lender.source == "uniswap":
        return -(-amount * lender.fee_ppm // 1_000_000)
    bps = lender.fee_ppm // 100
    return (amount * bps + 5_000) // 10_000


def pick_lender(ctx: FlashContext, token: str, amount: int, avoid: frozenset[str]) -> Lender | None:
    """The cheapest lender of `amount` of `token` that is not a pool the sale swaps through."""
    usable = [
        lender
        for lender in ctx.lenders.get(token.lower(), ())
        if lender.available >= amount and lender.address.lower() not in avoid
    ]
    return min(usable, key=lambda lender: (flash_fee(lender, amount), -lender.available), default=None)


def min_out(amount_out: int, slippage_bps: int) -> int:
    """The sale's minimum out passed on chain: the quote less the slippage allowed."""
    return amount_out * (10_000 - slippage_bps) // 10_000


@dataclass(frozen=True)
class Sized:
    """One candidate size of one liquidation, priced: what it repays, what its sale pays, the loan."""

    index: int
    """Which of the candidate sizes."""
    repaid: int
    sold: int
    """Collateral units sold (0 when the collateral is the debt asset)."""
    received_out: int
    """What the sale pays (debt-asset units), after what this block's earlier sales took."""
    lender: Lender
    borrowed: int
    fee: int

    @property
    def net(self) -> int:
        """Debt-asset units left once the loan and its fee are repaid (before gas)."""
        return self.received_out - self.repaid - self.fee


def best_size(
    ctx: FlashContext,
    collateral: str,
    debt: str,
    sizes: Sequence[tuple[int, int, int]],
    sold_before: int = 0,
) -> Sized | None:
    """The most profitable of the candidate sizes, each (debt repaid, collateral received,
    borrowed above the repaid amount for interest accrued before inclusion), the sale priced on
    the pair's curve after `sold_before` units this block. None when none can be funded and sold."""
    same = collateral.lower() == debt.lower()
    if pair(collateral, debt) in ctx.busy:
        return None
    curve = None if same else ctx.curves.get(pair(collateral, debt))
    if curve is None and not same:
        return None
    best: Sized | None = None
    for k, (repaid, received, extra) in enumerate(sizes):
        out = received if curve is None else curve.marginal(sold_before, received)
        borrowed = repaid + extra
        lender = pick_lender(ctx, debt, borrowed, curve.pools if curve is not None else frozenset())
        if lender is None or out <= 0:
            continue
        option = Sized(k, repaid, 0 if same else received, out, lender, borrowed, flash_fee(lender, borrowed))
        if best is None or option.net > best.net:
            best = option
    return best
