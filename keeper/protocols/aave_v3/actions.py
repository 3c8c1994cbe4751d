"""Aave v3's own action (the lending top-up `Protect` is shared: keeper.strategy.actions)."""

from __future__ import annotations

from dataclasses import dataclass

from keeper.strategy.actions import OnAccount


@dataclass(frozen=True)
class Liquidate(OnAccount):
    """liquidationCall(collateral, debt, account, debt_to_cover, receiveAToken=false)."""

    account: str
    collateral_asset: str
    collateral_symbol: str
    debt_asset: str
    debt_symbol: str
    debt_to_cover: int
    """The `debtToCover` argument. When the whole reserve debt is taken it includes headroom for
    interest accrued before inclusion (the Pool caps it at the debt then), so that one block of
    interest cannot leave dust (revert 103)."""
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
        return ((self.debt_asset, self.debt_to_cover),)

    @property
    def worth_base(self) -> int | None:
        return self.expected_gross_base
