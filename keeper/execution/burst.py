"""Bursts: a block's independent actions sent together instead of one receipt at a time
(summed approvals, one bundle simulation, caps applied cumulatively, sequential nonces journaled
in one commit per chunk, JSON-RPC batches broadcast while the next chunk is signed, nonce gaps
filled, one shared tracking poll). The top layer of the Executor."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from keeper.errors import ExecutionError, SkipAction, StorageError, TransientError
from keeper.execution.sending import DRY_RUN_NOTE
from keeper.execution.tracker import Tracking
from keeper.execution.tx import Outcomes, Planned, TxRequest, TxResult, summed
from keeper.sources.failures import SendOutcome

log = logging.getLogger("keeper.execution")
BURST_CHUNK = 25
"""Transactions per JSON-RPC batch of a burst (the next chunk is signed while one is in flight)."""


class Bursts(Tracking):
    async def burst(self, planned: list[Planned]) -> Outcomes:
        """Independent actions of one block, sent together instead of one receipt at a time.

        Approvals they need are summed per (token, spender) and sent (and awaited) first, one per
        pair. Then every action is simulated concurrently, checked against what it is worth and
        against the caps (cumulatively: the burst counts as it goes), signed with sequential
        nonces and journaled in one commit, broadcast concurrently, and tracked concurrently (one
        head + nonce poll for all of them). A nonce the node refused leaves a gap that would hold
        every later one: it is filled with a 0-value transfer to the keeper; refused nonces at the
        end are given back to the nonce counter. Returns, per action, its results or the
        exception that stopped it (SkipAction, ExecutionError, TransientError)."""
        out: list[list[TxResult] | Exception | None] = [None] * len(planned)
        # fees and the simulation run beside the allowance reads (simulated again if an approval
        # had to be mined first)
        fees_read = asyncio.ensure_future(self.fees())
        sims_read = asyncio.ensure_future(self._simulate_burst([p.tx for p in planned]))
        blocked, approved = await self._burst_approvals(planned, out)
        todo = [i for i in range(len(planned)) if out[i] is None and i not in blocked]
        try:
            fees = await fees_read
        except (SkipAction, TransientError) as exc:
            await asyncio.gather(sims_read, return_exceptions=True)
            return [exc if o is None else o for o in out]
        sims_all = await sims_read
        if approved:  # blocks went by while the approval was mined
            try:
                fees = await self.fees()
            except (SkipAction, TransientError) as exc:
                return [exc if o is None else o for o in out]
            sims = await self._simulate_burst([planned[i].tx for i in todo])
        else:
            sims = [sims_all[i] for i in todo]
        ready: list[tuple[int, int, int]] = []  # (index, gas estimate, gas limit)
        for i, sim in zip(todo, sims, strict=True):
            if isinstance(sim, BaseException):
                if not isinstance(sim, SkipAction | TransientError | ExecutionError):
                    raise sim
                out[i] = sim
                continue
            try:
                gas_limit = self._check_cost(planned[i].tx, sim, fees, planned[i].max_gas_cost_wei)
            except SkipAction as exc:
                out[i] = exc
                continue
            if self.dry_run:
                log.info("dry-run: would send %s (gas %d)", planned[i].tx.description, gas_limit)
                out[i] = [TxResult(planned[i].tx.description, False, gas_estimate=sim, note=DRY_RUN_NOTE)]
                continue
            ready.append((i, sim, gas_limit))
        max_fee, tip, _ = fees
        ready = self._burst_caps(ready, max_fee, out)
        signed, sends, stopped = await self._sign_and_broadcast(planned, ready, max_fee, tip)
        if stopped is not None:
            for i, _, _ in ready[len(signed) :]:
                out[i] = stopped
        refused = [nonce for (_, nonce, _, _), r in zip(signed, sends, strict=True) if isinstance(r, BaseException)]
        accepted = [nonce for (_, nonce, _, _), r in zip(signed, sends, strict=True) if r is None]
        fillers = await self._fill_gaps(refused, max(accepted, default=-1), max_fee, tip)
        limits = {i: (estimate, limit) for i, estimate, limit in ready}
        tracked = [(i, nonce, h) for (i, nonce, h, _), r in zip(signed, sends, strict=True) if r is None]
        for (i, _, _, _), r in zip(signed, sends, strict=True):
            if isinstance(r, BaseException):
                out[i] = r if isinstance(r, Exception) else ExecutionError(str(r))
        results = await asyncio.gather(
            *(
                self._track(planned[i].tx, nonce, limits[i][1], max_fee, tip, h, "action", planned[i].key)
                for i, nonce, h in tracked
            ),
            *fillers,
            return_exceptions=True,
        )
        for (i, _, _), r in zip(tracked, results, strict=False):
            if isinstance(r, TxResult):
                out[i] = [TxResult(**{**r.__dict__, "gas_estimate": limits[i][0]})]
            elif isinstance(r, SkipAction | ExecutionError | TransientError):
                out[i] = r
            elif isinstance(r, BaseException):
                raise r
        return [o if o is not None else ExecutionError("not executed") for o in out]

    async def _sign_and_broadcast(
        self, planned: list[Planned], ready: list[tuple[int, int, int]], max_fee: int, tip: int
    ) -> tuple[list[tuple[int, int, str, bytes]], list[BaseException | None], Exception | None]:
        """Sign in nonce order, journaling each chunk in one commit before it leaves, and
        broadcast each chunk as one JSON-RPC batch while the next is signed. Returns the signed
        (index, nonce, hash, raw), for each None (sent) or why not, and why signing stopped
        early (the journal could not be written, the nonce not read: the rest is not sent)."""
        signed: list[tuple[int, int, str, bytes]] = []
        chunks: list[tuple[list[tuple[int, int, str, bytes]], asyncio.Task[list[SendOutcome] | None] | None]] = []
        stopped: Exception | None = None
        for start in range(0, len(ready), BURST_CHUNK):
            chunk = []
            first = None
            try:
                with self.journal.atomic():
                    for i, _, gas_limit in ready[start : start + BURST_CHUNK]:
                        nonce = await self.nonces.take()
                        first = nonce if first is None else first
                        self.go_private(nonce, planned[i].protective)
                        tx_hash, raw = await self._sign(
                            planned[i].tx, nonce, gas_limit, max_fee, tip, "action", planned[i].key
                        )
                        chunk.append((i, nonce, tx_hash, raw))
            except (StorageError, TransientError) as exc:  # nothing of this chunk was journaled: none leaves
                if first is not None:
                    self.nonces.give_back(first)
                stopped = exc
                break
            signed += chunk
            batch = None if self.relay is not None else self.chain.send_raw_batch([raw for *_, raw in chunk])
            chunks.append((chunk, asyncio.create_task(batch) if batch is not None else None))
            await asyncio.sleep(0)  # let the batch leave while the next chunk is signed
        sends: list[BaseException | None] = []
        for chunk, task in chunks:
            replies = await task if task is not None else None
            if replies is None:  # the provider cannot batch (or they go to the relay): one by one, concurrently
                got = await asyncio.gather(
                    *(
                        self._broadcast(planned[i].tx, h, raw, "action", planned[i].key, nonce=nonce, resync=False)
                        for i, nonce, h, raw in chunk
                    ),
                    return_exceptions=True,
                )
                sends += [r if isinstance(r, BaseException) else None for r in got]
                continue
            replies = [await self._own_nonce(h, r) for (_, _, h, _), r in zip(chunk, replies, strict=True)]
            with self.journal.atomic():
                for (i, _, h, _), reply in zip(chunk, replies, strict=True):
                    try:
                        self._sent(planned[i].tx, h, "action", planned[i].key, reply, resync=False)
                        sends.append(None)
                    except ExecutionError as exc:
                        sends.append(exc)
        return signed, sends, stopped

    async def _simulate_burst(self, txs: list[TxRequest]) -> list[int | BaseException]:
        """Gas estimates (or why each would revert) for transactions that will run in this order:
        one eth_simulateV1 runs them in sequence, each on the state the previous ones leave, as
        the block will; a node without it gets each simulated alone, concurrently. From the gas
        used, the estimate allows for the refund cap (1/5) and the 63/64 rule."""
        bundle = None
        if len(txs) > 1:
            try:
                bundle = await self.chain.simulate_bundle(self.address, [(t.to, t.data, t.value) for t in txs])
            except TransientError as exc:
                log.info("bundle simulation failed (%s): simulating one by one", exc)
        if bundle is None:
            return list(await asyncio.gather(*(self.simulate(t) for t in txs), return_exceptions=True))
        return [
            SkipAction(f"simulation of {t.description} reverted: {why}") if why else -(-gas_used * 5 * 64 // (4 * 63))
            for t, (gas_used, why) in zip(txs, bundle, strict=True)
        ]

    async def _burst_approvals(self, planned: list[Planned], out: list[Any]) -> tuple[set[int], bool]:
        """Send (and await) one approval per (token, spender) for the burst's total; returns the
        actions that cannot go ahead (their entry in `out` says why), and whether any was sent."""
        needs: dict[tuple[str, str], list[int]] = {}
        for i, p in enumerate(planned):
            if p.approve is not None:
                needs.setdefault((p.approve[0], p.approve[1]), []).append(i)
        totals = summed(p.approve for p in planned)
        blocked: set[int] = set()
        approved = False
        for (token, spender), idx in needs.items():
            total = totals[token, spender]
            try:
                approvals = await self.approvals_needed(token, spender, total)
                if not approvals:
                    continue
                if self.dry_run:  # each action simulated after the approvals, nothing sent
                    for i in idx:
                        try:
                            out[i] = await self.dry_run_with(approvals, planned[i].tx)
                        except (SkipAction, TransientError) as exc:
                            out[i] = exc
                    continue
                for approval in approvals:
                    await self._send(
                        approval, key=planned[idx[0]].key, role="approval", protective=planned[idx[0]].protective
                    )
                approved = True
            except (SkipAction, ExecutionError, TransientError) as exc:
                for i in idx:
                    out[i] = exc
                blocked |= set(idx)
        return blocked, approved

    def _burst_caps(
        self, ready: list[tuple[int, int, int]], max_fee: int, out: list[Any]
    ) -> list[tuple[int, int, int]]:
        """The kill switch, daily gas budget and hourly action count, applied to the burst as a
        whole: actions go in order until one would break a cap."""
        if why := self.kill_switch():
            for i, _, _ in ready:
                out[i] = SkipAction(f"not sending: {why} (monitoring continues)")
            return []
        spent, count, flying = self._spent_and_sent()
        admitted = []
        for i, estimate, gas_limit in ready:
            worst = gas_limit * max_fee
            if why := self._over_cap(worst, spent, count, flying):
                out[i] = SkipAction(why)
            else:
                spent += worst
                count += 1
                flying += 1
                admitted.append((i, estimate, gas_limit))
        return admitted

    async def _fill_gaps(self, refused: list[int], highest_accepted: int, max_fee: int, tip: int) -> list[Any]:
        """Refused nonces below an accepted one are gaps: each gets a 0-value self-transfer so
        the accepted ones can be mined (returns their trackers). Refused nonces above every
        accepted one go back to the counter."""
        gaps = sorted(n for n in refused if n < highest_accepted)
        tail = [n for n in refused if n > highest_accepted]
        if tail:
            self.nonces.give_back(min(tail))
        trackers = []
        for nonce in gaps:
            filler = TxRequest(self.address, b"", f"fill nonce gap {nonce}")
            try:
                h, raw = await self._sign(filler, nonce, 21_000, max_fee, tip, "cancel", None)
                await self._broadcast(filler, h, raw, "cancel", None, nonce=nonce, resync=False)
            except (ExecutionError, TransientError) as exc:
                log.error("ALERT: nonce %d could not be filled (%s): later transactions wait behind it", nonce, exc)
                continue
            log.warning("filled the nonce gap %d left by a refused send with %s", nonce, h)
            trackers.append(self._track(filler, nonce, 21_000, max_fee, tip, h, "cancel", None))
        return trackers
