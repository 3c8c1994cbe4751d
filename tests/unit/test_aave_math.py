"""Aave v3 integer math against hand-computed examples and the v3.3 liquidation rules."""

import pytest

from keeper.protocols.aave_v3.liquidation import liquidation_quote, max_liquidatable_debt
from keeper.protocols.aave_v3.math import (
    Market,
    Position,
    Reserve,
    ReserveConfig,
    account_data,
)
from keeper.protocols.aave_v3.rounding import RAY, percent_div, percent_mul, ray_div, ray_mul, wad_div
from keeper.risk.intmath import MAX_UINT256, WAD

WETH_CFG = ReserveConfig(8050, 8300, 10500, 18, True, False, True, False, 1500, 1000)
USDC_CFG = ReserveConfig(7500, 7800, 10450, 6, True, False, True, False, 1000, 1000)


def market(eth_price: int = 3000, income: tuple[int, int] = (RAY, RAY), debt_index: tuple[int, int] = (RAY, RAY)):
    reserves = (
        Reserve("0x" + "11" * 20, 0, "0x" + "21" * 20, "0x" + "31" * 20, "WETH"),
        Reserve("0x" + "12" * 20, 1, "0x" + "22" * 20, "0x" + "32" * 20, "USDC"),
    )
    return Market(1, 0, reserves, (WETH_CFG, USDC_CFG), (eth_price * 10**8, 10**8), income, debt_index)


def position(weth: float, usdc_debt: float, *, usdc_coll: float = 0.0) -> Position:
    cfg = (1 << 1) | (1 << 2)  # WETH collateral (bit 2*0+1), USDC borrowed (bit 2*1)
    if usdc_coll:
        cfg |= 1 << 3
    return Position(
        "0x" + "aa" * 20, 1, cfg, 0, (int(weth * 10**18), int(usdc_coll * 10**6)), (0, int(usdc_debt * 10**6))
    )


def test_wad_ray_percent_round_half_up():
    assert ray_mul(3, RAY // 2) == 2  # 1.5 rounds up
    assert ray_div(1, 3 * RAY) == 0
    assert wad_div(2, 3) == 666666666666666667
    assert percent_mul(10_001, 5_000) == 5_001  # 5000.5 rounds up
    assert percent_div(1_000, 10_500) == 952


def test_account_data_single_asset_by_hand():
    # 10 WETH at $3,000 = $30,000 collateral, 21,000 USDC debt: HF = 30000 * 0.83 / 21000.
    a = account_data(position(10, 21_000), market())
    assert a.total_collateral_base == 30_000 * 10**8
    assert a.total_debt_base == 21_000 * 10**8
    assert a.avg_liquidation_threshold_bps == 8300
    assert a.health_factor_wad == wad_div(percent_mul(30_000 * 10**8, 8300), 21_000 * 10**8)
    assert a.health_factor_wad == 1185714285714285714
    assert a.available_borrows_base == 30_000 * 10**8 * 8050 // 10_000 - 21_000 * 10**8


def test_weighted_liquidation_threshold_is_floored_as_aave_does():
    # $3,000 WETH at 83% + $1,000 USDC at 78%: weighted 81.75% -> floored to 8175 bps (exact here);
    # $3,000 WETH + $1,001 USDC gives 8174.99... -> 8174.
    a = account_data(position(1, 1_000, usdc_coll=1_001), market())
    assert a.avg_liquidation_threshold_bps == (3000 * 8300 + 1001 * 7800) // 4001


def test_indices_scale_balances():
    m = market(income=(RAY * 11 // 10, RAY), debt_index=(RAY, RAY * 12 // 10))
    a = account_data(position(1, 1_000), m)
    assert a.total_collateral_base == 3_300 * 10**8
    assert a.total_debt_base == 1_200 * 10**8


def test_close_factor_half_above_095_and_full_below():
    m = market(eth_price=3000)
    # HF 0.9881: collateral and debt above $2,000 -> at most 50% of total debt.
    p = position(10, 25_200)
    assert 0.95 < account_data(p, m).health_factor_wad / WAD < 1
    assert max_liquidatable_debt(p, m, 0, 1) == 12_600 * 10**6
    # HF below 0.95 -> 100%.
    p2 = position(10, 27_000)
    assert account_data(p2, m).health_factor_wad / WAD < 0.95
    assert max_liquidatable_debt(p2, m, 0, 1) == 27_000 * 10**6


def test_small_positions_can_be_closed_fully():
    # Debt $1,950 < $2,000 threshold: 100% close factor even at HF > 0.95.
    p = position(0.78, 1_950)
    m = market()
    assert 0.95 < account_data(p, m).health_factor_wad / WAD < 1
    assert max_liquidatable_debt(p, m, 0, 1) == 1_950 * 10**6


def test_liquidation_quote_bonus_and_protocol_fee():
    m = market()
    p = position(10, 25_200)
    q = liquidation_quote(p, m, 0, 1, 10**30)
    assert q.error is None and q.debt_repaid == 12_600 * 10**6
    base = 12_600 * 10**6 * 10**8 * 10**18 // (3000 * 10**8 * 10**6)  # 4.2 WETH
    gross = percent_mul(base, 10_500)  # 4.41 WETH with the 5% bonus
    fee = percent_mul(gross - percent_div(gross, 10_500), 1_000)  # 10% of the bonus to the treasury
    assert q.protocol_fee == fee
    assert q.collateral_received == gross - fee


def test_healthy_account_is_not_liquidatable():
    q = liquidation_quote(position(10, 20_000), market(), 0, 1, 10**30)
    assert q.error == "45"


def test_partial_liquidation_leaving_dust_reverts():
    # $1,950 debt (< $2,000: 100% close factor), HF 0.979. Covering $1,200 would leave $750 of
    # debt: below MIN_LEFTOVER_BASE ($1,000) -> MUST_NOT_LEAVE_DUST. Covering all of it is fine.
    p = position(1.0, 1_950)
    m = market(eth_price=2300)
    assert liquidation_quote(p, m, 0, 1, 1_200 * 10**6).error == "103"
    assert liquidation_quote(p, m, 0, 1, 1_950 * 10**6).error is None


def test_collateral_capped_liquidation_recomputes_debt():
    # Deep underwater: the bonus asks for more collateral than the account has.
    p = position(1.0, 3_000)
    q = liquidation_quote(p, market(eth_price=2000), 0, 1, 10**30)
    assert q.error is None
    assert q.collateral_received + q.protocol_fee == 10**18
    assert q.debt_repaid == percent_div(2000 * 10**6, 10_500)


@pytest.mark.parametrize("bad", ["45"])
def test_error_codes_are_aave_codes(bad):
    assert liquidation_quote(position(1, 10), market(), 0, 1, 1).error == bad


def test_full_debt_liquidation_offers_headroom_for_interest():
    from keeper.protocols.aave_v3.levers import best_liquidation

    p = position(10, 27_000)  # HF < 0.95: the whole debt may be taken
    a = best_liquidation(p, market(), [0, 10**30], gas_cost_base=0)
    assert a is not None and a.expected_debt_repaid == 27_000 * 10**6
    assert a.debt_to_cover == MAX_UINT256  # the Pool sizes it at inclusion
    assert a.max_spend == 27_000 * 10**6 + 27_000 * 10**6 // 10_000 + 1  # what is approved
    # with a wallet holding exactly the debt, the headroom is what the wallet has
    b = best_liquidation(p, market(), [0, 27_000 * 10**6], gas_cost_base=0)
    assert b is not None and b.debt_to_cover == MAX_UINT256 and b.max_spend == 27_000 * 10**6
