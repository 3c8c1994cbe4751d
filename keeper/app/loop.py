"""The keeper loop: sources -> book -> risk -> strategy -> executor, once per block.

Per block, whatever the number of markets and accounts: one eth_getLogs for every watched
market's events (who changed), one multicall for every market's state and the wallet, and one
batched read per market whose accounts changed. Decisions and their inputs go to the
`keeper.decision` logger as JSON, and to `report` as a line of text.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np
from eth_utils import to_checksum_address

from keeper.app.alerts import alert
from keeper.app.execute import prioritised
from keeper.app.flash import FlashReads, sold_pairs
from keeper.app.metrics import AT_RISK
from keeper.app.outcomes import ActionOutcome
from keeper.app.startup import Startup
from keeper.app.watch import Watch, log_decision
from keeper.errors import ConfigError, FatalError, TransientError
from keeper.execution.executor import Executor
from keeper.execution.journal import Checkpoints
from keeper.protocols.registry import build_markets
from keeper.settings import Settings
from keeper.sources.chain import Chain, Head
from keeper.sources.heads import HeadSubscription
from keeper.sources.reference import fetch_reference
from keeper.strategy.actions import Action

log = logging.getLogger("keeper")
__all__ = ["ActionOutcome", "Keeper", "StepReport"]


@dataclass
class StepReport:
    block: int
    accounts: int
    below_one: int
    outcomes: list[ActionOutcome]
    requests: int
    drift: int | None = None
    """On a reconciliation block: accounts whose re-read position differed from the book."""
    reorg_depth: int = 0
    """Blocks the keeper had processed that a reorg replaced (0: none)."""
    queued: int = 0
    """Actions handed to the execution worker (background mode); their outcomes arrive later."""


class Keeper(Startup):
    def __init__(
        self,
        settings: Settings,
        chain: Chain,
        executor: Executor,
        report: Callable[[str], None] | None = None,
        checkpoints: Checkpoints | None = None,
    ):
        super().__init__(chain, executor, report)
        self._init_startup()
        self.watches: list[Watch] = [Watch(a) for a in build_markets(settings, executor.address)]
        self.settings = settings
        self.checkpoints = checkpoints
        """Where discovery resumes from after a restart (None: rescan from each start_block)."""
        self.ws_url = settings.ws_url.get_secret_value() if settings.ws_url else ""
        """newHeads over WebSocket wake the loop (polling remains the fallback)."""
        self.heads: HeadSubscription | None = None
        self.flash_reads = FlashReads(settings.flash, settings.protect)
        """Quotes and lenders for liquidations through the flash liquidator ([flash])."""
        self.background = False
        """Execute beside the loop (`keeper run`): a block's decisions never wait for the previous
        block's confirmations. Off, step() returns with its outcomes (tests, the demo)."""
        self.wallet: dict[str, int] = {}
        """Token -> keeper balance at the last block ('' = the native coin, wei)."""
        self.last_block: int | None = None
        self.last_reconcile = 0
        self._alerts: dict[str, str] = {}
        self._hashes: dict[int, bytes] = {}
        """Hashes of the blocks processed lately, to detect reorgs."""
        self._reference_at = 0.0
        self.started_at = time.time()
        self.last_step_at = 0.0
        """Wall time the last block was processed (0: none yet)."""
        self.last_step_s = 0.0
        """How long processing the last block took."""
        self.failures = 0
        """Failed attempts at a block (metrics)."""
        self.market_stats: dict[str, tuple[int, int, int]] = {}
        """Per market: accounts, below 1 (liquidatable), below AT_RISK."""

    @property
    def settings(self) -> Settings:
        return self._settings

    @settings.setter
    def settings(self, settings: Settings) -> None:
        """Replace the settings (thresholds, caps) of the keeper and every market it watches."""
        self._settings = settings
        for w in self.watches:
            w.adapter.settings = settings

    # ------------------------------------------------------------------ start-up
    async def start(self) -> None:
        await super().start()
        assert self._boot.head is not None
        self._remember(self._boot.head)
        self._checkpoint(self._boot.head.number)

    # ------------------------------------------------------------------ one block
    async def step(self) -> StepReport | None:
        """Process every block since the last one; None when there is no new block."""
        started = time.perf_counter()
        if self.last_block is None:
            await self.start()
        assert self.last_block is not None
        requests_before = self.chain.requests
        head = await self.chain.head()
        depth = await self._reorg(head)
        if depth:
            head = await self.chain.head()  # recovery may have mined blocks: read the state after it
        if head.number <= self.last_block:
            return None
        addresses = [w.address for w in self.watches]
        topics = sorted({"0x" + t.hex() for w in self.watches for t in w.adapter.topic0s()})
        logs = await self.chain.get_logs(addresses, [topics], self.last_block + 1, head.number)
        touched: dict[int, list[str]] = {}
        for k, w in enumerate(self.watches):
            mine = [e for e in logs if to_checksum_address(e["address"]) == w.address]
            touched[k] = sorted(w.adapter.users_from_logs(mine))
        every = self.settings.reconcile_every_blocks
        reconcile = depth > 0 or (bool(every) and head.number - self.last_reconcile >= every)
        everyone = {k: list(w.book.users) for k, w in enumerate(self.watches) if w.book} if reconcile else None
        drift = await self._refresh(head, touched, everyone)
        if reconcile:
            self.last_reconcile = head.number
            log.log(
                logging.WARNING if drift else logging.INFO,
                "reconciliation at block %d: every account re-read, %d drifted from the book",
                head.number,
                drift,
            )
        self.last_block = head.number
        self._remember(head)
        if head.number % self.settings.checkpoint_every_blocks == 0:
            self._checkpoint(head.number)
        self._operational_alerts()
        await self._reference_prices()
        ex = self.executor.settings
        gas_price_wei = min(2 * head.base_fee_wei + int(ex.priority_fee_gwei * 10**9), int(ex.max_fee_gwei * 10**9))
        wallet = dict(self.wallet)
        outcomes: list[ActionOutcome] = []
        accounts = below = queued = 0
        if self._worker_error is not None:
            raise self._worker_error
        batches: list[tuple[Watch, list[Action]]] = []
        sold: set[tuple[str, str]] = set()
        """Pairs this block's flash liquidations sell: one market per pair and block."""
        taken = self._taken(head)
        for w in self.watches:
            if w.book is None or w.error:
                continue  # not read this block (reported in _refresh)
            snap = w.book.snapshot()
            if await w.confirm(self.chain, head, snap):
                snap = w.book.snapshot()
            accounts += len(w.book)
            below_one = int(np.sum(snap.health.health_factor < 1.0))
            below += below_one
            at_risk = int(np.sum(snap.health.health_factor < AT_RISK))
            self.market_stats[w.label] = (len(w.book), below_one, at_risk)
            try:
                flash = await self.flash_reads.context(self.chain, head, w, snap, frozenset(sold))
            except TransientError as exc:  # protection and wallet-funded liquidations go on without it
                log.warning("%s: flash quotes not read at block %d (%s): wallet-funded only", w.label, head.number, exc)
                flash = None
            actions = []
            for action in w.decide(head, snap, wallet, gas_price_wei, flash):
                if why := taken.get((w.label, action.subject)):
                    log_decision(head.number, w.label, "skip", action.subject, {"reason": why})
                else:
                    actions.append(action)
            sold |= sold_pairs(w, actions)
            if actions:
                batches.append((w, actions))
        if not self._journal_writable(head, batches):
            batches = []
        if self.background:
            queued = self.dispatch(head, batches)
        else:
            for w, actions in prioritised(batches):
                outcomes += await self._run_batch(head, w, actions)
        self._reconcile_journal()
        self.last_step_at = time.time()
        self.last_step_s = time.perf_counter() - started
        return StepReport(
            head.number,
            accounts,
            below,
            outcomes,
            self.chain.requests - requests_before,
            drift if reconcile else None,
            depth,
            queued,
        )

    # ------------------------------------------------------------------ reorgs
    def _remember(self, head: Head) -> None:
        self._hashes[head.number] = head.hash
        for n in [n for n in self._hashes if n < head.number - 256]:
            del self._hashes[n]

    async def _reorg(self, head: Head) -> int:
        """Detect a reorg by hashes (the new head's parent, or the block we processed last) and
        roll back: logs are re-scanned from the fork point, every account is re-read (the caller
        reconciles), and transactions the journal saw mined in replaced blocks are in flight
        again: rebroadcast and awaited, so an action is retried, or recorded failed if the new
        chain makes it revert. Returns the depth (0: no reorg)."""
        assert self.last_block is not None
        last = self.last_block
        known = self._hashes.get(last)
        if known is None:
            return 0
        if head.number == last + 1 and head.parent_hash:
            same = head.parent_hash == known
        elif head.number == last:
            same = head.hash == known
        else:
            same = (await self.chain.head(min(last, head.number))).hash == self._hashes.get(min(last, head.number))
        if same:
            return 0
        fork = min(last, head.number) - 1
        while fork in self._hashes and (await self.chain.head(fork)).hash != self._hashes[fork]:
            fork -= 1
        if fork not in self._hashes:
            fork = min(self._hashes, default=0) - 1  # deeper than we remember: rescan all we know
        depth = last - fork
        log.warning(
            "ALERT: reorg: blocks %d-%d were replaced (depth %d); rolling back to %d",
            fork + 1,
            last,
            depth,
            fork,
            extra=alert("reorg", str(fork), "warning"),
        )
        for n in [n for n in self._hashes if n > fork]:
            del self._hashes[n]
        self.last_block = fork
        self._checkpoint(fork)
        if not self.executor.dry_run and self.executor.journal.unconfirm_after(fork):
            if self._recovery is not None and not self._recovery.done():
                await self._recovery  # one recovery at a time: the one under way finishes first
            self._start_recovery("the reorg")
        return depth

    def _operational_alerts(self) -> None:
        """ALERT once when the kill switch turns on or off, or the gas balance falls below its floor."""
        ex = self.executor
        states = {
            "kill switch": ex.kill_switch() or "",
            "gas balance": (
                f"{self.wallet.get('', 0) / 1e18:.5f} native coin left, below min_native_balance "
                f"{ex.settings.min_native_balance}"
                if not ex.dry_run and self.wallet.get("", 0) < ex.settings.min_native_balance * 10**18
                else ""
            ),
        }
        for name, why in states.items():
            if why != self._alerts.get(name, ""):
                if why:
                    log.warning("ALERT: %s: %s", name, why, extra=alert(name, "", "critical"))
                else:
                    log.warning("%s: back to normal", name)
                self._alerts[name] = why

    async def _reference_prices(self) -> None:
        """Refresh the optional off-chain reference prices (every `reference_every_s`). When the
        reference cannot be read the keeper goes on with on-chain prices alone, with an ALERT."""
        o = self.settings.oracle
        if not o.reference_url or time.monotonic() - self._reference_at < o.reference_every_s:
            return
        self._reference_at = time.monotonic()
        why = ""
        prices: dict[str, float] = {}
        try:
            prices = await fetch_reference(o.reference_url)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:  # optional: never stops the keeper
            why = f"off-chain reference unavailable ({type(exc).__name__}: {exc}); acting on on-chain prices alone"
        if why != self._alerts.get("reference", ""):
            if why:
                log.warning("ALERT: %s", why, extra=alert("reference prices", "", "warning"))
            else:
                log.warning("off-chain reference prices available again")
            self._alerts["reference"] = why
        for w in self.watches:
            w.reference = prices

    # ------------------------------------------------------------------ loop
    async def run(self, *, blocks: int | None = None) -> None:
        """Poll for new blocks until cancelled (or `blocks` blocks have been processed). Start-up
        (discovery) runs inside the loop, so a transient RPC failure there is retried too."""
        listener = None
        if self.ws_url:
            self.heads = HeadSubscription(self.ws_url)
            listener = asyncio.create_task(self.heads.run(), name="keeper-new-heads")
        try:
            await self._loop(blocks)
            await self.drain()  # `--blocks N`: what was decided is executed before returning
            for task in (self._recovery, self._reconciling):
                if task is not None:
                    await task
        finally:
            extra = (self._recovery, self._reconciling, listener)
            pending: list[asyncio.Task[Any]] = [*self._tasks, *(t for t in extra if t is not None)]
            for task in pending:
                if not task.done():
                    task.cancel()
            # awaited, so none of them reads or sends after the keeper returned (and the provider closed)
            await asyncio.gather(*pending, return_exceptions=True)

    async def _loop(self, blocks: int | None) -> None:
        """Failures are counted per block (the block the keeper was trying to process), not per
        poll: polls that find no new block neither count nor reset. When no poll has succeeded
        for `max_stall_s` the keeper stops (FatalError: exit 3, one line saying why)."""
        done = 0
        failed: set[int] = set()
        last_ok = time.monotonic()
        last_error = ""
        while blocks is None or done < blocks:
            target = (self.last_block or 0) + 1
            try:
                report = await self.step()
                last_ok = time.monotonic()
                if report is not None:
                    failed.clear()
                    done += 1
                    log.info(
                        "block %d: %d accounts, %d below HF 1, %d actions (%d queued), %d requests",
                        report.block,
                        report.accounts,
                        report.below_one,
                        len(report.outcomes),
                        report.queued,
                        report.requests,
                    )
                    continue
            except (FatalError, ConfigError):
                raise
            except Exception as exc:  # TransientError, or a bug: this block is tried again
                last_error = f"{type(exc).__name__}: {exc}"
                self.failures += 1
                new_block = target not in failed
                failed.add(target)
                if isinstance(exc, TransientError):
                    log.warning("block %d not processed (%d failed blocks in a row): %s", target, len(failed), exc)
                else:
                    log.exception("unexpected error at block %d (%d failed blocks in a row)", target, len(failed))
                if new_block and len(failed) == 3:
                    log.error(
                        "ALERT: 3 blocks in a row failed: the RPC may be down (%s)",
                        last_error,
                        extra=alert("rpc down", "", "critical"),
                    )
            stalled = time.monotonic() - last_ok
            if stalled > self.settings.max_stall_s:
                raise FatalError(
                    f"no block processed for {stalled:.0f} s (max_stall_s {self.settings.max_stall_s:g}); "
                    f"{len(failed)} block(s) failed, the last with {last_error}"
                )
            if self.heads is not None:
                await self.heads.wait(self.settings.poll_interval_s)
            else:
                await asyncio.sleep(self.settings.poll_interval_s)
