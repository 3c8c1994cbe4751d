"""One watched Compound v3 market (the Comet proxy) behind keeper's MarketAdapter interface.

Columns: 0 = the base asset (the only one that can be borrowed), 1..n = the collateral assets in
`getAssetInfo` order. Health is liquidation collateral value / debt value from the exact integer
replica (keeper.protocols.comet.math); below 1 exactly where `isLiquidatable`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keeper.book import Snapshot
from keeper.errors import ConfigError
from keeper.execution.tx import Approval, TxRequest
from keeper.protocols.base import Capabilities, Grant, LiquidationPlan, ratio_text, usd
from keeper.protocols.comet import math as comet
from keeper.protocols.comet.actions import Absorb, BuyCollateral, FlashAbsorb
from keeper.protocols.comet.adapter import CometReader, CometStatic
from keeper.protocols.comet.deleverage import decide_deleverage, deleverage_asks
from keeper.protocols.comet.encode import encode
from keeper.protocols.comet.engine import ENGINE
from keeper.protocols.comet.flash import decide_flash_comet, flash_asks, flash_pairs
from keeper.protocols.comet.levers import decide_comet, decide_protect
from keeper.protocols.comet.settings import CometSettings
from keeper.protocols.lending import LendingMarket, flash_profit
from keeper.risk.intmath import WAD, wad_to_health
from keeper.settings import FlashSettings, LiquidateSettings, ProtectSettings, Settings
from keeper.sources.abi import fn
from keeper.sources.chain import Call, Chain
from keeper.strategy.actions import Action, Deleverage, Protect
from keeper.strategy.flash import Ask, FlashContext, Lender
from keeper.strategy.sizing import target_wad

CAPABILITIES = Capabilities(
    protect=("repay", "supply", "deleverage"),
    liquidation="absorb + buyCollateral",
    plans_without_candidates=True,
    confirms_positions=True,
    flash=True,
    deleverage=True,
)


class CometMarketAdapter(LendingMarket):
    reader: CometReader
    protocol = comet.NAME
    capabilities = CAPABILITIES
    engine = ENGINE

    def __init__(self, market: CometSettings, settings: Settings, keeper_address: str):
        self.reader = CometReader(market.comet)
        self.address = self.reader.address
        self.settings = settings
        self.start_block = market.start_block
        self.keeper_address = keeper_address
        self.market: comet.CometMarket | None = None

    # -- reads
    @property
    def loaded(self) -> bool:
        return self.reader.static is not None

    async def load(self, chain: Chain, block: int) -> int:
        s = await self.reader.load(chain, block)
        tokens = [s.base_token, *(a.asset for a in self.reader.assets)]
        if self.settings.native_asset not in tokens:
            raise ConfigError(
                f"{self.settings.source}: native_asset {self.settings.native_asset} is not listed on the Comet "
                f"market {self.address} (base and collateral: {', '.join(tokens)})"
            )
        return len(tokens)

    async def read_positions(self, chain: Chain, users: Sequence[str], block: int) -> list[comet.CometPosition]:
        return await self.reader.read_positions(chain, users, block, full=self.settings.protect.accounts)

    async def health_after(self, chain: Chain, action: Action) -> float | None:
        if not action.protective:
            return None
        (pos,) = await self.read_positions(chain, [action.subject], (await chain.head()).number)
        return self.exact_health(pos)

    # -- layout
    def _static(self) -> CometStatic:
        s = self.reader.static
        assert s is not None, "load first"
        return s

    def _market(self) -> comet.CometMarket:
        assert self.market is not None, "decode_market first"
        return self.market

    @property
    def tokens(self) -> tuple[str, ...]:
        return (self._static().base_token, *(a.asset for a in self.reader.assets))

    @property
    def symbols(self) -> tuple[str, ...]:
        s = self._static()
        return (s.base_symbol, *s.symbols)

    def price_sources(self) -> dict[str, str]:
        s = self._static()
        feeds = {sym: a.price_feed for sym, a in zip(s.symbols, self.reader.assets, strict=True)}
        return {s.base_symbol: s.base_price_feed, **feeds}

    def price(self, column: int) -> int:
        return self._market().column_prices[column]

    def unit(self, column: int) -> int:
        return self._market().column_units[column]

    def column_of(self, token: str) -> int | None:
        try:
            return self._market().column_of(token)
        except KeyError:
            return None

    # -- rules
    def confirm_users(self, snap: Snapshot, positions: Mapping[str, Any]) -> list[str]:
        """Absorb candidates, re-read at this block with Comet's own isLiquidatable."""
        protected = set(self.protected_accounts())
        return sorted(p.user for p in super().liquidation_candidates(snap, positions, protected))

    def screen_below(self) -> float:
        """Stored indices lag: an account at HF x (accrued / stored borrow index) under 1 by the
        view is liquidatable once absorb accrues."""
        m = self._market()
        return m.accrued().base_borrow_index / m.base_borrow_index

    def exact_health(self, pos: comet.CometPosition) -> float:
        return wad_to_health(comet.health_factor_wad(pos, self._market().accrued()))

    def value_exposures(self, pos: comet.CometPosition) -> tuple[list[float], list[float]] | None:
        return None  # the predictive trigger is for Aave v3 markets (static trigger here)

    def protect(self, pos: comet.CometPosition, wallet: Mapping[str, int], ps: ProtectSettings) -> list[Action]:
        action = decide_protect(pos, self._market().accrued(), self.wallet_columns(wallet), ps)
        return [] if action is None else [action]

    def deleverage_asks(self, positions: Sequence[Any], ps: ProtectSettings) -> list[Ask]:
        return deleverage_asks(positions, self._market().accrued(), ps) if ps.deleverager else []

    def deleverage(self, pos: comet.CometPosition, ctx: FlashContext, ps: ProtectSettings) -> Action | None:
        m = self._market().accrued()
        if not ps.deleverager or comet.health_factor_wad(pos, m) >= int(ps.trigger_hf * WAD):
            return None
        return decide_deleverage(pos, m, ctx, ps, target_wad(ps))

    def deleverage_grants(self, pos: comet.CometPosition, deleverager: str) -> list[Grant]:
        """Comet's allow: the Deleverager becomes a manager of the account (withdrawFrom), for
        an account holding collateral here."""
        if not any(pos.collateral):
            return []
        allow = fn(comet.ABI, "allow")
        check = Call(self.address, fn(comet.ABI, "isAllowed").encode(pos.user, deleverager), True)
        return [Grant("Comet allow", self.address, allow.encode(deleverager, True), allow.encode(deleverager, False),
                      check, 1)]  # fmt: skip

    def liquidations(
        self, candidates: Sequence[Any], wallet: Mapping[str, int], gas_cost_base: int, settings: LiquidateSettings
    ) -> LiquidationPlan:
        m = self._market().accrued()  # absorb accrues interest before it checks isLiquidatable
        return decide_comet(candidates, m, self.wallet_columns(wallet)[0], settings, gas_cost_base)

    # -- flash liquidations (FlashRules): absorb + buys + sales in one transaction
    def flash_asks(self, candidates: Sequence[Any], settings: FlashSettings) -> list[Ask]:
        return flash_asks(candidates, self._market().accrued())

    def flash_pairs(self, actions: Sequence[Action]) -> set[tuple[str, str]]:
        return flash_pairs(actions)

    def flash_sources(self) -> list[tuple[str, Lender, Call]]:
        return []  # Comet lends no flash loans: Uniswap v3 pools do

    def flash_liquidations(
        self, candidates: Sequence[Any], ctx: FlashContext, gas_cost_base: int, settings: Settings, exclude: set[str]
    ) -> LiquidationPlan:
        if exclude:  # the wallet already absorbs or buys on this market this block
            return LiquidationPlan(())
        min_profit = int(settings.liquidate.min_profit_usd * comet.PRICE_SCALE)
        return decide_flash_comet(candidates, self._market().accrued(), ctx, settings.flash, gas_cost_base, min_profit)

    def actual(self, action: Any, results: Any) -> dict[str, Any] | None:
        if isinstance(action, Deleverage):
            return self.deleverage_actual(action, results)
        if not isinstance(action, FlashAbsorb):
            return None
        logs = [log for r in results for log in r.logs]
        found = flash_profit(action.liquidator, logs)
        if found is None:
            return None
        unit = self.unit(0)
        found["text"] = (
            f"absorbed {len(action.accounts)}, bought and sold {len(action.buys)} asset(s); loan fee "
            f"{found['fee'] / unit:,.4f}, profit {found['profit'] / unit:,.4f} {action.base_symbol} to the owner "
            f"(predicted {action.expected_net / unit:,.4f})"
        )
        return found

    # -- writes
    def encode(self, action: Action) -> tuple[TxRequest, Approval | None]:
        return encode(self.address, self.keeper_address, action)

    def describe(self, block: int, action: Action, after: float | None, gas: int, gas_cost: int, status: str) -> str:
        head = f"[block {block}] {self.protocol}"
        if isinstance(action, Protect):
            return self.describe_protect(head, action, ratio_text(after), gas, gas_cost, status)
        if isinstance(action, Deleverage):
            return self.describe_deleverage(head, action, ratio_text(after), gas, gas_cost, status)
        if isinstance(action, Absorb):
            seized = ", ".join(
                f"{amount / self.unit(self.symbols.index(sym)):,.6f} {sym}" for sym, amount in action.expected_seized
            )
            return (
                f"{head} ABSORB {len(action.accounts)} account(s) "
                f"{', '.join(a[:10] + '…' for a in action.accounts)}  HF "
                f"{', '.join(f'{h:.4f}' for h in action.health)}  protocol takes {seized}  "
                f"gas {gas:,} ({usd(gas_cost)})  {status}"
            )
        if isinstance(action, FlashAbsorb):
            buys = ", ".join(f"{b.expected_collateral / self.unit_of(b.asset):,.6f} {b.symbol}" for b in action.buys)
            return (
                f"{head} FLASH ABSORB {len(action.accounts)} account(s) HF "
                f"{', '.join(f'{h:.4f}' for h in action.health)}, buy and sell {buys}, borrowing "
                f"{action.borrowed / self.unit(0):,.2f} {action.base_symbol}  gas {gas:,} ({usd(gas_cost)})  "
                f"profit {usd(action.expected_gross_base - gas_cost)}  {status}"
            )
        assert isinstance(action, BuyCollateral)
        return (
            f"{head} BUY {action.expected_collateral / self.unit_of(action.asset):,.6f} {action.symbol} for "
            f"{action.base_amount / self.unit(0):,.2f} {action.base_symbol}  gas {gas:,} ({usd(gas_cost)})  "
            f"profit {usd(action.expected_gross_base - gas_cost)}  {status}"
        )
