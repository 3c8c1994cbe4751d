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


@dataclass(frozen=True)
class Absorb:
    """Comet absorb(absorber, accounts): the protocol takes every listed account (pays its debt
    from reserves, keeps its collateral for sale). The absorber is paid nothing on chain: what it
    is worth is the discount of the buyCollateral calls it opens up (`expected_gross_base`)."""

    accounts: tuple[str, ...]
    health_before: tuple[float, ...]
    expected_base_paid_out: int
    """Base units the protocol pays out of reserves, summed over the accounts."""
    expected_seized: tuple[tuple[str, int], ...]
    """(collateral symbol, units) moved to the protocol, summed over the accounts."""
    expected_gain_base: int
    """Gain (price units) of the purchases planned after it, net of their gas."""


@dataclass(frozen=True)
class BuyCollateral:
    """Comet buyCollateral(asset, minAmount, baseAmount, keeper): collateral from the protocol's
    reserves at the store-front discount, paid in the base asset."""

    asset: str
    symbol: str
    base_token: str
    base_symbol: str
    base_amount: int
    min_amount: int
    """The quote less the slippage tolerance: the contract reverts below it."""
    expected_collateral: int
    expected_gross_base: int
    """Collateral value minus base paid, price units (1e8 = 1 USD on USD markets), before gas."""
    expected_gas_base: int
    after_absorb: bool = False
    """Planned on the state the absorb before it leaves (not attempted if that absorb is not sent)."""


@dataclass(frozen=True)
class AddMargin:
    """Synthetix v3 perps: modifyCollateral(accountId, 0, +amount) of snxUSD from the wallet."""

    account: str
    account_id: int
    amount: int
    """snxUSD, 18 decimals."""
    health_before: float
    health_after: float
    """Margin ratio: available margin / (maintenance margin + liquidation reward)."""
    reaches_target: bool


@dataclass(frozen=True)
class ReducePosition:
    """Synthetix v3 perps: commitOrder of `size_delta` (opposite to the position) in one market."""

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


@dataclass(frozen=True)
class SettleOrder:
    """Synthetix v3 perps: settleOrder(accountId) for the order committed just before."""

    account: str
    account_id: int
    market_id: int
    after_previous: bool = True


@dataclass(frozen=True)
class LiquidatePerps:
    """Synthetix v3 perps: liquidate(accountId); the market pays the caller the liquidation reward."""

    account: str
    account_id: int
    expected_reward: int
    """snxUSD, 18 decimals (the market's maxLiquidationReward at the decision block)."""
    expected_gross_base: int
    """The reward in the watch's price units (USD, 18 decimals)."""
    health_before: float


Action = Protect | Liquidate | Absorb | BuyCollateral | AddMargin | ReducePosition | SettleOrder | LiquidatePerps


def depends_on_previous(action: Action) -> bool:
    """Planned on the state the action before it leaves (a purchase after its absorb, a settlement
    after its commit): not attempted when that one was not sent."""
    return bool(getattr(action, "after_absorb", False) or getattr(action, "after_previous", False))


def subject(action: Action) -> str:
    """The position an action is about (for one-action-per-position and cooldowns)."""
    if isinstance(action, Absorb):
        return ",".join(action.accounts)
    if isinstance(action, BuyCollateral):
        return f"buy:{action.asset}"
    return action.account


def is_protective(action: Action) -> bool:
    """An action on one of the user's own positions (not a liquidation of someone else's)."""
    return isinstance(action, Protect | AddMargin | ReducePosition | SettleOrder)
