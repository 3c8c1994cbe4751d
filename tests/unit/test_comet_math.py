"""Compound v3 math: the integer replica's rounding, and the numpy engine against it."""

import random
from dataclasses import replace

import numpy as np
import pytest

from keeper.book import Book
from keeper.protocols.comet import math as comet
from keeper.protocols.comet.engine import ENGINE as COMET

E18 = 10**18


def market(rng: random.Random | None = None, **kw) -> comet.CometMarket:
    rng = rng or random.Random(0)
    assets = (
        comet.AssetInfo(0, "0x" + "11" * 20, "0x" + "21" * 20, 10**18, 83 * 10**16, 90 * 10**16, 95 * 10**16, 10**30),
        comet.AssetInfo(1, "0x" + "12" * 20, "0x" + "22" * 20, 10**8, 70 * 10**16, 77 * 10**16, 95 * 10**16, 10**30),
    )
    fields = dict(
        block=1,
        timestamp=1,
        base_token="0x" + "10" * 20,
        base_symbol="USDC",
        base_price_feed="0x" + "20" * 20,
        base_scale=10**6,
        assets=assets,
        symbols=("WETH", "WBTC"),
        base_price=rng.randint(99_900_000, 100_100_000),
        prices=(rng.randint(1_500, 4_000) * 10**8 + rng.randint(0, 10**8), rng.randint(30_000, 90_000) * 10**8),
        base_supply_index=10**15 + rng.randint(0, 10**14),
        base_borrow_index=10**15 + rng.randint(0, 2 * 10**14),
        pause_flags=0,
        reserves=0,
        target_reserves=5_000_000 * 10**6,
        store_front_price_factor=6 * 10**17,
        base_borrow_min=100 * 10**6,
        collateral_reserves=(0, 0),
        total_collateral=(0, 0),
    )
    fields.update(kw)
    return comet.CometMarket(**fields)  # type: ignore[arg-type]


def position(rng: random.Random, m: comet.CometMarket, user: str = "0x" + "aa" * 20) -> comet.CometPosition:
    coll = [rng.choice([0, rng.randint(1, 50 * E18)]), rng.choice([0, rng.randint(1, 3 * 10**8)])]
    if not any(coll):
        coll[0] = E18
    value = sum(
        c * p // a.scale * a.borrow_collateral_factor // E18 for c, p, a in zip(coll, m.prices, m.assets, strict=True)
    )
    debt_usd = value * rng.uniform(0.5, 1.3) / 1e8
    principal = -int(debt_usd * 10**6 * 10**15 / m.base_borrow_index)
    assets_in = sum(1 << i for i, c in enumerate(coll) if c)
    return comet.CometPosition(user, 1, principal, assets_in, tuple(coll))


def test_signed_division_truncates_toward_zero():
    assert comet.tdiv(-7, 2) == -3 and comet.tdiv(7, 2) == 3 and comet.tdiv(-7, -2) == 3


def test_principal_rounding_follows_comet():
    m = market(base_supply_index=1_000_000_000_000_003, base_borrow_index=1_000_000_000_000_007)
    # a borrow's principal rounds up (the protocol never under-counts debt); supply rounds down
    assert comet.principal_value(-1_000_000, m) == -1_000_000
    assert comet.present_value(comet.principal_value(-12_345_678_901, m), m) <= -12_345_678_901
    assert comet.present_value(comet.principal_value(12_345_678_901, m), m) <= 12_345_678_901


def test_base_for_collateral_is_the_largest_affordable_amount():
    rng = random.Random(3)
    for _ in range(200):
        m = market(rng)
        i = rng.randrange(2)
        coll = rng.randint(1, 100 * m.assets[i].scale)
        base = comet.base_for_collateral(m, i, coll)
        assert comet.quote_collateral(m, i, base) <= coll < comet.quote_collateral(m, i, base + 1)


def test_absorb_quote_pays_debt_and_credits_surplus():
    m = market()
    pos = comet.CometPosition("0x" + "aa" * 20, 1, -20_000 * 10**6, 1, (10 * E18, 0))
    q = comet.absorb_quote(pos, m)
    assert q.seized == (10 * E18, 0)
    value = 10 * m.prices[0] * 95 // 100  # liquidation factor 0.95
    assert q.base_paid_out == value * 10**6 // m.base_price  # surplus above the debt goes to the account


def test_numpy_engine_matches_the_integer_replica():
    rng = random.Random(5)
    m = market(rng)
    positions = [position(rng, m, "0x" + f"{k:040x}") for k in range(2_000)]
    book = Book(3, engine=COMET)
    book.upsert(positions)
    book.set_market(m.arrays())
    snap = book.snapshot()
    exact = np.array([comet.health_factor_wad(p, m) / E18 for p in positions])
    assert snap.health.health_factor == pytest.approx(exact, rel=1e-9)
    liq = np.array([comet.is_liquidatable(p, m) for p in positions])
    assert ((snap.health.health_factor < 1.0) == liq).all()
    assert 0 < liq.sum() < len(positions)


def test_the_absorb_batch_holds_only_accounts_comet_calls_liquidatable():
    from keeper.protocols.comet.levers import decide_comet
    from keeper.settings import LiquidateSettings

    m = market(prices=(2_000 * 10**8, 60_000 * 10**8), base_price=10**8)
    under = [comet.CometPosition(f"0x{k:040x}", 1, -20_000 * 10**6, 1, (10 * E18, 0)) for k in (1, 2)]
    assert all(comet.is_liquidatable(p, m) for p in under)
    # Comet says the second is not liquidatable at this block (e.g. collateral the replica missed)
    flagged = [replace(under[0], liquidatable_onchain=True), replace(under[1], liquidatable_onchain=False)]
    plan = decide_comet(flagged, m, 10**12, LiquidateSettings(comet_absorb_always=True), 0)
    (absorb,) = [a for a in plan.actions if type(a).__name__ == "Absorb"]
    assert absorb.accounts == (under[0].user,)
    (skip,) = plan.skipped
    assert skip.account == under[1].user and skip.reason.startswith("Comet's isLiquidatable is false")
