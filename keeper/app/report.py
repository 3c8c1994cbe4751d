"""What the keeper shows: position rows for `keeper status` and the status page (one function
for both), the console table, and the JSON-lines report of a run."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from keeper.app.watch import Watch
from keeper.protocols.base import usd
from keeper.strategy.actions import fields_of

if TYPE_CHECKING:
    from keeper.app.loop import Keeper


@dataclass(frozen=True)
class PositionRow:
    account: str
    protected: bool
    health: float
    """Health factor (perps: margin ratio); +inf without debt."""
    collateral: float
    """USD (perps: available margin)."""
    debt: float
    """USD (perps: maintenance margin + reward)."""
    liquidation: tuple[str, float] | None
    """(column, price in USD) of the single price move nearest to liquidation; None when none can."""
    distance: float
    """Smallest relative single-price move to liquidation (0: liquidatable; +inf: none can)."""
    note: str = ""
    """Why the figures do not apply (e.g. a position the keeper does not model)."""


def position_rows(w: Watch, top: int, *, protected_first: bool = False) -> list[PositionRow]:
    """The `top` riskiest positions (after the protected ones when `protected_first`)."""
    if w.book is None or not len(w.book):
        return []
    snap = w.book.snapshot()
    hf = snap.health.health_factor
    exact = w.adapter.exact_figures(w.book.positions)
    if exact:  # rank accounts the engine cannot screen by their exact health
        hf = hf.copy()
        for user, f in exact.items():
            hf[w.book.row[user]] = f[0]
    protected = [w.book.row[a] for a in w.adapter.protected_accounts() if a in w.book.row]
    order = [int(i) for i in np.argsort(hf, kind="stable")]
    if protected_first:
        order = protected + [i for i in order if i not in protected]
        order = order[: max(top, len(protected))]
    else:
        order = order[:top]
    rows = []
    for i in order:
        user = snap.users[i]
        nearest = snap.nearest_liquidation(i)
        liq = (w.symbols[nearest[0]], nearest[1] / w.engine_scale) if nearest else None
        pos = w.book.positions[user]
        why = w.adapter.unsupported(pos)
        health, coll, debt = float(hf[i]), float(snap.health.collateral_base[i]), float(snap.health.debt_base[i])
        distance = float(snap.distance[i])
        if (figures := exact.get(user)) is not None:  # e-mode, stable debt: the replica's figures
            health, coll, debt = figures
            liq, distance = None, (0.0 if health < 1 else math.inf)
        rows.append(
            PositionRow(
                user,
                i in protected,
                health,
                coll / w.engine_scale,
                debt / w.engine_scale,
                liq,
                distance,
                f"{why}: not acted on"
                if why
                else ("e-mode/stable: exact HF" if figures is not None and health >= 1 else ""),
            )
        )
    return rows


def market_notes(w: Watch) -> list[str]:
    """What the figures of a market rest on, and what is not judged: a read that failed at the
    last block, the protocol version, price sources whose age cannot be judged."""
    notes = [f"not read at the last block: {w.error}"] if w.error else []
    notes += list(w.adapter.notes()) + [m.removeprefix("ALERT: ") for m in w.cannot_protect.values()]
    return notes + w.deleverage_notes


def check_protection(keeper: Keeper) -> None:
    """Which protected positions the wallet cannot protect now (`Watch.cannot_protect`), from the
    planner itself on the current book and wallet (nothing is decided or sent)."""
    from keeper.strategy.planner import Inputs, plan

    for w in keeper.watches:
        if w.book is None or not w.block:
            continue
        inputs = Inputs(w.block, 0, 0, dict(keeper.wallet), w.book.positions, {})
        out = plan(w.adapter, w.book.snapshot(), inputs, keeper.settings)
        w.cannot_protect = {a.subject: a.message for a in out.alerts if a.kind == "cannot protect"}


def print_status(keeper: Keeper, top: int) -> None:
    """Per market, the riskiest accounts; then, when several markets are watched, the riskiest
    across all of them (health factor and margin ratio are on one footing: below 1 is liquidatable)."""
    check_protection(keeper)
    header = f"{'account':42} {'collateral':>14} {'debt':>14} {'health':>8} {'liquidation price':>24} {'distance':>12}"
    everything = []
    for w in keeper.watches:
        print(f"{w.label} {w.address} at block {w.block}: {len(w.book or [])} accounts")
        for note in market_notes(w):
            print(f"  {note}")
        print(header)
        for row in position_rows(w, top):
            print(status_line(row))
            everything.append((row.health, w.protocol, row))
        print()
    if len(keeper.watches) > 1:
        print(f"riskiest across {len(keeper.watches)} markets")
        print(f"{'market':8} {header}")
        for _, protocol, row in sorted(everything, key=lambda x: x[0])[:top]:
            print(f"{protocol:8} {status_line(row)}")


def status_line(r: PositionRow) -> str:
    hs = "no debt" if math.isinf(r.health) else f"{r.health:.4f}"
    ds = "-" if math.isinf(r.distance) else ("liquidatable" if r.health < 1 else f"{r.distance:.1%}")
    liq = r.note or (f"{r.liquidation[0]} {usd(r.liquidation[1], 1)}" if r.liquidation else "-")
    return f"{r.account:42} {usd(r.collateral, 1):>14} {usd(r.debt, 1):>14} {hs:>8} {liq:>24} {ds:>12}"


def write_report(keeper: Keeper, path: str) -> None:
    """Every action of the run as JSON lines (in dry-run: what would have been sent)."""
    with open(path, "w") as f:
        for out in keeper.history:
            record: dict[str, Any] = {
                "block": out.block,
                "market": out.market,
                "action": type(out.action).__name__,
                "detail": fields_of(out.action),
                "sent": out.sent,
                "error": out.error,
                "actual": out.actual,
                "transactions": [asdict(r) for r in out.results],
            }
            f.write(json.dumps(record, default=str) + "\n")
    print(f"report: {len(keeper.history)} actions written to {path}")
