"""What became of each action, and its record: the outcome (transactions, receipts, what the
chain did beside the prediction), the decision log line, the counts, the alerts and the
console line. The base of keeper.app.execute's Execution."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from keeper.app.alerts import alert
from keeper.app.watch import Watch, decision_log
from keeper.execution.executor import Executor
from keeper.execution.sending import NOT_SIMULATED
from keeper.execution.tx import TxResult
from keeper.strategy.actions import Action, fields_of

log = logging.getLogger("keeper")
NOT_FAILURES = ("still in flight", "cooldown:", "already decided", "an action is queued")
"""Why an action was not attempted that is not a failure (one is already under way)."""


@dataclass
class ActionOutcome:
    """What became of one action: its transactions (receipts), or why it did not go ahead."""

    block: int
    market: str
    action: Action
    results: list[TxResult] = field(default_factory=list)
    error: str | None = None
    health_after: float | None = None
    gas_cost_base: int = 0
    """In the market's price units (`price_scale` per USD)."""
    price_scale: int = 10**8
    actual: dict[str, Any] | None = None
    """What the chain did, from the receipts' events (the adapter's reading), beside the
    action's predicted figures; None when nothing was mined or the market does not report it."""

    @property
    def gas_cost_usd(self) -> float:
        return self.gas_cost_base / self.price_scale

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.results) and all(r.status in (1, None) for r in self.results)

    @property
    def sent(self) -> bool:
        return any(r.sent for r in self.results)

    @property
    def not_simulated(self) -> str:
        """Dry-run: why this action could not be simulated ('' when it was, or was sent)."""
        return next((r.note for r in self.results if r.note.startswith(NOT_SIMULATED)), "")

    @property
    def simulation_reverted(self) -> bool:
        return bool(self.error) and "simulation of" in str(self.error) and "reverted" in str(self.error)


class Recording:
    """Counts and records outcomes (the Execution is one)."""

    executor: Executor
    report: Callable[[str], None]
    simulation_reverts: int
    counts: dict[tuple[str, str, str], int]
    gas_spent_wei: int

    def _log_outcome(self, w: Watch, out: ActionOutcome) -> None:
        a = out.action
        record: dict[str, Any] = {
            "block": out.block,
            "market": w.label,
            "decision": type(a).__name__.lower(),
            "action": fields_of(a),
            "prices": w.prices(),
            "results": [asdict(r) for r in out.results],
            "error": out.error,
            "health_after": out.health_after,
            "gas_cost_base": out.gas_cost_base,
            "actual": out.actual,
        }
        decision_log.info(json.dumps(record, default=str))
        sent = [r for r in out.results if r.sent]
        unsimulated = out.not_simulated
        if out.error:
            status = "ERROR " + out.error
        elif unsimulated:
            status = unsimulated.replace("dry-run: not simulated", "dry-run: NOT simulated", 1)
        else:
            status = "dry-run (simulated, not sent)" if not sent else "ok"
        if out.actual and out.actual.get("text"):
            status += f"; chain: {out.actual['text']}"
        outcome = (
            "failed"
            if out.error and not out.error.startswith("SkipAction")
            else "skipped"
            if out.error
            else "sent"
            if sent
            else "not_simulated"
            if unsimulated
            else "dry_run"
        )
        if self.executor.dry_run and out.simulation_reverted:
            self.simulation_reverts += 1
        k = (w.label, type(a).__name__, outcome)
        self.counts[k] = self.counts.get(k, 0) + 1
        self.gas_spent_wei += sum(r.gas_cost_wei for r in sent)
        self._alert_outcome(w, out, bool(sent))
        gas = sum(r.gas_used for r in sent)
        self.report(w.adapter.describe(out.block, a, out.health_after, gas, out.gas_cost_base, status))

    def _alert_outcome(self, w: Watch, out: ActionOutcome, sent: bool) -> None:
        """Actions taken are info alerts; a protective action that failed is critical. Actions
        not attempted because one is already under way (in flight, cooldown) say nothing."""
        who = out.action.subject
        name = type(out.action).__name__
        protective = out.action.protective
        if out.error:
            if protective and not any(s in out.error for s in NOT_FAILURES):
                log.error(
                    "ALERT: %s: protective %s on %s failed: %s",
                    w.label,
                    name,
                    who,
                    out.error,
                    extra=alert("protection failed", who, "critical"),
                )
            return
        if not sent:
            return
        after = f", health after {out.health_after:.4f}" if out.health_after is not None else ""
        what = "protection" if protective else "liquidation"
        log.info(
            "%s: %s %s on %s done%s", w.label, what, name, who, after, extra=alert(what, f"{who} {out.block}", "info")
        )
