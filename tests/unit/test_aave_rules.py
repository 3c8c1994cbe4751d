"""Aave's per-version rules, revert names, reserve ids and the account shapes `keeper status`
must survive (the real bytecode checks are in tests/anvil/test_aave_versions.py)."""

from dataclasses import replace

from eth_abi import encode
from eth_utils import keccak
from web3.exceptions import ContractLogicError

from keeper.book import Book
from keeper.protocols.aave_v3.adapter import AaveV3Reader
from keeper.protocols.aave_v3.engine import ENGINE
from keeper.protocols.aave_v3.liquidation import liquidation_quote, max_liquidatable_debt
from keeper.protocols.aave_v3.math import Market, Position, account_data
from keeper.protocols.aave_v3.versions import BY_REVISION, version_of
from keeper.sources.failures import revert_text
from tests.unit.test_aave_math import market, position


def _on(version: str, m: Market) -> Market:
    return replace(m, version=next(v for v in BY_REVISION.values() if v.name == version))


def test_revisions_map_to_versions_and_unknown_ones_to_none():
    assert [version_of(r).name for r in (1, 3, 4, 5, 6, 7, 8, 9, 10, 11)] == [
        "3.0", "3.0", "3.1", "3.2", "3.2", "3.3", "3.4", "3.5", "3.6", "3.7",
    ]  # fmt: skip
    assert version_of(0) is None and version_of(12) is None


def test_close_factor_before_v3_3_is_half_the_reserve_debt():
    # HF 0.996 > 0.95 with one debt: v3.0 takes 50% of the USDC debt; v3.3 too (50% of the total)
    p = position(10, 20_000)
    m = market(eth_price=2_400)
    assert max_liquidatable_debt(p, _on("3.0", m), 0, 1) == 10_000 * 10**6
    assert max_liquidatable_debt(p, _on("3.3", m), 0, 1) == 10_000 * 10**6
    # a small position (under $2,000): v3.3 takes all of it, v3.0 still half
    small = position(0.5, 1_000)
    assert max_liquidatable_debt(small, _on("3.0", m), 0, 1) == 500 * 10**6
    assert max_liquidatable_debt(small, _on("3.3", m), 0, 1) == 1_000 * 10**6


def test_v3_4_refuses_self_liquidation_and_names_its_errors():
    p = position(10, 20_000)
    m = market(eth_price=2_400)
    assert liquidation_quote(p, _on("3.3", m), 0, 1, 10**12, liquidator=p.user).error is None
    assert liquidation_quote(p, _on("3.4", m), 0, 1, 10**12, liquidator=p.user).error == "SelfLiquidation"
    healthy = position(10, 1_000)
    assert liquidation_quote(healthy, _on("3.3", m), 0, 1, 1).error == "45"
    assert liquidation_quote(healthy, _on("3.7", m), 0, 1, 1).error == "HealthFactorNotBelowThreshold"


def test_v3_5_rounds_debt_up_and_balances_down():
    m = market(eth_price=3_000, income=(10**27 + 3, 10**27), debt_index=(10**27, 10**27 + 7))
    p = position(10, 20_000)
    old, new = account_data(p, _on("3.4", m)), account_data(p, _on("3.5", m))
    assert new.total_debt_base >= old.total_debt_base and new.total_collateral_base <= old.total_collateral_base
    assert new.health_factor_wad <= old.health_factor_wad


def test_revert_reasons_are_named_on_every_version():
    code = keccak(text="Error(string)")[:4] + encode(["string"], ["103"])
    assert revert_text(ContractLogicError("execution reverted: 103", data="0x" + code.hex())) == (
        "103 (MUST_NOT_LEAVE_DUST)"
    )
    assert revert_text(
        ContractLogicError("execution reverted", data="0x" + keccak(text="MustNotLeaveDust()")[:4].hex())
    ) == ("MustNotLeaveDust")
    panic = keccak(text="Panic(uint256)")[:4] + (0x11).to_bytes(32, "big")
    assert revert_text(ContractLogicError("execution failed", data="0x" + panic.hex())) == (
        "Panic 0x11 (arithmetic overflow or underflow)"
    )
    # inside eth_simulateV1 the node gives the revert data the same way
    selfliq = "0x" + keccak(text="SelfLiquidation()")[:4].hex()
    assert revert_text(ContractLogicError("execution reverted", data=selfliq)) == "SelfLiquidation"


def test_user_configuration_bits_follow_reserve_ids_not_list_positions():
    reader = AaveV3Reader("0x" + "11" * 20, "0x" + "22" * 20)
    reader._column_of_id = {0: 0, 2: 1, 5: 2}  # reserves 1, 3 and 4 were dropped
    raw = (0b11 << (2 * 2)) | (0b10 << (2 * 5))  # id 2: borrowing + collateral; id 5: collateral
    assert reader._columns(raw) == (0b11 << 2) | (0b10 << 4)


def test_status_survives_an_account_no_single_price_can_move():
    # WETH collateral against WETH debt at HF < 1: no single price move changes its health
    m = market(eth_price=3_000)
    cfg = (1 << 1) | (1 << 0)
    p = Position("0x" + "ab" * 20, 1, cfg, 0, (10**18, 0), (10**18, 0))
    assert account_data(p, m).health_factor_wad < 10**18
    book = Book(2, engine=ENGINE)
    book.upsert([p])
    book.set_market(m.arrays())
    snap = book.snapshot()
    assert snap.nearest_liquidation(0) is None


def test_an_unknown_revision_is_reported_and_never_acted_on():
    from keeper.devtools.demo import make_settings
    from keeper.devtools.devchain import Deployment
    from keeper.protocols.aave_v3.market import AaveV3Market

    a = ["0x" + f"{k:040x}" for k in range(1, 5)]
    dep = Deployment(pool=a[0], oracle=a[1], multicall3=a[2], tokens={"WETH": a[3]})
    settings = make_settings(dep, 1, "0x" + "11" * 32, (), comet=False, perps=False)
    adapter = AaveV3Market(settings.markets["aave"][0], settings, a[3])
    adapter.market = market()
    adapter.reader.revision, adapter.reader.version = 12, None
    assert adapter.unsupported(position(10, 27_000)) == "POOL_REVISION 12 is not a known Aave version"
    assert adapter.notes()[0].startswith("POOL_REVISION 12 is not a known Aave version")
    assert adapter.reader.rules.name == "3.7"  # figures shown with the nearest known rules


def test_paused_reserves_and_the_grace_period_block_liquidation_with_the_pools_reason():
    from keeper.protocols.aave_v3.levers import decide_liquidations
    from keeper.settings import LiquidateSettings

    m = market(eth_price=2_400)
    p = position(10, 20_000)
    paused = replace(m, configs=(replace(m.configs[0], paused=True), m.configs[1]))
    assert liquidation_quote(p, paused, 0, 1, 10**12).error == "29"
    graced = replace(_on("3.7", m), timestamp=100, grace_until=(0, 100))
    assert liquidation_quote(p, graced, 0, 1, 10**12).error == "LiquidationGraceSentinelCheckFailed"
    assert liquidation_quote(p, replace(graced, timestamp=101), 0, 1, 10**12).error is None
    plan = decide_liquidations([p], paused, [0, 10**15], LiquidateSettings(), 0)
    assert not plan.actions and plan.skipped[0].reason == "the Pool refuses: 29"


def test_protect_respects_supply_caps_and_isolation():
    from keeper.protocols.aave_v3.levers import decide_protect, supply_room
    from keeper.protocols.aave_v3.math import can_enable_collateral
    from keeper.settings import ProtectSettings

    m = market(eth_price=2_400)
    p = position(10, 20_000)  # HF 0.996: below any trigger
    capped = replace(m, configs=(replace(m.configs[0], supply_cap=12), m.configs[1]), supplied=(11 * 10**18, 0))
    assert supply_room(capped, 0) == 10**18
    ps = ProtectSettings(accounts=(p.user,), prefer=("supply",), trigger_hf=1.1, target_hf=1.2)
    a = decide_protect(p, capped, [100 * 10**18, 0], ps)
    assert a is not None and a.kind == "supply" and a.amount == 10**18 and not a.reaches_target
    # an isolated reserve (debt ceiling) is not enabled as collateral by a supply: not a lever
    iso = replace(m, configs=(m.configs[0], replace(m.configs[1], debt_ceiling=10**6)))
    assert not can_enable_collateral(p, iso, 1)
    assert can_enable_collateral(p, m, 1)
