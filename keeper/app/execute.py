"""Execution of one market's actions, beside the loop: admission (one action per position, the
journal's cooldown and idempotent keys), bursts and in-order chains through the executor, and
the record of what became of each action (the decision log, counts, alerts, the console line).
The base class of the Keeper (keeper.app.loop), with the state it owns."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from keeper.app.alerts import alert
from keeper.app.watch import Watch, decision_log
from keeper.errors import ExecutionError, SkipAction, TransientError
from keeper.execution.executor import Executor
from keeper.execution.journal import ActionKey
from keeper.execution.sending import NOT_SIMULATED
from keeper.execution.tx import Planned, TxRequest, TxResult
from keeper.sources.chain import Chain, Head
from keeper.strategy.actions import Action, fields_of

log = logging.getLogger("keeper")
NOT_FAILURES = ("still in flight", "cooldown:", "already decided", "an action is queued")
"""Why an action was not attempted that is not a failure (one is already under way)."""
HISTORY_MAX = 10_000


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


class Execution:
    """Executes the actions the loop decides (the Keeper is one)."""

    def __init__(self, chain: Chain, executor: Executor, report: Callable[[str], None] | None = None):
        self.chain = chain
        self.executor = executor
        self.report = report or (lambda line: None)
        self._queue: asyncio.Queue[tuple[Head, Watch, list[Action]]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._worker_error: BaseException | None = None
        self._busy: set[tuple[str, str]] = set()
        """(market, position) with an action queued or executing."""
        self.history: list[ActionOutcome] = []
        """The latest outcomes (HISTORY_MAX); totals are in `counts`."""
        self.simulation_reverts = 0
        """Dry-run: actions whose simulation reverted (`keeper run --dry-run` then exits 1)."""
        self.counts: dict[tuple[str, str, str], int] = {}
        """(market, action, outcome) -> how many: sent (confirmed), failed, skipped, dry_run."""
        self.gas_spent_wei = 0

    # ------------------------------------------------------------------ execution beside the loop
    async def _run_actions(self, head: Head, w: Watch, actions: list[Action]) -> list[ActionOutcome]:
        """One market's actions of one block. Actions that stand alone go out in one burst
        (`Executor.burst`: sequential nonces, no receipt awaited in between); a chain of actions
        planned on the state its first one leaves (an absorb and its purchases, an order and its
        settlement) runs in order afterwards, and the rest of a chain is not attempted when its
        first action was not sent. Outcomes come back in the order of `actions`."""
        chains: list[list[int]] = []
        for k, action in enumerate(actions):
            if action.after_previous and chains:
                chains[-1].append(k)
            else:
                chains.append([k])
        alone = [c[0] for c in chains if len(c) == 1]
        done: dict[int, ActionOutcome] = {}
        if len(alone) > 1:
            for k, out in zip(alone, await self._burst(head, w, [actions[k] for k in alone]), strict=True):
                done[k] = out
        for chain in chains:
            if chain[0] not in done:
                for k, out in zip(chain, await self._in_order(head, w, [actions[k] for k in chain]), strict=True):
                    done[k] = out
        return [done[k] for k in range(len(actions))]

    async def _in_order(self, head: Head, w: Watch, actions: list[Action]) -> list[ActionOutcome]:
        outcomes = []
        anchor_sent, anchor = True, "action"
        bundle: list[TxRequest] | None = None  # dry-run: the simulated chain so far
        for action in actions:
            if action.after_previous and not anchor_sent:
                if bundle is not None:  # dry-run: simulated after the actions before it
                    outcomes.append(await self._dry_run_after(head, w, action, bundle))
                    continue
                why = f"not attempted: the {anchor} before it was not sent"
                out = ActionOutcome(head.number, w.label, action, error=why)
                self._log_outcome(w, out)
                outcomes.append(out)
                continue
            out = await self._execute(head, w, action)
            if not action.after_previous:
                anchor_sent, anchor = out.ok and out.sent, type(action).__name__.lower()
                simulated = self.executor.dry_run and out.ok and not out.sent and not out.not_simulated
                try:
                    bundle = await self._encoded(w, action) if simulated else None
                except TransientError:  # the allowance read failed: what follows is not attempted
                    bundle = None
            outcomes.append(out)
        return outcomes

    async def _encoded(self, w: Watch, action: Action) -> list[TxRequest]:
        """An action as the transactions a dry-run bundle replays: its approvals, then itself."""
        tx, approve = w.adapter.encode(action)
        return [*(await self.executor.approvals_needed(*approve) if approve else []), tx]

    async def _dry_run_after(self, head: Head, w: Watch, action: Action, bundle: list[TxRequest]) -> ActionOutcome:
        out = ActionOutcome(head.number, w.label, action, price_scale=w.price_scale)
        try:
            *approvals, tx = await self._encoded(w, action)
            out.results = await self.executor.dry_run_with(approvals, tx, before=bundle)
            bundle += [*approvals, tx]
        except (SkipAction, TransientError) as exc:
            out.error = f"{type(exc).__name__}: {exc}"
        self._log_outcome(w, out)
        return out

    def _start_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._work(), name="keeper-executor")

    async def _work(self) -> None:
        """Executes queued actions one block's batch at a time (one key: its nonces are
        sequential anyway), while the loop goes on detecting and deciding."""
        assert self._queue is not None
        while True:
            head, w, actions = await self._queue.get()
            try:
                self._remember_outcomes(await self._run_actions(head, w, actions))
            except Exception as exc:  # FatalError and bugs: the loop re-raises it at its next block
                log.exception("execution worker stopped")
                self._worker_error = exc
            finally:
                self._busy -= {(w.label, a.subject) for a in actions}
                self._queue.task_done()

    async def drain(self) -> None:
        """Wait until every queued action has been executed (or failed)."""
        if self._queue is not None:
            await self._queue.join()
        if self._worker_error is not None:
            raise self._worker_error

    # ------------------------------------------------------------------ execution
    def _admit(
        self, head: Head, w: Watch, action: Action, in_flight: set[tuple[str, str]] | None = None
    ) -> tuple[ActionKey, str | None]:
        """The action's journal key, and why it must not go ahead (one in flight for the position,
        the account's cooldown, or the same action already decided at this block). `in_flight`:
        the journal's, read once for a burst."""
        journal, account = self.executor.journal, action.subject
        key = ActionKey(w.label, account, type(action).__name__, head.number)
        if (w.label, account) in (journal.in_flight() if in_flight is None else in_flight):
            return key, "an action on this position is still in flight"
        cooldown = self.executor.settings.account_cooldown_s
        last = journal.last_sent(w.label, account) if cooldown else None
        if cooldown and last is not None and time.time() - last < cooldown:
            return key, f"cooldown: last action on this account {time.time() - last:.0f} s ago (< {cooldown} s)"
        if not journal.begin(key, fields_of(action)):
            return key, f"already decided at block {head.number} ({journal.action_state(key)})"
        return key, None

    async def _execute(self, head: Head, w: Watch, action: Action) -> ActionOutcome:
        out = ActionOutcome(head.number, w.label, action, price_scale=w.price_scale)
        tx, approve = w.adapter.encode(action)
        key, refused = self._admit(head, w, action)
        if refused:
            out.error = f"SkipAction: {refused}"
            self._log_outcome(w, out)
            return out
        try:
            result: list[TxResult] | Exception = await self.executor.execute(
                tx, approve=approve, max_gas_cost_wei=w.worth_wei(action), key=key
            )
        except (SkipAction, ExecutionError, TransientError) as exc:
            result = exc
        return await self._finish(w, out, key, result)

    async def _burst(self, head: Head, w: Watch, actions: list[Action]) -> list[ActionOutcome]:
        outs = [ActionOutcome(head.number, w.label, a, price_scale=w.price_scale) for a in actions]
        planned: list[tuple[ActionOutcome, ActionKey, Planned]] = []
        with self.executor.journal.atomic():
            in_flight = self.executor.journal.in_flight()
            for out in outs:
                tx, approve = w.adapter.encode(out.action)
                key, refused = self._admit(head, w, out.action, in_flight)
                if refused:
                    out.error = f"SkipAction: {refused}"
                    self._log_outcome(w, out)
                else:
                    planned.append((out, key, Planned(tx, key, w.worth_wei(out.action), approve)))
        results = await self.executor.burst([p for _, _, p in planned])
        for (out, key, _), result in zip(planned, results, strict=True):
            await self._finish(w, out, key, result)
        return outs

    async def _finish(
        self, w: Watch, out: ActionOutcome, key: ActionKey, result: list[TxResult] | Exception
    ) -> ActionOutcome:
        """Record what became of an action: its transactions, or why it did not go ahead."""
        if isinstance(result, SkipAction | ExecutionError | TransientError):
            out.error = f"{type(result).__name__}: {result}"
            if self.executor.journal.action_state(key) in ("decided", "simulated"):
                self.executor.journal.set_action(key, "skipped", out.error)
        elif isinstance(result, Exception):
            raise result
        else:
            out.results = result
            if out.sent:
                out.health_after = await w.adapter.health_after(self.chain, out.action)
                out.actual = w.adapter.actual(out.action, out.results)
            else:
                self.executor.journal.set_action(key, "simulated")
        out.gas_cost_base = w.adapter.gas_cost(sum(r.gas_cost_wei for r in out.results))
        self._log_outcome(w, out)
        return out

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

    def _remember_outcomes(self, outcomes: list[ActionOutcome]) -> None:
        self.history.extend(outcomes)
        del self.history[:-HISTORY_MAX]

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
