"""One watched market: a protocol adapter, its book, and the state that lives between blocks (which
prices are untrusted, the volatility estimate, the predictive trigger's arms). Protocol-neutral:
everything protocol-specific is the adapter's (keeper.protocols.base.MarketAdapter).

A `Watch` never sends: it returns actions; the app executes them (keeper.app.execute).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from keeper.app.alerts import alert
from keeper.book import Book, Snapshot
from keeper.protocols.base import MarketAdapter
from keeper.risk.exposures import Risk, lookahead_factors, position_risk
from keeper.risk.guards import deviation_problems
from keeper.risk.predict import SECONDS_PER_YEAR, ewma_step
from keeper.settings import Settings
from keeper.sources.chain import Chain, Head
from keeper.strategy.actions import Action
from keeper.strategy.flash import FlashContext
from keeper.strategy.planner import Inputs, plan
from keeper.strategy.trigger import Arm

_STEADY = ("the Pool refuses", "POOL_REVISION", "e-mode category")
"""Skip reasons that stay the same block after block (a paused reserve, an unknown version):
logged when they start, not every block."""
log = logging.getLogger("keeper")
decision_log = logging.getLogger("keeper.decision")


def log_decision(block: int, market: str, kind: str, account: str, inputs: Any) -> None:
    record = {"block": block, "market": market, "decision": kind, "account": account, **inputs}
    decision_log.info(json.dumps(record, default=str))


class Watch:
    def __init__(self, adapter: MarketAdapter):
        self.adapter = adapter
        self.book: Book | None = None
        self.block = 0
        self.error = ""
        """Why this market was not read at the last block ('' when it was)."""
        self.reference: dict[str, float] = {}
        """Off-chain reference prices (USD by symbol), when configured; set by the loop."""
        self._layout: tuple[int, tuple[str, ...]] | None = None
        self._untrusted: dict[int, str] = {}
        self._vol: tuple[np.ndarray, float, np.ndarray] | None = None
        """(last prices, their time, EWMA covariance rate per second) for the predictive trigger."""
        self._arms: dict[str, Arm] = {}
        self._static_noted = False
        self.cannot_protect: dict[str, str] = {}
        self.deleverage_notes: list[str] = []
        """Whether each protected position can be deleveraged (read by `keeper status`)."""
        """Protected account -> why the keeper cannot protect it now (the wallet lacks funds)."""
        self.unread_users: set[str] = set()
        """Accounts whose events came in a block whose reads failed: read with the next block."""
        self._skips: dict[tuple[str, str], str] = {}
        """(decision kind, account) -> the reason of the skip last logged (a skip is logged again
        only when its reason changes, e.g. a paused reserve is not logged every block)."""

    # -- what the adapter is
    @property
    def protocol(self) -> str:
        return self.adapter.protocol

    @property
    def address(self) -> str:
        return self.adapter.address

    @property
    def label(self) -> str:
        return f"{self.protocol} {self.address[:10]}"

    @property
    def settings(self) -> Settings:
        return self.adapter.settings

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.adapter.symbols

    @property
    def price_scale(self) -> int:
        return self.adapter.capabilities.price_scale

    @property
    def engine_scale(self) -> float:
        return self.adapter.capabilities.engine_scale

    @property
    def loaded(self) -> bool:
        return self.book is not None and self.adapter.loaded

    def prices(self) -> dict[str, int]:
        return {sym: self.adapter.price(i) for i, sym in enumerate(self.symbols)}

    # -- reads
    async def load(self, chain: Chain, block: int) -> None:
        """The market's layout; a new book when it changed (a Comet asset listed)."""
        n = await self.adapter.load(chain, block)
        layout = (n, tuple(self.adapter.tokens))
        if self.book is None or layout != self._layout:
            self.book = Book(n, engine=self.adapter.engine)
            self._layout = layout

    def decode_market(self, results: Sequence[bytes | None], head: Head) -> None:
        assert self.book is not None
        self.book.set_market(self.adapter.decode_market(results, head))
        self.block = head.number

    async def read_positions(self, chain: Chain, users: Sequence[str], block: int) -> Sequence[Any]:
        return await self.adapter.read_positions(chain, users, block)

    async def confirm(self, chain: Chain, head: Head, snap: Snapshot) -> bool:
        """Re-read, at this block, accounts whose exact figures the decision needs and the book may
        hold stale; True when it did (the snapshot is then taken again)."""
        assert self.book is not None
        if not self.adapter.capabilities.confirms_positions:
            return False
        users = self.adapter.confirm_users(snap, self.book.positions)
        if not users:
            return False
        self.book.upsert(await self.read_positions(chain, users, head.number))
        return True

    # -- decisions
    def decide(
        self, head: Head, snap: Snapshot, wallet: dict[str, int], gas_price_wei: int, flash: FlashContext | None = None
    ) -> list[Action]:
        """Protect the watched accounts, then liquidate others; spends from `wallet` (shared by
        every market, by token) as it plans."""
        assert self.book is not None
        self.oracle_guard(head.number, head.timestamp)
        risks: dict[str, Risk] = {}
        if self.settings.protect.mode != "static" and self.adapter.capabilities.predictive_trigger:
            self.observe_prices(float(head.timestamp))
            risks = self._risks(head)
        inputs = Inputs(
            head.number, head.timestamp, gas_price_wei, wallet, self.book.positions, self._untrusted, risks, self._arms,
            flash,
        )  # fmt: skip
        out = plan(self.adapter, snap, inputs, self.settings)
        self._arms = out.arms
        wallet.clear()
        wallet.update(out.wallet)
        skips = {}
        for d in out.decisions:
            if d.kind.startswith("skip") and isinstance(d.inputs.get("reason"), str):
                key, why = (d.kind, d.account), d.inputs["reason"]
                skips[key] = why
                if self._skips.get(key) == why and why.startswith(_STEADY):
                    continue
            log_decision(head.number, self.label, d.kind, d.account, d.inputs)
        self._skips = skips
        cannot: dict[str, str] = {}
        for a in out.alerts:
            if a.kind == "cannot protect":
                cannot[a.subject] = a.message
                if a.subject in self.cannot_protect:
                    continue  # said when it began; it stays on the status page until it ends
            log.warning("%s: %s", self.label, a.message, extra=alert(a.kind, a.subject, a.tier))
        for account in sorted(set(self.cannot_protect) - set(cannot)):
            log.warning("%s: %s: no longer short of what protection needs", self.label, account)
        self.cannot_protect = cannot
        if out.static_fallback and not self._static_noted:
            log.warning("%s: [protect] mode %r needs the predictive trigger; static trigger here", self.label,
                        self.settings.protect.mode)  # fmt: skip
            self._static_noted = True
        return out.actions

    def observe_prices(self, now: float) -> None:
        """Feed the volatility estimate (EWMA of log returns) with this block's market prices:
        the off-chain reference where configured, else the oracle's answers."""
        scale = self.price_scale
        px = np.array([self.reference.get(s, self.adapter.price(i) / scale) for i, s in enumerate(self.symbols)])
        q = self.settings.protect.predictive
        if self._vol is None or len(self._vol[0]) != len(px) or not np.all(px > 0):
            prior = np.eye(len(px)) * q.prior_vol**2 / SECONDS_PER_YEAR
            self._vol = (px, now, prior if self._vol is None or len(self._vol[0]) != len(px) else self._vol[2])
            return
        last, then, cov = self._vol
        if now > then:
            cov = ewma_step(cov, np.log(px / last), now - then, q.half_life_s, q.downside_weight)
            self._vol = (px, now, cov)

    def _risks(self, head: Head) -> dict[str, Risk]:
        """The predictive trigger's inputs for each protected account on this market."""
        assert self.book is not None and self._vol is not None
        o, scale = self.settings.oracle, self.price_scale
        oracle = np.array([self.adapter.price(i) / scale for i in range(len(self.symbols))])
        market = np.array([self.reference.get(sym, np.nan) for sym in self.symbols])
        feeds = getattr(self.adapter, "feeds", lambda: ())()
        updated = np.array([float(f.updated_at) if f else float(head.timestamp) for f in feeds[: len(oracle)]])
        specs = [o.feed_for(sym) for sym in self.symbols]
        deviation = np.array([(f.deviation_bps if f else 50) / 1e4 for f in specs])
        heartbeat = np.array(
            [float(f.heartbeat_s) if f else float(o.max_age_for(s)) for f, s in zip(specs, self.symbols, strict=True)]
        )
        factors = lookahead_factors(oracle, market, updated, float(head.timestamp), deviation, heartbeat)
        risks = {}
        for account in self.adapter.protected_accounts():
            pos = self.book.positions.get(account)
            exposures = None if pos is None else self.adapter.value_exposures(pos)
            if exposures is not None:
                health = self.adapter.exact_health(pos)
                risks[account] = position_risk(health, np.array(exposures[0]), np.array(exposures[1]), factors,
                                               self._vol[2])  # fmt: skip
        return risks

    def oracle_guard(self, block: int, now: int) -> None:
        """Columns whose price must not be acted on; an ALERT when that set changes."""
        bad = {**self._deviations(), **self.adapter.price_problems(now, self.settings.oracle)}

        def kinds(problems: dict[int, str]) -> dict[int, str]:
            return {i: why.split()[0] for i, why in problems.items()}

        if kinds(bad) == kinds(self._untrusted):
            self._untrusted = bad  # same problems (the figures in the text may move)
            return
        for i, why in bad.items():
            if kinds(self._untrusted).get(i) != why.split()[0]:
                log.warning(
                    "ALERT: %s: oracle price of %s is untrusted, no action on accounts exposed to it: %s",
                    self.label,
                    self.symbols[i],
                    why,
                    extra=alert("stale oracle", f"{self.label} {self.symbols[i]}", "critical"),
                )
        for i in set(self._untrusted) - set(bad):
            log.warning("%s: oracle price of %s is trusted again", self.label, self.symbols[i])
        log_decision(
            block, self.label, "oracle-guard", "-", {"untrusted": {self.symbols[i]: w for i, w in bad.items()}}
        )
        self._untrusted = bad

    def _deviations(self) -> dict[int, str]:
        if not self.reference:
            return {}
        prices = [self.adapter.price(i) / self.price_scale for i in range(len(self.symbols))]
        return deviation_problems(self.symbols, prices, self.reference, self.settings.oracle.max_deviation_bps)

    def worth_wei(self, action: Action) -> int | None:
        """The most gas (wei) an action may burn and still clear min_profit_usd; None: no bound
        beyond the executor's caps (protective actions, absorbs the config says to always do)."""
        gross = action.worth_base
        if gross is None:
            return None
        min_profit = int(self.settings.liquidate.min_profit_usd * self.price_scale)
        return max(0, (gross - min_profit) * 10**18 // max(1, self.adapter.native_price))
