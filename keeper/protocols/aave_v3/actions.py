"""Aave v3's own actions (the lending top-up `Protect` is shared: keeper.strategy.actions)."""

from __future__ import annotations

from dataclasses import dataclass

from keeper.strategy.actions import OnAccount, Protect


@dataclass(frozen=True)
class Liquidate(OnAccount):
    """liquidationCall(collateral, debt, account, debt_to_cover, receiveAToken=false)."""

    account: str
    collateral_asset: str
    collateral_symbol: str
    debt_asset: str
    debt_symbol: str
    debt_to_cover: int
    """The `debtToCover` argument. type(uint256).max when the keeper takes all the Pool allows
    (the close factor's amount, or the capped branch when the collateral limits it): the Pool
    then computes the amount itself at inclusion, so accrued interest cannot leave dust."""
    max_spend: int
    """The most the Pool may take from the wallet: the expected amount plus headroom for interest
    accrued before inclusion (what is approved and counted against the caps)."""
    expected_debt_repaid: int
    """Debt asset units the Pool takes, at the decision block."""
    expected_collateral: int
    """Collateral units the keeper receives (after the protocol's fee)."""
    expected_gross_base: int
    """Collateral value minus debt value, base currency units, before gas."""
    expected_gas_base: int
    health_before: float

    health_after = float("nan")
    reaches_target = True
    liquidation = True

    @property
    def gross_profit_base(self) -> int:
        return self.expected_gross_base

    protective = False
    after_previous = False

    @property
    def spends(self) -> tuple[tuple[str, int], ...]:
        return ((self.debt_asset, self.max_spend),)

    @property
    def worth_base(self) -> int | None:
        return self.expected_gross_base


@dataclass(frozen=True)
class RepayStable(Protect):
    """v3.0-v3.1: repay of stable-rate debt (interestRateMode 1)."""


@dataclass(frozen=True)
class FlashLiquidate(Liquidate):
    """The same liquidationCall made by keeper's liquidator contract inside a flash loan of the
    debt asset, the seized collateral sold on Uniswap v3 in the same transaction: nothing comes
    from the wallet but gas. `max_spend` is 0; the loan is `borrowed` from `lender`."""

    liquidator: str
    lender_source: str
    """'uniswap' (a v3 pool's flash) or 'aave' (the Pool's flashLoanSimple)."""
    lender: str
    borrowed: int
    expected_fee: int
    path: str
    """The Uniswap v3 exactInput path, hex ('' when the collateral is the debt asset)."""
    expected_out: int
    """The sale's quote at the decision block (debt-asset units)."""
    min_out: int
    min_profit: int
    """Debt-asset units the contract must keep after repaying the loan, or it reverts."""
    expected_net: int
    """Debt-asset units expected to reach the owner (before gas)."""

    @property
    def spends(self) -> tuple[tuple[str, int], ...]:
        return ()
