"""The book: every monitored account as rows of numpy arrays, plus its exact raw balances.

Rows are scaled balances (accounts x assets) that count for health: collateral only where the
account has it enabled as collateral, debt only where it borrows (zero elsewhere). Market
columns (prices, indices, thresholds) are replaced whole each block. An account's own event
re-reads that one row.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from keeper.risk.health import AAVE, F64, Engine, Health, distance_to_liquidation


class Row(Protocol):
    """A protocol's position as the book stores it."""

    @property
    def user(self) -> str: ...

    def rows(self) -> tuple[Sequence[float], Sequence[float]]: ...


class Snapshot:
    """Risk of every row at one block. Health is computed at once (the per-block path);
    liquidation prices and distances only when asked for (`keeper status`), from views of the
    book's rows: ask before the book is updated again."""

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

    @cached_property
    def distance(self) -> np.ndarray:
        """(P,) smallest single-asset relative move to liquidation."""
        return distance_to_liquidation(self.liquidation_price, self._m.price_base, self.health.health_factor)


class Book:
    def __init__(self, n_assets: int, capacity: int = 64, workers: int = 2, engine: Engine = AAVE):
        self.n_assets = n_assets
        self.engine = engine
        self.workers = workers
        """Threads for the health recompute of large books (numpy releases the GIL)."""
        self.users: list[str] = []
        self.row: dict[str, int] = {}
        self.positions: dict[str, Any] = {}
        self.scaled_coll = np.zeros((capacity, n_assets))
        self.scaled_debt = np.zeros((capacity, n_assets))
        self._market_arrays: Any = None
        """The engine's per-column arrays (MarketArrays for lending, PerpArrays for perps)."""

    def __len__(self) -> int:
        return len(self.users)

    def _grow(self) -> None:
        cap = self.scaled_coll.shape[0] * 2
        for name in ("scaled_coll", "scaled_debt"):
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

    def set_market(self, arrays: Any) -> None:
        self._market_arrays = arrays

    @property
    def prices(self) -> F64:
        if self._market_arrays is None:
            raise RuntimeError("the book has no market state yet")
        return self._market_arrays.price_base

    def snapshot(self) -> Snapshot:
        if self._market_arrays is None:
            raise RuntimeError("the book has no market state yet")
        n = len(self.users)
        coll, debt = self.scaled_coll[:n], self.scaled_debt[:n]
        h = self.engine.health(coll, debt, self._market_arrays, workers=self.workers if n >= 100_000 else 1)
        return Snapshot(tuple(self.users), h, coll, debt, self._market_arrays, self.engine)
