"""The operations server (aiohttp): `/metrics` (Prometheus, through prometheus-client), `/healthz`, and a live status
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

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from web3.exceptions import Web3Exception

from keeper.app.alerts import AlertHandler
from keeper.app.loop import Keeper
from keeper.app.metrics import KeeperCollector, metric_families
from keeper.app.report import market_notes, position_rows
from keeper.app.watch import Watch
from keeper.settings import OpsSettings
from keeper.strategy.actions import fields_of

log = logging.getLogger("keeper.ops")


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
            async with asyncio.timeout(3.0):
                node_head = await k.chain.block_number()
        except (Web3Exception, OSError, TimeoutError, ValueError) as exc:  # the keeper is blind
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
            problems.append(f"execution stopped: {type(k._worker_error).__name__}")
        if k.storage_fault:
            problems.append(f"journal cannot be written (nothing is sent): {k.storage_fault}")
        info = {"last_block": k.last_block, "node_head": node_head, "lag_blocks": lag, "last_block_age_s": age}
        return not problems, problems, info

    async def healthz(self, request: web.Request) -> web.Response:
        ok, problems, info = await self.health()
        body = {"ok": ok, "problems": problems, **{k: (None if v == math.inf else v) for k, v in info.items()}}
        return web.json_response(body, status=200 if ok else 503)

    # ------------------------------------------------------------------ /metrics
    async def metrics(self, request: web.Request) -> web.Response:
        _, _, info = await self.health()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(KeeperCollector(metric_families(self.keeper, info, self.alerts)))
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        k = self.keeper
        last: dict[tuple[str, str], Any] = {}
        for out in k.history:
            last[(out.market, out.action.subject)] = out
        markets = []
        for w in k.watches:
            if w.book is None or len(w.book) == 0 or not w.block:
                markets.append(
                    {"label": w.label, "address": w.address, "block": w.block, "accounts": 0, "positions": [],
                     "notes": market_notes(w)}
                )  # fmt: skip
                continue
            markets.append(
                {
                    "label": w.label,
                    "address": w.address,
                    "block": w.block,
                    "accounts": len(w.book),
                    "positions": positions(w, self.settings.status_top, last),
                    "error": w.error,
                    "notes": market_notes(w),
                }
            )
        actions = [
            {
                "block": o.block,
                "market": o.market,
                "action": type(o.action).__name__,
                "account": o.action.subject,
                "status": "error: " + o.error if o.error else ("sent" if o.sent else "simulated (dry-run)"),
                "tx": next((r.tx_hash for r in o.results if r.tx_hash), None),
                "health_after": o.health_after,
                "predicted": _predicted(o.action),
                "actual": (o.actual or {}).get("text"),
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


def positions(w: Watch, top: int, last: dict[tuple[str, str], Any]) -> list[dict[str, Any]]:
    """The protected positions, then the riskiest others: health, liquidation price of the nearest
    asset, distance, last action."""
    rows = []
    for r in position_rows(w, top, protected_first=True):
        out = last.get((w.label, r.account))
        rows.append(
            {
                "account": r.account,
                "protected": r.protected,
                "health": None if math.isinf(r.health) else r.health,
                "collateral": r.collateral,
                "debt": r.debt,
                "liquidation_price": {"asset": r.liquidation[0], "price": r.liquidation[1]} if r.liquidation else None,
                "distance": None if math.isinf(r.distance) else r.distance,
                "last_action": None if out is None else _describe(out),
                "note": r.note,
            }
        )
    return rows


def _describe(out: Any) -> str:
    status = "error" if out.error else "sent" if out.sent else "simulated"
    actual = f" ({out.actual['text']})" if out.actual and out.actual.get("text") else ""
    return f"{type(out.action).__name__} at block {out.block}: {status}{actual}"


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


def _predicted(action: Any) -> str:
    """The action's predicted figures, as the status page shows them beside the chain's."""
    keys = ("expected_debt_repaid", "expected_collateral", "amount", "health_after")
    fields = fields_of(action)
    return ", ".join(f"{k} {fields[k]}" for k in keys if k in fields and fields[k] == fields[k])
