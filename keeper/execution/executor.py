"""Executor: turns an unsigned transaction into a sent, confirmed one.

simulate (eth_call) -> estimate gas -> EIP-1559 fees under the cap -> nonce -> sign -> send ->
receipt. Dry-run stops after the simulation. The signing key lives here and nowhere else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3.exceptions import TimeExhausted, Web3Exception

from keeper.abi import fn
from keeper.chain import Chain, is_revert, revert_text
from keeper.config import ExecutionSettings
from keeper.errors import ExecutionError, SkipAction, TransientError

log = logging.getLogger("keeper.execution")
GWEI = 10**9


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
    """Local nonce counter: read once from the node (pending), then incremented per send."""

    chain: Chain
    address: str
    _next: int | None = field(default=None)

    async def take(self) -> int:
        if self._next is None:
            self.chain.requests += 1
            self._next = int(
                await self.chain.w3.eth.get_transaction_count(to_checksum_address(self.address), "pending")
            )
        n = self._next
        self._next += 1
        return n

    def resync(self) -> None:
        self._next = None


class Executor:
    def __init__(
        self, chain: Chain, settings: ExecutionSettings, address: str, signer: LocalAccount | None, *, dry_run: bool
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
        self.nonces = NonceManager(chain, self.address)
        self.sent_count = 0
        self._chain_id_cache: int | None = None

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
        self, tx: TxRequest, *, approve: tuple[str, str, int] | None = None, max_gas_cost_wei: int | None = None
    ) -> list[TxResult]:
        """Send `tx` (after an exact-amount ERC20 approval when `approve` = (token, spender, amount)
        needs one). Raises SkipAction if the simulation reverts, a cap is hit, or the estimated gas
        cost of `tx` at the current base fee exceeds `max_gas_cost_wei` (what the action is worth)."""
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
                results.append(await self._send(approval))
        results.append(await self._send(tx, max_gas_cost_wei))
        return results

    async def _send(self, tx: TxRequest, max_gas_cost_wei: int | None = None) -> TxResult:
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
        assert self._signer is not None
        nonce = await self.nonces.take()
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
        try:
            self.chain.requests += 1
            tx_hash = await self.chain.w3.eth.send_raw_transaction(signed.raw_transaction)
        except (Web3Exception, OSError, ValueError) as exc:
            self.nonces.resync()
            raise ExecutionError(f"sending {tx.description} failed: {exc}") from exc
        self.sent_count += 1
        try:
            self.chain.requests += 1
            receipt = await self.chain.w3.eth.wait_for_transaction_receipt(tx_hash, self.settings.receipt_timeout_s)
        except TimeExhausted as exc:
            raise ExecutionError(
                f"{tx.description}: no receipt for 0x{bytes(tx_hash).hex()} within {self.settings.receipt_timeout_s}s"
            ) from exc
        result = TxResult(
            tx.description,
            sent=True,
            tx_hash="0x" + bytes(tx_hash).hex(),
            status=int(receipt["status"]),
            gas_used=int(receipt["gasUsed"]),
            effective_gas_price_wei=int(receipt.get("effectiveGasPrice", max_fee)),
            block=int(receipt["blockNumber"]),
            gas_estimate=gas_estimate,
        )
        if result.status != 1:
            raise ExecutionError(f"{tx.description} reverted on chain in {result.tx_hash}")
        return result

    async def _chain_id(self) -> int:
        if self._chain_id_cache is None:
            self._chain_id_cache = await self.chain.chain_id()
        return self._chain_id_cache
