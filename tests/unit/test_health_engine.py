"""The numpy engine against the exact integer replica of Aave's math."""

import random

import numpy as np

from keeper.book import Book
from keeper.protocols.aave_v3.engine import ENGINE
from keeper.protocols.aave_v3.math import (
    MAX_UINT256,
    RAY,
    WAD,
    Market,
    Position,
    Reserve,
    ReserveConfig,
    account_data,
)

CFGS = (
    ReserveConfig(8050, 8300, 10500, 18, True, False, True, False, 1500, 1000),
    ReserveConfig(7300, 7800, 10500, 8, True, False, True, False, 2000, 1000),
    ReserveConfig(7500, 7800, 10450, 6, True, False, True, False, 1000, 1000),
    ReserveConfig(0, 0, 0, 18, True, False, True, False, 1000, 0),  # borrow-only asset (LT 0)
)


def random_state(rng: random.Random, n: int) -> tuple[Market, list[Position]]:
    reserves = tuple(Reserve(f"0x{i + 1:040x}", i, f"0x{i + 101:040x}", f"0x{i + 201:040x}", f"T{i}") for i in range(4))
    market = Market(
        1,
        0,
        reserves,
        CFGS,
        tuple(rng.randint(10**6, 10**13) for _ in range(4)),
        tuple(RAY + rng.randint(0, RAY // 5) for _ in range(4)),
        tuple(RAY + rng.randint(0, RAY // 3) for _ in range(4)),
    )
    positions = []
    for k in range(n):
        cfg, coll, debt = 0, [0] * 4, [0] * 4
        for i, c in enumerate(CFGS):
            if rng.random() < 0.6:
                coll[i] = rng.randint(1, 10**6) * c.unit // rng.choice([1, 10, 1000])
                if rng.random() < 0.9:
                    cfg |= 1 << (2 * i + 1)
            if rng.random() < 0.4:
                debt[i] = rng.randint(1, 10**5) * c.unit // rng.choice([1, 100])
                cfg |= 1 << (2 * i)
        positions.append(Position(f"0x{k + 1000:040x}", 1, cfg, 0, tuple(coll), tuple(debt)))
    return market, positions


def random_book(seed: int, n: int, capacity: int = 64) -> tuple[Market, list[Position], Book]:
    market, positions = random_state(random.Random(seed), n)
    book = Book(4, engine=ENGINE, capacity=capacity)
    book.upsert(positions)
    book.set_market(market.arrays())
    return market, positions, book


def test_engine_matches_integer_math_to_1e9():
    market, positions, book = random_book(3, 2000)
    snap = book.snapshot()
    for k, p in enumerate(positions):
        exact = account_data(p, market).health_factor_wad
        got = snap.health.health_factor[k]
        if exact == MAX_UINT256:
            assert np.isinf(got)
            continue
        assert abs(got - exact / WAD) <= 1e-9 * exact / WAD, (k, got, exact / WAD)
        assert (got < 1.0) == (exact < WAD)


def test_liquidation_price_brings_health_to_one():
    market, positions, book = random_book(5, 300)
    snap = book.snapshot()
    checked = 0
    for k in range(len(positions)):
        for a in range(4):
            p_star = snap.liquidation_price[k, a]
            if np.isnan(p_star) or p_star < 1 or p_star > 1e16:
                continue
            prices = list(market.prices_base)
            prices[a] = round(p_star)
            moved = Market(
                1, 0, market.reserves, market.configs, tuple(prices), market.income_ray, market.debt_index_ray
            )
            hf = account_data(positions[k], moved).health_factor_wad / WAD
            assert abs(hf - 1) < 2e-3, (k, a, hf)  # avg-LT flooring and price rounding
            checked += 1
    assert checked > 50


def test_book_updates_one_row():
    _, positions, book = random_book(9, 10, capacity=2)
    before = book.snapshot().health.health_factor.copy()
    changed = Position(
        positions[3].user,
        2,
        positions[3].user_config,
        0,
        positions[3].scaled_collateral,
        tuple(d * 2 for d in positions[3].scaled_debt),
    )
    book.upsert([changed])
    after = book.snapshot().health.health_factor
    assert len(book) == 10
    assert np.array_equal(np.delete(before, 3), np.delete(after, 3))


def test_threaded_recompute_equals_single_thread():
    from keeper.protocols.aave_v3.engine import health

    _, _, book = random_book(4, 40_000)
    n = len(book)
    one = health(book.scaled_coll[:n], book.scaled_debt[:n], book._market_arrays, workers=1)
    two = health(book.scaled_coll[:n], book.scaled_debt[:n], book._market_arrays, workers=2)
    assert np.array_equal(one.health_factor, two.health_factor)
    assert np.array_equal(one.collateral_base, two.collateral_base)
