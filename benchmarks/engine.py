"""Engine benchmark: full health-factor recompute for N accounts x A assets.

numpy (keeper.risk.health.health, what the keeper runs every block) against a plain-Python loop
over the same data, written the way a per-account bot computes Aave's health factor. Prints a
table; the ratio is what to compare across machines.

    .venv/bin/python -m benchmarks.engine [--accounts 1000000] [--assets 8] [--repeat 5]
"""

from __future__ import annotations

import argparse
import math
import time
import tracemalloc
from dataclasses import replace

import numpy as np

from keeper.book import Book
from keeper.protocols.aave_v3.engine import ENGINE, health
from keeper.risk.engine import MarketArrays


def make_data(n: int, a: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, MarketArrays]:
    rng = np.random.default_rng(seed)
    unit = 10.0 ** rng.choice([6, 8, 18], size=a)
    price = rng.uniform(1e7, 1e13, size=a).round()
    market = MarketArrays(
        price_base=price,
        unit=unit,
        income_ray=rng.uniform(1.0, 1.2, size=a) * 1e27,
        debt_index_ray=rng.uniform(1.0, 1.3, size=a) * 1e27,
        liquidation_threshold_bps=rng.choice([0, 7500, 7800, 8250, 8600], size=a).astype(float),
    )
    # how often each asset is held, skewed as on a real market (a few majors, a long tail)
    held = np.array([0.6, 0.45, 0.3, 0.15, 0.08, 0.05, 0.03, 0.02] * (a // 8 + 1))[:a]
    usd = rng.lognormal(8, 1.5, size=(n, a)) * (rng.random((n, a)) < held * 0.6)
    scaled_coll = np.floor(usd * 1e8 / price * unit)
    debt_usd = rng.lognormal(7.5, 1.5, size=(n, a)) * (rng.random((n, a)) < held * 0.4)
    scaled_debt = np.floor(debt_usd * 1e8 / price * unit)
    return scaled_coll, scaled_debt, scaled_coll > 0, scaled_debt > 0, market


def python_loop(scaled_coll, scaled_debt, coll_on, borrow_on, m: MarketArrays) -> list[float]:
    """Per-account loop, Aave's formula step by step, on Python floats (lists, as such bots hold state)."""
    sc, sd = scaled_coll.tolist(), scaled_debt.tolist()
    con, bon = coll_on.tolist(), borrow_on.tolist()
    price, unit = m.price_base.tolist(), m.unit.tolist()
    income, index, lt = m.income_ray.tolist(), m.debt_index_ray.tolist(), m.liquidation_threshold_bps.tolist()
    out = []
    for p in range(len(sc)):
        total_c = total_d = weighted = 0.0
        row_c, row_d, rc, rb = sc[p], sd[p], con[p], bon[p]
        for i in range(len(price)):
            if rc[i] and lt[i] > 0:
                v = math.floor(math.floor(row_c[i] * (income[i] / 1e27) + 0.5) * price[i] / unit[i])
                total_c += v
                weighted += v * lt[i]
            if rb[i]:
                total_d += math.floor(math.floor(row_d[i] * (index[i] / 1e27) + 0.5) * price[i] / unit[i])
        avg_lt = math.floor(weighted / total_c + 1e-9) if total_c else 0.0
        out.append(total_c * avg_lt / 1e4 / total_d if total_d else math.inf)
    return out


def book_rows(coll: np.ndarray, debt: np.ndarray, m: MarketArrays, repeat: int) -> list[tuple[str, int, float]]:
    """Book.snapshot() per kind of block, on the same data (the keeper's per-block risk step)."""
    n, a = coll.shape
    book = Book(a, engine=ENGINE, capacity=1)
    book.scaled_coll, book.scaled_debt = coll, debt
    book.exposed = (coll != 0) | (debt != 0)
    book.users = [f"u{k}" for k in range(n)]
    book.set_market(m)
    book.snapshot()
    share = book.exposed.mean(axis=0)
    j = int(np.argmin(share))  # the least held asset: an oracle update on a niche collateral
    k = int(np.argmax(share))  # the most held one
    out = []
    for name, make in (
        ("idle block (indices accrue < tolerance)", lambda s: replace(m, debt_index_ray=m.debt_index_ray * (1 + s))),
        (f"oracle update, asset held by {share[j]:.0%} of rows", lambda s: _price(m, j, s)),
        (f"oracle update, asset held by {share[k]:.0%} of rows", lambda s: _price(m, k, s)),
    ):
        times = []
        for r in range(repeat):
            book.set_market(make((r + 1) * 1e-8))
            t = time.perf_counter()
            book.snapshot()
            times.append(time.perf_counter() - t)
        out.append((name, book.recomputed, min(times) * 1e3))
    return out


def _price(m: MarketArrays, j: int, step: float) -> MarketArrays:
    price = m.price_base.copy()
    price[j] *= 1 - 1000 * step
    return replace(m, price_base=price)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--accounts", type=int, default=1_000_000)
    ap.add_argument("--assets", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    data = make_data(args.accounts, args.assets)
    sc, sd, con, bon, market = data
    coll, debt = sc * con, sd * bon  # the book stores balances that count, zero elsewhere

    def timed(workers: int) -> tuple[float, float]:
        health(coll, debt, market, workers=workers)  # warm-up
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            health(coll, debt, market, workers=workers)
            times.append(time.perf_counter() - t)
        return min(times) * 1e3, float(np.median(times)) * 1e3

    one_ms, one_med = timed(1)
    two_ms, two_med = timed(2)
    h = health(coll, debt, market)

    tracemalloc.start()
    health(coll, debt, market)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    state_bytes = coll.nbytes + debt.nbytes

    incremental = book_rows(coll, debt, market, args.repeat)

    t = time.perf_counter()
    ref = python_loop(coll, debt, con, bon, market)
    loop_ms = (time.perf_counter() - t) * 1e3
    ref_arr = np.array(ref)
    finite = np.isfinite(ref_arr)
    assert np.array_equal(finite, np.isfinite(h.health_factor))
    assert np.allclose(h.health_factor[finite], ref_arr[finite], rtol=1e-12), "numpy and the loop disagree"

    n = args.accounts
    print(f"engine: health factor of {n:,} accounts x {args.assets} assets (same data, results equal)")
    print(f"{'implementation':<32} {'best (ms)':>10} {'median (ms)':>12} {'ns/account':>11} {'speed-up':>9}")
    rows = [
        ("python loop (baseline)", loop_ms, loop_ms),
        ("numpy, 1 thread", one_ms, one_med),
        ("numpy, 2 threads (keeper default)", two_ms, two_med),
    ]
    for name, best, med in rows:
        print(f"{name:<32} {best:>10,.1f} {med:>12,.1f} {best * 1e6 / n:>11,.1f} {loop_ms / best:>8.1f}x")
    print()
    print("the book per block (Book.snapshot: only rows exposed to what changed are recomputed)")
    print(f"{'block':<44} {'rows recomputed':>16} {'best (ms)':>10} {'vs full pass':>13}")
    for name, recomputed, best in incremental:
        print(f"{name:<44} {recomputed:>16,} {best:>10,.2f} {two_ms / best:>12.1f}x")
    print(
        f"state held per account: {state_bytes / n:,.0f} B (scaled collateral + debt); "
        f"extra working memory of one recompute: {peak / n:,.0f} B per account"
    )


if __name__ == "__main__":
    main()
