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

from web3.exceptions import Web3Exception

from keeper.errors import ExecutionError, SkipAction
from keeper.execution.journal import ActionKey
from keeper.execution.sending import DRY_RUN_NOTE, GWEI, Sender
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
    ) -> list[TxResult]:
        """Send `tx` (after an exact-amount ERC20 approval when `approve` = (token, spender, amount)
        needs one). Raises SkipAction if the simulation reverts, a cap is hit, or the estimated gas
        cost of `tx` at the current base fee exceeds `max_gas_cost_wei` (what the action is worth).
        With a `key`, every step is journaled under it."""
        return await self._execute(tx, approve, max_gas_cost_wei, key)

    async def _execute(
        self,
        tx: TxRequest,
        approve: tuple[str, str, int] | None,
        max_gas_cost_wei: int | None,
        key: ActionKey | None,
    ) -> list[TxResult]:
        results: list[TxResult] = []
        if approve is not None:
            approvals = await self.approvals_needed(*approve)
            if approvals:
                if self.dry_run:  # simulated after its approvals (eth_simulateV1), nothing sent
                    return await self.dry_run_with(approvals, tx)
                for approval in approvals:
                    results.append(await self._send(approval, key=key, role="approval"))
        results.append(await self._send(tx, max_gas_cost_wei, key=key))
        return results

    async def _send(
        self, tx: TxRequest, max_gas_cost_wei: int | None = None, *, key: ActionKey | None, role: str = "action"
    ) -> TxResult:
        gas_estimate = await self.simulate(tx)
        max_fee, tip, base_fee = await self.fees()
        gas_limit = self._check_cost(tx, gas_estimate, (max_fee, tip, base_fee), max_gas_cost_wei)
        if self.dry_run:
            log.info("dry-run: would send %s (gas %d, max fee %.2f gwei)", tx.description, gas_limit, max_fee / GWEI)
            return TxResult(tx.description, sent=False, gas_estimate=gas_estimate, note=DRY_RUN_NOTE)
        self.check_caps(gas_limit * max_fee)
        nonce = await self.nonces.take()
        tx_hash, raw = await self._sign(tx, nonce, gas_limit, max_fee, tip, role, key)
        await self._broadcast(tx, tx_hash, raw, role, key)
        result = await self._track(tx, nonce, gas_limit, max_fee, tip, tx_hash, role, key)
        return TxResult(**{**result.__dict__, "gas_estimate": gas_estimate})

    async def _receipt(self, tx_hash: str) -> Any:
        return await self.chain.receipt(tx_hash)

    async def _track(
        self,
        tx: TxRequest,
        nonce: int,
        gas_limit: int,
        max_fee: int,
        tip: int,
        first_hash: str,
        role: str,
        key: ActionKey | None,
    ) -> TxResult:
        """Wait for one version of this nonce to be mined. A transaction not mined within
        `replace_after_blocks` blocks (stuck under a base-fee spike, or dropped from the mempool)
        is replaced with fees bumped by at least `fee_bump_pct` (the nodes' minimum) and at least
        the current 2 x base fee + tip, never above `max_fee_gwei`; if re-simulation says the
        action is no longer needed (it would revert: someone else liquidated the account) the
        nonce is cancelled instead, with a 0-value transfer to the keeper itself."""
        versions = [first_hash]
        action_key = key if role == "action" else None
        cap = int(self.settings.max_fee_gwei * GWEI)
        head, mined = await self._poll()
        sent_at = head.number
        deadline = time.monotonic() + self.settings.receipt_timeout_s
        current, cancelled = tx, False
        while True:
            for h in reversed(versions) if mined > nonce else ():
                receipt = await self._receipt(h)
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
            if time.monotonic() > deadline:
                raise ExecutionError(
                    f"{tx.description}: no receipt for {', '.join(versions)} within {self.settings.receipt_timeout_s}s"
                )
            if head.number - sent_at >= self.settings.replace_after_blocks:
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
                else:
                    if not cancelled:
                        try:
                            await self.simulate(tx)
                        except SkipAction as why:
                            log.warning("%s no longer needed (%s): cancelling nonce %d", tx.description, why, nonce)
                            current = TxRequest(self.address, b"", f"cancel nonce {nonce} ({tx.description})")
                            cancelled, gas_limit = True, 21_000
                    new_role = "cancel" if cancelled else ("replacement" if role == "action" else role)
                    try:
                        new_hash, raw = await self._sign(
                            current, nonce, gas_limit, bumped_fee, bumped_tip, new_role, key
                        )
                        await self._broadcast(current, new_hash, raw, new_role, key)
                        versions.append(new_hash)
                        max_fee, tip = bumped_fee, bumped_tip
                        log.warning(
                            "replaced stuck %s with %s at %.2f gwei", tx.description, new_hash, bumped_fee / GWEI
                        )
                    except (Web3Exception, OSError, ValueError) as exc:
                        log.info("replacement of nonce %d refused (%s): an earlier version may be mined", nonce, exc)
            await asyncio.sleep(self.settings.receipt_poll_s)
            head, mined = await self._poll()

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

    async def _await_receipt(
        self, tx_hash: str, description: str, max_fee: int, action_key: ActionKey | str | None = None
    ) -> TxResult:
        """The receipt (the same receipt path as tracking: polled), journaled (and, for an
        action's own transaction, the action's outcome)."""
        deadline = time.monotonic() + self.settings.receipt_timeout_s
        while (receipt := await self._receipt(tx_hash)) is None:
            if time.monotonic() > deadline:
                raise ExecutionError(
                    f"{description}: no receipt for {tx_hash} within {self.settings.receipt_timeout_s}s"
                )
            await asyncio.sleep(self.settings.receipt_poll_s)
        result = self._settle(receipt, tx_hash, description, max_fee, action_key)
        if result.status != 1:
            raise ExecutionError(f"{description} reverted on chain in {tx_hash}")
        return result

    async def recover(self) -> list[TxResult]:
        """Settle what a previous run left in flight: each journaled transaction that was signed
        (maybe sent) but has no outcome is rebroadcast (a node that already has it, or has mined
        it, says so) and its receipt awaited; one whose nonce was taken by another transaction is
        marked dropped. Runs before anything new is signed."""
        results = []
        for row in self.journal.pending_txs():
            try:
                await self.chain.send_raw(row.raw)
                log.warning("recovered in-flight transaction %s (%s): rebroadcast", row.hash, row.description)
            except (Web3Exception, OSError, ValueError) as exc:
                log.info("rebroadcast of %s: %s (already known or mined?)", row.hash, exc)
            receipt = await self._receipt(row.hash)
            if receipt is None:
                node_nonce = await self.chain.nonce(self.address, "latest")
                if node_nonce > row.nonce:  # the nonce went to another transaction: this one cannot land
                    self.journal.set_tx(row.hash, "dropped")
                    if row.action_key and row.role == "action":
                        self.journal.set_action(row.action_key, "dropped")
                    continue
            main = row.action_key if row.role == "action" else None
            try:
                result = await self._await_receipt(row.hash, row.description, row.max_fee_wei, main)
            except ExecutionError as exc:
                log.warning("recovered transaction %s did not succeed: %s", row.hash, exc)
                continue
            if row.action_key and row.role == "approval" and self.journal.action_state(row.action_key) == "decided":
                # killed between the approval and the action's own transaction: decided afresh
                self.journal.set_action(row.action_key, "interrupted")
            results.append(result)
        self.nonces.resync()
        return results


def _hex(value: Any) -> str:
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


def _log(entry: Any) -> tuple[str, tuple[str, ...], str]:
    return str(entry["address"]), tuple(_hex(t) for t in entry["topics"]), _hex(entry["data"])
