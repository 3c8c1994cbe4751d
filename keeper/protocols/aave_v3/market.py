"""One watched Aave v3 market (a Pool and its AaveOracle) behind keeper's MarketAdapter interface.

Columns are the Pool's reserves in `getReservesList` order; health is Aave's health factor from
the exact integer replica (keeper.protocols.aave_v3.math). E-mode accounts are reported and
skipped (not modelled).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keeper.errors import ConfigError
from keeper.execution.tx import Approval, TxRequest
from keeper.protocols.aave_v3 import encode as calldata
from keeper.protocols.aave_v3.actions import Liquidate
from keeper.protocols.aave_v3.adapter import AaveV3Reader
from keeper.protocols.aave_v3.engine import ENGINE
from keeper.protocols.aave_v3.levers import decide_liquidations, decide_protect
from keeper.protocols.aave_v3.math import NAME, Market, Position, account_data, value_exposures
from keeper.protocols.aave_v3.settings import AaveSettings
from keeper.protocols.base import Capabilities, LiquidationPlan, ratio_text, usd
from keeper.protocols.lending import LendingMarket
from keeper.risk.intmath import wad_to_health
from keeper.settings import LiquidateSettings, ProtectSettings, Settings
from keeper.sources.chain import Chain
from keeper.strategy.actions import Action, Protect

CAPABILITIES = Capabilities(protect=("repay", "supply"), liquidation="liquidationCall", predictive_trigger=True)


class AaveV3Market(LendingMarket):
    reader: AaveV3Reader
    protocol = NAME
    capabilities = CAPABILITIES
    engine = ENGINE

    def __init__(self, market: AaveSettings, settings: Settings, keeper_address: str):
        self.reader = AaveV3Reader(market.pool, market.oracle)
        self.address = self.reader.pool
        self.settings = settings
        self.start_block = market.start_block
        self.keeper_address = keeper_address
        self.market: Market | None = None

    # -- reads
    @property
    def loaded(self) -> bool:
        return bool(self.reader.reserves)

    async def load(self, chain: Chain, block: int) -> int:
        reserves = await self.reader.load_reserves(chain, block)
        where = self.settings.source
        if not reserves:
            raise ConfigError(f"{where}: the Pool at {self.reader.pool} lists no reserves")
        assets = [r.asset for r in reserves]
        if self.settings.native_asset not in assets:
            raise ConfigError(
                f"{where}: native_asset {self.settings.native_asset} is not a reserve of "
                f"the Pool (reserves: {', '.join(assets)})"
            )
        return len(reserves)

    async def read_positions(self, chain: Chain, users: Sequence[str], block: int) -> list[Position]:
        return await self.reader.read_positions(chain, users, block, full=self.settings.protect.accounts)

    async def health_after(self, chain: Chain, action: Action) -> float | None:
        raw = await chain.call(self.address, calldata.account_data_call(action.subject))
        return wad_to_health(calldata.decode_health_factor(raw))

    # -- layout
    @property
    def tokens(self) -> tuple[str, ...]:
        return tuple(r.asset for r in self.reader.reserves)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(r.symbol for r in self.reader.reserves)

    def price_sources(self) -> dict[str, str]:
        return {r.symbol: r.price_source for r in self.reader.reserves if r.price_source}

    def _market(self) -> Market:
        assert self.market is not None, "decode_market first"
        return self.market

    def price(self, column: int) -> int:
        return self._market().prices_base[column]

    def unit(self, column: int) -> int:
        return self._market().configs[column].unit

    def column_of(self, token: str) -> int | None:
        try:
            return self._market().index_of(token)
        except KeyError:
            return None

    # -- rules
    def exact_health(self, pos: Position) -> float:
        return wad_to_health(account_data(pos, self._market()).health_factor_wad)

    def value_exposures(self, pos: Position) -> tuple[list[float], list[float]] | None:
        return value_exposures(pos, self._market())

    def protect(self, pos: Position, wallet: Mapping[str, int], ps: ProtectSettings) -> list[Action]:
        action = decide_protect(pos, self._market(), self.wallet_columns(wallet), ps)
        return [] if action is None else [action]

    def unsupported(self, pos: Position) -> str | None:
        """Why the keeper does not act on this position (None: it does)."""
        return f"e-mode {pos.emode} not supported" if pos.emode else None

    def liquidations(
        self, candidates: Sequence[Any], wallet: Mapping[str, int], gas_cost_base: int, settings: LiquidateSettings
    ) -> LiquidationPlan:
        return decide_liquidations(candidates, self._market(), self.wallet_columns(wallet), settings, gas_cost_base)

    # -- writes
    def encode(self, action: Action) -> tuple[TxRequest, Approval | None]:
        return calldata.encode(self.address, action)

    def describe(self, block: int, action: Action, after: float | None, gas: int, gas_cost: int, status: str) -> str:
        head = f"[block {block}] {self.protocol}"
        if isinstance(action, Protect):
            return self.describe_protect(head, action, ratio_text(after), gas, gas_cost, status)
        assert isinstance(action, Liquidate)
        cunit, dunit = self.unit_of(action.collateral_asset), self.unit_of(action.debt_asset)
        return (
            f"{head} LIQUIDATE {action.account[:10]}…  HF {action.health_before:.4f} -> {ratio_text(after)}  "
            f"repay {action.expected_debt_repaid / dunit:,.4f} {action.debt_symbol}, seize "
            f"{action.expected_collateral / cunit:,.6f} {action.collateral_symbol}  gas {gas:,} "
            f"({usd(gas_cost)})  profit {usd(action.expected_gross_base - gas_cost)}  {status}"
        )
