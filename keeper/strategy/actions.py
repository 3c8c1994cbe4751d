"""Actions: frozen values a strategy returns and only the executor turns into transactions.

Code outside a protocol's package never asks what concrete type an action is: it reads the
fields every action has (the `Action` protocol below). Each protocol defines its own action types
in `keeper/protocols/<name>/actions.py`; the lending top-up `Protect` is shared by the lending
protocols and lives here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol


class Action(Protocol):
    """What every action says about itself."""

    @property
    def subject(self) -> str:
        """The position it is about (one action per position at a time; cooldowns)."""
        ...

    @property
    def protective(self) -> bool:
        """On one of the user's own positions (not a liquidation of someone else's)."""
        ...

    @property
    def liquidation(self) -> bool:
        """Liquidates someone else's position (a purchase of seized collateral is not one)."""
        ...

    @property
    def gross_profit_base(self) -> int:
        """Expected profit before gas in the market's price units (0 for protective actions and
        for an absorb, whose gain is realized by the purchases after it)."""
        ...

    @property
    def after_previous(self) -> bool:
        """Planned on the state the action before it leaves (a purchase after its absorb, a
        settlement after its commit): not attempted when that one was not sent."""
        ...

    @property
    def same_block(self) -> bool:
        """It can land in the same block as the action before it (an absorb's purchases can; a
        delayed order's settlement cannot): with a private relay, such a chain goes as one bundle."""
        ...

    @property
    def spends(self) -> tuple[tuple[str, int], ...]:
        """(token, amount) it takes from the wallet."""
        ...

    @property
    def worth_base(self) -> int | None:
        """Expected gross value in the market's price units before gas: the executor refuses to
        burn more gas than this less min_profit_usd. None: no bound beyond the caps."""
        ...

    @property
    def health_before(self) -> float:
        """Health factor (or margin ratio) of its subject when it was decided (the lowest, for a batch)."""
        ...

    @property
    def health_after(self) -> float:
        """Expected health of its subject once it lands (NaN where it does not say)."""
        ...

    @property
    def reaches_target(self) -> bool:
        """A protective action that brings its subject to target (False: the best the wallet allows)."""
        ...


class OnAccount:
    """For actions about one account (the dataclass has an `account` field)."""

    account: str
    same_block = True

    @property
    def subject(self) -> str:
        return self.account


@dataclass(frozen=True)
class Protect(OnAccount):
    """Lending top-up: supply collateral or pay back debt on a watched account, from the wallet."""

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

    protective = True
    liquidation = False
    gross_profit_base = 0
    after_previous = False
    worth_base = None

    @property
    def spends(self) -> tuple[tuple[str, int], ...]:
        return ((self.asset, self.amount),)


def fields_of(action: Action) -> dict[str, Any]:
    """An action's fields (every action is a frozen dataclass), for logs, the journal and reports."""
    return asdict(action)  # type: ignore[call-overload]


@dataclass(frozen=True)
class Deleverage(OnAccount):
    """Repay a watched account's debt with its own collateral, in one transaction through keeper's
    Deleverager: a flash loan of the debt asset repays `repay`, `withdraw` of the collateral is
    taken (the account's approval or allow) and sold on Uniswap v3, the loan and its fee are
    repaid from the sale, the rest goes to the account. The contract reverts unless the health
    factor it leaves is within [min_hf_wad, max_hf_wad]. Nothing comes from the wallet but gas."""

    account: str
    deleverager: str
    collateral_asset: str
    collateral_symbol: str
    collateral_token: str
    """What the contract takes from the account: the aToken (Aave), the asset itself (Comet)."""
    debt_asset: str
    debt_symbol: str
    repay: int
    withdraw: int
    lender_source: str
    lender: str
    borrowed: int
    expected_fee: int
    path: str
    """The Uniswap v3 exactInput path, hex."""
    expected_out: int
    min_out: int
    min_hf_wad: int
    max_hf_wad: int
    cost_base: int
    """What it costs the account (value of the collateral sold less the debt repaid, at the
    oracle's prices: the loan's fee, the sale's fee and price impact), price units."""
    health_before: float
    health_after: float
    reaches_target: bool

    kind = "deleverage"
    protective = True
    liquidation = False
    gross_profit_base = 0
    after_previous = False
    worth_base = None

    @property
    def spends(self) -> tuple[tuple[str, int], ...]:
        return ()
