"""One watched Aave v3 market (a Pool and its AaveOracle) behind keeper's MarketAdapter interface.

Columns are the Pool's reserves in `getReservesList` order; health is Aave's health factor from
the exact integer replica of the Pool's version (POOL_REVISION; keeper.protocols.aave_v3.math).
Accounts the numpy engine cannot screen (e-mode, stable debt) are checked exactly every block.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from keeper.book import Snapshot
from keeper.errors import ConfigError
from keeper.execution.tx import Approval, TxRequest, TxResult
from keeper.protocols.aave_v3 import encode as calldata
from keeper.protocols.aave_v3.actions import FlashLiquidate, Liquidate
from keeper.protocols.aave_v3.adapter import AaveV3Reader
from keeper.protocols.aave_v3.deleverage import decide_deleverage, deleverage_asks
from keeper.protocols.aave_v3.engine import ENGINE
from keeper.protocols.aave_v3.flash import decide_flash, flash_asks, flash_pairs
from keeper.protocols.aave_v3.levers import decide_liquidations, decide_protect
from keeper.protocols.aave_v3.math import NAME, Market, Position, account_data, collateral_balance, value_exposures
from keeper.protocols.aave_v3.settings import AaveSettings
from keeper.protocols.base import Capabilities, Grant, LiquidationPlan, ratio_text, usd
from keeper.protocols.lending import LendingMarket, flash_profit
from keeper.risk.intmath import MAX_UINT256, WAD, wad_to_health
from keeper.settings import FlashSettings, LiquidateSettings, ProtectSettings, Settings
from keeper.sources.abi import fn
from keeper.sources.chain import Call, Chain
from keeper.strategy.actions import Action, Deleverage, Protect
from keeper.strategy.flash import Ask, FlashContext, Lender
from keeper.strategy.sizing import target_wad

log = logging.getLogger(__name__)
CAPABILITIES = Capabilities(
    protect=("repay", "supply", "deleverage"),
    liquidation="liquidationCall",
    predictive_trigger=True,
    flash=True,
    deleverage=True,
)


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
        self.flash_premium_bps: int | None = None
        """FLASHLOAN_PREMIUM_TOTAL when the Pool lends (flashLoanSimple), read at load."""
        self._irregular: set[str] = set()
        """Accounts in an e-mode category or with stable debt (checked exactly every block)."""

    # -- reads
    @property
    def loaded(self) -> bool:
        return bool(self.reader.reserves)

    async def load(self, chain: Chain, block: int) -> int:
        reserves = await self.reader.load_reserves(chain, block)
        where = self.settings.source
        if self.reader.version is None:
            log.warning(
                "ALERT: %s: the Pool at %s reports POOL_REVISION %s, which is not an Aave version keeper "
                "knows: its accounts are reported, nothing is done on this market",
                where, self.reader.pool, self.reader.revision,
            )  # fmt: skip
        else:
            log.info("%s: Aave v%s (POOL_REVISION %s)", where, self.reader.version.name, self.reader.revision)
        for r in reserves:
            if r.price_source and not r.feed:
                log.warning(
                    "ALERT: %s: the price source %s of %s answers no latestRoundData and wraps no feed keeper "
                    "knows: the age of its price cannot be judged (it is not checked for staleness)",
                    where, r.price_source, r.symbol,
                )  # fmt: skip
        if not reserves:
            raise ConfigError(f"{where}: the Pool at {self.reader.pool} lists no reserves")
        flash = self.settings.flash.funding != "wallet" or self.settings.protect.deleverager
        if flash and self.settings.flash.source != "uniswap":
            (raw,) = await chain.multicall([Call(self.address, fn("AaveV3PoolFlashLoan", "FLASHLOAN_PREMIUM_TOTAL")
                                                 .encode(), allow_failure=True)], block)  # fmt: skip
            self.flash_premium_bps = int.from_bytes(raw[-32:], "big") if raw and len(raw) >= 32 else None
            if self.flash_premium_bps is None:
                log.info("%s: the Pool has no flashLoanSimple: flash liquidations borrow from Uniswap v3", where)
        assets = [r.asset for r in reserves]
        if self.settings.native_asset not in assets:
            raise ConfigError(
                f"{where}: native_asset {self.settings.native_asset} is not a reserve of "
                f"the Pool (reserves: {', '.join(assets)})"
            )
        return len(reserves)

    async def read_positions(self, chain: Chain, users: Sequence[str], block: int) -> list[Position]:
        positions = await self.reader.read_positions(chain, users, block, full=self.settings.protect.accounts)
        for p in positions:  # the accounts the engine cannot screen, kept as they are read
            (self._irregular.add if self.irregular(p) else self._irregular.discard)(p.user)
        if self.market is not None and (new := await self.reader.load_emodes(chain, {p.emode for p in positions},
                                                                              self.market)):  # fmt: skip
            self.market = replace(self.market, emodes=self.market.emodes + new)
        return positions

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

    def notes(self) -> list[str]:
        r = self.reader
        out = [
            f"Aave v{r.version.name} rules (POOL_REVISION {r.revision})"
            if r.version is not None
            else f"POOL_REVISION {r.revision} is not a known Aave version: accounts reported, nothing acted on"
        ]
        for res in r.reserves:
            if res.price_source and not res.feed:
                out.append(f"{res.symbol}: price age cannot be judged (source {res.price_source} has no round data)")
            elif res.feed_note:
                out.append(f"{res.symbol}: {res.feed_note}")
        return out

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

    def deleverage_asks(self, positions: Sequence[Any], ps: ProtectSettings) -> list[Ask]:
        return deleverage_asks(positions, self._market(), ps) if ps.deleverager else []

    def deleverage(self, pos: Position, ctx: FlashContext, ps: ProtectSettings) -> Action | None:
        market = self._market()
        if not ps.deleverager or self.unsupported(pos) is not None:
            return None
        if account_data(pos, market).health_factor_wad >= int(ps.trigger_hf * WAD):
            return None
        return decide_deleverage(pos, market, ctx, ps, target_wad(ps))

    def deleverage_grants(self, pos: Position, deleverager: str) -> list[Grant]:
        """An aToken approval per collateral held (up to the balance is what a deleverage may take)."""
        market, approve, allowance = self._market(), fn("ERC20", "approve"), fn("ERC20", "allowance")
        out = []
        for i, r in enumerate(market.reserves):
            if pos.is_collateral(i) and (held := collateral_balance(pos, market, i)):
                check = Call(r.a_token, allowance.encode(pos.user, deleverager), True)
                grant, revoke = approve.encode(deleverager, MAX_UINT256), approve.encode(deleverager, 0)
                out.append(Grant(f"a{r.symbol} approval", r.a_token, grant, revoke, check, held))
        return out

    def unsupported(self, pos: Position) -> str | None:
        """Why the keeper does not act on this position (None: it does)."""
        if self.reader.version is None:
            return f"POOL_REVISION {self.reader.revision} is not a known Aave version"
        if pos.emode and self._market().emode(pos.emode) is None:
            return f"e-mode category {pos.emode} not read yet"
        return None

    def irregular(self, pos: Position) -> bool:
        """The engine's row does not carry this account's health (e-mode, stable debt)."""
        return bool(pos.emode) or pos.has_stable_debt

    def exact_figures(self, positions: Mapping[str, Any]) -> dict[str, tuple[float, float, float]]:
        out = {}
        for user in self._irregular:  # kept as positions are read: no pass over the whole book
            if (pos := positions.get(user)) is not None:
                a = account_data(pos, self._market())
                out[user] = wad_to_health(a.health_factor_wad), float(a.total_collateral_base), float(a.total_debt_base)
        return out

    def liquidation_candidates(self, snap: Snapshot, positions: Mapping[str, Any], protected: set[str]) -> list[Any]:
        found = super().liquidation_candidates(snap, positions, protected)
        seen = {p.user for p in found}
        market = self._market()
        for user in self._irregular:  # accounts the engine cannot screen: checked exactly
            pos = positions.get(user)
            if pos is None or user in seen or user in protected or self.unsupported(pos) is not None:
                continue
            if account_data(pos, market).health_factor_wad < WAD:
                found.append(pos)
        return found

    def liquidations(
        self, candidates: Sequence[Any], wallet: Mapping[str, int], gas_cost_base: int, settings: LiquidateSettings
    ) -> LiquidationPlan:
        return decide_liquidations(
            candidates, self._market(), self.wallet_columns(wallet), settings, gas_cost_base,
            liquidator=self.keeper_address,
        )  # fmt: skip

    # -- flash liquidations (FlashRules)
    def flash_asks(self, candidates: Sequence[Any], settings: FlashSettings) -> list[Ask]:
        return flash_asks(candidates, self._market(), settings, settings.liquidator)

    def flash_pairs(self, actions: Sequence[Action]) -> set[tuple[str, str]]:
        return flash_pairs(actions)

    def flash_sources(self) -> list[tuple[str, Lender, Call]]:
        """The Pool's own flash loans of each reserve that allows them (up to what its aToken holds)."""
        if self.flash_premium_bps is None or self.market is None:
            return []
        balance = fn("ERC20", "balanceOf")
        return [
            (
                r.asset,
                Lender("aave", self.address, self.flash_premium_bps * 100, 0),
                Call(r.asset, balance.encode(r.a_token)),
            )
            for r, cfg in zip(self.market.reserves, self.market.configs, strict=True)
            if cfg.flashloan_enabled and cfg.active and not cfg.paused
        ]

    def flash_liquidations(
        self, candidates: Sequence[Any], ctx: FlashContext, gas_cost_base: int, settings: Settings, exclude: set[str]
    ) -> LiquidationPlan:
        rest = [p for p in candidates if p.user not in exclude]
        min_profit = int(settings.liquidate.min_profit_usd * self.capabilities.price_scale)
        return decide_flash(rest, self._market(), ctx, settings.flash, gas_cost_base, min_profit)

    # -- writes
    def encode(self, action: Action) -> tuple[TxRequest, Approval | None]:
        return calldata.encode(self.address, action)

    def actual(self, action: Action, results: Sequence[TxResult]) -> dict[str, Any] | None:
        if isinstance(action, Deleverage):
            return self.deleverage_actual(action, results)
        found = calldata.chain_amounts(self.address, action, [log for r in results for log in r.logs])
        if found is None:
            return None
        if isinstance(action, Liquidate):
            cunit, dunit = self.unit_of(action.collateral_asset), self.unit_of(action.debt_asset)
            same = (found["debt_repaid"], found["collateral_seized"]) == (
                action.expected_debt_repaid, action.expected_collateral
            )  # fmt: skip
            found["text"] = (
                f"Pool repaid {found['debt_repaid'] / dunit:,.4f} {action.debt_symbol}, seized "
                f"{found['collateral_seized'] / cunit:,.6f} {action.collateral_symbol}"
                + (
                    " (as predicted)"
                    if same
                    else f" (predicted {action.expected_debt_repaid} / {action.expected_collateral} units)"
                )
            )
            if isinstance(action, FlashLiquidate):
                flash = flash_profit(action.liquidator, [log for r in results for log in r.logs])
                if flash is not None:
                    found.update(flash)
                    found["text"] += (
                        f"; sold for {action.debt_symbol}, loan fee {flash['fee'] / dunit:,.4f}, profit "
                        f"{flash['profit'] / dunit:,.4f} {action.debt_symbol} to the owner "
                        f"(predicted {action.expected_net / dunit:,.4f})"
                    )
        elif isinstance(action, Protect):
            unit = self.unit_of(action.asset)
            found["text"] = f"Pool took {found['amount'] / unit:,.4f} {action.symbol}" + (
                " (as predicted)" if found["amount"] == action.amount else f" (predicted {action.amount} units)"
            )
        return found

    def describe(self, block: int, action: Action, after: float | None, gas: int, gas_cost: int, status: str) -> str:
        head = f"[block {block}] {self.protocol}"
        if isinstance(action, Protect):
            return self.describe_protect(head, action, ratio_text(after), gas, gas_cost, status)
        if isinstance(action, Deleverage):
            return self.describe_deleverage(head, action, ratio_text(after), gas, gas_cost, status)
        assert isinstance(action, Liquidate)
        cunit, dunit = self.unit_of(action.collateral_asset), self.unit_of(action.debt_asset)
        if isinstance(action, FlashLiquidate):
            return (
                f"{head} FLASH LIQUIDATE {action.account[:10]}…  HF {action.health_before:.4f} -> {ratio_text(after)}  "
                f"borrow {action.borrowed / dunit:,.4f} {action.debt_symbol} ({action.lender_source}), repay "
                f"{action.expected_debt_repaid / dunit:,.4f}, seize {action.expected_collateral / cunit:,.6f} "
                f"{action.collateral_symbol}, sell for {action.expected_out / dunit:,.4f}  "
                f"gas {gas:,} ({usd(gas_cost)})  "
                f"profit {usd(action.expected_gross_base - gas_cost)}  {status}"
            )
        return (
            f"{head} LIQUIDATE {action.account[:10]}…  HF {action.health_before:.4f} -> {ratio_text(after)}  "
            f"repay {action.expected_debt_repaid / dunit:,.4f} {action.debt_symbol}, seize "
            f"{action.expected_collateral / cunit:,.6f} {action.collateral_symbol}  gas {gas:,} "
            f"({usd(gas_cost)})  profit {usd(action.expected_gross_base - gas_cost)}  {status}"
        )
