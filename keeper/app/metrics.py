"""The keeper's Prometheus metrics, built with prometheus-client from the keeper's state at scrape
time (a collector per scrape: nothing global, nothing updated on the hot path)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from keeper.errors import StorageError

if TYPE_CHECKING:
    from keeper.app.alerts import AlertHandler
    from keeper.app.loop import Keeper

AT_RISK = 1.1
"""Health under which an account counts as at risk in metrics and the status page."""


class KeeperCollector(Collector):
    def __init__(self, families: list[Metric]):
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def _gauge(name: str, doc: str, labels: list[str], samples: list[tuple[list[str], float]]) -> Metric:
    g = GaugeMetricFamily(f"keeper_{name}", doc, labels=labels)
    for values, v in samples:
        g.add_metric(values, float(v))
    return g


def _counter(name: str, doc: str, labels: list[str], samples: list[tuple[list[str], float]]) -> Metric:
    c = CounterMetricFamily(f"keeper_{name}", doc, labels=labels)
    for values, v in samples:
        c.add_metric(values, float(v))
    return c


def metric_families(k: Keeper, info: dict[str, Any], alerts: AlertHandler | None) -> list[Metric]:
    """Every metric, with the names and labels the dashboards use."""
    stats = k.market_stats
    out = [
        _gauge("accounts_watched", "Accounts in the book.", ["market"], [([n], v[0]) for n, v in stats.items()]),
        _gauge(
            "accounts_liquidatable",
            "Accounts with health below 1.",
            ["market"],
            [([n], v[1]) for n, v in stats.items()],
        ),
        _gauge(
            "accounts_at_risk",
            f"Accounts with health below {AT_RISK}.",
            ["market"],
            [([n], v[2]) for n, v in stats.items()],
        ),
        _gauge(
            "market_unread",
            "1 when the market could not be read at the last block (its decisions were skipped).",
            ["market"],
            [([w.label], 1.0 if w.error else 0.0) for w in k.watches],
        ),
        _counter(
            "actions_total",
            "Actions by market, kind and outcome (sent, failed, skipped, dry_run).",
            ["market", "action", "outcome"],
            [([mk, a, o], n) for (mk, a, o), n in sorted(k.counts.items())],
        ),
        _counter(
            "gas_spent_wei_total", "Gas paid by the keeper's mined transactions (wei).", [], [([], k.gas_spent_wei)]
        ),
    ]
    endpoints = getattr(k.chain.w3.provider, "stats", None)
    rows: list[dict[str, Any]] = (
        endpoints()
        if endpoints is not None
        else [
            {
                "endpoint": "default",
                "requests": k.chain.requests,
                "errors": k.chain.errors,
                "latency_ms": k.chain.latency_s * 1e3,
            }
        ]
    )
    out += [
        _counter(
            "rpc_requests_total",
            "JSON-RPC requests by endpoint.",
            ["endpoint"],
            [([r["endpoint"]], r["requests"]) for r in rows],
        ),
        _counter(
            "rpc_errors_total",
            "Failed JSON-RPC requests by endpoint.",
            ["endpoint"],
            [([r["endpoint"]], r["errors"]) for r in rows],
        ),
        _gauge(
            "rpc_latency_seconds",
            "Moving average round trip by endpoint.",
            ["endpoint"],
            [([r["endpoint"]], r["latency_ms"] / 1e3) for r in rows],
        ),
        _gauge("last_block", "Last block processed.", [], [([], k.last_block or 0)]),
        _gauge("block_lag", "Node head minus last block processed (-1: head unknown).", [], [([], info["lag_blocks"])]),
        _gauge(
            "last_block_age_seconds",
            "Seconds since a block was last processed.",
            [],
            [([], info["last_block_age_s"] if math.isfinite(info["last_block_age_s"]) else math.inf)],
        ),
        _gauge("loop_duration_seconds", "Time the last block took to process.", [], [([], k.last_step_s)]),
        _gauge(
            "in_flight",
            "Positions with a transaction in flight (-1: the journal cannot be read).",
            [],
            [([], _in_flight(k))],
        ),
        _counter("block_failures_total", "Attempts at a block that failed (retried).", [], [([], k.failures)]),
        _counter(
            "execution_errors_total",
            "Execution batches that met an unexpected exception (their actions are decided again).",
            [],
            [([], k.internal_errors)],
        ),
        _gauge(
            "journal_writable",
            "0 while the journal cannot be written (nothing is sent).",
            [],
            [([], 0.0 if k.storage_fault else 1.0)],
        ),
        _gauge(
            "cannot_protect",
            "Protected positions the wallet cannot protect now.",
            ["market"],
            [([w.label], float(len(w.cannot_protect))) for w in k.watches],
        ),
    ]
    if alerts is not None:
        out.append(
            _counter(
                "alerts_total",
                "Alert notifications by result.",
                ["result"],
                [([r], getattr(alerts, r)) for r in ("sent", "suppressed", "failed")],
            )
        )
    return out


def _in_flight(k: Keeper) -> int:
    try:
        return len(k.executor.journal.in_flight())
    except StorageError:
        return -1
