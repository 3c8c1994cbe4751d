"""One block's reads: one multicall for every market's state and the wallet, then the accounts
each market's events touched. Markets are isolated: one market whose reads fail is left out of
the block (reported) while the others go on."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from keeper.app.alerts import alert
from keeper.app.watch import Watch
from keeper.errors import TransientError
from keeper.sources.abi import fn, word
from keeper.sources.chain import Call, Chain, Head

log = logging.getLogger("keeper")


async def refresh(
    chain: Chain,
    watches: list[Watch],
    keeper_address: str,
    head: Head,
    touched: dict[int, list[str]],
    reconcile: dict[int, list[str]] | None = None,
) -> tuple[dict[str, int], int]:
    """One multicall for every market and the wallet; then, per market, the accounts its events
    touched and (on a reconciliation block) every other account. Returns how many of the
    latter differ from what the book held: drift, which no event announced; and the wallet
    (token -> balance, '' = the native coin).

    Markets are isolated: every market call may fail inside the multicall, and a market whose
    reads fail (a reverted price source, an undecodable reply) is reported and left out of this
    block while the others go on."""
    for w in watches:
        if not w.loaded:
            await _isolated(w, head, w.load(chain, head.number))
    calls: list[Call] = []
    spans = []
    for w in watches:
        c = [replace(call, allow_failure=True) for call in w.adapter.market_calls()] if w.loaded else []
        spans.append((len(calls), len(calls) + len(c)))
        calls += c
    tokens = sorted({t for w in watches if w.loaded for t in w.adapter.tokens})
    balance_of = fn("ERC20", "balanceOf")
    calls += [Call(t, balance_of.encode(keeper_address)) for t in tokens]
    calls.append(Call(chain.multicall3, fn("Multicall3", "getEthBalance").encode(keeper_address)))
    results = await chain.multicall(calls, head.number)
    for w, (a, b) in zip(watches, spans, strict=True):
        if w.loaded:
            market_ok(w, head, _decode(w, results[a:b], head))
    words = [word(r, "wallet balance") for r in results[spans[-1][1] if spans else 0 :]]
    wallet = dict(zip(tokens, words[:-1], strict=True))
    wallet[""] = words[-1]
    drift = 0
    for k, w in enumerate(watches):
        # accounts a failed block could not read are read with this block's (never dropped)
        events = set(touched.get(k, [])) | w.unread_users
        others = sorted(set((reconcile or {}).get(k, [])) - events)
        users = sorted(events) + others
        if not users or w.book is None or w.error:
            w.unread_users = events
            continue
        try:
            positions = await w.read_positions(chain, users, head.number)
        except TransientError as exc:
            w.unread_users = events
            market_ok(w, head, f"reading {len(users)} accounts failed: {exc}")
            continue
        w.unread_users = set()
        for p in positions[len(events) :]:
            old = w.book.positions.get(p.user)
            drift += old is not None and replace(old, block=0) != replace(p, block=0)
        w.book.upsert(positions)
    return wallet, drift


def _decode(w: Watch, results: list[bytes | None], head: Head) -> str:
    try:
        w.decode_market(results, head)
    except TransientError as exc:
        return str(exc)
    return ""


async def _isolated(w: Watch, head: Head, load: Any) -> None:
    try:
        await load
    except TransientError as exc:
        market_ok(w, head, f"loading the market failed: {exc}")


def market_ok(w: Watch, head: Head, error: str) -> None:
    """Record whether a market could be read this block; an ALERT when that changes."""
    if error and error != w.error:
        log.warning(
            "ALERT: %s: market not read at block %d, no decisions on it this block: %s",
            w.label,
            head.number,
            error,
            extra=alert("market unreadable", w.label, "critical"),
        )
    elif w.error and not error:
        log.warning("%s: market read again at block %d", w.label, head.number)
    w.error = error
