"""Compound v3's actions (the lending top-up `Protect` is shared: keeper.strategy.actions)."""

from __future__ import annotations

from dataclasses import dataclass


class OnAccounts:
    """For actions on a batch of accounts (the dataclass has `accounts` and their `health`)."""

    accounts: tuple[str, ...]
    health: tuple[float, ...]
    same_block = True

    @property
    def subject(self) -> str:
        return ",".join(self.accounts)

    @property
    def health_before(self) -> float:
        return min(self.health)


@dataclass(frozen=True)
class Absorb(OnAccounts):
    """Comet absorb(absorber, accounts): the protocol takes every listed account (pays its debt
    from reserves, keeps its collateral for sale). The absorber is paid nothing on chain: what it
    is worth is the discount of the buyCollateral calls it opens up (`expected_gain_base`)."""

    accounts: tuple[str, ...]
    health: tuple[float, ...]
    """Health factor of each account at the decision block."""
    expected_base_paid_out: int
    """Base units the protocol pays out of reserves, summed over the accounts."""
    expected_seized: tuple[tuple[str, int], ...]
    """(collateral symbol, units) moved to the protocol, summed over the accounts."""
    expected_gain_base: int
    """Gain (price units) of the purchases planned after it, net of their gas."""
    bounded: bool = True
    """False with `comet_absorb_always`: absorbed at the keeper's expense, no gas bound from its worth."""

    health_after = float("nan")
    reaches_target = True
    liquidation = True
    gross_profit_base = 0
    protective = False
    after_previous = False
    spends: tuple[tuple[str, int], ...] = ()

    @property
    def worth_base(self) -> int | None:
        return self.expected_gain_base if self.bounded else None


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

    health_after = float("nan")
    reaches_target = True
    liquidation = False

    @property
    def gross_profit_base(self) -> int:
        return self.expected_gross_base

    protective = False
    health_before = float("inf")

    @property
    def subject(self) -> str:
        return f"buy:{self.asset}"

    @property
    def after_previous(self) -> bool:
        return self.after_absorb

    same_block = True

    @property
    def spends(self) -> tuple[tuple[str, int], ...]:
        return ((self.base_token, self.base_amount),)

    @property
    def worth_base(self) -> int | None:
        return self.expected_gross_base


@dataclass(frozen=True)
class FlashBuy:
    """One purchase inside a FlashAbsorb: buyCollateral(asset, 0, base_amount), then the sale."""

    asset: str
    symbol: str
    base_amount: int
    expected_collateral: int
    path: str
    """Uniswap v3 exactInput path (hex) from the collateral to the base asset."""
    expected_out: int
    min_out: int


@dataclass(frozen=True)
class FlashAbsorb(OnAccounts):
    """keeper's FlashLiquidator.liquidateComet in one transaction: a flash loan of the base asset,
    absorb(accounts), the purchases of the collateral it puts up for sale, their sales on
    Uniswap v3, the loan repaid; reverts unless `min_profit` base units are left for the owner."""

    accounts: tuple[str, ...]
    health: tuple[float, ...]
    base_token: str
    base_symbol: str
    liquidator: str
    lender: str
    """The Uniswap v3 pool or Morpho Blue lending the base asset (Comet has no flash loans)."""
    borrowed: int
    expected_fee: int
    buys: tuple[FlashBuy, ...]
    expected_base_paid_out: int
    min_profit: int
    expected_net: int
    """Base units expected to reach the owner (before gas)."""
    expected_gross_base: int
    """expected_net in price units."""
    expected_gas_base: int
    lender_source: str = "uniswap"
    """'uniswap' or 'morpho' (the Morpho contract's free flashLoan)."""

    health_after = float("nan")
    reaches_target = True
    liquidation = True
    protective = False
    after_previous = False
    spends: tuple[tuple[str, int], ...] = ()

    @property
    def gross_profit_base(self) -> int:
        return self.expected_gross_base

    @property
    def worth_base(self) -> int | None:
        return self.expected_gross_base
