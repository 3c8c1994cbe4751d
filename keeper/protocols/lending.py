"""What the lending protocols' adapters share (Aave v3, Compound v3): a market whose columns are
assets priced by Chainlink-style feeds, positions stored as per-column balances, screening in
float before the exact levers decide, and the wallet top-up `Protect`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from keeper.book import SCREEN_MARGIN, Snapshot
from keeper.protocols.base import usd
from keeper.risk.engine import MarketArrays
from keeper.risk.guards import FeedRound, oracle_problems
from keeper.settings import OracleSettings, ProtectSettings, Settings
from keeper.sources.abi import event
from keeper.strategy.actions import Deleverage, Protect

if TYPE_CHECKING:
    from keeper.sources.chain import Call, Head


class LendingReader(Protocol):
    """The reads a lending adapter delegates to its protocol's reader."""

    def topic0s(self) -> list[bytes]: ...

    def users_from_logs(self, logs: Any) -> set[str]: ...

    def market_calls(self) -> list[Call]: ...

    def decode_market(self, results: Sequence[bytes | None], block: int, timestamp: int) -> Any: ...


class LendingMarket(ABC):
    """Shared implementation of the lending adapters' layout and screening. A subclass sets
    `protocol`, `address`, `capabilities`, `engine`, `settings` and keeps `market` (one block's
    decoded state, with `feeds` by column)."""

    protocol: str
    address: str
    settings: Settings
    market: Any
    reader: LendingReader

    def topic0s(self) -> list[bytes]:
        return self.reader.topic0s()

    def users_from_logs(self, logs: Any) -> set[str]:
        return self.reader.users_from_logs(logs)

    def market_calls(self) -> list[Call]:
        return self.reader.market_calls()

    def decode_market(self, results: Sequence[bytes | None], head: Head) -> MarketArrays:
        """This block's state (kept as `market`) and the engine's columns."""
        self.market = self.reader.decode_market(results, head.number, head.timestamp)
        return self.market.arrays()

    # -- layout (subclasses: tokens, symbols, price, unit, column_of)
    @property
    @abstractmethod
    def tokens(self) -> tuple[str, ...]: ...

    @property
    @abstractmethod
    def symbols(self) -> tuple[str, ...]: ...

    @abstractmethod
    def price(self, column: int) -> int: ...

    @abstractmethod
    def column_of(self, token: str) -> int | None: ...

    @property
    def native_price(self) -> int:
        column = self.column_of(self.settings.native_asset)
        return 0 if column is None else self.price(column)

    def gas_cost(self, gas_wei: int) -> int:
        return gas_wei * self.native_price // 10**18

    def wallet_columns(self, wallet: Mapping[str, int]) -> list[int]:
        return [wallet.get(t, 0) for t in self.tokens]

    def discovery_seed(self) -> set[str]:
        return set(self.settings.protect.accounts)

    def protected_accounts(self) -> list[str]:
        return list(self.settings.protect.accounts)

    def protect_settings(self, ps: ProtectSettings) -> ProtectSettings:
        return ps

    # -- rules
    def feeds(self) -> tuple[FeedRound | None, ...]:
        return tuple(self.market.feeds)

    def price_problems(self, now: int, oracle: OracleSettings) -> dict[int, str]:
        ages = [oracle.max_age_for(sym, tok) for sym, tok in zip(self.symbols, self.tokens, strict=False)]
        feeds = self.feeds()
        return oracle_problems(feeds, now, ages + [oracle.max_age_s] * (len(feeds) - len(ages)))

    def exposed_columns(self, pos: Any) -> set[int]:
        coll, debt = pos.rows()
        return {i for i, x in enumerate(coll) if x} | {i for i, x in enumerate(debt) if x}

    def screen_below(self) -> float:
        """Engine health (float) under which an account goes to the exact liquidation check."""
        return 1.0

    def liquidation_candidates(self, snap: Snapshot, positions: Mapping[str, Any], protected: set[str]) -> list[Any]:
        # screening in float, widened by the book's index tolerance; the levers decide exactly
        below = np.flatnonzero(snap.health.health_factor < self.screen_below() * (1.0 + SCREEN_MARGIN))
        found = (positions[snap.users[k]] for k in below if snap.users[k] not in protected)
        return [p for p in found if self.unsupported(p) is None]

    def unsupported(self, pos: Any) -> str | None:
        """Why the keeper does not act on this position at all (None: it does)."""
        return None

    def notes(self) -> list[str]:
        return []

    def actual(self, action: Any, results: Any) -> dict[str, Any] | None:
        """What the chain did, from the receipts' events (None: this market does not report it)."""
        return None

    def exact_figures(self, positions: Mapping[str, Any]) -> dict[str, tuple[float, float, float]]:
        """Account -> (health, collateral, debt in price units) from the exact replica, for the
        accounts whose engine row does not carry them (none here)."""
        return {}

    def confirm_users(self, snap: Snapshot, positions: Mapping[str, Any]) -> list[str]:
        return []  # exact integer replicas: the book's positions are what the chain holds

    def describe_protect(self, head: str, action: Protect, after: str, gas: int, gas_cost: int, status: str) -> str:
        unit = self.unit_of(action.asset)
        return (
            f"{head} PROTECT {action.account[:10]}…  HF {action.health_before:.4f} -> {after}  "
            f"{action.kind} {action.amount / unit:,.4f} {action.symbol} ({usd(action.value_base)})  "
            f"gas {gas:,} ({usd(gas_cost)})  {status}"
        )

    def describe_deleverage(self, head: str, a: Deleverage, after: str, gas: int, gas_cost: int, status: str) -> str:
        cu, du = self.unit_of(a.collateral_asset), self.unit_of(a.debt_asset)
        return (
            f"{head} DELEVERAGE {a.account[:10]}…  HF {a.health_before:.4f} -> {after} (predicted "
            f"{a.health_after:.4f})  repay {a.repay / du:,.4f} {a.debt_symbol} with {a.withdraw / cu:,.6f} "
            f"{a.collateral_symbol} sold (flash from {a.lender_source}, fee {a.expected_fee / du:,.4f}), cost "
            f"{usd(a.cost_base)}  gas {gas:,} ({usd(gas_cost)})  {status}"
        )

    def deleverage_actual(self, a: Deleverage, results: Any) -> dict[str, Any] | None:
        """The Deleverager's Deleveraged event, beside what was predicted."""
        found = deleveraged(a.deleverager, [log for r in results for log in r.logs])
        if found is None:
            return None
        cu, du = self.unit_of(a.collateral_asset), self.unit_of(a.debt_asset)
        found["text"] = (
            f"Deleverager repaid {found['repaid'] / du:,.4f} {a.debt_symbol} (predicted {a.repay / du:,.4f}), sold "
            f"{found['collateral_sold'] / cu:,.6f} {a.collateral_symbol}, loan fee {found['fee'] / du:,.4f}, "
            f"{found['returned'] / du:,.4f} {a.debt_symbol} back to the account, health factor "
            f"{found['health_factor'] / 1e18:.4f} (predicted {a.health_after:.4f})"
        )
        return found

    def unit_of(self, token: str) -> int:
        column = self.column_of(token)
        if column is None:
            raise KeyError(f"{token} is not listed on {self.protocol} {self.address}")
        return self.unit(column)

    @abstractmethod
    def unit(self, column: int) -> int: ...


def flash_profit(liquidator: str, logs: Sequence[tuple[str, tuple[str, ...], str]]) -> dict[str, Any] | None:
    """The liquidator's FlashLiquidation event: what it borrowed, paid in fee, and sent the owner."""
    ev = event("FlashLiquidator", "FlashLiquidation")
    for address, topics, data in logs:
        if address.lower() == liquidator.lower() and topics and bytes.fromhex(topics[0][2:]) == ev.topic:
            args = ev.decode([bytes.fromhex(t[2:]) for t in topics], bytes.fromhex(data[2:]))
            return {"borrowed": int(args["borrowed"]), "fee": int(args["fee"]), "profit": int(args["profit"])}
    return None


def deleveraged(deleverager: str, logs: Sequence[tuple[str, tuple[str, ...], str]]) -> dict[str, Any] | None:
    """The Deleverager's Deleveraged event: repaid, collateral sold, loan fee, returned, health factor."""
    ev = event("Deleverager", "Deleveraged")
    for address, topics, data in logs:
        if address.lower() == deleverager.lower() and topics and bytes.fromhex(topics[0][2:]) == ev.topic:
            args = ev.decode([bytes.fromhex(t[2:]) for t in topics], bytes.fromhex(data[2:]))
            return {"repaid": int(args["repaid"]), "collateral_sold": int(args["collateralSold"]),
                    "fee": int(args["fee"]), "returned": int(args["returned"]),
                    "health_factor": int(args["healthFactor"])}  # fmt: skip
    return None
