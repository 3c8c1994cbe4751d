"""The book: every monitored account as rows of numpy arrays, plus its exact raw balances.

Rows are scaled balances (accounts x assets) that count for health: collateral only where the
account has it enabled as collateral, debt only where it borrows (zero elsewhere). Market
columns (prices, indices, thresholds) arrive whole each block; an account's own event re-reads
that one row.

Health is kept between blocks and recomputed incrementally: only rows upserted since the last
snapshot, and rows exposed to a column that changed (an index from each asset, hence each
oracle, to the accounts holding it). A reserve index that accrues by less than
`INDEX_TOLERANCE` (relative) since its column was last recomputed does not count as a change;
screening widens its threshold by `SCREEN_MARGIN` to cover it, and decisions are exact anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from keeper.risk.engine import F64, Engine, Health, distance_to_liquidation

INDEX_TOLERANCE = 1e-6
"""Relative accrual of a reserve index that does not, alone, trigger a recompute of its column."""
SCREEN_MARGIN = 4 * INDEX_TOLERANCE
"""Bound on the relative error that tolerance leaves in a cached health factor (collateral and debt
indices, each up to twice the tolerance away from the state the row was computed at)."""
INDEX_FIELDS = frozenset({"income_ray", "debt_index_ray"})
FULL_ABOVE = 0.25
"""Above this share of stale rows, one full pass is cheaper than gathering and scattering."""


class Row(Protocol):
    """A protocol's position as the book stores it."""

    @property
    def user(self) -> str: ...

    def rows(self) -> tuple[Sequence[float], Sequence[float]]: ...


class Snapshot:
    """Risk of every row at one block. Health is computed at once (the per-block path);
    liquidation prices and distances only when asked for (`keeper status`). Its arrays are the
    book's own, updated in place by the next snapshot: read one before taking the next."""

    def __init__(
        self, users: tuple[str, ...], health: Health, coll: np.ndarray, debt: np.ndarray, m: Any, engine: Engine
    ):
        self.users = users
        self.health = health
        self._coll, self._debt, self._m, self._engine = coll, debt, m, engine

    @cached_property
    def liquidation_price(self) -> np.ndarray:
        """(P, A) base units per token, NaN where not applicable."""
        return self._engine.liquidation_prices(self._coll, self._debt, self._m)

    def nearest_liquidation(self, row: int) -> tuple[int, float] | None:
        """(column, liquidation price) of the asset whose smallest move liquidates the account
        (others fixed), or None when no single asset can."""
        if not np.isfinite(self.distance[row]):
            return None
        with np.errstate(invalid="ignore", divide="ignore"):
            moves = np.abs(self.liquidation_price[row] / self._m.price_base - 1)
        if not np.isfinite(moves).any():  # below 1 already, and no single price move changes that
            return None
        column = int(np.nanargmin(moves))
        return column, float(self.liquidation_price[row][column])

    @cached_property
    def distance(self) -> np.ndarray:
        """(P,) smallest single-asset relative move to liquidation."""
        return distance_to_liquidation(self.liquidation_price, self._m.price_base, self.health.health_factor)


class Book:
    def __init__(self, n_assets: int, engine: Engine, capacity: int = 64, workers: int = 2):
        self.n_assets = n_assets
        self.engine = engine
        self.workers = workers
        """Threads for the health recompute of large books (numpy releases the GIL)."""
        self.users: list[str] = []
        self.row: dict[str, int] = {}
        self.positions: dict[str, Any] = {}
        self.scaled_coll = np.zeros((capacity, n_assets))
        self.scaled_debt = np.zeros((capacity, n_assets))
        self.exposed = np.zeros((capacity, n_assets), dtype=bool)
        """The oracle-to-accounts index: row k holds (collateral or debt in) column j."""
        self._market_arrays: Any = None
        """The engine's per-column arrays (MarketArrays for lending, PerpArrays for perps)."""
        self._basis: Any = None
        """Per column, the market values the cached health of its rows was computed at."""
        self._health: Health | None = None
        self._dirty: set[int] = set()
        self._users_t: tuple[str, ...] = ()
        self.recomputed = 0
        """Rows recomputed by the last snapshot (for the benchmarks and tests)."""

    def __len__(self) -> int:
        return len(self.users)

    def _grow(self) -> None:
        cap = self.scaled_coll.shape[0] * 2
        for name in ("scaled_coll", "scaled_debt", "exposed"):
            old = getattr(self, name)
            new = np.zeros((cap, self.n_assets), dtype=old.dtype)
            new[: old.shape[0]] = old
            setattr(self, name, new)

    def upsert(self, positions: Sequence[Row]) -> None:
        for p in positions:
            k = self.row.get(p.user)
            if k is None:
                if len(self.users) == self.scaled_coll.shape[0]:
                    self._grow()
                k = len(self.users)
                self.users.append(p.user)
                self.row[p.user] = k
            self.positions[p.user] = p
            self.scaled_coll[k], self.scaled_debt[k] = p.rows()
            self.exposed[k] = (self.scaled_coll[k] != 0) | (self.scaled_debt[k] != 0)
            self._dirty.add(k)

    def set_market(self, arrays: Any) -> None:
        self._market_arrays = arrays

    @property
    def prices(self) -> F64:
        if self._market_arrays is None:
            raise RuntimeError("the book has no market state yet")
        return self._market_arrays.price_base

    def changed_columns(self) -> np.ndarray | None:
        """(A,) bool: columns whose market values moved since their rows were last computed;
        None when everything must be recomputed (first snapshot, or a market-wide scalar moved)."""
        m, b = self._market_arrays, self._basis
        if b is None:
            return None
        changed = np.zeros(self.n_assets, dtype=bool)
        for f in fields(m):
            new, old = getattr(m, f.name), getattr(b, f.name)
            if np.ndim(new) == 0:
                if new != old:
                    return None
            elif f.name in INDEX_FIELDS:
                with np.errstate(divide="ignore", invalid="ignore"):
                    changed |= ~(np.abs(new / old - 1.0) <= INDEX_TOLERANCE)
            else:
                changed |= new != old
        return changed

    def _rebase(self, changed: np.ndarray | None) -> None:
        """The new basis: the current values for recomputed columns, the old ones elsewhere."""
        m = self._market_arrays
        if changed is None or self._basis is None:
            self._basis = m
            return
        values = {}
        for f in fields(m):
            new, old = getattr(m, f.name), getattr(self._basis, f.name)
            values[f.name] = new if np.ndim(new) == 0 else np.where(changed, new, old)
        self._basis = type(m)(**values)

    def snapshot(self) -> Snapshot:
        if self._market_arrays is None:
            raise RuntimeError("the book has no market state yet")
        n = len(self.users)
        coll, debt = self.scaled_coll[:n], self.scaled_debt[:n]
        changed = self.changed_columns()
        cached = self._health
        stale: np.ndarray | None = None
        if changed is not None and cached is not None and len(cached.health_factor) <= n:
            rows: np.ndarray = np.asarray(self.exposed[:n][:, changed].any(axis=1))
            if self._dirty:
                rows[list(self._dirty)] = True
            if rows.sum() <= FULL_ABOVE * n:
                stale = np.flatnonzero(rows)
        if stale is None:
            h = self.engine.health(coll, debt, self._market_arrays, workers=self.workers if n >= 100_000 else 1)
            self.recomputed = n
        else:
            assert cached is not None
            # updated in place (a snapshot is read before the next one); rows added since are dirty
            h = cached if len(cached.health_factor) == n else Health(*(_grown(a, n) for a in _parts(cached)))
            if len(stale):
                sub = self.engine.health(coll[stale], debt[stale], self._market_arrays)
                for whole, part in zip(_parts(h), _parts(sub), strict=True):
                    whole[stale] = part
            self.recomputed = len(stale)
        self._health = h
        self._dirty.clear()
        self._rebase(changed if stale is not None else None)
        if len(self._users_t) != n:  # rows are only ever appended
            self._users_t = tuple(self.users)
        return Snapshot(self._users_t, h, coll, debt, self._market_arrays, self.engine)


def _parts(h: Health) -> tuple[F64, F64, F64, F64]:
    return h.health_factor, h.collateral_base, h.debt_base, h.avg_liquidation_threshold_bps


def _grown(a: F64, n: int) -> F64:
    out = np.full(n, np.nan)
    out[: len(a)] = a
    return out
