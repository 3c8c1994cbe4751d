"""The incremental book against a full recompute: after every change (a price, an index that
accrues, an account's own event, a new account) its cached health equals the engine's on the
whole book, and it recomputed only the rows the change can reach."""

from dataclasses import dataclass, replace

import numpy as np

from keeper.book import FULL_ABOVE, INDEX_TOLERANCE, SCREEN_MARGIN, Book
from keeper.protocols.aave_v3.engine import ENGINE, health
from keeper.risk.engine import MarketArrays


@dataclass(frozen=True)
class Row:
    user: str
    coll: tuple[float, ...]
    debt: tuple[float, ...]

    def rows(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return self.coll, self.debt


def random_rows(rng: np.random.Generator, n: int, a: int, start: int = 0) -> list[Row]:
    out = []
    for k in range(start, start + n):
        held = np.linspace(0.5, 0.02, a)  # majors and a tail, as on a real market
        coll = np.where(rng.random(a) < held * 0.6, np.floor(rng.lognormal(20, 2, a)), 0.0)
        debt = np.where(rng.random(a) < held * 0.4, np.floor(rng.lognormal(19, 2, a)), 0.0)
        out.append(Row(f"u{k}", tuple(coll), tuple(debt)))
    return out


def check(book: Book, coll: np.ndarray, debt: np.ndarray, m: MarketArrays, rtol: float) -> None:
    snap = book.snapshot()
    full = health(coll, debt, m)
    finite = np.isfinite(full.health_factor)
    assert np.array_equal(finite, np.isfinite(snap.health.health_factor))
    np.testing.assert_allclose(snap.health.health_factor[finite], full.health_factor[finite], rtol=rtol, atol=0)


def test_incremental_recompute_matches_full_and_touches_only_exposed_rows() -> None:
    rng = np.random.default_rng(7)
    n, a = 3_000, 6
    m = MarketArrays(
        price_base=rng.uniform(1e7, 1e12, a).round(),
        unit=10.0 ** rng.choice([6, 8, 18], a),
        income_ray=rng.uniform(1.0, 1.1, a) * 1e27,
        debt_index_ray=rng.uniform(1.0, 1.2, a) * 1e27,
        liquidation_threshold_bps=rng.choice([0.0, 7800.0, 8300.0], a),
    )
    book = Book(a, engine=ENGINE, capacity=16)  # grows while it fills
    rows = random_rows(rng, n, a)
    book.upsert(rows)
    book.set_market(m)
    book.snapshot()
    assert book.recomputed == n

    def arrays() -> tuple[np.ndarray, np.ndarray]:
        return book.scaled_coll[: len(book)].copy(), book.scaled_debt[: len(book)].copy()

    # nothing changed: nothing recomputed
    book.set_market(m)
    check(book, *arrays(), m, 0)
    assert book.recomputed == 0

    partial = 0
    for step in range(30):
        j = int(rng.integers(a))
        kind = step % 5
        if kind == 0:  # an oracle answer: one column, exactly the rows exposed to it
            m = replace(m, price_base=np.where(np.arange(a) == j, m.price_base * rng.uniform(0.7, 1.1), m.price_base))
            book.set_market(m)
            exposed = int(((book.scaled_coll[:n, j] != 0) | (book.scaled_debt[:n, j] != 0)).sum())
            check(book, *arrays(), m, 0)
            assert book.recomputed == (exposed if exposed <= FULL_ABOVE * n else n)
            partial += exposed <= FULL_ABOVE * n
        elif kind == 1:  # a block of interest: below the tolerance, no recompute
            m = replace(m, debt_index_ray=m.debt_index_ray * (1 + INDEX_TOLERANCE / 10))
            book.set_market(m)
            check(book, *arrays(), m, SCREEN_MARGIN)
            assert book.recomputed == 0
        elif kind == 2:  # a lot of interest: the columns whose index moved beyond it
            m = replace(m, income_ray=m.income_ray * (1 + 10 * INDEX_TOLERANCE))
            book.set_market(m)
            check(book, *arrays(), m, SCREEN_MARGIN)
        elif kind == 3:  # accounts' own events: those rows only
            changed = [replace(r, debt=tuple(d * 1.5 for d in r.debt)) for r in rows[step : step + 7]]
            book.upsert(changed)
            book.set_market(m)
            check(book, *arrays(), m, SCREEN_MARGIN)
            assert book.recomputed == 7
        else:  # new accounts discovered
            book.upsert(random_rows(rng, 5, a, start=len(book)))
            n = len(book)
            book.set_market(m)
            check(book, *arrays(), m, SCREEN_MARGIN)
            assert book.recomputed == 5
    assert partial >= 2  # the index did the work, not the full-pass fallback


def test_threshold_change_and_many_stale_rows_fall_back_to_a_full_pass() -> None:
    rng = np.random.default_rng(3)
    a = 3
    m = MarketArrays(
        np.array([3e11, 1e8, 6e12]),
        np.array([1e18, 1e6, 1e8]),
        np.full(a, 1e27),
        np.full(a, 1e27),
        np.array([8300.0, 7800.0, 7000.0]),
    )
    book = Book(a, engine=ENGINE)
    book.upsert(random_rows(rng, 500, a))
    book.set_market(m)
    book.snapshot()
    m = replace(m, liquidation_threshold_bps=np.array([8000.0, 7800.0, 7000.0]), unit=np.array([1e18, 1e6, 1e9]))
    book.set_market(m)
    snap = book.snapshot()
    stale = (book.exposed[:500, 0] | book.exposed[:500, 2]).sum()
    assert stale > FULL_ABOVE * 500 and book.recomputed == len(book)  # most rows exposed: one full pass
    full = health(book.scaled_coll[:500], book.scaled_debt[:500], m)
    np.testing.assert_array_equal(snap.health.health_factor, full.health_factor)
