"""Morpho Blue's integer math, as the Morpho contract computes it (pure): shares and assets with
virtual shares and assets, interest accrued with `wTaylorCompounded` of the IRM's rate and the
fee taken in supply shares, health as collateral x price / 1e36 x LLTV against borrowed assets
rounded up, and liquidations sized with the incentive factor min(1.15, 1 / (1 - 0.3 x (1 - LLTV)))
and bad debt realized when no collateral is left."""

from __future__ import annotations

from dataclasses import dataclass, replace

from eth_abi import encode
from eth_utils import keccak

from keeper.risk.intmath import MAX_UINT256

NAME = "morpho-blue"
WAD = 10**18
ORACLE_PRICE_SCALE = 10**36
LIQUIDATION_CURSOR = 3 * 10**17
MAX_LIQUIDATION_INCENTIVE_FACTOR = 115 * 10**16
VIRTUAL_SHARES = 10**6
VIRTUAL_ASSETS = 1


def mul_div_down(x: int, y: int, d: int) -> int:
    return x * y // d


def mul_div_up(x: int, y: int, d: int) -> int:
    return (x * y + (d - 1)) // d


def w_mul_down(x: int, y: int) -> int:
    return x * y // WAD


def w_div_down(x: int, y: int) -> int:
    return x * WAD // y


def w_div_up(x: int, y: int) -> int:
    return mul_div_up(x, WAD, y)


def w_taylor_compounded(x: int, n: int) -> int:
    """e^(nx) - 1 by the first three terms of its Taylor series (MathLib)."""
    first = x * n
    second = mul_div_down(first, first, 2 * WAD)
    third = mul_div_down(second, first, 3 * WAD)
    return first + second + third


def to_shares_down(assets: int, total_assets: int, total_shares: int) -> int:
    return mul_div_down(assets, total_shares + VIRTUAL_SHARES, total_assets + VIRTUAL_ASSETS)


def to_shares_up(assets: int, total_assets: int, total_shares: int) -> int:
    return mul_div_up(assets, total_shares + VIRTUAL_SHARES, total_assets + VIRTUAL_ASSETS)


def to_assets_down(shares: int, total_assets: int, total_shares: int) -> int:
    return mul_div_down(shares, total_assets + VIRTUAL_ASSETS, total_shares + VIRTUAL_SHARES)


def to_assets_up(shares: int, total_assets: int, total_shares: int) -> int:
    return mul_div_up(shares, total_assets + VIRTUAL_ASSETS, total_shares + VIRTUAL_SHARES)


@dataclass(frozen=True)
class MarketParams:
    loan_token: str
    collateral_token: str
    oracle: str
    irm: str
    lltv: int

    def as_tuple(self) -> tuple[str, str, str, str, int]:
        return (self.loan_token, self.collateral_token, self.oracle, self.irm, self.lltv)

    @property
    def id(self) -> bytes:
        """MarketParamsLib.id: keccak256 of the five 32-byte words."""
        return keccak(encode(["address", "address", "address", "address", "uint256"], list(self.as_tuple())))


@dataclass(frozen=True)
class MarketState:
    """`market(id)` of the Morpho contract."""

    total_supply_assets: int
    total_supply_shares: int
    total_borrow_assets: int
    total_borrow_shares: int
    last_update: int
    fee: int

    def accrued(self, borrow_rate: int, now: int, *, has_irm: bool = True) -> MarketState:
        """The state `_accrueInterest` leaves at time `now`, given the IRM's rate for this state
        (`borrowRateView(marketParams, market)` at the same block)."""
        elapsed = now - self.last_update
        if elapsed <= 0:
            return self
        if not has_irm:
            return replace(self, last_update=now)
        interest = w_mul_down(self.total_borrow_assets, w_taylor_compounded(borrow_rate, elapsed))
        supply = self.total_supply_assets + interest
        shares = self.total_supply_shares
        if self.fee:
            fee_amount = w_mul_down(interest, self.fee)
            shares += to_shares_down(fee_amount, supply - fee_amount, shares)
        return MarketState(supply, shares, self.total_borrow_assets + interest, self.total_borrow_shares, now, self.fee)


@dataclass(frozen=True)
class Position:
    """`position(id, user)`: supply shares, borrow shares, collateral (collateral token units)."""

    user: str
    block: int
    supply_shares: int
    borrow_shares: int
    collateral: int


def borrowed(pos: Position, m: MarketState) -> int:
    """The position's debt in loan token units, rounded up (as `_isHealthy`)."""
    return to_assets_up(pos.borrow_shares, m.total_borrow_assets, m.total_borrow_shares)


def max_borrow(pos: Position, price: int, lltv: int) -> int:
    return w_mul_down(mul_div_down(pos.collateral, price, ORACLE_PRICE_SCALE), lltv)


def is_healthy(pos: Position, m: MarketState, price: int, lltv: int) -> bool:
    return pos.borrow_shares == 0 or max_borrow(pos, price, lltv) >= borrowed(pos, m)


def health_factor_wad(pos: Position, m: MarketState, price: int, lltv: int) -> int:
    """max borrow / borrowed, WAD, floored: below 1e18 exactly where Morpho finds it unhealthy."""
    debt = borrowed(pos, m) if pos.borrow_shares else 0
    if debt == 0:
        return MAX_UINT256
    return max_borrow(pos, price, lltv) * WAD // debt


def incentive_factor(lltv: int) -> int:
    """min(1.15, 1 / (1 - 0.3 x (1 - LLTV))), WAD."""
    return min(MAX_LIQUIDATION_INCENTIVE_FACTOR, w_div_down(WAD, WAD - w_mul_down(LIQUIDATION_CURSOR, WAD - lltv)))


@dataclass(frozen=True)
class Liquidation:
    seized: int
    """Collateral units the liquidator receives."""
    repaid_shares: int
    repaid_assets: int
    """Loan token units the liquidator pays."""
    bad_debt_assets: int
    """Debt written off against suppliers when no collateral is left."""


def liquidation(pos: Position, m: MarketState, price: int, lltv: int, seized: int) -> Liquidation | None:
    """`liquidate(marketParams, borrower, seized, 0, data)` on the accrued state `m`; None when
    Morpho would revert (a healthy position, more than it holds, or more shares than it owes)."""
    if seized <= 0 or seized > pos.collateral or is_healthy(pos, m, price, lltv):
        return None
    tba, tbs = m.total_borrow_assets, m.total_borrow_shares
    quoted = mul_div_up(seized, price, ORACLE_PRICE_SCALE)
    shares = to_shares_up(w_div_up(quoted, incentive_factor(lltv)), tba, tbs)
    if shares > pos.borrow_shares:
        return None
    assets = to_assets_up(shares, tba, tbs)
    bad = 0
    if seized == pos.collateral and pos.borrow_shares > shares:
        tba_after = max(0, tba - assets)
        bad = min(tba_after, to_assets_up(pos.borrow_shares - shares, tba_after, tbs - shares))
    return Liquidation(seized, shares, assets, bad)


def max_seizable(pos: Position, m: MarketState, price: int, lltv: int) -> int:
    """The most collateral one liquidation can take: what repaying every borrow share buys, or
    all the collateral (the rest of the debt is then bad debt)."""
    if is_healthy(pos, m, price, lltv):
        return 0
    owed = to_assets_down(pos.borrow_shares, m.total_borrow_assets, m.total_borrow_shares)
    most = min(pos.collateral, mul_div_down(w_mul_down(owed, incentive_factor(lltv)), ORACLE_PRICE_SCALE, price))
    for _ in range(16):  # the shares round up: a few units less may be needed
        if most <= 0 or liquidation(pos, m, price, lltv, most) is not None:
            return max(most, 0)
        most -= 1 + most // 10**15
    return 0
