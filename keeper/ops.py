"""The operations server (aiohttp): `/metrics` (Prometheus text), `/healthz`, and a live status
page `/` fed by `/api/status` (JSON). It reads the keeper's state between blocks and never
writes it; it serves on the keeper's own event loop.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web

from keeper.alerts import AlertHandler
from keeper.config import OpsSettings
from keeper.markets import Watch
from keeper.service import AT_RISK, Keeper

log = logging.getLogger("keeper.ops")


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


class Metrics:
    """Prometheus text exposition format 0.0.4: # HELP, # TYPE, then samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> None:
        self.lines += [f"# HELP keeper_{name} {help_text}", f"# TYPE keeper_{name} {kind}"]
        for labels, value in samples:
            tags = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            v = "NaN" if math.isnan(value) else ("+Inf" if value == math.inf else repr(float(value)))
            self.lines.append(f"keeper_{name}{{{tags}}} {v}" if tags else f"keeper_{name} {v}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


class OpsServer:
    def __init__(self, keeper: Keeper, settings: OpsSettings, alerts: AlertHandler | None = None):
        self.keeper, self.settings, self.alerts = keeper, settings, alerts
        self.runner: web.AppRunner | None = None
        self.url = ""

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/api/status", self.api_status)
        app.router.add_get("/", self.page)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        host, port = self.settings.listen.rsplit(":", 1)
        site = web.TCPSite(self.runner, host, int(port))
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        actual = sockets[0].getsockname()[1] if sockets else int(port)
        self.url = f"http://{host}:{actual}"
        log.info("operations server on %s (/metrics, /healthz, status page /)", self.url)
        return self.url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    # ------------------------------------------------------------------ /healthz
    async def health(self) -> tuple[bool, list[str], dict[str, Any]]:
        k, s = self.keeper, self.settings
        problems = []
        age = time.time() - k.last_step_at if k.last_step_at else math.inf
        try:
            node_head = int(await asyncio.wait_for(k.chain.w3.eth.block_number, 3.0))
        except Exception as exc:  # any failure to read the head means the keeper is blind
            node_head = -1
            problems.append(f"cannot read the node's head: {type(exc).__name__}")
        lag = node_head - (k.last_block or 0) if node_head >= 0 and k.last_block is not None else -1
        if age > s.max_block_age_s:
            problems.append(
                "no block processed yet"
                if math.isinf(age)
                else f"no block processed for {age:.0f} s (> {s.max_block_age_s:.0f})"
            )
        if lag > s.max_lag_blocks:
            problems.append(f"{lag} blocks behind the node's head (> {s.max_lag_blocks})")
        if k._worker_error is not None:
            problems.append(f"execution worker stopped: {type(k._worker_error).__name__}")
        info = {"last_block": k.last_block, "node_head": node_head, "lag_blocks": lag, "last_block_age_s": age}
        return not problems, problems, info

    async def healthz(self, request: web.Request) -> web.Response:
        ok, problems, info = await self.health()
        body = {"ok": ok, "problems": problems, **{k: (None if v == math.inf else v) for k, v in info.items()}}
        return web.json_response(body, status=200 if ok else 503)

    # ------------------------------------------------------------------ /metrics
    async def metrics(self, request: web.Request) -> web.Response:
        k = self.keeper
        m = Metrics()
        stats = k.market_stats
        m.add("accounts_watched", "gauge", "Accounts in the book.", [({"market": n}, v[0]) for n, v in stats.items()])
        m.add(
            "accounts_liquidatable",
            "gauge",
            "Accounts with health below 1.",
            [({"market": n}, v[1]) for n, v in stats.items()],
        )
        m.add(
            "accounts_at_risk",
            "gauge",
            f"Accounts with health below {AT_RISK}.",
            [({"market": n}, v[2]) for n, v in stats.items()],
        )
        m.add(
            "actions_total",
            "counter",
            "Actions by market, kind and outcome (sent, failed, skipped, dry_run).",
            [({"market": mk, "action": a, "outcome": o}, n) for (mk, a, o), n in sorted(k.counts.items())],
        )
        m.add(
            "gas_spent_wei_total",
            "counter",
            "Gas paid by the keeper's mined transactions (wei).",
            [({}, k.gas_spent_wei)],
        )
        endpoints = getattr(k.chain.w3.provider, "stats", None)
        if endpoints is not None:
            rows = endpoints()
            m.add(
                "rpc_requests_total",
                "counter",
                "JSON-RPC requests by endpoint.",
                [({"endpoint": r["endpoint"]}, r["requests"]) for r in rows],
            )
            m.add(
                "rpc_errors_total",
                "counter",
                "Failed JSON-RPC requests by endpoint.",
                [({"endpoint": r["endpoint"]}, r["errors"]) for r in rows],
            )
            m.add(
                "rpc_latency_seconds",
                "gauge",
                "Moving average round trip by endpoint.",
                [({"endpoint": r["endpoint"]}, r["latency_ms"] / 1e3) for r in rows],
            )
        else:
            m.add(
                "rpc_requests_total",
                "counter",
                "JSON-RPC requests by endpoint.",
                [({"endpoint": "default"}, k.chain.requests)],
            )
            m.add(
                "rpc_errors_total",
                "counter",
                "Failed JSON-RPC requests by endpoint.",
                [({"endpoint": "default"}, k.chain.errors)],
            )
            m.add(
                "rpc_latency_seconds",
                "gauge",
                "Moving average round trip by endpoint.",
                [({"endpoint": "default"}, k.chain.latency_s)],
            )
        _, _, info = await self.health()
        m.add("last_block", "gauge", "Last block processed.", [({}, k.last_block or 0)])
        m.add(
            "block_lag", "gauge", "Node head minus last block processed (-1: head unknown).", [({}, info["lag_blocks"])]
        )
        m.add(
            "last_block_age_seconds",
            "gauge",
            "Seconds since a block was last processed.",
            [({}, info["last_block_age_s"])],
        )
        m.add("loop_duration_seconds", "gauge", "Time the last block took to process.", [({}, k.last_step_s)])
        m.add(
            "in_flight", "gauge", "Positions with a transaction in flight.", [({}, len(k.executor.journal.in_flight()))]
        )
        if self.alerts is not None:
            m.add(
                "alerts_total",
                "counter",
                "Alert notifications by result.",
                [({"result": r}, getattr(self.alerts, r)) for r in ("sent", "suppressed", "failed")],
            )
        return web.Response(text=m.text(), content_type="text/plain", charset="utf-8", headers={"X-Version": "0.0.4"})

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        k = self.keeper
        last: dict[tuple[str, str], Any] = {}
        for out in k.history:
            last[(out.market, _subject(out))] = out
        markets = []
        for w in k.watches:
            if w.book is None or len(w.book) == 0 or w.book._market_arrays is None:
                markets.append(
                    {"label": w.label, "address": w.address, "block": w.block, "accounts": 0, "positions": []}
                )
                continue
            markets.append(
                {
                    "label": w.label,
                    "address": w.address,
                    "block": w.block,
                    "accounts": len(w.book),
                    "positions": positions(w, self.settings.status_top, last),
                }
            )
        actions = [
            {
                "block": o.block,
                "market": o.market,
                "action": type(o.action).__name__,
                "account": _subject(o),
                "status": "error: " + o.error if o.error else ("sent" if o.sent else "simulated (dry-run)"),
                "tx": next((r.tx_hash for r in o.results if r.tx_hash), None),
                "health_after": o.health_after,
            }
            for o in reversed(k.history[-20:])
        ]
        return {
            "network": k.settings.network,
            "chain_id": k.settings.chain_id,
            "keeper": k.executor.address,
            "dry_run": k.executor.dry_run,
            "last_block": k.last_block,
            "updated": k.last_step_at,
            "markets": markets,
            "actions": actions,
            "alerts": list(reversed(self.alerts.recent[-10:])) if self.alerts else [],
        }

    async def api_status(self, request: web.Request) -> web.Response:
        return web.json_response(self.status(), dumps=_dumps)

    async def page(self, request: web.Request) -> web.Response:
        title = html.escape(f"keeper · {self.keeper.settings.network}")
        return web.Response(text=PAGE.replace("{{title}}", title), content_type="text/html")


def _subject(out: Any) -> str:
    from keeper.strategy.actions import subject

    return subject(out.action)


def positions(w: Watch, top: int, last: dict[tuple[str, str], Any]) -> list[dict[str, Any]]:
    """The protected positions, then the riskiest others: health, liquidation price of the nearest
    asset, distance, last action."""
    assert w.book is not None
    snap = w.book.snapshot()
    hf = snap.health.health_factor
    protected = [w.book.row[a] for a in w.protected_accounts() if a in w.book.row]
    riskiest = [int(i) for i in np.argsort(hf, kind="stable")[: top + len(protected)] if int(i) not in protected]
    rows = []
    for i in (protected + riskiest)[: max(top, len(protected))]:
        user = snap.users[i]
        dist = float(snap.distance[i])
        liq = None
        if nearest := snap.nearest_liquidation(i):
            liq = {"asset": w.symbols[nearest[0]], "price": nearest[1] / w.engine_scale}
        out = last.get((w.label, user))
        rows.append(
            {
                "account": user,
                "protected": i in protected,
                "health": None if math.isinf(hf[i]) else float(hf[i]),
                "collateral": float(snap.health.collateral_base[i]) / w.engine_scale,
                "debt": float(snap.health.debt_base[i]) / w.engine_scale,
                "liquidation_price": liq,
                "distance": None if math.isinf(dist) else dist,
                "last_action": None if out is None else _describe(out),
            }
        )
    return rows


def _describe(out: Any) -> str:
    status = "error" if out.error else "sent" if out.sent else "simulated"
    return f"{type(out.action).__name__} at block {out.block}: {status}"


def _finite(obj: Any) -> Any:
    """JSON has no NaN or Infinity: they become null (no debt: health is infinite)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def _dumps(obj: Any) -> str:
    return json.dumps(_finite(obj), default=str, allow_nan=False)


PAGE = (Path(__file__).with_name("status.html")).read_text()
"""The status page: static HTML whose script renders /api/status every 2 s."""
