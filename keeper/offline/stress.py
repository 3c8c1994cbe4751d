"""`keeper stress`: every position's health under a grid of price shocks (each asset alone, then
all together), the worst scenario, the move of each asset that liquidates it, and correlated
Student-t Monte Carlo over a horizon; a table and a PNG heatmap. Positions come from the chain
(the configured Aave v3 market: protected accounts and the riskiest others) or from a backtest
scenario file."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from keeper.errors import ConfigError
from keeper.risk.predict import (
    SECONDS_PER_YEAR,
    health_under,
    liquidating_shock,
    monte_carlo,
    shock_grid,
)

SHOCKS = np.array([-0.6, -0.5, -0.4, -0.3, -0.2, -0.1, -0.05, 0.1, 0.3])


@dataclass(frozen=True)
class Exposures:
    names: list[str]
    symbols: list[str]
    coll_lt: np.ndarray
    """(P, A) collateral value x liquidation threshold."""
    debt: np.ndarray
    """(P, A) debt value."""


@dataclass(frozen=True)
class StressResult:
    labels: list[str]
    health: np.ndarray
    """(S, P) health under each scenario."""
    now: np.ndarray
    liquidating: np.ndarray
    """(P, A) move of each asset alone that brings health to 1."""
    p_liquidation: np.ndarray
    q01: np.ndarray


def covariance(symbols: list[str], vols: dict[str, float], default_vol: float, corr: float) -> np.ndarray:
    """Covariance rate per second from annualised volatilities and one pairwise correlation
    (a stable asset gets vol 0 by `--vol USDC=0`)."""
    v = np.array([vols.get(s, default_vol) for s in symbols]) / math.sqrt(SECONDS_PER_YEAR)
    c = np.full((len(v), len(v)), corr)
    np.fill_diagonal(c, 1.0)
    return np.asarray(np.outer(v, v) * c)


def run(
    e: Exposures, cov: np.ndarray, horizon_s: float, *, df: float | None, paths: int, seed: int = 0
) -> StressResult:
    grid = shock_grid(len(e.symbols), SHOCKS)
    labels = [f"{s} {x:+.0%}" for s in e.symbols for x in SHOCKS]
    if len(e.symbols) > 1:
        labels += [f"all {x:+.0%}" for x in SHOCKS]
    hf = health_under(e.coll_lt, e.debt, grid)
    now = health_under(e.coll_lt, e.debt, np.ones((1, len(e.symbols))))[0]
    p, q01 = monte_carlo(e.coll_lt, e.debt, cov, horizon_s, paths=paths, df=df, rng=np.random.default_rng(seed))
    return StressResult(labels, hf, now, liquidating_shock(e.coll_lt, e.debt), p, q01)


def table(e: Exposures, r: StressResult, horizon_s: float) -> str:
    moves = " ".join(f"{'liq. ' + s:>11}" for s in e.symbols)
    head = f"{'position':<44} {'HF':>7} {'worst scenario':>15} {'HF there':>8} {moves} "
    head += f"{'P(liq ' + _dur(horizon_s) + ')':>12} {'HF 1% q':>8}"
    lines = [head, "-" * len(head)]
    for k, name in enumerate(e.names):
        w = int(np.argmin(r.health[:, k]))
        liq = " ".join(f"{x:>+11.1%}" if np.isfinite(x) else f"{'-':>11}" for x in r.liquidating[k])
        lines.append(
            f"{name:<44} {r.now[k]:>7.3f} {r.labels[w]:>15} {r.health[w, k]:>8.3f} {liq} "
            f"{r.p_liquidation[k]:>12.2e} {r.q01[k]:>8.3f}"
        )
    return "\n".join(lines)


def _dur(s: float) -> str:
    return f"{s / 3600:g}h" if s >= 3600 else f"{s / 60:g}m"


def heatmap(e: Exposures, r: StressResult, out: str | Path) -> None:
    """PNG: positions x scenarios, colour = health (red at or below 1), the value in each cell."""
    from keeper.offline.charts import pyplot

    plt = pyplot()
    data = np.minimum(r.health.T, 3.0)
    fig, ax = plt.subplots(figsize=(max(8, 0.55 * len(r.labels)), 1.2 + 0.45 * len(e.names)))
    im = ax.imshow(data, cmap="RdYlGn", vmin=0.6, vmax=1.8, aspect="auto")
    ax.set_xticks(range(len(r.labels)), r.labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(e.names)), [n[:14] for n in e.names], fontsize=8)
    for (i, j), v in np.ndenumerate(data):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="black" if v > 1 else "white")
    fig.colorbar(im, ax=ax, label="health factor")
    ax.set_title("health under price shocks (below 1: liquidatable)")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def from_scenario(path: str, prices: dict[str, float] | None = None) -> Exposures:
    """The positions of a backtest file at the assets' prices (`prices`, e.g. a CSV's first row,
    else each [[asset]]'s fixed `price`)."""
    from keeper.offline import backtest

    sc = backtest.load_scenario(path)
    px = np.array([(prices or {}).get(a.symbol, a.price) for a in sc.assets])
    if np.any(px <= 0):
        missing = [a.symbol for a, p in zip(sc.assets, px, strict=True) if p <= 0]
        raise ConfigError(f"no price for {', '.join(missing)}: pass --prices CSV or set `price` in [[asset]]")
    market = backtest._market(sc, px)
    rows = [backtest.exposures(backtest._position(sc, spec)[0], market) for spec in sc.positions]
    return Exposures(
        [p.name for p in sc.positions],
        [a.symbol for a in sc.assets],
        np.array([c for c, _ in rows]),
        np.array([d for _, d in rows]),
    )


def from_keeper(keeper: Any, top: int) -> list[Exposures]:
    """Per market with per-column value exposures (Aave v3) of a started keeper: its protected
    accounts and the `top` riskiest others."""
    out = []
    for w in keeper.watches:
        if not w.adapter.capabilities.predictive_trigger or w.book is None or not w.block:
            continue
        snap = w.book.snapshot()
        order = np.argsort(snap.health.health_factor)
        users = list(dict.fromkeys([*w.adapter.protected_accounts(), *(snap.users[k] for k in order[:top])]))
        users = [u for u in users if u in w.book.positions]
        rows = []
        for u in users:
            values = w.adapter.value_exposures(w.book.positions[u])
            if values is not None:
                rows.append((np.array(values[0]) / w.price_scale, np.array(values[1]) / w.price_scale))
        if rows:
            out.append(
                Exposures(users, list(w.symbols), np.array([c for c, _ in rows]), np.array([d for _, d in rows]))
            )
    return out
