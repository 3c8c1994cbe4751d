"""Executor: turns an unsigned transaction into a sent, confirmed one.

simulate (eth_call) -> estimate gas -> EIP-1559 fees under the caps -> nonce -> sign -> journal
(raw transaction and hash stored) -> send -> receipt -> journal. Dry-run stops after the
simulation. The signing key lives here and nowhere else. On start-up `recover()` finds what a
previous run left in flight in the journal, rebroadcasts it and settles it before anything new
is signed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3.exceptions import ProviderConnectionError, TimeExhausted, TransactionNotFound, Web3Exception

from keeper.abi import fn
from keeper.chain import Chain, is_revert, revert_text
from keeper.config import ExecutionSettings
from keeper.errors import ExecutionError, SkipAction, TransientError
from keeper.execution.journal import ActionKey, Journal

log = logging.getLogger("keeper.execution")
GWEI = 10**9
ALREADY_KNOWN = re.compile(r"already known|known transaction|already imported|AlreadyKnown", re.IGNORECASE)


@dataclass(frozen=True)
class TxRequest:
    """An unsigned call the keeper wants to make."""

    to: str
    data: bytes
    description: str
    value: int = 0


@dataclass(frozen=True)
class TxResult:
    description: str
    sent: bool
    """False in dry-run (simulated only) or when simulation was impossible."""
    tx_hash: str | None = None
    status: int | None = None
    gas_used: int = 0
    effective_gas_price_wei: int = 0
    block: int | None = None
    gas_estimate: int = 0
    note: str = ""

    @property
    def gas_cost_wei(self) -> int:
        return self.gas_used * self.effective_gas_price_wei


@dataclass
class NonceManager:
    """Local nonce counter: the larger of the node's pending count and one above the journal's
    highest signed nonce (so a restart never reuses a nonce a signed transaction holds), then
    incremented per send."""

    chain: Chain
    address: str
    journal: Journal | None = None
    _next: int | None = field(default=None)

    async def take(self) -> int:
        if self._next is None:
            self.chain.requests += 1
            node = int(await self.chain.w3.eth.get_transaction_count(to_checksum_address(self.address), "pending"))
            journal = self.journal.next_nonce() if self.journal is not None else None
            self._next = max(node, journal or 0)
        n = self._next
        self._next += 1
        return n

    def resync(self) -> None:
        self._next = None


class Executor:
    def __init__(
        self,
        chain: Chain,
        settings: ExecutionSettings,
        address: str,
        signer: LocalAccount | None,
        *,
        dry_run: bool,
        journal: Journal | None = None,
    ):
        if not dry_run and signer is None:
            raise ExecutionError("live execution needs a signing key")
        if signer is not None and to_checksum_address(signer.address) != to_checksum_address(address):
            raise ExecutionError("the signing key does not match the keeper address")
        self.chain = chain
        self.settings = settings
        self.address = to_checksum_address(address)
        self._signer = signer
        self.dry_run = dry_run
        self.journal = journal if journal is not None else Journal(":memory:")
        self.nonces = NonceManager(chain, self.address, self.journal)
        self._chain_id_cache: int | None = None
        self._key: ActionKey | None = None

    # ------------------------------------------------------------------ switches and caps
    def kill_switch(self) -> str | None:
        """Why sending is switched off (KEEPER_KILL_SWITCH=1, or the configured file exists), or None."""
        if os.environ.get("KEEPER_KILL_SWITCH", "").strip().lower() in ("1", "true", "yes", "on"):
            return "KEEPER_KILL_SWITCH is set"
        path = self.settings.kill_switch_file
        if path and Path(path).exists():
            return f"kill switch file {path} exists"
        return None

    def check_caps(self, worst_cost_wei: int) -> None:
        """SkipAction when the kill switch is on, or this transaction would break the daily gas
        budget or the hourly action count (both from the journal, so they hold across restarts)."""
        if why := self.kill_switch():
            raise SkipAction(f"not sending: {why} (monitoring continues)")
        day = time.time() - 86_400
        budget = int(self.settings.max_gas_spend_native_per_day * 10**18)
        spent = self.journal.gas_spent_since(day)
        if spent + worst_cost_wei > budget:
            raise SkipAction(
                f"daily gas budget: {spent / 1e18:.5f} spent or in flight + {worst_cost_wei / 1e18:.5f} > "
                f"max_gas_spend_native_per_day {self.settings.max_gas_spend_native_per_day}"
            )
        if self.journal.actions_sent_since(time.time() - 3_600) >= self.settings.max_actions_per_hour:
            raise SkipAction(f"max_actions_per_hour {self.settings.max_actions_per_hour} reached")

    async def simulate(self, tx: TxRequest) -> int:
        """eth_call then eth_estimateGas from the keeper's address; SkipAction with the revert reason."""
        call: dict[str, Any] = {
            "from": self.address,
            "to": to_checksum_address(tx.to),
            "data": tx.data,
            "value": tx.value,
        }
        try:
            self.chain.requests += 2
            await self.chain.w3.eth.call(call, "latest")  # type: ignore[arg-type]
            return int(await self.chain.w3.eth.estimate_gas(call))  # type: ignore[arg-type]
        except Exception as exc:
            if is_revert(exc):
                raise SkipAction(f"simulation of {tx.description} reverted: {revert_text(exc)}") from exc
            if isinstance(exc, Web3Exception | OSError | ValueError):
                raise TransientError(f"simulation of {tx.description} failed: {exc}") from exc
            raise

    async def fees(self) -> tuple[int, int, int]:
        """(maxFeePerGas, maxPriorityFeePerGas, base fee) in wei: max fee = 2 x base fee + tip, capped."""
        head = await self.chain.head()
        cap = int(self.settings.max_fee_gwei * GWEI)
        tip = min(int(self.settings.priority_fee_gwei * GWEI), cap)
        if head.base_fee_wei + tip > cap:
            raise SkipAction(
                f"base fee {head.base_fee_wei / GWEI:.2f} gwei + tip is above the cap {self.settings.max_fee_gwei} gwei"
            )
        return min(cap, 2 * head.base_fee_wei + tip), tip, head.base_fee_wei

    async def allowance(self, token: str, spender: str) -> int:
        raw = await self.chain.call(token, fn("ERC20", "allowance").encode(self.address, spender))
        return int(fn("ERC20", "allowance").decode(raw)[0])

    async def approval_needed(self, token: str, spender: str, amount: int) -> TxRequest | None:
        if await self.allowance(token, spender) >= amount:
            return None
        return TxRequest(
            to_checksum_address(token),
            fn("ERC20", "approve").encode(spender, amount),
            f"approve {amount} of {token} to {spender}",
        )

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
        self._key = key
        try:
            return await self._execute(tx, approve, max_gas_cost_wei)
        finally:
            self._key = None

    async def _execute(
        self, tx: TxRequest, approve: tuple[str, str, int] | None, max_gas_cost_wei: int | None
    ) -> list[TxResult]:
        results: list[TxResult] = []
        if approve is not None:
            approval = await self.approval_needed(*approve)
            if approval is not None:
                if self.dry_run:
                    return [
                        TxResult(approval.description, sent=False, note="dry-run: approval needed first"),
                        TxResult(
                            tx.description, sent=False, note="dry-run: not simulated, the Pool has no allowance yet"
                        ),
                    ]
                results.append(await self._send(approval, role="approval"))
        results.append(await self._send(tx, max_gas_cost_wei))
        return results

    async def _send(self, tx: TxRequest, max_gas_cost_wei: int | None = None, role: str = "action") -> TxResult:
        gas_estimate = await self.simulate(tx)
        gas_limit = int(gas_estimate * self.settings.gas_limit_multiplier)
        max_fee, tip, base_fee = await self.fees()
        expected_cost = gas_estimate * min(max_fee, base_fee + tip)
        if max_gas_cost_wei is not None and expected_cost > max_gas_cost_wei:
            raise SkipAction(
                f"{tx.description}: expected gas cost {expected_cost / 1e18:.6f} exceeds what it is worth "
                f"({max_gas_cost_wei / 1e18:.6f})"
            )
        worst_cost = gas_limit * max_fee
        if worst_cost > int(self.settings.max_gas_spend_native * 10**18):
            raise SkipAction(
                f"{tx.description}: worst-case gas cost {worst_cost / 1e18:.5f} exceeds "
                f"max_gas_spend_native {self.settings.max_gas_spend_native}"
            )
        if self.dry_run:
            log.info("dry-run: would send %s (gas %d, max fee %.2f gwei)", tx.description, gas_limit, max_fee / GWEI)
            return TxResult(tx.description, sent=False, gas_estimate=gas_estimate, note="dry-run: simulated, not sent")
        self.check_caps(worst_cost)
        nonce = await self.nonces.take()
        tx_hash = await self._sign_and_send(tx, nonce, gas_limit, max_fee, tip, role)
        result = await self._track(tx, nonce, gas_limit, max_fee, tip, tx_hash, role)
        return TxResult(**{**result.__dict__, "gas_estimate": gas_estimate})

    async def _sign_and_send(self, tx: TxRequest, nonce: int, gas_limit: int, max_fee: int, tip: int, role: str) -> str:
        """Sign, journal (before it leaves: a crash from here on finds it and rebroadcasts it), send."""
        assert self._signer is not None
        signed = self._signer.sign_transaction(
            {
                "type": 2,
                "chainId": await self._chain_id(),
                "nonce": nonce,
                "to": to_checksum_address(tx.to),
                "data": tx.data,
                "value": tx.value,
                "gas": gas_limit,
                "maxFeePerGas": max_fee,
                "maxPriorityFeePerGas": tip,
            }
        )
        tx_hash = "0x" + bytes(signed.hash).hex()
        self.journal.add_tx(
            self._key, tx_hash, nonce, bytes(signed.raw_transaction), tx.description, max_fee, gas_limit, role
        )
        if self._key is not None and role == "action":
            self.journal.set_action(self._key, "signed")
        try:
            self.chain.requests += 1
            await self.chain.w3.eth.send_raw_transaction(signed.raw_transaction)
        except (TimeoutError, Web3Exception, OSError, ValueError) as exc:
            if isinstance(exc, OSError | asyncio.TimeoutError | ProviderConnectionError):
                # the send may or may not have reached a node: treat it as out; tracking finds the
                # receipt, or re-sends the same nonce with bumped fees after replace_after_blocks
                log.warning("%s: sending %s was not acknowledged (%s); tracking it", tx.description, tx_hash, exc)
            elif not ALREADY_KNOWN.search(str(exc)):
                self.journal.set_tx(tx_hash, "dropped")
                if role in ("replacement", "cancel"):
                    raise  # the caller decides (e.g. nonce too low: an earlier version was mined)
                self.nonces.resync()
                raise ExecutionError(f"sending {tx.description} failed: {exc}") from exc
            else:
                log.info("%s: the node already knows %s (a retried send): it is out", tx.description, tx_hash)
        self.journal.set_tx(tx_hash, "sent")
        if self._key is not None and role == "action":
            self.journal.set_action(self._key, "sent")
        return tx_hash

    async def _receipt(self, tx_hash: str) -> Any:
        self.chain.requests += 1
        try:
            return await self.chain.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        except (Web3Exception, OSError, ValueError) as exc:
            log.info("receipt of %s: %s", tx_hash, exc)
            return None

    async def _track(
        self, tx: TxRequest, nonce: int, gas_limit: int, max_fee: int, tip: int, first_hash: str, role: str
    ) -> TxResult:
        """Wait for one version of this nonce to be mined. A transaction not mined within
        `replace_after_blocks` blocks (stuck under a base-fee spike, or dropped from the mempool)
        is replaced with fees bumped by at least `fee_bump_pct` (the nodes' minimum) and at least
        the current 2 x base fee + tip, never above `max_fee_gwei`; if re-simulation says the
        action is no longer needed (it would revert: someone else liquidated the account) the
        nonce is cancelled instead, with a 0-value transfer to the keeper itself."""
        versions = [first_hash]
        action_key = self._key if role == "action" else None
        cap = int(self.settings.max_fee_gwei * GWEI)
        sent_at = (await self.chain.head()).number
        deadline = time.monotonic() + self.settings.receipt_timeout_s
        current, cancelled = tx, False
        while True:
            for h in reversed(versions):
                receipt = await self._receipt(h)
                if receipt is not None:
                    for other in versions:
                        if other != h:
                            self.journal.set_tx(other, "replaced")
                    key = None if cancelled else action_key
                    result = self._settle(receipt, h, current.description, max_fee, key)
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
            head = await self.chain.head()
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
                        new_hash = await self._sign_and_send(
                            current, nonce, gas_limit, bumped_fee, bumped_tip, new_role
                        )
                        versions.append(new_hash)
                        max_fee, tip = bumped_fee, bumped_tip
                        log.warning(
                            "replaced stuck %s with %s at %.2f gwei", tx.description, new_hash, bumped_fee / GWEI
                        )
                    except (Web3Exception, OSError, ValueError) as exc:
                        log.info("replacement of nonce %d refused (%s): an earlier version may be mined", nonce, exc)
            await asyncio.sleep(self.settings.receipt_poll_s)

    def _settle(self, receipt: Any, tx_hash: str, description: str, max_fee: int, action_key: Any) -> TxResult:
        result = TxResult(
            description,
            sent=True,
            tx_hash=tx_hash,
            status=int(receipt["status"]),
            gas_used=int(receipt["gasUsed"]),
            effective_gas_price_wei=int(receipt.get("effectiveGasPrice", max_fee)),
            block=int(receipt["blockNumber"]),
        )
        outcome = "confirmed" if result.status == 1 else "failed"
        self.journal.set_tx(tx_hash, outcome, gas_cost_wei=result.gas_cost_wei, block=result.block)
        if action_key is not None:
            self.journal.set_action(action_key, outcome)
        return result

    async def _await_receipt(
        self, tx_hash: str, description: str, max_fee: int, action_key: ActionKey | str | None = None
    ) -> TxResult:
        """The receipt, journaled (and, for an action's own transaction, the action's outcome)."""
        try:
            self.chain.requests += 1
            receipt = await self.chain.w3.eth.wait_for_transaction_receipt(
                tx_hash,  # type: ignore[arg-type]
                self.settings.receipt_timeout_s,
            )
        except TimeExhausted as exc:
            raise ExecutionError(
                f"{description}: no receipt for {tx_hash} within {self.settings.receipt_timeout_s}s"
            ) from exc
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
                self.chain.requests += 1
                await self.chain.w3.eth.send_raw_transaction(row.raw)
                log.warning("recovered in-flight transaction %s (%s): rebroadcast", row.hash, row.description)
            except (Web3Exception, OSError, ValueError) as exc:
                log.info("rebroadcast of %s: %s (already known or mined?)", row.hash, exc)
            try:
                self.chain.requests += 1
                receipt = await self.chain.w3.eth.get_transaction_receipt(row.hash)  # type: ignore[arg-type]
            except (Web3Exception, OSError, ValueError):
                receipt = None
            if receipt is None:
                node_nonce = int(await self.chain.w3.eth.get_transaction_count(self.address, "latest"))
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

    async def _chain_id(self) -> int:
        if self._chain_id_cache is None:
            self._chain_id_cache = await self.chain.chain_id()
        return self._chain_id_cache
