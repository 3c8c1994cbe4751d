"""Actions: frozen values a strategy returns and only the executor turns into transactions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Protect:
    """Top up collateral (`supply`) or pay back debt (`repay`) on a watched account, from the wallet."""

    kind: Literal["repay", "supply"]
    account: str
    asset: str
    symbol: str
    amount: int
    """Token base units."""
    value_base: int
    """Value of `amount` in the oracle's base currency units."""
    health_before: float
    health_after: float
    """Expected, from the protocol's own integer math."""
    reaches_target: bool
    """False when the wallet cannot bring the account to target (the action still helps)."""


@dataclass(frozen=True)
class Liquidate:
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


Action = Protect | Liquidate
