"""The book: every monitored account as rows of numpy arrays, plus its exact raw balances.

Rows are scaled balances (accounts x assets); market columns (prices, indices, thresholds) are
replaced whole each block. An account's own event re-reads that one row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keeper.protocols.aave_v3 import Market, Position
from keeper.risk.health import Health, MarketArrays, distance_to_liquidation, health, liquidation_prices


@dataclass(frozen=True)
class Snapshot:
    """Risk of every row at one block."""

    users: tuple[str, ...]
    health: Health
    liquidation_price: np.ndarray
    """(P, A) base units per token, NaN where not applicable."""
    distance: np.ndarray
    """(P,) smallest single-asset relative move to liquidation."""


class Book:
    def __init__(self, n_assets: int, capacity: int = 64):
        self.n_assets = n_assets
        self.users: list[str] = []
        self.row: dict[str, int] = {}
        self.positions: dict[str, Position] = {}
        self.scaled_coll = np.zeros((capacity, n_assets))
        self.scaled_debt = np.zeros((capacity, n_assets))
        self.coll_on = np.zeros((capacity, n_assets), dtype=bool)
        self.borrow_on = np.zeros((capacity, n_assets), dtype=bool)
        self.market: Market | None = None
        self._market_arrays: MarketArrays | None = None

    def __len__(self) -> int:
        return len(self.users)

    def _grow(self) -> None:
        cap = self.scaled_coll.shape[0] * 2
        for name in ("scaled_coll", "scaled_debt", "coll_on", "borrow_on"):
            old = getattr(self, name)
            new = np.zeros((cap, self.n_assets), dtype=old.dtype)
            new[: old.shape[0]] = old
            setattr(self, name, new)

    def upsert(self, positions: list[Position]) -> None:
        for p in positions:
            k = self.row.get(p.user)
            if k is None:
                if len(self.users) == self.scaled_coll.shape[0]:
                    self._grow()
                k = len(self.users)
                self.users.append(p.user)
                self.row[p.user] = k
            self.positions[p.user] = p
            self.scaled_coll[k] = [float(x) for x in p.scaled_collateral]
            self.scaled_debt[k] = [float(x) for x in p.scaled_debt]
            self.coll_on[k] = [p.is_collateral(i) for i in range(self.n_assets)]
            self.borrow_on[k] = [p.is_borrowing(i) for i in range(self.n_assets)]

    def set_market(self, market: Market) -> None:
        self.market = market
        self._market_arrays = MarketArrays(
            price_base=np.array(market.prices_base, dtype=float),
            unit=np.array([c.unit for c in market.configs], dtype=float),
            income_ray=np.array(market.income_ray, dtype=float),
            debt_index_ray=np.array(market.debt_index_ray, dtype=float),
            liquidation_threshold_bps=np.array([c.liquidation_threshold_bps for c in market.configs], dtype=float),
        )

    def snapshot(self) -> Snapshot:
        if self._market_arrays is None:
            raise RuntimeError("the book has no market state yet")
        n = len(self.users)
        args = (self.scaled_coll[:n], self.scaled_debt[:n], self.coll_on[:n], self.borrow_on[:n], self._market_arrays)
        h = health(*args)
        liq = liquidation_prices(*args)
        return Snapshot(
            tuple(self.users), h, liq, distance_to_liquidation(liq, self._market_arrays.price_base, h.health_factor)
        )
