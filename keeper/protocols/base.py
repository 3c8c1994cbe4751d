"""The one interface every protocol implements, and what the rest of keeper may know of it.

A protocol is a package under `keeper/protocols/<name>/` whose adapter (one per watched market)
satisfies `MarketAdapter`: three small ports, each with one job.

- `MarketReader` (I/O): the market's layout, the events that name accounts, the per-block reads
  (returned as calls the app batches with every other market's), the positions of accounts.
- `MarketRules` (pure): exact health from the protocol's integer replica, which columns a
  position is exposed to, protective levers and liquidations sized exactly.
- `MarketWriter` (pure): an action as unsigned calldata (plus the approval it needs), and a line
  of text for the console.

Quirks are declared as data in `Capabilities`, never as `if protocol == ...` elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from keeper.book import Row, Snapshot
from keeper.risk.engine import Engine
from keeper.settings import FlashSettings, LiquidateSettings, OracleSettings, ProtectSettings, Settings
from keeper.strategy.actions import Action
from keeper.strategy.flash import Ask, FlashContext, Lender

if TYPE_CHECKING:  # I/O modules: imported for types only, so the pure layers can import this one
    from keeper.execution.tx import Approval, TxRequest, TxResult
    from keeper.sources.chain import Call, Chain, Head


@dataclass(frozen=True)
class Capabilities:
    """What a protocol's markets can do, as data the app and the planner read."""

    protect: tuple[str, ...]
    """Protective levers, by the names `prefer` settings use ('repay', 'supply', 'add_margin', 'reduce')."""
    liquidation: str
    """How a third party liquidates (for documentation and status): e.g. 'liquidationCall'."""
    predictive_trigger: bool = False
    """Positions expose per-column values (collateral x threshold, debt): the predictive trigger applies."""
    plans_without_candidates: bool = False
    """Plans liquidation-side actions even when no account is below 1 (Comet: buying collateral)."""
    confirms_positions: bool = False
    """Re-reads accounts near liquidation at the block before deciding (the book holds screening
    figures that drift between reads, e.g. perps funding)."""
    price_scale: int = 10**8
    """Price units per USD (Aave and Comet USD markets: 1e8; Synthetix: 1e18)."""
    engine_scale: float = 1e8
    """Units per USD of the engine's figures (collateral, debt, liquidation prices)."""
    flash: bool = False
    """Liquidates through keeper's FlashLiquidator as well as from the wallet (`FlashRules`)."""
    deleverage: bool = False
    """Protects through keeper's Deleverager with the position's own collateral (`DeleverageRules`)."""


@dataclass(frozen=True)
class Skip:
    """An account that was considered and not acted on, with why and the figures behind it."""

    account: str
    reason: str
    inputs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LiquidationPlan:
    actions: tuple[Action, ...]
    """In execution order; an action with `after_previous` is planned on the state the one before leaves."""
    skipped: tuple[Skip, ...] = ()


class MarketReader(Protocol):
    """I/O and layout. Columns are the market's assets (lending) or markets (perps)."""

    protocol: str
    address: str
    """The contract whose events name the accounts to re-read."""
    capabilities: Capabilities
    engine: Engine
    settings: Settings
    start_block: int
    """First block scanned for the market's events when discovering accounts."""

    @property
    def loaded(self) -> bool: ...

    async def load(self, chain: Chain, block: int) -> int:
        """Read the layout (assets, immutables); returns the number of columns. ConfigError when
        the configuration does not fit the market (e.g. the native asset is not listed)."""
        ...

    def topic0s(self) -> list[bytes]: ...

    def users_from_logs(self, logs: Iterable[Mapping[str, Any]]) -> set[str]: ...

    def discovery_seed(self) -> set[str]:
        """Accounts watched whether or not an event names them (the protected ones)."""
        ...

    def protected_accounts(self) -> list[str]:
        """The positions this market protects, as the book names them."""
        ...

    def market_calls(self) -> list[Call]:
        """The per-block reads (the app batches every market's, each market isolated)."""
        ...

    def decode_market(self, results: Sequence[bytes | None], head: Head) -> Any:
        """Decode this market's block state from its calls' results; returns the engine's columns."""
        ...

    async def read_positions(self, chain: Chain, users: Sequence[str], block: int) -> Sequence[Row]: ...

    async def health_after(self, chain: Chain, action: Action) -> float | None:
        """The subject's health read back after a sent action (None: not applicable)."""
        ...

    @property
    def tokens(self) -> tuple[str, ...]:
        """Tokens the wallet is read for."""
        ...

    @property
    def symbols(self) -> tuple[str, ...]:
        """Column names."""
        ...

    def price(self, column: int) -> int: ...

    def unit(self, column: int) -> int: ...

    def column_of(self, token: str) -> int | None:
        """The column of a token, None when the token is not a column (e.g. perps margin)."""
        ...

    @property
    def native_price(self) -> int:
        """The native coin's price (gas) in this market's price units."""
        ...

    def notes(self) -> list[str]:
        """What the market's figures rest on that a user should see (`keeper status`, the status
        page): the protocol version, prices whose age cannot be judged."""
        ...

    def price_sources(self) -> dict[str, str]:
        """Symbol -> Chainlink-style aggregator (what a fork rehearsal overrides to shock a price)."""
        ...


class MarketRules(Protocol):
    """Pure decisions from the protocol's exact integer replica."""

    def price_problems(self, now: int, oracle: OracleSettings) -> dict[int, str]:
        """Column -> why its price must not be acted on this block."""
        ...

    def exact_health(self, pos: Any) -> float: ...

    def exposed_columns(self, pos: Any) -> set[int]: ...

    def unsupported(self, pos: Any) -> str | None:
        """Why the keeper does not act on this position at all (None: it does)."""
        ...

    def exact_figures(self, positions: Mapping[str, Any]) -> dict[str, tuple[float, float, float]]:
        """Account -> (health, collateral, debt in price units), for the accounts whose engine
        row is not exact (Aave e-mode, stable debt); the others are not in it."""
        ...

    def value_exposures(self, pos: Any) -> tuple[list[float], list[float]] | None:
        """Per column (collateral value x liquidation threshold, debt value); None where the
        predictive trigger does not apply."""
        ...

    def protect_settings(self, ps: ProtectSettings) -> ProtectSettings:
        """[protect] as this market applies it (perps: its own trigger/target margin ratios)."""
        ...

    def protect(self, pos: Any, wallet: Mapping[str, int], ps: ProtectSettings) -> list[Action]:
        """The protective action(s) for a watched position (empty: none needed or possible)."""
        ...

    def confirm_users(self, snap: Snapshot, positions: Mapping[str, Any]) -> list[str]:
        """Accounts to re-read at this block before deciding (capabilities.confirms_positions)."""
        ...

    def liquidation_candidates(self, snap: Snapshot, positions: Mapping[str, Any], protected: set[str]) -> list[Any]:
        """Positions to consider for liquidation (screened in float; the levers decide exactly)."""
        ...

    def liquidations(
        self, candidates: Sequence[Any], wallet: Mapping[str, int], gas_cost_base: int, settings: LiquidateSettings
    ) -> LiquidationPlan: ...

    def gas_cost(self, gas_wei: int) -> int:
        """Gas in this market's price units."""
        ...


class MarketWriter(Protocol):
    def encode(self, action: Action) -> tuple[TxRequest, Approval | None]: ...

    def actual(self, action: Action, results: Sequence[TxResult]) -> dict[str, Any] | None:
        """What the chain did for a sent action, from its receipts' events (amounts, and a 'text'
        line for the console and the status page); None when the market does not report it."""
        ...

    def describe(self, block: int, action: Action, after: float | None, gas: int, gas_cost: int, status: str) -> str:
        """One console line: what was decided, predicted figures, gas and the outcome."""
        ...


class MarketAdapter(MarketReader, MarketRules, MarketWriter, Protocol):
    """One watched market of one protocol."""


class FlashRules(Protocol):
    """What a market with `capabilities.flash` adds: liquidations funded by a flash loan."""

    def flash_asks(self, candidates: Sequence[Any], settings: FlashSettings) -> list[Ask]:
        """The sales to quote for the candidates' liquidation sizes."""
        ...

    def flash_sources(self) -> list[tuple[str, Lender, Call]]:
        """Flash loans the market itself offers: (token, lender, the call reading how much it
        can lend, a uint256)."""
        ...

    def flash_liquidations(
        self, candidates: Sequence[Any], ctx: FlashContext, gas_cost_base: int, settings: Settings, exclude: set[str]
    ) -> LiquidationPlan:
        """The flash-funded liquidations worth doing (accounts in `exclude` are left alone)."""
        ...

    def flash_pairs(self, actions: Sequence[Action]) -> set[tuple[str, str]]:
        """The (token in, token out) pairs, lowercase, these actions sell on Uniswap v3."""
        ...


@dataclass(frozen=True)
class Grant:
    """A permission a protected account gives keeper's Deleverager (once), and its undoing: the
    account calls `to` with `grant` (or `revoke`); `check` reads it back, a uint256 (an allowance,
    or a bool) that must reach `needed`."""

    what: str
    to: str
    grant: bytes
    revoke: bytes
    check: Call
    needed: int


class DeleverageRules(Protocol):
    """What a market with `capabilities.deleverage` adds: protection with the position's own collateral."""

    def deleverage_asks(self, positions: Sequence[Any], ps: ProtectSettings) -> list[Ask]:
        """The sales to quote for these protected positions' deleverage."""
        ...

    def deleverage(self, pos: Any, ctx: FlashContext, ps: ProtectSettings) -> Action | None:
        """The deleverage that brings the position to its target (None: above its trigger, or
        nothing can be funded and sold)."""
        ...

    def deleverage_grants(self, pos: Any, deleverager: str) -> list[Grant]:
        """What the account must allow the Deleverager before it can deleverage the position."""
        ...


def topic_words(logs: Iterable[Mapping[str, Any]], slots: Mapping[bytes, tuple[int, ...]]) -> Iterator[bytes]:
    """The 32-byte topics at the given positions of each log whose topic0 is in `slots` (the
    indexed arguments that name an account)."""
    for entry in logs:
        topics = [bytes(t) for t in entry["topics"]]
        for slot in slots.get(topics[0], ()) if topics else ():
            if len(topics) > slot:
                yield topics[slot]


def usd(base_units: int | float, base_unit: int | float = 10**8) -> str:
    return f"${base_units / base_unit:,.2f}"


def ratio_text(x: float | None) -> str:
    """A health figure for the console ('?' unknown, 'inf' without debt)."""
    return "?" if x is None else ("inf" if x == float("inf") else f"{x:.4f}")
