"""The sending half of the executor: caps, simulation, fees, approvals, signing (through the
Signer) and broadcast; tracking is keeper.execution.tracker's, bursts keeper.execution.burst's,
and keeper.execution.executor puts them together.

The whole executor turns an unsigned transaction into a sent, confirmed one:

simulate (eth_call) -> estimate gas -> EIP-1559 fees under the caps -> nonce -> sign -> journal
(raw transaction and hash stored) -> send -> receipt -> journal. Dry-run stops after the
simulation. Signing is the Signer's (keeper.execution.signer, the only holder of the key); every
chain access goes through the Chain port. Tracking and recovery: keeper.execution.tracker;
bursts: keeper.execution.burst.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

from eth_abi import decode
from eth_utils import keccak, to_checksum_address
from web3.exceptions import ContractLogicError

from keeper.errors import ExecutionError, SkipAction, TransientError
from keeper.execution.journal import ActionKey, Journal
from keeper.execution.nonces import NonceManager
from keeper.execution.signer import Signer
from keeper.execution.tx import TxRequest, TxResult
from keeper.settings import ExecutionSettings
from keeper.sources.abi import fn
from keeper.sources.chain import Chain, Head
from keeper.sources.failures import SendOutcome, revert_text
from keeper.sources.relay import Relay, RelayRefused

log = logging.getLogger("keeper.execution")
GWEI = 10**9
DRY_RUN_NOTE = "dry-run: simulated, not sent"
NOT_SIMULATED = "dry-run: not simulated"
"""The note's prefix of an action a dry-run could not simulate (counted as such, never as simulated)."""


class Sender:
    def __init__(
        self,
        chain: Chain,
        settings: ExecutionSettings,
        address: str,
        signer: Signer | None,
        *,
        dry_run: bool,
        journal: Journal | None = None,
        relay: Relay | None = None,
    ):
        if not dry_run and signer is None:
            raise ExecutionError("live execution needs a signing key")
        if signer is not None and signer.address != to_checksum_address(address):
            raise ExecutionError("the signing key does not match the keeper address")
        self.chain = chain
        self.settings = settings
        self.address = to_checksum_address(address)
        self._signer = signer
        self.dry_run = dry_run
        self.journal = journal if journal is not None else Journal(":memory:")
        self.nonces = NonceManager(chain, self.address, self.journal)
        self._chain_id_cache: int | None = None
        self._poll_lock = asyncio.Lock()
        self._polled: tuple[float, Head, int] | None = None
        self._slots: dict[str, int | None] = {}
        """Token -> the storage slot of its allowance mapping (dry-run overrides), once probed."""
        self._tracking: set[str] = set()
        """Hashes a live tracker is following (`reconcile` leaves them to it)."""
        self.accepted: list[tuple[str, float]] = []
        """(hash, perf_counter) of the latest transactions a node accepted (benchmarks, metrics)."""
        self.relay = relay
        """The private relay ([execution] private_rpc_url), or None: public only."""
        self._routes: dict[int, Route] = {}
        """Nonce -> its private submission, while its versions go to the relay only."""

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
        spent, count, flying = self._spent_and_sent()
        if why := self._over_cap(worst_cost_wei, spent, count, flying):
            raise SkipAction(why)

    def _spent_and_sent(self) -> tuple[int, int, int]:
        """Gas spent (or in flight, worst case) in the last 24 h, actions sent in the last hour,
        and transactions in flight."""
        return (
            self.journal.gas_spent_since(time.time() - 86_400),
            self.journal.actions_sent_since(time.time() - 3_600),
            self.journal.pending_count(),
        )

    def _over_cap(self, worst_cost_wei: int, spent: int, count: int, flying: int = 0) -> str | None:
        """Why one more transaction (worst case `worst_cost_wei`) breaks the daily gas budget,
        the hourly action count or the in-flight limit, given what was spent, sent and is in
        flight; None when it does not."""
        if flying >= self.settings.max_in_flight:
            return f"max_in_flight: {flying} transactions in flight (limit {self.settings.max_in_flight})"
        if spent + worst_cost_wei > int(self.settings.max_gas_spend_native_per_day * 10**18):
            return (
                f"daily gas budget: {spent / 1e18:.5f} spent or in flight + {worst_cost_wei / 1e18:.5f} > "
                f"max_gas_spend_native_per_day {self.settings.max_gas_spend_native_per_day}"
            )
        if count >= self.settings.max_actions_per_hour:
            return f"max_actions_per_hour {self.settings.max_actions_per_hour} reached"
        return None

    async def simulate(self, tx: TxRequest) -> int:
        """eth_call then eth_estimateGas from the keeper's address; SkipAction with the revert reason."""
        try:
            return await self.chain.estimate(self.address, tx.to, tx.data, tx.value)
        except ContractLogicError as exc:
            raise SkipAction(f"simulation of {tx.description} reverted: {revert_text(exc)}") from exc
        except TransientError as exc:
            raise TransientError(f"simulation of {tx.description} failed: {exc}") from exc

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

    async def dry_run_with(
        self, approvals: list[TxRequest], tx: TxRequest, before: Sequence[TxRequest] = ()
    ) -> list[TxResult]:
        """Dry-run of an action that needs approvals first, or that depends on actions `before`
        it (Comet's purchases after an absorb): one eth_simulateV1 runs `before`, the approvals,
        then the action, on the latest state (nothing is sent). SkipAction when one reverts; a
        node without eth_simulateV1 leaves the action reported as not simulated."""
        bundle = [*before, *approvals, tx]
        sims = await self.chain.simulate_bundle(self.address, [(t.to, t.data, t.value) for t in bundle])
        if sims is None:
            if approvals and not before:  # an eth_call with the allowance overridden, where it can
                simulated = await self._with_allowance_override(approvals[-1], tx)
                if simulated is not None:
                    return simulated
            first = "an approval" if approvals else "the action"
            why = f"{NOT_SIMULATED}: it needs {first} before it, and the node has no eth_simulateV1"
            return [TxResult(a.description, sent=False, note=why) for a in [*approvals, tx]]
        for t, (_, reason) in zip(bundle, sims, strict=True):
            if reason:
                raise SkipAction(f"simulation of {t.description} reverted: {reason}")
        gas = [-(-g * 5 * 64 // (4 * 63)) for g, _ in sims[len(before) :]]
        log.info("dry-run: would send %s after %d approval(s) (simulated together)", tx.description, len(approvals))
        return [TxResult(t.description, sent=False, gas_estimate=g, note=DRY_RUN_NOTE) for t, g in
                zip([*approvals, tx], gas, strict=True)]  # fmt: skip

    async def _with_allowance_override(self, approval: TxRequest, tx: TxRequest) -> list[TxResult] | None:
        """Where the node has no eth_simulateV1: the action by eth_call with the token's allowance
        slot overridden to the approved amount (the slot is found by probing Solidity's mapping
        layout). None when no slot answers or the node takes no overrides."""
        spender, amount = decode(["address", "uint256"], approval.data[4:])
        slot = await self._allowance_slot(approval.to, spender, amount)
        if slot is None:
            return None
        state = {approval.to.lower(): {"stateDiff": {slot: "0x" + amount.to_bytes(32, "big").hex()}}}
        try:
            await self.chain.call_with_state(self.address, tx.to, tx.data, state)
        except ContractLogicError as exc:
            raise SkipAction(f"simulation of {tx.description} reverted: {revert_text(exc)}") from exc
        note = "dry-run: simulated by eth_call with the allowance overridden (no gas estimate), not sent"
        return [TxResult(approval.description, sent=False, note=note), TxResult(tx.description, sent=False, note=note)]

    async def _allowance_slot(self, token: str, spender: str, amount: int) -> str | None:
        key = token.lower()
        if key not in self._slots:
            self._slots[key] = await self._probe_allowance_slot(token, spender, amount)
        base = self._slots[key]
        return None if base is None else _allowance_slot(self.address, spender, base)

    async def _probe_allowance_slot(self, token: str, spender: str, amount: int) -> int | None:
        query = fn("ERC20", "allowance").encode(self.address, spender)
        for base in range(12):
            slot = _allowance_slot(self.address, spender, base)
            state = {token.lower(): {"stateDiff": {slot: "0x" + amount.to_bytes(32, "big").hex()}}}
            try:
                raw = await self.chain.call_with_state(self.address, token, query, state)
            except (TransientError, ContractLogicError):
                return None
            if len(raw) >= 32 and int.from_bytes(raw[:32], "big") == amount:
                return base
        return None

    async def approvals_needed(self, token: str, spender: str, amount: int) -> list[TxRequest]:
        """The approvals that make `spender`'s allowance at least `amount`: none, or an exact
        approve; preceded by approve(0) when a smaller allowance is left (USDT-style tokens revert
        when a non-zero allowance is changed to another non-zero value)."""
        current = await self.allowance(token, spender)
        if current >= amount:
            return []
        approve, to = fn("ERC20", "approve"), to_checksum_address(token)
        exact = TxRequest(to, approve.encode(spender, amount), f"approve {amount} of {token} to {spender}")
        if current == 0:
            return [exact]
        return [TxRequest(to, approve.encode(spender, 0), f"approve 0 of {token} to {spender} (reset first)"), exact]

    def _check_cost(
        self, tx: TxRequest, gas_estimate: int, fees: tuple[int, int, int], max_gas_cost_wei: int | None
    ) -> int:
        """The gas limit; SkipAction when the expected cost exceeds what the action is worth or
        the worst case exceeds the per-transaction cap."""
        max_fee, tip, base_fee = fees
        gas_limit = int(gas_estimate * self.settings.gas_limit_multiplier)
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
        return gas_limit

    def fallback(self, protective: bool) -> bool:
        """Whether an action the relay did not include goes public (per kind of action)."""
        s = self.settings
        return s.private_fallback_protect if protective else s.private_fallback_liquidate

    def go_private(self, nonce: int, protective: bool, bundle: bool = False) -> None:
        """Versions of `nonce` signed from now on go to the relay (when there is one)."""
        if self.relay is not None:
            self._routes[nonce] = Route(self.fallback(protective), bundle)

    async def _sign(
        self, tx: TxRequest, nonce: int, gas_limit: int, max_fee: int, tip: int, role: str, key: ActionKey | None
    ) -> tuple[str, bytes]:
        """Sign and journal (before it leaves: a crash from here on finds it and rebroadcasts it)."""
        assert self._signer is not None
        tx_hash, raw = self._signer.sign(
            await self._chain_id(), nonce, tip, max_fee, gas_limit, tx.to, tx.value, tx.data
        )
        route = self._routes.get(nonce)
        with self.journal.atomic():
            self.journal.add_tx(
                key, tx_hash, nonce, raw, tx.description, max_fee, gas_limit, role, route.name if route else "public"
            )
            if key is not None and role == "action":
                self.journal.set_action(key, "signed")
        return tx_hash, raw

    async def _broadcast(
        self,
        tx: TxRequest,
        tx_hash: str,
        raw: bytes,
        role: str,
        key: ActionKey | None,
        *,
        nonce: int,
        resync: bool = True,
    ) -> None:
        """Send a journaled transaction (to the relay while its nonce is private). ExecutionError
        when the node refuses it (it is then marked dropped); an unacknowledged send counts as
        out (tracking settles it)."""
        route = self._routes.get(nonce)
        if route is not None:
            sent = await self._send_private(tx.description, tx_hash, raw, nonce, route)
        else:
            sent = await self._own_nonce(tx_hash, await self.chain.send_raw(raw))
        self._sent(tx, tx_hash, role, key, sent, resync=resync)

    async def _send_private(self, what: str, tx_hash: str, raw: bytes, nonce: int, route: Route) -> SendOutcome:
        """One version to the relay, valid for the next `private_blocks` blocks. A refusal with
        fallback on sends it publicly at once (the relay never had it); a relay that did not
        answer leaves it to tracking (it may have it: nothing goes public before its window ends)."""
        assert self.relay is not None
        route.until = (await self.chain.block_number()) + self.settings.private_blocks
        try:
            await self.relay.send_private(raw, route.until)
            sent = SendOutcome("accepted", "private relay")
            log.info("%s: %s sent to the private relay (valid to block %d)", what, tx_hash, route.until)
        except RelayRefused as exc:
            if not route.fallback:
                return SendOutcome("rejected", str(exc))
            log.warning("%s: %s; sending it publicly (fallback on)", what, exc)
            self._routes.pop(nonce, None)
            self.journal.set_route(tx_hash, "public")
            return await self._own_nonce(tx_hash, await self.chain.send_raw(raw))
        except TransientError as exc:
            sent = SendOutcome("lost", str(exc))
        if self.settings.private_also_public:  # configured: the same nonce both ways
            public = await self._own_nonce(tx_hash, await self.chain.send_raw(raw))
            log.info("%s: %s also sent publicly (private_also_public): %s", what, tx_hash, public.kind)
            if not sent.out and public.out:
                sent = public
        return sent

    async def _own_nonce(self, tx_hash: str, sent: SendOutcome) -> SendOutcome:
        """'Nonce too low' for a transaction that is itself mined (a retried send whose first
        attempt got through before the connection dropped) is no refusal; when the receipt
        cannot be read it is left to tracking, like a send that got no answer."""
        if sent.kind != "nonce_too_low":
            return sent
        try:
            receipt = await self.chain.receipt(tx_hash, strict=True)
        except TransientError as exc:
            return SendOutcome("lost", f"nonce too low, and the receipt could not be read: {exc}")
        return SendOutcome("already_known", "mined already") if receipt is not None else sent

    def _sent(
        self, tx: TxRequest, tx_hash: str, role: str, key: ActionKey | None, sent: SendOutcome, *, resync: bool
    ) -> None:
        """Journal what a node said to a transaction: accepted (or already known) means sent; a
        lost connection means maybe sent (tracking settles it); a refusal raises ExecutionError
        (the transaction is dropped)."""
        if sent.kind == "lost":
            # the send may or may not have reached a node: treat it as out; tracking finds the
            # receipt, or re-sends the same nonce with bumped fees after replace_after_blocks
            log.warning("%s: sending %s was not acknowledged (%s); tracking it", tx.description, tx_hash, sent.detail)
        elif sent.refused:
            self.journal.set_tx(tx_hash, "dropped")
            if key is not None and role == "action":
                self.journal.set_action(key, "dropped", f"{sent.kind}: {sent.detail}")
            if resync and role not in ("replacement", "cancel"):  # (a burst settles its own nonces)
                self.nonces.resync()
            raise ExecutionError(f"sending {tx.description} was refused ({sent.kind}): {sent.detail}")
        elif sent.kind == "already_known":
            log.info("%s: the node already knows %s (%s): it is out", tx.description, tx_hash, sent.detail or "retried")
        self._polled = None
        self.accepted.append((tx_hash, time.perf_counter()))
        del self.accepted[:-1000]
        with self.journal.atomic():
            self.journal.set_tx(tx_hash, "sent")
            if key is not None and role == "action":
                self.journal.set_action(key, "sent")

    async def _chain_id(self) -> int:
        if self._chain_id_cache is None:
            self._chain_id_cache = await self.chain.chain_id()
        return self._chain_id_cache


class Route:
    """A nonce sent privately: `until` is the last block the relay may include its latest
    version in; then it falls back to the public path (`fallback`) or goes to the relay again."""

    def __init__(self, fallback: bool, bundle: bool = False):
        self.fallback = fallback
        self.bundle = bundle
        self.until = 0

    @property
    def name(self) -> str:
        """As the journal stores it: 'private' or 'bundle', '+fallback' when it may go public."""
        return ("bundle" if self.bundle else "private") + ("+fallback" if self.fallback else "")


def _allowance_slot(owner: str, spender: str, base: int) -> str:
    """Storage slot of allowance[owner][spender] for a Solidity mapping(address => mapping(address
    => uint256)) declared at slot `base`."""
    inner = keccak(bytes.fromhex(owner[2:].rjust(64, "0")) + base.to_bytes(32, "big"))
    return "0x" + keccak(bytes.fromhex(spender[2:].lower().rjust(64, "0")) + inner).hex()
