"""Synthetix v3 perps math: the engine's margin ratio and liquidation prices, and the integer
replica of fill prices and margin requirements."""

import dataclasses
import random

import numpy as np
import pytest

from keeper.protocols.synthetix_perps import math as perps
from keeper.protocols.synthetix_perps.engine import ENGINE as PERPS
from keeper.protocols.synthetix_perps.engine import PerpArrays

E18 = 10**18


def arrays(prices=(3_000.0, 60_000.0)) -> PerpArrays:
    return PerpArrays(
        price_base=np.array(prices),
        skew_scale=np.array([1_000_000.0, 35_000.0]),
        initial_margin_ratio=np.array([2.0, 2.0]),
        minimum_initial_margin_ratio=np.array([0.02, 0.02]),
        maintenance_margin_scalar=np.array([0.5, 0.5]),
        flag_reward_ratio=np.array([0.0005, 0.0005]),
        minimum_position_margin=np.array([5.0, 5.0]),
        min_keeper_reward=1.0,
        max_keeper_reward=50.0,
    )


def test_liquidation_price_puts_the_ratio_at_one_in_every_reward_regime():
    """Tiny positions sit on the reward floor, large ones on the cap, the rest in between."""
    rng = random.Random(1)
    a = arrays()
    n = 3_000
    sizes = np.zeros((n, 2))
    const = np.zeros((n, 2))
    for k in range(n):
        col = rng.randrange(2)
        notional = 10 ** rng.uniform(2.5, 6)  # $300 .. $1M: floor, proportional and cap regimes
        sizes[k, col] = notional / a.price_base[col] * rng.choice([1, -1])
        margin = notional / rng.uniform(2, 60)
        const[k, col] = margin - sizes[k, col] * a.price_base[col]
    h = PERPS.health(sizes, const, a)
    liq = PERPS.liquidation_prices(sizes, const, a)
    checked = 0
    for k in range(n):
        col = int(np.flatnonzero(sizes[k])[0])
        p = liq[k, col]
        if h.health_factor[k] < 1 or np.isnan(p):
            continue
        moved = dataclasses.replace(a, price_base=np.where(np.arange(2) == col, p, a.price_base))
        ratio = PERPS.health(sizes[k : k + 1], const[k : k + 1], moved).health_factor[0]
        assert ratio == pytest.approx(1.0, abs=1e-9), (k, sizes[k], const[k], p)
        checked += 1
    assert checked > n // 2


def test_fill_price_and_margins_follow_synthetix():
    m = perps.PerpMarket(100, "ETH", 1_000_000 * E18, 9 * E18, 2 * E18, E18 // 50, E18 // 2, 5 * E18 // 10_000, 0)
    # buying 10 ETH into a 1,000 ETH long skew: premium moves from 0.1% to 0.101%
    fill = perps.fill_price(1_000 * E18, m.skew_scale, 10 * E18, 3_000 * E18)
    assert fill == 3_000 * E18 + 3_000 * E18 * (1_000 + 1_010) // 2 // 1_000_000
    im, mm, flag = perps.position_margins(m, -10 * E18, 3_000 * E18)
    # initial ratio = 10 / 1e6 x 2 + 2% = 2.002%, maintenance = half; notional $30,000
    assert im == 600_600 * E18 // 1_000  # $600.60
    assert mm == 300_300 * E18 // 1_000  # $300.30
    assert flag == 15 * E18  # 5 bps of notional
