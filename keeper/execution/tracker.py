"""One transaction end to end (simulation, cost checks, signing, broadcast) and its tracking:
one receipt path (polled), shared polls of the head and the keeper's nonce for every transaction
in flight, replacement of a stuck transaction with bumped fees (or cancellation of its nonce when
the action is no longer needed), and recovery of what a previous run left in flight. The layer
between sending (keeper.execution.sending) and bursts (keeper.execution.burst)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils import to_checksum_address
from hexbytes import HexBytes

from keeper.errors import ExecutionError, SkipAction, TransientError
from keeper.execution.journal import ActionKey
from keeper.execution.sending import DRY_RUN_NOTE, GWEI, Route, Sender
from keeper.execution.tx import TxRequest, TxResult
from keeper.sources.chain import Head

log = logging.getLogger("keeper.execution")


class Tracking(Sender):
    async def execute(
        self,
        tx: TxRequest,
        *,
        approve: tuple[str, str, int] | None = None,
        max_gas_cost_wei: int | None = None,
        key: ActionKey | None = None,
        protective: bool = False,
    ) -> list[TxResult]:
        """Send `tx` (after an exact-amount ERC20 approval when `approve` = (token, spender, amount)
        needs one). Raises SkipAction if the simulation reverts, a cap is hit, or the estimated gas
        cost of `tx` at the current base fee exceeds `max_gas_cost_wei` (what the action is worth).
        With a `key`, every step is journaled under it. With a private relay, it goes there
        (`protective` picks which fallback setting applies)."""
        return await self._execute(tx, approve, max_gas_cost_wei, key, protective)

    async def _execute(
        self,
        tx: TxRequest,
        approve: tuple[str, str, int] | None,
        max_gas_cost_wei: int | None,
        key: ActionKey | None,
        protective: bool = False,
    ) -> list[TxResult]:
        results: list[TxResult] = []
        if approve is not None:
            approvals = await self.approvals_needed(*approve)
            if approvals:
                if self.dry_run:  # simulated after its approvals (eth_simulateV1), nothing sent
                    return await self.dry_run_with(approvals, tx)
                for approval in approvals:
                    results.append(await self._send(approval, key=key, role="approval", protective=protective))
        results.append(await self._send(tx, max_gas_cost_wei, key=key, protective=protective))
        return results

    async def _send(
        self,
        tx: TxRequest,
        max_gas_cost_wei: int | None = None,
        *,
        key: ActionKey | None,
        role: str = "action",
        protective: bool = False,
    ) -> TxResult:
        gas_estimate = await self.simulate(tx)
        max_fee, tip, base_fee = await self.fees()
        gas_limit = self._check_cost(tx, gas_estimate, (max_fee, tip, base_fee), max_gas_cost_wei)
        if self.dry_run:
            log.info("dry-run: would send %s (gas %d, max fee %.2f gwei)", tx.description, gas_limit, max_fee / GWEI)
            return TxResult(tx.description, sent=False, gas_estimate=gas_estimate, note=DRY_RUN_NOTE)
        self.check_caps(gas_limit * max_fee)
        nonce = await self.nonces.take()
        self.go_private(nonce, protective)
        tx_hash, raw = await self._sign(tx, nonce, gas_limit, max_fee, tip, role, key)
        await self._broadcast(tx, tx_hash, raw, role, key, nonce=nonce)
        result = await self._track(tx, nonce, gas_limit, max_fee, tip, tx_hash, role, key)
        return TxResult(**{**result.__dict__, "gas_estimate": gas_estimate})

    async def _track(
        self,
        tx: TxRequest,
        nonce: int,
        gas_limit: int,
        max_fee: int,
        tip: int,
        latest_hash: str,
        role: str,
        key: ActionKey | None,
        *,
        earlier: tuple[str, ...] = (),
    ) -> TxResult:
        """Wait for one version of this nonce to be mined (`latest_hash`, or one of the `earlier`
        versions a previous run sent). A transaction not mined within `replace_after_blocks`
        blocks (stuck under a base-fee spike, or dropped from the mempool) is replaced with fees
        bumped by at least `fee_bump_pct` (the nodes' minimum) and at least the current 2 x base
        fee + tip, never above `max_fee_gwei`; if re-simulation says the action is no longer
        needed (it would revert: someone else liquidated the account) the nonce is cancelled
        instead, with a 0-value transfer to the keeper itself."""
        versions = [*earlier, latest_hash]
        self._tracking.update(versions)
        try:
            action_key = key if role == "action" else None
            cap = int(self.settings.max_fee_gwei * GWEI)
            deadline = time.monotonic() + self.settings.receipt_timeout_s
            head, mined = await self._poll_until(deadline, tx.description)
            sent_at = head.number
            current, cancelled = tx, False
            misses = 0  # polls that found the nonce used but no receipt for any version
            while True:
                unknown = False
                for h in reversed(versions) if mined > nonce else ():
                    try:
                        receipt = await self.chain.receipt(h, strict=True)
                    except TransientError:
                        unknown, receipt = True, None
                    if receipt is not None:
                        for other in versions:
                            if other != h:
                                self.journal.set_tx(other, "replaced")
                        settle_key = None if cancelled else action_key
                        result = self._settle(receipt, h, current.description, max_fee, settle_key)
                        if cancelled:
                            if action_key is not None:
                                self.journal.set_action(action_key, "cancelled")
                            raise SkipAction(f"{tx.description}: no longer needed, cancelled by {h}")
                        if result.status != 1:
                            raise ExecutionError(f"{current.description} reverted on chain in {h}")
                        return result
                misses = misses + 1 if mined > nonce and not unknown else 0
                if misses >= 3:  # another transaction (not one of ours for this nonce) took it
                    for h in versions:
                        self.journal.set_tx(h, "dropped")
                    if action_key is not None:
                        self.journal.set_action(action_key, "dropped", f"nonce {nonce} used by another transaction")
                    raise ExecutionError(f"{tx.description}: its nonce {nonce} was used by another transaction")
                if time.monotonic() > deadline:
                    raise ExecutionError(
                        f"{tx.description}: no receipt for {', '.join(versions)} "
                        f"within {self.settings.receipt_timeout_s}s"
                    )
                route = self._routes.get(nonce)
                if route is not None and not route.bundle:  # private: its window, then fallback or again
                    due = head.number > route.until
                    if due and route.fallback:
                        due = await self._fall_back(current, cancelled, versions, nonce, key)
                        sent_at = head.number
                else:
                    due = head.number - sent_at >= self.settings.replace_after_blocks
                if due:
                    sent_at = head.number
                    bumped_tip = tip * (1000 + int(self.settings.fee_bump_pct * 10)) // 1000 + 1
                    bumped_fee = max(
                        max_fee * (1000 + int(self.settings.fee_bump_pct * 10)) // 1000 + 1,
                        2 * head.base_fee_wei + bumped_tip,
                    )
                    if bumped_fee > cap:
                        log.warning(
                            "%s stuck: a replacement would need %.2f gwei, above max_fee_gwei %s; waiting",
                            tx.description,
                            bumped_fee / GWEI,
                            self.settings.max_fee_gwei,
                        )
                        if nonce in self._routes:  # private: its window is over, so to the relay again as it is
                            await self._again(current, versions[-1], nonce, role, key)
                    else:
                        if not cancelled:
                            try:
                                await self.simulate(tx)
                            except TransientError as exc:
                                log.info(
                                    "%s stuck, but it could not be re-simulated (%s): replacing it", tx.description, exc
                                )
                            except SkipAction as why:
                                log.warning("%s no longer needed (%s): cancelling nonce %d", tx.description, why, nonce)
                                current = TxRequest(self.address, b"", f"cancel nonce {nonce} ({tx.description})")
                                cancelled, gas_limit = True, 21_000
                        new_role = "cancel" if cancelled else ("replacement" if role == "action" else role)
                        try:
                            new_hash, raw = await self._sign(
                                current, nonce, gas_limit, bumped_fee, bumped_tip, new_role, key
                            )
                            versions.append(new_hash)
                            self._tracking.add(new_hash)
                            await self._broadcast(current, new_hash, raw, new_role, key, nonce=nonce)
                            max_fee, tip = bumped_fee, bumped_tip
                            log.warning(
                                "replaced stuck %s with %s at %.2f gwei", tx.description, new_hash, bumped_fee / GWEI
                            )
                        except ExecutionError as exc:
                            log.info(
                                "replacement of nonce %d refused (%s): an earlier version may be mined", nonce, exc
                            )
                await asyncio.sleep(self.settings.receipt_poll_s)
                head, mined = await self._poll_until(deadline, tx.description)
        finally:
            self._tracking.difference_update(versions)
            self._routes.pop(nonce, None)

    async def _fall_back(
        self, tx: TxRequest, cancelled: bool, versions: list[str], nonce: int, key: ActionKey | None
    ) -> bool:
        """The relay did not include `nonce` within its window: cancel it there, re-simulate, and
        send the latest version publicly (True instead when it is no longer needed: the caller
        then cancels the nonce publicly)."""
        assert self.relay is not None
        self._routes.pop(nonce, None)
        for h in versions:  # every version so far went to the relay
            await self.relay.cancel_private(h)
        if not cancelled:
            try:
                await self.simulate(tx)
            except SkipAction as why:
                log.warning("%s: not included privately, and no longer needed (%s)", tx.description, why)
                return True
            except TransientError as exc:
                log.info(
                    "%s: not included privately; re-simulation failed (%s): sending it publicly", tx.description, exc
                )
        latest = versions[-1]
        self.journal.set_route(latest, "public")
        log.warning(
            "%s: the private relay did not include %s within %d blocks; re-simulated, sending it publicly",
            tx.description, latest, self.settings.private_blocks,
        )  # fmt: skip
        await self._again(tx, latest, nonce, "cancel" if cancelled else "action", key)
        return False

    async def _again(self, tx: TxRequest, tx_hash: str, nonce: int, role: str, key: ActionKey | None) -> None:
        """Broadcast a version already signed once more (by its nonce's route now)."""
        try:
            await self._broadcast(tx, tx_hash, self.journal.tx_raw(tx_hash), role, key, nonce=nonce)
        except ExecutionError as exc:
            log.info("sending %s again was refused (%s): tracking goes on", tx_hash, exc)

    async def _poll_until(self, deadline: float, what: str) -> tuple[Head, int]:
        """`_poll`, retried while the node cannot answer; ExecutionError past the deadline (the
        transaction stays in the journal as sent: `reconcile` settles it later)."""
        while True:
            try:
                return await self._poll()
            except TransientError as exc:
                if time.monotonic() > deadline:
                    raise ExecutionError(f"{what}: the chain could not be read to track it: {exc}") from exc
                log.info("tracking %s: %s (retrying)", what, exc)
                await asyncio.sleep(self.settings.receipt_poll_s)

    async def _poll(self) -> tuple[Head, int]:
        """The head and how many of the keeper's transactions it includes (its nonce there), read
        once for every transaction being tracked (a burst tracks many); receipts are asked for only
        once the nonce count passes theirs. Fresh after every broadcast."""
        async with self._poll_lock:
            if self._polled is None or time.monotonic() - self._polled[0] >= self.settings.receipt_poll_s / 2:
                head = await self.chain.head()
                mined = await self.chain.nonce(self.address, head.number)
                self._polled = (time.monotonic(), head, mined)
            return self._polled[1], self._polled[2]

    def _settle(self, receipt: Any, tx_hash: str, description: str, max_fee: int, action_key: Any) -> TxResult:
        result = TxResult(
            description,
            sent=True,
            tx_hash=tx_hash,
            status=int(receipt["status"]),
            gas_used=int(receipt["gasUsed"]),
            effective_gas_price_wei=int(receipt.get("effectiveGasPrice", max_fee)),
            block=int(receipt["blockNumber"]),
            logs=tuple(_log(entry) for entry in receipt.get("logs") or ()),
        )
        outcome = "confirmed" if result.status == 1 else "failed"
        self.journal.set_tx(tx_hash, outcome, gas_cost_wei=result.gas_cost_wei, block=result.block)
        if action_key is not None:
            self.journal.set_action(action_key, outcome)
        return result

    async def recover(self) -> list[TxResult]:
        """Settle what a previous run left in flight, all at once: every journaled transaction
        that was signed (maybe sent) but has no outcome is rebroadcast in one batch (a node that
        already has it, or has mined it, says so), then every nonce is tracked concurrently as
        any other (replaced with bumped fees when stuck, cancelled when no longer needed, or
        found dropped when another transaction took its nonce). What is still open after
        `receipt_timeout_s` is left to `reconcile`. New transactions take nonces above these."""
        rows = self.journal.pending_txs()
        if not rows:
            return []
        private = [row for row in rows if row.route != "public"]
        if private and self.relay is None:
            log.warning(
                "%d recovered transaction(s) were sent privately, and [execution] private_rpc_url is not set now: "
                "they are rebroadcast publicly", len(private),
            )  # fmt: skip
            private = []
        public = [row for row in rows if row not in private]
        sends = await self.chain.send_raw_batch([row.raw for row in public]) if public else []
        if sends is None:
            sends = list(await asyncio.gather(*(self.chain.send_raw(row.raw) for row in public)))
        for row in private:  # back to the relay only (a bundle's transactions one by one, in nonce order)
            route = Route(row.route.endswith("+fallback"))
            self._routes[row.nonce] = route
            sends.append(await self._send_private(row.description, row.hash, row.raw, row.nonce, route))
        for row, sent in zip(public + private, sends, strict=True):
            log.warning("recovered in-flight %s (%s): rebroadcast: %s", row.hash, row.description, sent.kind)
        by_nonce: dict[int, list[Any]] = {}
        for row in rows:
            by_nonce.setdefault(row.nonce, []).append(row)
        settled = await asyncio.gather(*(self._recover_nonce(group) for group in by_nonce.values()))
        self.nonces.resync()
        return [r for r in settled if r is not None]

    async def _recover_nonce(self, group: list[Any]) -> TxResult | None:
        """Track every version of one recovered nonce (the original, then replacements)."""
        original = next((r for r in group if r.role not in ("replacement", "cancel")), group[0])
        latest = max(group, key=lambda r: r.max_fee_wei)
        decoded = TypedTransaction.from_bytes(HexBytes(latest.raw)).as_dict()
        tx = TxRequest(
            to_checksum_address(decoded["to"]), bytes(decoded["data"]), original.description, int(decoded["value"])
        )
        *earlier, latest_hash = [r.hash for r in sorted(group, key=lambda r: r.max_fee_wei)]
        key = original.action_key
        try:
            result = await self._track(
                tx,
                original.nonce,
                int(decoded["gas"]),
                int(decoded["maxFeePerGas"]),
                int(decoded["maxPriorityFeePerGas"]),
                latest_hash,
                original.role,
                key,
                earlier=tuple(earlier),
            )
        except (ExecutionError, SkipAction) as exc:
            log.warning("recovered %s did not succeed: %s", original.description, exc)
            return None
        if key and original.role == "approval" and self.journal.action_state(key) == "decided":
            # killed between the approval and the action's own transaction: decided afresh
            self.journal.set_action(key, "interrupted")
        return result

    async def reconcile(self) -> int:
        """One pass over the journal's open transactions that no tracker is following (a tracker
        that timed out, a write that failed, a worker that stopped): each is settled from its
        receipt, or marked dropped when its nonce went to another transaction. Returns how many
        were settled."""
        rows = [row for row in self.journal.pending_txs() if row.hash not in self._tracking]
        if not rows:
            return 0
        mined = await self.chain.nonce(self.address, "latest")  # read before the receipts
        return sum(await asyncio.gather(*(self._settle_row(row, mined) for row in rows)))

    async def _settle_row(self, row: Any, mined: int) -> bool:
        """Settle one journaled transaction from its receipt (confirmed or failed, with its
        action), or as dropped when the account's nonce count `mined`, read before the receipt,
        is past it with no receipt (another transaction took the nonce). False when it is not
        mined yet, or the node could not say."""
        main = row.action_key if row.role == "action" else None
        try:
            receipt = await self.chain.receipt(row.hash, strict=True)
        except TransientError as exc:
            log.info("settling %s: %s", row.hash, exc)
            return False
        if receipt is not None:
            if self._settle(receipt, row.hash, row.description, row.max_fee_wei, main).status != 1:
                log.warning("journaled transaction %s (%s) reverted on chain", row.hash, row.description)
            return True
        if mined <= row.nonce:
            return False
        self.journal.set_tx(row.hash, "dropped")
        if main and self.journal.action_state(main) in ("signed", "sent"):
            self.journal.set_action(main, "dropped")
        return True


def _hex(value: Any) -> str:
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


def _log(entry: Any) -> tuple[str, tuple[str, ...], str]:
    return str(entry["address"]), tuple(_hex(t) for t in entry["topics"]), _hex(entry["data"])
