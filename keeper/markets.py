"""One watched market per protocol: the glue from an adapter's reads to the book, the oracle
guard and the strategy, and from an action back to calldata.

A `Watch` never sends: it returns actions and unsigned transactions; the service executes them
(keeper/service.py). Every watch lays its market out as columns (assets) so the book, the
oracle guard, the wallet and `keeper status` work the same for every protocol.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import asdict, replace
from typing import Any

import numpy as np
from eth_utils import to_checksum_address

from keeper.abi import fn
from keeper.alerts import alert
from keeper.book import SCREEN_MARGIN, Book, Snapshot
from keeper.chain import Call, Chain, Head
from keeper.config import CometSettings, PerpsSettings, ProtectSettings, Settings
from keeper.errors import ConfigError
from keeper.execution.executor import TxRequest
from keeper.protocols import aave_v3, comet, perps
from keeper.risk.guards import FeedRound, deviation_problems, oracle_problems
from keeper.risk.health import AAVE, COMET, PERPS
from keeper.risk.predict import SECONDS_PER_YEAR, ewma_step, health_sigma, health_under, next_oracle_answer
from keeper.strategy.actions import (
    Absorb,
    Action,
    AddMargin,
    BuyCollateral,
    Liquidate,
    LiquidatePerps,
    Protect,
    ReducePosition,
    SettleOrder,
)
from keeper.strategy.liquidate import decide_comet, decide_liquidations, decide_perps_liquidations
from keeper.strategy.protect import decide_protect, decide_protect_comet, decide_protect_perps
from keeper.strategy.trigger import Arm, Risk, Trigger, evaluate, sizing_settings

log = logging.getLogger("keeper")
decision_log = logging.getLogger("keeper.decision")
Approval = tuple[str, str, int]
"""(token, spender, amount) an action needs approved first."""


def log_decision(block: int, market: str, kind: str, account: str, inputs: dict[str, Any]) -> None:
    record = {"block": block, "market": market, "decision": kind, "account": account, **inputs}
    decision_log.info(json.dumps(record, default=str))


def usd(base_units: int | float, base_unit: int | float = 10**8) -> str:
    return f"${base_units / base_unit:,.2f}"


class Watch(ABC):
    """One market: its layout, its book, and its decisions."""

    protocol: str
    address: str
    """The contract whose events name the accounts to re-read."""
    adapter: Any
    """The protocol adapter (keeper/protocols/): reads, decoding and calldata."""
    plans_without_candidates = False
    """Plan liquidation-side actions even when no account is below 1 (Comet: buy collateral)."""
    price_scale = 10**8
    """Price units per USD (Aave and Comet USD markets: 1e8; Synthetix: 1e18)."""
    engine_scale = 1e8
    """Units per USD of the engine's figures (collateral, debt, liquidation prices)."""

    def __init__(self, settings: Settings, keeper_address: str, start_block: int):
        self.settings = settings
        self.keeper_address = to_checksum_address(keeper_address)
        self.start_block = start_block
        self.book: Book | None = None
        self.block = 0
        self._oracle_bad: dict[int, str] = {}
        self.reference: dict[str, float] = {}
        """Off-chain reference prices (USD by symbol), when configured; set by the service."""
        self._vol: tuple[np.ndarray, float, np.ndarray] | None = None
        """(last prices, their time, EWMA covariance rate per second) for the predictive trigger."""
        self._arms: dict[str, Arm] = {}
        self._static_noted = False

    @property
    def label(self) -> str:
        return f"{self.protocol} {self.address[:10]}"

    # -- layout and reads (per protocol)
    @abstractmethod
    async def load(self, chain: Chain, block: int) -> None:
        """Read the market's layout (assets) and create the book."""

    @property
    @abstractmethod
    def tokens(self) -> tuple[str, ...]:
        """Column tokens (the wallet is read for each)."""

    @property
    @abstractmethod
    def symbols(self) -> tuple[str, ...]: ...

    @property
    def loaded(self) -> bool:
        return self.book is not None

    def topic0s(self) -> list[bytes]:
        """topic0 of every event that names an account whose position changed."""
        return list(self.adapter.topic0s())

    def discovery_seed(self) -> set[str]:
        """Accounts watched whether or not an event names them (the protected ones)."""
        return set(self.settings.protect.accounts)

    def users_from_logs(self, logs: Iterable[dict[str, Any]]) -> set[str]:
        return set(self.adapter.users_from_logs(logs))

    def market_calls(self) -> list[Call]:
        """The market's per-block reads (batched by the service with every other market's)."""
        return list(self.adapter.market_calls())

    @abstractmethod
    def decode_market(self, results: Sequence[bytes | None], head: Head) -> None: ...

    @abstractmethod
    async def read_positions(self, chain: Chain, users: Sequence[str], block: int) -> Sequence[Any]: ...

    @abstractmethod
    def feeds(self) -> tuple[FeedRound | None, ...]: ...

    @abstractmethod
    def price(self, column: int) -> int: ...

    @abstractmethod
    def unit(self, column: int) -> int: ...

    @abstractmethod
    def column_of(self, token: str) -> int: ...

    # -- decisions (lending markets; a market with other actions overrides decide())
    def protect(self, pos: Any, wallet: list[int], settings: ProtectSettings) -> Protect | None:
        """The protective action for a watched account, if it needs one."""
        return None

    def value_exposures(self, pos: Any) -> tuple[list[float], list[float]] | None:
        """Per column: (collateral value x liquidation threshold, debt value); None where the
        predictive trigger is not supported (the static trigger applies)."""
        return None

    def observe_prices(self, now: float) -> None:
        """Feed the volatility estimate (EWMA of log returns) with this block's market prices:
        the off-chain reference where configured, else the oracle's answers."""
        px = np.array([self.reference.get(sym, self.price(i) / self.price_scale) for i, sym in enumerate(self.symbols)])
        q = self.settings.protect.predictive
        if self._vol is None or len(self._vol[0]) != len(px) or not np.all(px > 0):
            prior = np.eye(len(px)) * q.prior_vol**2 / SECONDS_PER_YEAR
            self._vol = (px, now, prior if self._vol is None or len(self._vol[0]) != len(px) else self._vol[2])
            return
        last, then, cov = self._vol
        if now > then:
            cov = ewma_step(cov, np.log(px / last), now - then, q.half_life_s, q.downside_weight)
            self._vol = (px, now, cov)

    def trigger(self, head: Head, pos: Any, ps: ProtectSettings) -> Trigger | None:
        """The predictive/alert trigger's decision for a protected account (None: static)."""
        if ps.mode == "static":
            return None
        exposures = self.value_exposures(pos)
        if exposures is None or self._vol is None:
            if not self._static_noted:
                log.warning("%s: [protect] mode %r is for Aave v3 markets; static trigger here", self.label, ps.mode)
                self._static_noted = True
            return None
        coll_lt, debt = np.array([exposures[0]]), np.array([exposures[1]])
        o = self.settings.oracle
        oracle = np.array([self.price(i) / self.price_scale for i in range(len(self.symbols))])
        market = np.array([self.reference.get(sym, np.nan) for sym in self.symbols])
        feeds = self.feeds()
        updated = np.array([float(f.updated_at) if f else float(head.timestamp) for f in feeds[: len(oracle)]])
        specs = [o.feed_for(sym) for sym in self.symbols]
        deviation = np.array([(f.deviation_bps if f else 50) / 1e4 for f in specs])
        heartbeat = np.array(
            [
                float(f.heartbeat_s) if f else float(o.max_age_for(sym))
                for f, sym in zip(specs, self.symbols, strict=True)
            ]
        )
        nxt, _ = next_oracle_answer(oracle, market, updated, float(head.timestamp), deviation, heartbeat)
        hf = self.exact_health(pos)
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(oracle > 0, nxt / oracle, 1.0)
        hf_pred = float(health_under(coll_lt, debt, factor[None, :])[0, 0])
        sigma = float(health_sigma(coll_lt, debt, self._vol[2])[0])
        trig = evaluate(Risk(hf, hf_pred, sigma), ps, self._arms.get(pos.user, Arm()), float(head.timestamp))
        self._arms[pos.user] = trig.arm
        return trig

    def liquidations(self, head: Head, candidates: list[Any], wallet: list[int], gas_cost: int) -> list[Action]:
        """Liquidations of the accounts below 1 (exact checks are the strategy's)."""
        return []

    @abstractmethod
    def encode(self, action: Action) -> tuple[TxRequest, Approval | None]: ...

    async def health_after(self, chain: Chain, action: Action) -> float | None:
        """The account's health factor after a protective action, read back at the latest block."""
        if not isinstance(action, Protect):
            return None
        (pos,) = await self.read_positions(chain, [action.account], (await chain.head()).number)
        return self.exact_health(pos)

    @abstractmethod
    def exact_health(self, pos: Any) -> float: ...

    # -- shared
    @property
    def native_price(self) -> int:
        """Price of the native coin (via `native_asset`) in this market's price units."""
        return self.price(self.column_of(self.settings.native_asset))

    def gas_cost(self, gas_wei: int) -> int:
        return gas_wei * self.native_price // 10**18

    def wallet_columns(self, wallet: dict[str, int]) -> list[int]:
        return [wallet.get(t, 0) for t in self.tokens]

    def exposure(self, pos: Any, extra: str | None = None) -> list[str]:
        """Why the position's prices are untrusted: the oracle problems of its columns."""
        coll, debt = pos.rows()
        cols = {i for i, x in enumerate(coll) if x} | {i for i, x in enumerate(debt) if x}
        if extra is not None:
            cols.add(self.column_of(extra))
        return sorted(f"{self.symbols[i]}: {self._oracle_bad[i]}" for i in cols if i in self._oracle_bad)

    def oracle_guard(self, block: int, now: int) -> None:
        """Columns whose price must not be acted on; an ALERT when that set changes."""
        o = self.settings.oracle
        ages = [o.max_age_for(sym, tok) for sym, tok in zip(self.symbols, self.tokens, strict=False)]
        bad = oracle_problems(self.feeds(), now, ages + [o.max_age_s] * (len(self.feeds()) - len(ages)))
        self._set_untrusted(block, {**self._deviations(), **bad})

    def _deviations(self) -> dict[int, str]:
        if not self.reference:
            return {}
        prices = [self.price(i) / self.price_scale for i in range(len(self.symbols))]
        return deviation_problems(self.symbols, prices, self.reference, self.settings.oracle.max_deviation_bps)

    def _set_untrusted(self, block: int, bad: dict[int, str]) -> None:
        def kinds(problems: dict[int, str]) -> dict[int, str]:
            return {i: why.split()[0] for i, why in problems.items()}

        if kinds(bad) == kinds(self._oracle_bad):
            self._oracle_bad = bad  # same problems (the figures in the text may move)
            return
        for i, why in bad.items():
            if kinds(self._oracle_bad).get(i) != why.split()[0]:
                log.warning(
                    "ALERT: %s: oracle price of %s is untrusted, no action on accounts exposed to it: %s",
                    self.label,
                    self.symbols[i],
                    why,
                    extra=alert("stale oracle", f"{self.label} {self.symbols[i]}", "critical"),
                )
        for i in set(self._oracle_bad) - set(bad):
            log.warning("%s: oracle price of %s is trusted again", self.label, self.symbols[i])
        log_decision(
            block, self.label, "oracle-guard", "-", {"untrusted": {self.symbols[i]: w for i, w in bad.items()}}
        )
        self._oracle_bad = bad

    def decide(self, head: Head, snap: Snapshot, wallet: dict[str, int], gas_price_wei: int) -> list[Action]:
        """Protect the watched accounts, then liquidate others; spends from `wallet` (shared by
        every market, by token) as it plans."""
        assert self.book is not None
        self.oracle_guard(head.number, head.timestamp)
        if self.settings.protect.accounts:
            self.observe_prices(float(head.timestamp))
        actions: list[Action] = []
        for account in self.settings.protect.accounts:
            pos = self.book.positions.get(account)
            if pos is None:
                continue
            if pos.emode:
                log_decision(head.number, self.label, "skip", account, {"reason": f"e-mode {pos.emode} not supported"})
                continue
            ps = self.settings.protect.for_account(account)
            trig = self.trigger(head, pos, ps)
            if trig is not None:
                if trig.reason != "healthy":
                    log_decision(head.number, self.label, "trigger", account, asdict(trig))
                if trig.reason.startswith("alert-only"):
                    log.warning(
                        "ALERT: %s at risk: %s", account, trig.reason, extra=alert("at risk", account, "warning")
                    )
                if not trig.act:
                    continue
                ps = sizing_settings(ps, trig)
            action = self.protect(pos, self.wallet_columns(wallet), ps)
            if action is None:
                continue
            reasons = self.exposure(pos, action.asset)
            if trig is not None and trig.health < action.health_before and all("deviates" in r for r in reasons):
                # the oracle's answer is above the market's: protecting on the worse price is the safe side
                reasons = []
            if reasons:
                log.warning(
                    "ALERT: not protecting %s (HF %.4f): untrusted oracle price: %s",
                    account,
                    action.health_before,
                    "; ".join(reasons),
                    extra=alert("cannot protect", account, "critical"),
                )
                log_decision(
                    head.number,
                    self.label,
                    "skip-protect",
                    account,
                    {"reason": "oracle guard", "oracle": reasons, "action": asdict(action)},
                )
                continue
            wallet[action.asset] = wallet.get(action.asset, 0) - action.amount
            if not action.reaches_target:
                log.warning(
                    "ALERT: the wallet cannot bring %s to target HF %.3f: best is %.4f with %s (insufficient funds)",
                    account,
                    self.settings.protect.target_hf,
                    action.health_after,
                    action.kind,
                    extra=alert("cannot protect", account, "critical"),
                )
            actions.append(action)

        protected = set(self.settings.protect.accounts)
        # screening in float, widened by the book's index tolerance; the strategy decides exactly
        below = np.flatnonzero(snap.health.health_factor < self.screen_below() * (1.0 + SCREEN_MARGIN))
        candidates = []
        for k in below:
            user = snap.users[k]
            pos = self.book.positions[user]
            if user in protected or pos.emode:
                continue
            if reasons := self.exposure(pos):
                log_decision(
                    head.number, self.label, "skip-liquidation", user, {"reason": "oracle guard", "oracle": reasons}
                )
            else:
                candidates.append(pos)
        if candidates or self.plans_without_candidates:
            gas_cost = self.gas_cost(self.settings.liquidate.gas_estimate * gas_price_wei)
            planned = self.liquidations(head, candidates, self.wallet_columns(wallet), gas_cost)
            for a in planned:
                token, amount = spend(a)
                wallet[token] = wallet.get(token, 0) - amount
            actions += planned
        return actions

    def protected_accounts(self) -> list[str]:
        """The positions this market protects, as the book names them."""
        return list(self.settings.protect.accounts)

    def price_sources(self) -> dict[str, str]:
        """Symbol -> the Chainlink-style aggregator the market prices it with (after `load`);
        what a fork rehearsal overrides to shock a price. Empty where the market has none."""
        return {}

    def screen_below(self) -> float:
        """Health factor (engine, float) under which an account goes to the exact liquidation check."""
        return 1.0

    def worth_wei(self, action: Action) -> int | None:
        """The most gas (wei) an action may burn and still clear min_profit_usd; None: no bound
        beyond the executor's caps (protective actions, absorbs the config says to always do)."""
        min_profit = int(self.settings.liquidate.min_profit_usd * self.price_scale)
        if isinstance(action, Liquidate | BuyCollateral | LiquidatePerps):
            gross = action.expected_gross_base
        elif isinstance(action, Absorb) and not self.settings.liquidate.comet_absorb_always:
            gross = action.expected_gain_base
        else:
            return None
        return max(0, (gross - min_profit) * 10**18 // self.native_price)

    async def confirm(self, chain: Chain, head: Head, snap: Snapshot) -> bool:
        """Re-read, at this block, accounts whose exact figures the decision needs and the book
        may hold stale; True when it did (the snapshot is then recomputed). Lending markets keep
        exact integer replicas: nothing to do."""
        return False

    def format(self, block: int, action: Action, after: float | None, gas: int, gas_cost: int, status: str) -> str:
        hf_after = "?" if after is None else ("inf" if after == float("inf") else f"{after:.4f}")
        head = f"[block {block}] {self.protocol}"
        if isinstance(action, Protect):
            unit = self.unit(self.column_of(action.asset))
            return (
                f"{head} PROTECT {action.account[:10]}…  HF {action.health_before:.4f} -> {hf_after}  "
                f"{action.kind} {action.amount / unit:,.4f} {action.symbol} ({usd(action.value_base)})  "
                f"gas {gas:,} ({usd(gas_cost)})  {status}"
            )
        if isinstance(action, Liquidate):
            cunit = self.unit(self.column_of(action.collateral_asset))
            dunit = self.unit(self.column_of(action.debt_asset))
            return (
                f"{head} LIQUIDATE {action.account[:10]}…  HF {action.health_before:.4f} -> {hf_after}  "
                f"repay {action.expected_debt_repaid / dunit:,.4f} {action.debt_symbol}, seize "
                f"{action.expected_collateral / cunit:,.6f} {action.collateral_symbol}  gas {gas:,} "
                f"({usd(gas_cost)})  profit {usd(action.expected_gross_base - gas_cost)}  {status}"
            )
        if isinstance(action, Absorb):
            seized = ", ".join(
                f"{amount / self.unit(self.symbols.index(sym)):,.6f} {sym}" for sym, amount in action.expected_seized
            )
            return (
                f"{head} ABSORB {len(action.accounts)} account(s) "
                f"{', '.join(a[:10] + '…' for a in action.accounts)}  HF "
                f"{', '.join(f'{h:.4f}' for h in action.health_before)}  protocol takes {seized}  "
                f"gas {gas:,} ({usd(gas_cost)})  {status}"
            )
        assert isinstance(action, BuyCollateral)
        cunit = self.unit(self.column_of(action.asset))
        return (
            f"{head} BUY {action.expected_collateral / cunit:,.6f} {action.symbol} for "
            f"{action.base_amount / self.unit(0):,.2f} {action.base_symbol}  gas {gas:,} ({usd(gas_cost)})  "
            f"profit {usd(action.expected_gross_base - gas_cost)}  {status}"
        )


def spend(action: Action) -> tuple[str, int]:
    """(token, amount) a planned action takes from the wallet."""
    if isinstance(action, Protect):
        return action.asset, action.amount
    if isinstance(action, Liquidate):
        return action.debt_asset, action.debt_to_cover
    if isinstance(action, BuyCollateral):
        return action.base_token, action.base_amount
    return "", 0


def _ratio(x: float | None) -> str:
    return "?" if x is None else ("inf" if x == float("inf") else f"{x:.4f}")


class LendingWatch(Watch):
    """A lending market: its adapter decodes one block's `market`, whose `arrays()` feed the book."""

    market: Any

    def decode_market(self, results: Sequence[bytes | None], head: Head) -> None:
        assert self.book is not None
        self.market = self.adapter.decode_market(results, head.number, head.timestamp)
        self.block = head.number
        self.book.set_market(self.market.arrays())

    async def read_positions(self, chain: Chain, users: Sequence[str], block: int) -> list[Any]:
        return list(await self.adapter.read_positions(chain, users, block, full=self.settings.protect.accounts))

    def feeds(self) -> tuple[FeedRound | None, ...]:
        assert self.market is not None
        return tuple(self.market.feeds)


# ---------------------------------------------------------------------------- Aave v3


class AaveWatch(LendingWatch):
    protocol = aave_v3.NAME

    def __init__(self, settings: Settings, keeper_address: str):
        assert settings.aave is not None
        super().__init__(settings, keeper_address, settings.aave.start_block)
        self.adapter = aave_v3.AaveV3(settings.aave.pool, settings.aave.oracle)
        self.address = self.adapter.pool
        self.market: aave_v3.Market | None = None

    async def load(self, chain: Chain, block: int) -> None:
        reserves = await self.adapter.load_reserves(chain, block)
        if not reserves:
            raise ConfigError(f"{self.settings.source}: the Pool at {self.adapter.pool} lists no reserves")
        assets = [r.asset for r in reserves]
        if self.settings.native_asset not in assets:
            raise ConfigError(
                f"{self.settings.source}: native_asset {self.settings.native_asset} is not a reserve of "
                f"the Pool (reserves: {', '.join(assets)})"
            )
        self.book = Book(len(reserves), engine=AAVE)

    @property
    def tokens(self) -> tuple[str, ...]:
        return tuple(r.asset for r in self.adapter.reserves)

    def price_sources(self) -> dict[str, str]:
        return {r.symbol: r.price_source for r in self.adapter.reserves if r.price_source}

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(r.symbol for r in self.adapter.reserves)

    def price(self, column: int) -> int:
        assert self.market is not None
        return self.market.prices_base[column]

    def unit(self, column: int) -> int:
        assert self.market is not None
        return self.market.configs[column].unit

    def column_of(self, token: str) -> int:
        assert self.market is not None
        return self.market.index_of(token)

    def exact_health(self, pos: aave_v3.Position) -> float:
        assert self.market is not None
        hf = aave_v3.account_data(pos, self.market).health_factor_wad
        return float("inf") if hf >= 2**255 else hf / aave_v3.WAD

    def protect(self, pos: aave_v3.Position, wallet: list[int], settings: ProtectSettings) -> Protect | None:
        assert self.market is not None
        return decide_protect(pos, self.market, wallet, settings)

    def value_exposures(self, pos: aave_v3.Position) -> tuple[list[float], list[float]] | None:
        assert self.market is not None
        return aave_v3.value_exposures(pos, self.market)

    def liquidations(self, head: Head, candidates: list[Any], wallet: list[int], gas_cost: int) -> list[Action]:
        assert self.market is not None and self.book is not None
        plan = decide_liquidations(candidates, self.market, wallet, self.settings.liquidate, gas_cost)
        for account, reason in plan.skipped:
            acct = aave_v3.account_data(self.book.positions[account], self.market)
            log_decision(
                head.number,
                self.label,
                "skip-liquidation",
                account,
                {
                    "reason": reason,
                    "health_factor_wad": acct.health_factor_wad,
                    "collateral_base": acct.total_collateral_base,
                    "debt_base": acct.total_debt_base,
                },
            )
        return list(plan.chosen)

    def encode(self, action: Action) -> tuple[TxRequest, Approval | None]:
        a, pool = self.adapter, self.adapter.pool
        if isinstance(action, Protect):
            encode = a.encode_repay if action.kind == "repay" else a.encode_supply
            desc = f"{action.kind} {action.amount} {action.symbol} for {action.account}"
            return TxRequest(pool, encode(action.asset, action.amount, action.account), desc), (
                action.asset,
                pool,
                action.amount,
            )
        assert isinstance(action, Liquidate)
        data = a.encode_liquidation(action.collateral_asset, action.debt_asset, action.account, action.debt_to_cover)
        desc = (
            f"liquidationCall({action.collateral_symbol}, {action.debt_symbol}, {action.account}, "
            f"{action.debt_to_cover})"
        )
        return TxRequest(pool, data, desc), (action.debt_asset, pool, action.debt_to_cover)

    async def health_after(self, chain: Chain, action: Action) -> float | None:
        account = action.account if isinstance(action, Protect | Liquidate) else None
        if account is None:
            return None
        raw = await chain.call(self.adapter.pool, self.adapter.encode_account_data(account))
        hf = int(fn(aave_v3.POOL, "getUserAccountData").decode(raw)[5])
        return float("inf") if hf >= 2**255 else hf / aave_v3.WAD


# ---------------------------------------------------------------------------- Compound v3


class CometWatch(LendingWatch):
    protocol = comet.NAME
    plans_without_candidates = True

    def __init__(self, settings: Settings, keeper_address: str, market: CometSettings):
        super().__init__(settings, keeper_address, market.start_block)
        self.adapter = comet.Comet(market.comet)
        self.address = self.adapter.address
        self.market: comet.CometMarket | None = None
        self._static: comet.CometStatic | None = None

    async def load(self, chain: Chain, block: int) -> None:
        s = await self.adapter.load(chain, block)
        tokens = [s.base_token, *(a.asset for a in self.adapter._assets)]
        if self.settings.native_asset not in tokens:
            raise ConfigError(
                f"{self.settings.source}: native_asset {self.settings.native_asset} is not listed on the Comet "
                f"market {self.address} (base and collateral: {', '.join(tokens)})"
            )
        if self.book is None or self.book.n_assets != len(tokens) or self._static != s:
            self.book = Book(len(tokens), engine=COMET)
        self._static = s

    @property
    def loaded(self) -> bool:
        return self.book is not None and self.adapter.static is not None

    @property
    def tokens(self) -> tuple[str, ...]:
        s = self.adapter.static or self._static
        assert s is not None
        return (s.base_token, *(a.asset for a in self.adapter._assets))

    @property
    def symbols(self) -> tuple[str, ...]:
        s = self.adapter.static or self._static
        assert s is not None
        return (s.base_symbol, *s.symbols)

    def price_sources(self) -> dict[str, str]:
        s = self.adapter.static or self._static
        assert s is not None
        feeds = {sym: a.price_feed for sym, a in zip(s.symbols, self.adapter._assets, strict=True)}
        return {s.base_symbol: s.base_price_feed, **feeds}

    def price(self, column: int) -> int:
        assert self.market is not None
        return self.market.column_prices[column]

    def unit(self, column: int) -> int:
        assert self.market is not None
        return self.market.column_units[column]

    def column_of(self, token: str) -> int:
        assert self.market is not None
        return self.market.column_of(token)

    def screen_below(self) -> float:
        """Stored indices lag: an account at HF x (accrued / stored borrow index) under 1 by the
        view is liquidatable once absorb accrues."""
        assert self.market is not None
        return self.market.accrued().base_borrow_index / self.market.base_borrow_index

    def exact_health(self, pos: comet.CometPosition) -> float:
        assert self.market is not None
        hf = comet.health_factor_wad(pos, self.market.accrued())
        return float("inf") if hf == comet.MAX_UINT256 else hf / comet.WAD

    def protect(self, pos: comet.CometPosition, wallet: list[int], settings: ProtectSettings) -> Protect | None:
        assert self.market is not None
        return decide_protect_comet(pos, self.market.accrued(), wallet, settings)

    def liquidations(self, head: Head, candidates: list[Any], wallet: list[int], gas_cost: int) -> list[Action]:
        assert self.market is not None
        m = self.market.accrued()  # absorb accrues interest before it checks isLiquidatable
        plan = decide_comet(candidates, m, wallet[0], self.settings.liquidate, gas_cost)
        for account, reason in plan.skipped:
            pos = candidates[[p.user for p in candidates].index(account)]
            log_decision(
                head.number,
                self.label,
                "skip-liquidation",
                account,
                {
                    "reason": reason,
                    "health_factor_wad": comet.health_factor_wad(pos, m),
                    "collateral_value": comet.collateral_value(pos, m),
                    "debt_value": comet.debt_value(pos, m),
                },
            )
        actions: list[Action] = [plan.absorb] if plan.absorb else []
        return actions + list(plan.buys)

    def encode(self, action: Action) -> tuple[TxRequest, Approval | None]:
        a, target = self.adapter, self.adapter.address
        if isinstance(action, Protect):
            desc = f"supplyTo({action.account}, {action.symbol}, {action.amount}) [{action.kind}]"
            data = a.encode_supply_to(action.account, action.asset, action.amount)
            return TxRequest(target, data, desc), (action.asset, target, action.amount)
        if isinstance(action, Absorb):
            desc = f"absorb({self.keeper_address}, [{', '.join(action.accounts)}])"
            return TxRequest(target, a.encode_absorb(self.keeper_address, action.accounts), desc), None
        assert isinstance(action, BuyCollateral) and self.market is not None
        desc = f"buyCollateral({action.symbol}, {action.min_amount}, {action.base_amount}, {self.keeper_address})"
        data = a.encode_buy_collateral(action.asset, action.min_amount, action.base_amount, self.keeper_address)
        return TxRequest(target, data, desc), (self.market.base_token, target, action.base_amount)


# ---------------------------------------------------------------------------- Synthetix v3 perps


class PerpsWatch(Watch):
    """Columns are markets (ETH, BTC, ...); rows are perps accounts ("#<id>"); health is the margin
    ratio. The engine screens on prices; accounts near liquidation, and the protected ones, are
    re-read at the block (`confirm`) so decisions use the market's own margin figures."""

    protocol = perps.NAME
    price_scale = 10**18
    engine_scale = 1.0
    CONFIRM_BELOW = 1.05
    """Engine margin ratio under which an account is re-read before deciding."""

    def __init__(self, settings: Settings, keeper_address: str, ps: PerpsSettings):
        super().__init__(settings, keeper_address, ps.start_block)
        self.ps = ps
        self.adapter = perps.Perps(ps.market)
        self.address = self.adapter.address
        self.state: perps.PerpsState | None = None

    async def load(self, chain: Chain, block: int) -> None:
        markets = await self.adapter.load(chain, block)
        if self.ps.native_market_id not in [m.market_id for m in markets]:
            raise ConfigError(
                f"{self.settings.source}: [perps] native_market_id {self.ps.native_market_id} is not a market of "
                f"{self.address} (markets: {', '.join(f'{m.market_id} {m.symbol}' for m in markets)})"
            )
        self.book = Book(len(markets), engine=PERPS)

    @property
    def tokens(self) -> tuple[str, ...]:
        return (self.ps.usd_token,)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(m.symbol for m in self.adapter.markets)

    def users_from_logs(self, logs: Iterable[dict[str, Any]]) -> set[str]:
        return {perps.account_key(i) for i in self.adapter.accounts_from_logs(logs)}

    def discovery_seed(self) -> set[str]:
        return {perps.account_key(i) for i in self.ps.accounts}

    def decode_market(self, results: Sequence[bytes | None], head: Head) -> None:
        assert self.book is not None
        self.state = self.adapter.decode_state(results, head.number, head.timestamp)
        self.block = head.number
        self.book.set_market(self.state.arrays())

    async def read_positions(self, chain: Chain, users: Sequence[str], block: int) -> list[perps.PerpsAccount]:
        assert self.state is not None
        return await self.adapter.read_accounts(chain, [int(u[1:]) for u in users], block, self.state.prices)

    def feeds(self) -> tuple[FeedRound | None, ...]:
        return ()

    def oracle_guard(self, block: int, now: int) -> None:
        """Synthetix's oracle manager enforces staleness itself: a market whose indexPrice reverts
        is untrusted (no action on accounts holding it)."""
        assert self.state is not None
        bad = {i: "indexPrice reverted (stale or invalid price)" for i, p in enumerate(self.state.prices) if p is None}
        self._set_untrusted(block, {**self._deviations(), **bad})

    def price(self, column: int) -> int:
        assert self.state is not None
        return self.state.prices[column] or 0

    def unit(self, column: int) -> int:
        return perps.UNIT

    def column_of(self, token: str) -> int:
        raise KeyError(f"perps markets are not keyed by token ({token})")

    @property
    def native_price(self) -> int:
        assert self.state is not None
        return self.price(self.state.column_of_market(self.ps.native_market_id))

    def exact_health(self, pos: perps.PerpsAccount) -> float:
        r = pos.margin_ratio_wad
        return float("inf") if r == perps.MAX_UINT256 else r / perps.UNIT

    @property
    def protect_settings(self) -> ProtectSettings:
        """[protect], with the perps trigger/target margin ratios when they are set."""
        p = self.settings.protect
        if self.ps.trigger_ratio and self.ps.target_ratio:
            return replace(p, trigger_hf=self.ps.trigger_ratio, target_hf=self.ps.target_ratio)
        return p

    def _untrusted(self, acct: perps.PerpsAccount) -> list[str]:
        return [
            f"{self.symbols[i]}: {self._oracle_bad[i]}" for i, s in enumerate(acct.sizes) if s and i in self._oracle_bad
        ]

    async def confirm(self, chain: Chain, head: Head, snap: Snapshot) -> bool:
        assert self.book is not None
        near = {snap.users[k] for k in np.flatnonzero(snap.health.health_factor < self.CONFIRM_BELOW)}
        watched = {perps.account_key(i) for i in self.ps.accounts} & set(self.book.positions)
        users = sorted(near | watched)
        if not users:
            return False
        self.book.upsert(await self.read_positions(chain, users, head.number))
        return True

    def protected_accounts(self) -> list[str]:
        return [perps.account_key(i) for i in self.ps.accounts]

    def decide(self, head: Head, snap: Snapshot, wallet: dict[str, int], gas_price_wei: int) -> list[Action]:
        assert self.book is not None and self.state is not None
        self.oracle_guard(head.number, head.timestamp)
        actions: list[Action] = []
        protected = set(self.protected_accounts())
        for key in sorted(protected):
            acct = self.book.positions.get(key)
            if acct is None:
                continue
            action = decide_protect_perps(
                acct,
                self.state,
                wallet.get(self.ps.usd_token, 0),
                self.protect_settings,
                self.ps.prefer,
                self.ps.reduce_slippage_bps,
            )
            if action is None:
                continue
            if reasons := self._untrusted(acct):
                log.warning(
                    "ALERT: not protecting %s: untrusted price: %s",
                    key,
                    "; ".join(reasons),
                    extra=alert("cannot protect", key, "critical"),
                )
                log_decision(
                    head.number, self.label, "skip-protect", key, {"reason": "oracle guard", "oracle": reasons}
                )
                continue
            if not action.reaches_target:
                log.warning(
                    "ALERT: %s: cannot bring %s to target margin ratio %.3f: best is %.4f (insufficient funds)",
                    self.label,
                    key,
                    self.protect_settings.target_hf,
                    action.health_after,
                    extra=alert("cannot protect", key, "critical"),
                )
            actions.append(action)
            if isinstance(action, AddMargin):
                wallet[self.ps.usd_token] = wallet.get(self.ps.usd_token, 0) - action.amount
            elif self.ps.settle_orders:
                actions.append(SettleOrder(key, action.account_id, action.market_id))
        others = [a for u, a in self.book.positions.items() if u not in protected and a.can_liquidate]
        trusted = []
        for a in others:
            if reasons := self._untrusted(a):
                log_decision(
                    head.number, self.label, "skip-liquidation", a.user, {"reason": "oracle guard", "oracle": reasons}
                )
            else:
                trusted.append(a)
        gas_cost = self.gas_cost(self.settings.liquidate.gas_estimate * gas_price_wei)
        chosen, skipped = decide_perps_liquidations(trusted, self.settings.liquidate, gas_cost)
        for user, reason in skipped:
            acct = self.book.positions[user]
            log_decision(
                head.number,
                self.label,
                "skip-liquidation",
                user,
                {
                    "reason": reason,
                    "available_margin": acct.available_margin,
                    "required_maintenance_margin": acct.required_maintenance_margin,
                },
            )
        return actions + list(chosen)

    def encode(self, action: Action) -> tuple[TxRequest, Approval | None]:
        a, target = self.adapter, self.address
        if isinstance(action, AddMargin):
            data = a.encode_modify_collateral(action.account_id, action.amount)
            desc = f"modifyCollateral({action.account_id}, 0, +{action.amount})"
            return TxRequest(target, data, desc), (self.ps.usd_token, target, action.amount)
        if isinstance(action, ReducePosition):
            data = a.encode_commit_order(
                action.account_id, action.market_id, action.size_delta, action.acceptable_price
            )
            desc = (
                f"commitOrder({action.symbol}, account {action.account_id}, size {action.size_delta}, "
                f"acceptable price {action.acceptable_price})"
            )
            return TxRequest(target, data, desc), None
        if isinstance(action, SettleOrder):
            return TxRequest(
                target, a.encode_settle_order(action.account_id), f"settleOrder({action.account_id})"
            ), None
        assert isinstance(action, LiquidatePerps)
        return TxRequest(target, a.encode_liquidate(action.account_id), f"liquidate({action.account_id})"), None

    async def health_after(self, chain: Chain, action: Action) -> float | None:
        if not isinstance(action, AddMargin | ReducePosition | SettleOrder):
            return None
        (acct,) = await self.read_positions(chain, [action.account], (await chain.head()).number)
        return self.exact_health(acct)

    def format(self, block: int, action: Action, after: float | None, gas: int, gas_cost: int, status: str) -> str:
        head = f"[block {block}] {self.protocol}"
        money = f"gas {gas:,} ({usd(gas_cost, perps.UNIT)})  {status}"
        if isinstance(action, AddMargin):
            return (
                f"{head} PROTECT {action.account}  margin ratio {action.health_before:.4f} -> {_ratio(after)}  "
                f"add margin {usd(action.amount, perps.UNIT)} snxUSD  {money}"
            )
        if isinstance(action, ReducePosition):
            return (
                f"{head} PROTECT {action.account}  margin ratio {action.health_before:.4f} -> "
                f"{_ratio(action.health_after)} (expected)  reduce {action.symbol} by "
                f"{action.size_delta / perps.UNIT:+,.4f} at ~{usd(action.expected_fill_price, perps.UNIT)}  {money}"
            )
        if isinstance(action, SettleOrder):
            return f"{head} SETTLE {action.account} order in market {action.market_id}  -> {_ratio(after)}  {money}"
        assert isinstance(action, LiquidatePerps)
        return (
            f"{head} LIQUIDATE {action.account}  margin ratio {action.health_before:.4f}  reward "
            f"{usd(action.expected_reward, perps.UNIT)}  {money}  "
            f"profit {usd(action.expected_reward - gas_cost, perps.UNIT)}"
        )


def build_watches(settings: Settings, keeper_address: str) -> list[Watch]:
    watches: list[Watch] = []
    if settings.aave is not None:
        watches.append(AaveWatch(settings, keeper_address))
    watches += [CometWatch(settings, keeper_address, c) for c in settings.comets]
    if settings.perps is not None:
        watches.append(PerpsWatch(settings, keeper_address, settings.perps))
    return watches
