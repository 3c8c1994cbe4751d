"""One watched Synthetix v3 perps market (the PerpsMarketProxy) behind keeper's MarketAdapter.

Columns are markets (ETH, BTC, ...); rows are perps accounts ("#<id>"); health is the margin
ratio (available margin / (maintenance margin + reward)). The engine screens on prices; accounts
near liquidation, and the protected ones, are re-read at the block (`confirm_users`) so decisions
use the market's own margin figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from keeper.book import Snapshot
from keeper.errors import ConfigError
from keeper.execution.tx import Approval, TxRequest
from keeper.protocols.base import Capabilities, LiquidationPlan, ratio_text, usd
from keeper.protocols.synthetix_perps import math as perps
from keeper.protocols.synthetix_perps.actions import AddMargin, LiquidatePerps, ReducePosition, SettleOrder
from keeper.protocols.synthetix_perps.adapter import PerpsReader
from keeper.protocols.synthetix_perps.encode import encode
from keeper.protocols.synthetix_perps.engine import ENGINE, PerpArrays
from keeper.protocols.synthetix_perps.levers import decide_liquidations, decide_protect
from keeper.protocols.synthetix_perps.settings import PerpsSettings
from keeper.risk.intmath import wad_to_health
from keeper.settings import LiquidateSettings, OracleSettings, ProtectSettings, Settings
from keeper.sources.chain import Call, Chain, Head
from keeper.strategy.actions import Action

CAPABILITIES = Capabilities(
    protect=("add_margin", "reduce"),
    liquidation="liquidate",
    confirms_positions=True,
    price_scale=10**18,
    engine_scale=1.0,
)
CONFIRM_BELOW = 1.05
"""Engine margin ratio under which an account is re-read before deciding."""


class PerpsMarketAdapter:
    protocol = perps.NAME
    capabilities = CAPABILITIES
    engine = ENGINE

    def __init__(self, market: PerpsSettings, settings: Settings, keeper_address: str):
        self.ps = market
        self.reader = PerpsReader(market.market)
        self.address = market.market
        self.settings = settings
        self.start_block = market.start_block
        self.keeper_address = keeper_address
        self.state: perps.PerpsState | None = None

    # -- reads
    @property
    def loaded(self) -> bool:
        return bool(self.reader.markets)

    async def load(self, chain: Chain, block: int) -> int:
        markets = await self.reader.load(chain, block)
        if self.ps.native_market_id not in [m.market_id for m in markets]:
            raise ConfigError(
                f"{self.settings.source}: [perps] native_market_id {self.ps.native_market_id} is not a market of "
                f"{self.address} (markets: {', '.join(f'{m.market_id} {m.symbol}' for m in markets)})"
            )
        return len(markets)

    def topic0s(self) -> list[bytes]:
        return self.reader.topic0s()

    def users_from_logs(self, logs: Any) -> set[str]:
        return {perps.account_key(i) for i in self.reader.accounts_from_logs(logs)}

    def discovery_seed(self) -> set[str]:
        return set(self.protected_accounts())

    def protected_accounts(self) -> list[str]:
        return [perps.account_key(i) for i in self.ps.accounts]

    def market_calls(self) -> list[Call]:
        return self.reader.market_calls()

    def decode_market(self, results: Sequence[bytes | None], head: Head) -> PerpArrays:
        self.state = self.reader.decode_state(results, head.number, head.timestamp)
        return self.state.arrays()

    async def read_positions(self, chain: Chain, users: Sequence[str], block: int) -> list[perps.PerpsAccount]:
        return await self.reader.read_accounts(chain, [int(u[1:]) for u in users], block, self._state().prices)

    async def health_after(self, chain: Chain, action: Action) -> float | None:
        if not action.protective:
            return None
        (acct,) = await self.read_positions(chain, [action.subject], (await chain.head()).number)
        return self.exact_health(acct)

    # -- layout
    def _state(self) -> perps.PerpsState:
        assert self.state is not None, "decode_market first"
        return self.state

    @property
    def tokens(self) -> tuple[str, ...]:
        return (self.ps.usd_token,)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(m.symbol for m in self.reader.markets)

    def price_sources(self) -> dict[str, str]:
        return {}  # prices come from Synthetix's oracle manager (Pyth), not a Chainlink-style aggregator

    def price(self, column: int) -> int:
        return self._state().prices[column] or 0

    def unit(self, column: int) -> int:
        return perps.UNIT

    def column_of(self, token: str) -> int | None:
        return None  # columns are markets, not tokens

    @property
    def native_price(self) -> int:
        return self.price(self._state().column_of_market(self.ps.native_market_id))

    def gas_cost(self, gas_wei: int) -> int:
        return gas_wei * self.native_price // 10**18

    # -- rules
    def price_problems(self, now: int, oracle: OracleSettings) -> dict[int, str]:
        """Synthetix's oracle manager enforces staleness itself: a market whose indexPrice reverts
        is untrusted (no action on accounts holding it)."""
        return {
            i: "indexPrice reverted (stale or invalid price)" for i, p in enumerate(self._state().prices) if p is None
        }

    def exact_health(self, pos: perps.PerpsAccount) -> float:
        return wad_to_health(pos.margin_ratio_wad)

    def exposed_columns(self, pos: perps.PerpsAccount) -> set[int]:
        return {i for i, s in enumerate(pos.sizes) if s}

    def value_exposures(self, pos: perps.PerpsAccount) -> tuple[list[float], list[float]] | None:
        return None  # static trigger

    def unsupported(self, pos: perps.PerpsAccount) -> str | None:
        return None

    def notes(self) -> list[str]:
        return []

    def actual(self, action: Any, results: Any) -> dict[str, Any] | None:
        return None  # not decoded from the receipts yet

    def exact_figures(self, positions: Mapping[str, Any]) -> dict[str, tuple[float, float, float]]:
        return {}  # the engine's margin figures are the account's

    def protect_settings(self, ps: ProtectSettings) -> ProtectSettings:
        """[protect], with the perps trigger/target margin ratios when they are set."""
        if self.ps.trigger_ratio and self.ps.target_ratio:
            return ps.model_copy(update={"trigger_hf": self.ps.trigger_ratio, "target_hf": self.ps.target_ratio})
        return ps

    def protect(self, pos: perps.PerpsAccount, wallet: Mapping[str, int], ps: ProtectSettings) -> list[Action]:
        action = decide_protect(
            pos,
            self._state(),
            wallet.get(self.ps.usd_token, 0),
            ps,
            self.ps.prefer,
            self.ps.reduce_slippage_bps,
            self.ps.usd_token,
        )
        if action is None:
            return []
        if isinstance(action, ReducePosition) and self.ps.settle_orders:
            return [action, SettleOrder(pos.user, action.account_id, action.market_id)]
        return [action]

    def confirm_users(self, snap: Snapshot, positions: Mapping[str, Any]) -> list[str]:
        near = {snap.users[k] for k in np.flatnonzero(snap.health.health_factor < CONFIRM_BELOW)}
        return sorted(near | (set(self.protected_accounts()) & set(positions)))

    def liquidation_candidates(self, snap: Snapshot, positions: Mapping[str, Any], protected: set[str]) -> list[Any]:
        return [a for u, a in positions.items() if u not in protected and a.can_liquidate]

    def liquidations(
        self, candidates: Sequence[Any], wallet: Mapping[str, int], gas_cost_base: int, settings: LiquidateSettings
    ) -> LiquidationPlan:
        return decide_liquidations(candidates, settings, gas_cost_base)

    # -- writes
    def encode(self, action: Action) -> tuple[TxRequest, Approval | None]:
        return encode(self.address, action)

    def describe(self, block: int, action: Action, after: float | None, gas: int, gas_cost: int, status: str) -> str:
        head = f"[block {block}] {self.protocol}"
        money = f"gas {gas:,} ({usd(gas_cost, perps.UNIT)})  {status}"
        if isinstance(action, AddMargin):
            return (
                f"{head} PROTECT {action.account}  margin ratio {action.health_before:.4f} -> {ratio_text(after)}  "
                f"add margin {usd(action.amount, perps.UNIT)} snxUSD  {money}"
            )
        if isinstance(action, ReducePosition):
            return (
                f"{head} PROTECT {action.account}  margin ratio {action.health_before:.4f} -> "
                f"{ratio_text(action.health_after)} (expected)  reduce {action.symbol} by "
                f"{action.size_delta / perps.UNIT:+,.4f} at ~{usd(action.expected_fill_price, perps.UNIT)}  {money}"
            )
        if isinstance(action, SettleOrder):
            return f"{head} SETTLE {action.account} order in market {action.market_id}  -> {ratio_text(after)}  {money}"
        assert isinstance(action, LiquidatePerps)
        return (
            f"{head} LIQUIDATE {action.account}  margin ratio {action.health_before:.4f}  reward "
            f"{usd(action.expected_reward, perps.UNIT)}  {money}  "
            f"profit {usd(action.expected_reward - gas_cost, perps.UNIT)}"
        )
