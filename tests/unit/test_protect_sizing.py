"""Protect sizing: the exact amount lands on target (within 0.1%), for random states."""

import random

from keeper.protocols.aave_v3.levers import decide_protect
from keeper.protocols.aave_v3.math import WAD, account_data, after_repay, after_supply
from keeper.settings import ProtectSettings
from tests.unit.test_aave_math import market, position


def test_repay_reaches_target_within_a_tenth_of_a_percent():
    rng = random.Random(7)
    settings = ProtectSettings(trigger_hf=1.2, target_hf=1.4, prefer=("repay",))
    for _ in range(200):
        weth = rng.uniform(0.5, 200)
        m = market(eth_price=rng.randint(1500, 4000))
        hf_goal = rng.uniform(1.01, 1.19)
        debt = weth * m.prices_base[0] / 1e8 * 0.83 / hf_goal
        p = position(weth, debt)
        a = decide_protect(p, m, [0, 10**30], settings)
        assert a is not None and a.kind == "repay" and a.reaches_target
        hf = account_data(after_repay(p, m, 1, a.amount), m).health_factor_wad / WAD
        assert 1.4 <= hf <= 1.4 * 1.001
        # and it is the smallest such amount
        assert account_data(after_repay(p, m, 1, a.amount - 1), m).health_factor_wad / WAD < 1.4 * 1.0002


def test_supply_when_wallet_has_no_debt_asset():
    m = market()
    p = position(10, 22_000)
    a = decide_protect(p, m, [10**30, 0], ProtectSettings(trigger_hf=1.2, target_hf=1.3))
    assert a is not None and a.kind == "supply"
    hf = account_data(after_supply(p, m, 0, a.amount), m).health_factor_wad / WAD
    assert 1.3 <= hf <= 1.3 * 1.001


def test_no_action_above_trigger_or_without_debt():
    m = market()
    assert decide_protect(position(10, 10_000), m, [10**30, 10**30], ProtectSettings()) is None
    assert decide_protect(position(10, 0), m, [10**30, 10**30], ProtectSettings()) is None


def test_partial_when_wallet_is_short_is_flagged():
    m = market()
    p = position(10, 22_000)
    a = decide_protect(p, m, [0, 500 * 10**6], ProtectSettings(trigger_hf=1.2, target_hf=1.3, prefer=("repay",)))
    assert a is not None and a.amount == 500 * 10**6 and not a.reaches_target
    assert a.health_after > a.health_before


def test_preference_order_is_respected():
    m = market()
    p = position(10, 22_000)
    a = decide_protect(
        p, m, [10**30, 10**30], ProtectSettings(trigger_hf=1.2, target_hf=1.3, prefer=("supply", "repay"))
    )
    assert a is not None and a.kind == "supply"
