"""Execution of one market's actions, beside the loop: admission (one action per position, the
journal's cooldown and idempotent keys), bursts and in-order chains through the executor, and
the record of what became of each action (the decision log, counts, alerts, the console line).
The base class of the Keeper (keeper.app.loop), with the state it owns."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from keeper.app.alerts import alert
from keeper.app.outcomes import ActionOutcome, Recording
from keeper.app.watch import Watch, log_decision
from keeper.errors import ExecutionError, FatalError, SkipAction, StorageError, TransientError
from keeper.execution.executor import Executor
from keeper.execution.journal import ActionKey
from keeper.execution.tx import Planned, TxRequest, TxResult, summed
from keeper.sources.chain import Chain, Head
from keeper.sources.failures import UNFORESEEN
from keeper.strategy.actions import Action, fields_of

log = logging.getLogger("keeper")
HISTORY_MAX = 10_000


def prioritised(batches: list[tuple[Watch, list[Action]]]) -> list[tuple[Watch, list[Action]]]:
    """Each market's actions split into its protective chains and the rest (an action that runs
    after the previous one stays with it), every market's protective batch first."""
    first: list[tuple[Watch, list[Action]]] = []
    later: list[tuple[Watch, list[Action]]] = []
    for w, actions in batches:
        protective: list[Action] = []
        rest: list[Action] = []
        target = rest
        for action in actions:
            if not action.after_previous:
                target = protective if action.protective else rest
            target.append(action)
        first += [(w, protective)] if protective else []
        later += [(w, rest)] if rest else []
    return first + later


class Execution(Recording):
    """Executes the actions the loop decides (the Keeper is one)."""

    def __init__(self, chain: Chain, executor: Executor, report: Callable[[str], None] | None = None):
        self.chain = chain
        self.executor = executor
        self.report = report or (lambda line: None)
        self._tasks: set[asyncio.Task[list[ActionOutcome]]] = set()
        """Batches executing beside the loop (one per market and priority)."""
        self._worker_error: BaseException | None = None
        """A FatalError met while executing: the loop raises it at its next block."""
        self.internal_errors = 0
        """Batches that met an unexpected exception (logged; their actions are decided again)."""
        self.storage_fault = ""
        """Why the journal cannot be written ('' when it can): nothing is sent meanwhile."""
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
                run = self._bundled if self._bundles(chain, actions) else self._in_order
                for k, out in zip(chain, await run(head, w, [actions[k] for k in chain]), strict=True):
                    done[k] = out
        outcomes = [done[k] for k in range(len(actions))]
        await self._health_after(w, outcomes)
        for out in outcomes:
            self._log_outcome(w, out)
        return outcomes

    async def _health_after(self, w: Watch, outcomes: list[ActionOutcome]) -> None:
        """The health each sent action left, read for all of them at once and bounded in time
        (a report, never on the way of the next decision: a failed read leaves it unknown)."""

        async def one(out: ActionOutcome) -> None:
            try:
                async with asyncio.timeout(10.0):
                    out.health_after = await w.adapter.health_after(self.chain, out.action)
            except (TransientError, TimeoutError) as exc:
                log.info("%s: health after %s not read: %s", w.label, out.action.subject, exc)

        await asyncio.gather(*(one(o) for o in outcomes if o.sent and o.error is None))

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
                outcomes.append(ActionOutcome(head.number, w.label, action, error=why))
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

    def _bundles(self, chain: list[int], actions: list[Action]) -> bool:
        """A chain goes to the private relay as one bundle when there is one, it is live, the
        node can simulate bundles, and every action after the first can share its block."""
        ex = self.executor
        return (
            len(chain) > 1
            and ex.relay is not None
            and not ex.dry_run
            and not ex.cannot_bundle
            and all(actions[k].same_block for k in chain[1:])
        )

    async def _bundled(self, head: Head, w: Watch, actions: list[Action]) -> list[ActionOutcome]:
        """A chain as one private bundle: the approvals the whole chain needs (summed per token
        and spender), then its actions, landing together or not at all."""
        outs = [ActionOutcome(head.number, w.label, a, price_scale=w.price_scale) for a in actions]
        keys: list[ActionKey] = []
        try:
            for out in outs:
                key, refused = self._admit(head, w, out.action)
                if refused:  # the chain is planned as a whole: none of it goes
                    for o in outs:
                        o.error = f"SkipAction: not sent: {type(out.action).__name__} in its bundle: {refused}"
                    return outs
                keys.append(key)
        except StorageError as exc:
            self._storage_failed(exc)
            for o in outs:
                o.error = f"StorageError: not sent: {exc}"
            return outs
        items: list[Planned] = []
        owner: list[int] = []
        encoded = [w.adapter.encode(out.action) for out in outs]
        try:
            for (token, spender), total in summed(approve for _, approve in encoded).items():
                for a in await self.executor.approvals_needed(token, spender, total):
                    items.append(Planned(a, keys[0], None, None, actions[0].protective, "approval"))
                    owner.append(0)
        except TransientError as exc:
            return [self._finish(w, o, k, exc) for o, k in zip(outs, keys, strict=True)]
        for k, ((tx, _), out) in enumerate(zip(encoded, outs, strict=True)):
            items.append(Planned(tx, keys[k], w.worth_wei(out.action), None, out.action.protective))
            owner.append(k)
        got = await self.executor.bundle(items)
        per: list[list[TxResult] | Exception] = [[] for _ in outs]
        for k, result in zip(owner, got, strict=True):
            current = per[k]
            if isinstance(result, Exception):
                per[k] = current if isinstance(current, Exception) else result
            elif not isinstance(current, Exception):
                current += result
        return [self._finish(w, o, k, r) for o, k, r in zip(outs, keys, per, strict=True)]

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
        return out

    def dispatch(self, head: Head, batches: list[tuple[Watch, list[Action]]]) -> int:
        """Execute a block's decisions beside the loop: every market's protective actions first,
        then the liquidations, each market's as its own task, so no market waits behind
        another's confirmations and protection never waits behind a liquidation. Returns how
        many actions were handed over."""
        handed = 0
        for w, actions in prioritised(batches):
            self._busy |= {(w.label, a.subject) for a in actions}
            task = asyncio.create_task(self._run_batch(head, w, actions), name=f"keeper-execute-{w.label}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            handed += len(actions)
        return handed

    async def _run_batch(self, head: Head, w: Watch, actions: list[Action]) -> list[ActionOutcome]:
        """One market's batch; any exception stops only this batch: it is logged and counted,
        and its actions are recorded failed and decided afresh at the next block (a transaction
        already signed stays in the journal, where tracking or `reconcile` settles it)."""
        try:
            outcomes = await self._run_actions(head, w, actions)
        except FatalError as exc:
            self._worker_error = exc
            raise
        except UNFORESEEN as exc:  # a bug, or a failure nothing below classified
            self.internal_errors += 1
            log.exception("%s: executing %d action(s) failed; they are decided again next block", w.label, len(actions))
            outcomes = [self._interrupted(head, w, a, exc) for a in actions]
        finally:
            self._busy -= {(w.label, a.subject) for a in actions}
        self._remember_outcomes(outcomes)
        return outcomes

    def _interrupted(self, head: Head, w: Watch, action: Action, exc: Exception) -> ActionOutcome:
        out = ActionOutcome(head.number, w.label, action, error=f"internal error: {type(exc).__name__}: {exc}")
        key = ActionKey(w.label, action.subject, type(action).__name__, head.number)
        try:
            if self.executor.journal.action_state(key) in ("decided", "simulated"):
                self.executor.journal.set_action(key, "interrupted", out.error)
        except StorageError as fault:
            self._storage_failed(fault)
        self._log_outcome(w, out)
        return out

    def _journal_writable(self, head: Head, batches: list[tuple[Watch, list[Action]]]) -> bool:
        """After a journal write failed: whether it can be written again (a probe write, every
        block). While it cannot, this block's actions are logged as skipped and nothing is sent."""
        if not self.storage_fault:
            return True
        why = self.executor.journal.writable()
        if why:
            self.storage_fault = why
            for w, actions in batches:
                for a in actions:
                    reason = f"journal cannot be written: {why}"
                    log_decision(head.number, w.label, "skip", a.subject, {"reason": reason})
            return False
        log.warning("the journal can be written again: sending resumes")
        self.storage_fault = ""
        return True

    def _taken(self, head: Head) -> dict[tuple[str, str], str]:
        """Positions not to act on at this block, with why: an action queued or in flight, or a
        transaction of ours mined after this block, whose effect the view does not show yet."""
        taken = dict.fromkeys(self._busy, "an action is queued")
        try:
            journal = self.executor.journal
            for p, block in journal.mined_after(head.number).items():
                taken[p] = f"the view at block {head.number} predates our transaction mined at block {block}"
            taken |= dict.fromkeys(journal.in_flight(), "an action on this position is still in flight")
        except StorageError as exc:  # _admit refuses each action, with the reason
            self._storage_failed(exc)
        return taken

    def _storage_failed(self, exc: StorageError) -> None:
        if not self.storage_fault:
            log.error(
                "ALERT: the journal cannot be written (%s): nothing is sent until it can; monitoring goes on",
                exc,
                extra=alert("journal", "", "critical"),
            )
        self.storage_fault = str(exc)

    async def drain(self) -> None:
        """Wait until every dispatched action has been executed (or failed)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
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
        try:
            key, refused = self._admit(head, w, action)
        except StorageError as exc:
            self._storage_failed(exc)
            out.error = f"StorageError: not sent: {exc}"
            return out
        if refused:
            out.error = f"SkipAction: {refused}"
            return out
        try:
            result: list[TxResult] | Exception = await self.executor.execute(
                tx, approve=approve, max_gas_cost_wei=w.worth_wei(action), key=key, protective=action.protective
            )
        except (SkipAction, ExecutionError, TransientError, StorageError) as exc:
            result = exc
        return self._finish(w, out, key, result)

    async def _burst(self, head: Head, w: Watch, actions: list[Action]) -> list[ActionOutcome]:
        outs = [ActionOutcome(head.number, w.label, a, price_scale=w.price_scale) for a in actions]
        planned: list[tuple[ActionOutcome, ActionKey, Planned]] = []
        try:
            with self.executor.journal.atomic():
                in_flight = self.executor.journal.in_flight()
                for out in outs:
                    tx, approve = w.adapter.encode(out.action)
                    key, refused = self._admit(head, w, out.action, in_flight)
                    if refused:
                        out.error = f"SkipAction: {refused}"
                    else:
                        planned.append(
                            (out, key, Planned(tx, key, w.worth_wei(out.action), approve, out.action.protective))
                        )
        except StorageError as exc:  # nothing was admitted (one commit): nothing is sent
            self._storage_failed(exc)
            for out in outs:
                out.error = f"StorageError: not sent: {exc}"
            return outs
        results = await self.executor.burst([p for _, _, p in planned])
        for (out, key, _), result in zip(planned, results, strict=True):
            self._finish(w, out, key, result)
        return outs

    def _finish(
        self, w: Watch, out: ActionOutcome, key: ActionKey, result: list[TxResult] | Exception
    ) -> ActionOutcome:
        """Record what became of an action: its transactions, or why it did not go ahead (the
        health it left is read afterwards, for the whole batch at once)."""
        try:
            if isinstance(result, SkipAction | ExecutionError | TransientError | StorageError):
                out.error = f"{type(result).__name__}: {result}"
                if isinstance(result, StorageError):
                    self._storage_failed(result)
                elif self.executor.journal.action_state(key) in ("decided", "simulated"):
                    self.executor.journal.set_action(key, "skipped", out.error)
            elif isinstance(result, Exception):
                raise result
            else:
                out.results = result
                if out.sent:
                    out.actual = w.adapter.actual(out.action, out.results)
                else:
                    self.executor.journal.set_action(key, "simulated")
        except StorageError as exc:  # the outcome is on chain; the journal catches up by reconciliation
            self._storage_failed(exc)
        out.gas_cost_base = w.adapter.gas_cost(sum(r.gas_cost_wei for r in out.results))
        return out

    def _remember_outcomes(self, outcomes: list[ActionOutcome]) -> None:
        """Keep the latest outcomes (for the status page and reports)."""
        self.history.extend(outcomes)
        del self.history[:-HISTORY_MAX]
