"""Synthetix v3 perps actions."""

from __future__ import annotations

from dataclasses import dataclass

from keeper.strategy.actions import OnAccount


@dataclass(frozen=True)
class AddMargin(OnAccount):
    """modifyCollateral(accountId, 0, +amount) of snxUSD from the wallet."""

    account: str
    account_id: int
    amount: int
    """snxUSD, 18 decimals."""
    health_before: float
    health_after: float
    """Margin ratio: available margin / (maintenance margin + liquidation reward)."""
    reaches_target: bool
    usd_token: str = ""
    """The snxUSD token the margin is paid in."""

    liquidation = False
    gross_profit_base = 0
    protective = True
    after_previous = False
    worth_base = None

    @property
    def spends(self) -> tuple[tuple[str, int], ...]:
        return ((self.usd_token, self.amount),)


@dataclass(frozen=True)
class ReducePosition(OnAccount):
    """commitOrder of `size_delta` (opposite to the position) in one market."""

    account: str
    account_id: int
    market_id: int
    symbol: str
    size_delta: int
    acceptable_price: int
    """The worst fill accepted (the order reverts beyond it): expected fill -/+ the slippage tolerance."""
    expected_fill_price: int
    health_before: float
    health_after: float
    reaches_target: bool

    liquidation = False
    gross_profit_base = 0
    protective = True
    after_previous = False
    worth_base = None
    spends: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class SettleOrder(OnAccount):
    """settleOrder(accountId) for the order committed just before."""

    account: str
    account_id: int
    market_id: int
    after_previous: bool = True
    same_block = False
    """The order settles after the market's settlement delay, in a later block."""

    health_after = float("nan")
    reaches_target = True
    liquidation = False
    gross_profit_base = 0
    protective = True
    worth_base = None
    spends: tuple[tuple[str, int], ...] = ()
    health_before = float("nan")


@dataclass(frozen=True)
class LiquidatePerps(OnAccount):
    """liquidate(accountId); the market pays the caller the liquidation reward."""

    account: str
    account_id: int
    expected_reward: int
    """snxUSD, 18 decimals (the market's maxLiquidationReward at the decision block)."""
    expected_gross_base: int
    """The reward in the market's price units (USD, 18 decimals)."""
    health_before: float

    health_after = float("nan")
    reaches_target = True
    liquidation = True

    @property
    def gross_profit_base(self) -> int:
        return self.expected_gross_base

    protective = False
    after_previous = False
    spends: tuple[tuple[str, int], ...] = ()

    @property
    def worth_base(self) -> int | None:
        return self.expected_gross_base
