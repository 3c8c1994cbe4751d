"""Bundles: dependent transactions (approvals and the action they allow, an absorb and the
purchases planned on the state it leaves) sent to the private relay with `eth_sendBundle`, to
land together, in order, in one block or not at all.

The bundle is simulated as a whole first (eth_simulateV1, each on the state the one before
leaves), checked against the caps as a whole, signed with sequential nonces and journaled in
one commit, then offered to the relay for each of the next `private_blocks` blocks. When none
of them includes it, it is simulated again: still needed, it goes to the public RPC in order
(fallback on) or to the relay for the next blocks (fallback off); no longer needed, its nonces
are handed back (or, when later ones are taken, filled with 0-value transfers to the keeper by
the same route). Without a relay, or in dry-run, the executor works as before.
"""

from __future__ import annotations

import asyncio
import logging
import time

from keeper.errors import ExecutionError, SkipAction, StorageError, TransientError
from keeper.execution.burst import Bursts
from keeper.execution.journal import ActionKey
from keeper.execution.sending import Route
from keeper.execution.tx import Outcomes, Planned, TxRequest, TxResult
from keeper.sources.failures import SendOutcome
from keeper.sources.relay import RelayRefused

log = logging.getLogger("keeper.execution")
Signed = tuple[Planned, int, int, str, bytes]
"""(item, nonce, gas limit, hash, raw)."""


class CannotBundle(SkipAction):
    """The bundle could not be simulated as a whole: nothing was signed (sent one by one instead)."""


class Bundles(Bursts):
    cannot_bundle = False
    """The node has no eth_simulateV1: dependent transactions go to the relay one by one."""

    async def _execute(
        self,
        tx: TxRequest,
        approve: tuple[str, str, int] | None,
        max_gas_cost_wei: int | None,
        key: ActionKey | None,
        protective: bool = False,
    ) -> list[TxResult]:
        """With a private relay, an action that needs approvals goes with them in one bundle."""
        if self.relay is None or self.dry_run or approve is None:
            return await super()._execute(tx, approve, max_gas_cost_wei, key, protective)
        approvals = await self.approvals_needed(*approve)
        if not approvals:
            return await super()._execute(tx, None, max_gas_cost_wei, key, protective)
        items = [Planned(a, key, None, None, protective, "approval") for a in approvals]
        outcomes = await self.bundle([*items, Planned(tx, key, max_gas_cost_wei, None, protective)])
        if isinstance(outcomes[0], CannotBundle):  # one by one, each to the relay alone
            log.info("%s: %s; its approval goes first, alone", tx.description, outcomes[0])
            return await super()._execute(tx, approve, max_gas_cost_wei, key, protective)
        results: list[TxResult] = []
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                raise outcome
            results += outcome
        return results

    async def bundle(self, items: list[Planned]) -> Outcomes:
        """Send `items` as one private bundle and track it; per item, its results or why not.
        One item that cannot go stops them all (they depend on each other)."""
        assert self.relay is not None and not self.dry_run
        try:
            sims = await self._simulate_together([p.tx for p in items])
        except (SkipAction, TransientError) as exc:
            return [exc] * len(items)
        if sims is None:
            self.cannot_bundle = True
            return [CannotBundle("the node has no eth_simulateV1 to simulate a bundle with")] * len(items)
        gas = sims
        try:
            fees = await self.fees()
            limits = [self._check_cost(p.tx, g, fees, p.max_gas_cost_wei) for p, g in zip(items, gas, strict=True)]
        except (SkipAction, TransientError) as exc:
            return [exc] * len(items)
        max_fee, tip, _ = fees
        out: list[list[TxResult] | Exception | None] = [None] * len(items)
        admitted = self._burst_caps([(k, gas[k], limits[k]) for k in range(len(items))], max_fee, out)
        if len(admitted) < len(items):
            why = next(o for o in out if isinstance(o, Exception))
            return [why] * len(items)
        try:
            signed = await self._sign_bundle(items, limits, max_fee, tip)
        except (StorageError, TransientError) as exc:
            return [exc] * len(items)
        try:
            await self._offer(signed, max_fee, tip)
            await self._until_included(signed, max_fee, tip)
        except (SkipAction, ExecutionError, TransientError) as exc:
            return [exc] * len(items)
        results = await asyncio.gather(
            *(self._track(p.tx, nonce, limit, max_fee, tip, h, p.role, p.key) for p, nonce, limit, h, _ in signed),
            return_exceptions=True,
        )
        outcomes: Outcomes = []
        for r, g in zip(results, gas, strict=True):
            if isinstance(r, TxResult):
                outcomes.append([TxResult(**{**r.__dict__, "gas_estimate": g})])
            elif isinstance(r, SkipAction | ExecutionError | TransientError):
                outcomes.append(r)
            else:
                raise r
        return outcomes

    async def _simulate_together(self, txs: list[TxRequest]) -> list[int] | None:
        """Gas estimates of transactions run in order on the latest state (eth_simulateV1);
        SkipAction naming the first that reverts; None when the node cannot simulate them together."""
        sims = await self.chain.simulate_bundle(self.address, [(t.to, t.data, t.value) for t in txs])
        if sims is None:
            return None
        for t, (_, why) in zip(txs, sims, strict=True):
            if why:
                raise SkipAction(f"simulation of {t.description} (in its bundle) reverted: {why}")
        return [-(-g * 5 * 64 // (4 * 63)) for g, _ in sims]

    async def _sign_bundle(self, items: list[Planned], limits: list[int], max_fee: int, tip: int) -> list[Signed]:
        """Sequential nonces, all journaled in one commit (none leaves if the commit fails)."""
        signed: list[Signed] = []
        first = None
        try:
            with self.journal.atomic():
                for p, limit in zip(items, limits, strict=True):
                    nonce = await self.nonces.take()
                    first = nonce if first is None else first
                    self._routes[nonce] = Route(self.fallback(p.protective), bundle=True)
                    h, raw = await self._sign(p.tx, nonce, limit, max_fee, tip, p.role, p.key)
                    signed.append((p, nonce, limit, h, raw))
        except BaseException:
            if first is not None:
                self.nonces.give_back(first)
            for _, nonce, *_ in signed:
                self._routes.pop(nonce, None)
            raise
        return signed

    async def _offer(self, signed: list[Signed], max_fee: int, tip: int) -> None:
        """The bundle to the relay for each of the next `private_blocks` blocks. A refusal with
        fallback on sends it publicly at once; with it off, the nonces are released."""
        assert self.relay is not None
        head = await self.chain.block_number()
        blocks = self.settings.private_blocks
        for _, nonce, _, _, _ in signed:
            self._routes[nonce].until = head + blocks
        what = " + ".join(p.tx.description for p, *_ in signed)
        try:
            await self.relay.send_bundle_for([raw for *_, raw in signed], head + 1, blocks)
        except RelayRefused as exc:
            if self._routes[signed[0][1]].fallback:
                log.warning("bundle %s: %s; sending it publicly (fallback on)", what, exc)
                await self._go_public(signed)
                return
            await self._release(signed, f"the relay refused the bundle: {exc}", max_fee, tip)
            raise ExecutionError(f"bundle {what}: {exc}") from exc
        except TransientError as exc:
            log.warning("bundle %s: %s (it may have it; tracked)", what, exc)
        else:
            log.info("bundle %s sent to the private relay for blocks %d-%d", what, head + 1, head + blocks)
        with self.journal.atomic():
            for p, _, _, h, _ in signed:
                self._sent(p.tx, h, p.role, p.key, SendOutcome("accepted", "private relay bundle"), resync=False)

    async def _until_included(self, signed: list[Signed], max_fee: int, tip: int) -> None:
        """Wait for the bundle's last nonce to be used; at the end of each window, simulate it
        again and fall back, offer it again, or release its nonces (SkipAction) when it is no
        longer needed."""
        last = signed[-1][1]
        deadline = time.monotonic() + self.settings.receipt_timeout_s
        what = " + ".join(p.tx.description for p, *_ in signed)
        while True:
            head, mined = await self._poll_until(deadline, what)
            route = self._routes.get(last)
            if mined > last or route is None or not route.bundle:
                return
            if time.monotonic() > deadline:
                raise ExecutionError(f"bundle {what}: not included within {self.settings.receipt_timeout_s}s")
            if head.number > route.until:
                try:
                    await self._simulate_together([p.tx for p, *_ in signed])
                except SkipAction as failed:
                    await self._release(signed, f"no longer needed ({failed})", max_fee, tip)
                    raise SkipAction(f"bundle {what}: not included, and no longer needed: {failed}") from failed
                except TransientError as exc:
                    log.info("bundle %s: re-simulation failed (%s): it is still needed", what, exc)
                if route.fallback:
                    log.warning(
                        "bundle %s: the private relay did not include it within %d blocks; re-simulated, "
                        "sending it publicly", what, self.settings.private_blocks,
                    )  # fmt: skip
                    await self._go_public(signed)
                    return
                log.info("bundle %s: not included yet; offered to the relay again", what)
                await self._offer(signed, max_fee, tip)
            await asyncio.sleep(self.settings.receipt_poll_s)

    async def _go_public(self, signed: list[Signed]) -> None:
        """The bundle's transactions to the public RPC, in nonce order."""
        for p, nonce, _, h, raw in signed:
            self._routes.pop(nonce, None)
            self.journal.set_route(h, "public")
            try:
                await self._broadcast(p.tx, h, raw, p.role, p.key, nonce=nonce, resync=False)
            except ExecutionError as exc:
                log.warning("public fallback of %s refused: %s", h, exc)

    async def _release(self, signed: list[Signed], why: str, max_fee: int, tip: int) -> None:
        """A bundle that will not land: its nonces go back to the counter when nothing was taken
        after them; else each is filled by a 0-value transfer to the keeper (public with
        fallback on, else to the relay alone), so later transactions are not held."""
        first, last = signed[0][1], signed[-1][1]
        fallback = self._routes[first].fallback if first in self._routes else True
        with self.journal.atomic():
            for p, nonce, _, h, _ in signed:
                self._routes.pop(nonce, None)
                self.journal.set_tx(h, "dropped")
                if p.key is not None and p.role == "action":
                    self.journal.set_action(p.key, "dropped", why)
        if self.nonces.give_back_if_last(first, last):
            return
        if not fallback:
            for nonce in range(first, last + 1):
                self._routes[nonce] = Route(False)
        fillers = await self._fill_gaps(list(range(first, last + 1)), last + 1, max_fee, tip)
        await asyncio.gather(*fillers, return_exceptions=True)
