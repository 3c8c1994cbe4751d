"""The keeper liquidating through its FlashLiquidator with a wallet that holds only gas: on our Pool
(the loan from a Uniswap v3 pool: our Pool has no flash loans, or from the real Morpho Blue, free)
and on the real Aave v3.0.2 (the loan from the Pool's own flashLoanSimple), the sales on the real
Uniswap v3. Every account is
liquidated once, decided at the first block after the crash, no transaction reverts, each
liquidation's repaid and seized amounts are the ones predicted, and what each sale pays is within
0.05% of the prediction (the block's later sales through one pool are priced on the quoted
curve), so the profit sent to the owner is the predicted one to that much."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from web3 import AsyncWeb3

from keeper.devtools.demo import make_settings
from keeper.devtools.devchain import DevChain
from keeper.devtools.flashkit import deploy_flash
from keeper.devtools.real_aave import inputs_missing
from keeper.devtools.real_comet import inputs_missing as comet_missing
from keeper.devtools.real_morpho import RealMorpho
from keeper.devtools.real_morpho import inputs_missing as morpho_missing
from keeper.devtools.uniswap import inputs_missing as uniswap_missing
from keeper.protocols.aave_v3.actions import FlashLiquidate
from keeper.protocols.comet.actions import FlashAbsorb
from keeper.settings import FlashSettings
from keeper.sources.chain import Chain
from tests.anvil.conftest import DEV_KEYS, liquidations_per_user, on_fresh_anvil, require_real_bytecode, run_live_keeper
from tests.anvil.test_aave_versions import Market, _deploy

pytestmark = pytest.mark.slow
E6 = 10**6


@pytest.mark.parametrize(("target", "source"), [("ours", "auto"), ("3.0.2", "aave"), ("ours", "morpho")])
async def test_keeper_liquidates_with_only_gas_in_the_wallet(target, source, tmp_path):
    if target != "ours":
        require_real_bytecode(inputs_missing(target), f"Aave v{target}")
    if source == "morpho":
        require_real_bytecode(morpho_missing(), "Morpho Blue")
    require_real_bytecode(uniswap_missing(), "Uniswap v3")
    await on_fresh_anvil(_scenario, target, source, tmp_path)


async def _scenario(w3: AsyncWeb3[Any], keeper_w3: AsyncWeb3[Any], target: str, source: str, tmp_path: Any) -> None:
    accounts = list(await w3.eth.accounts)
    admin, lp, users = accounts[0], accounts[1], accounts[10:16]
    keeper = Account.from_key(DEV_KEYS[9]).address
    dep = await _deploy(w3, target, admin)
    dc, market = DevChain(w3), Market(w3, target, dep)
    await market.supply(lp, "USDC", 5_000_000)
    for k, u in enumerate(users):  # 4 to 9 WETH each; HF 1.245 at $3,000, 0.954 at $2,300
        await market.supply(u, "WETH", 4 + k)
        await market.tx(u, "borrow", dep.tokens["USDC"], (4 + k) * 2_000 * E6, 2, 0, u)
    await w3.provider.make_request("anvil_setBlockTimestampInterval", [0])  # type: ignore[arg-type]
    await dc.set_price(dep, "WETH", 2_300.0)
    kit = await deploy_flash(w3, dc, dep, keeper, lp, {"WETH": 2_300.0, "WBTC": 45_000.0, "USDC": 1.0},
                             depth_usd=4_000_000.0)  # fmt: skip
    for symbol in dep.tokens:
        assert await dc.balance(dep, symbol, keeper) == 0, "the wallet holds only gas"

    extra: dict[str, Any] = {}
    if source == "morpho":  # the real Morpho Blue holding USDC lent by its suppliers: free flash loans
        rm = RealMorpho(w3)
        md = await rm.deploy(admin)
        params = await rm.create_market(md, dep, "WETH", "USDC", 0.86)
        await dc.mint(dep, "USDC", lp, 2_000_000 * E6)
        await dc.approve(dep, "USDC", lp, md.morpho, 2_000_000 * E6)
        await rm._send(rm.contract("Morpho", md.morpho).functions.supply(params.as_tuple(), 2_000_000 * E6, 0, lp, b""),
                       lp)  # fmt: skip
        extra["morpho"] = md.morpho
    settings = make_settings(dep, await w3.eth.chain_id, DEV_KEYS[9], (), comet=False, perps=False)
    settings = settings.model_copy(update={"flash": FlashSettings(**kit.settings("flash", source=source, **extra))})
    chain = Chain(keeper_w3, dep.multicall3)
    k = await run_live_keeper(w3, chain, settings, tmp_path, blocks=2)

    outcomes = [o for o in k.history if isinstance(o.action, FlashLiquidate)]
    assert len(outcomes) == len(users), [(o.action.subject, o.error) for o in k.history]
    results = [r for o in outcomes for r in o.results]
    assert results and all(r.status == 1 for r in results), [(o.action.subject, o.error) for o in outcomes]
    assert len({o.block for o in outcomes}) == 1, "all decided at the first block after the crash"
    assert await liquidations_per_user(w3, dep.pool) == {u: 1 for u in users}
    expected_source = source if source == "morpho" else ("uniswap" if target == "ours" else "aave")
    for o in outcomes:
        a = o.action
        assert a.lender_source == expected_source, a
        got = o.actual
        assert got is not None and (got["debt_repaid"], got["collateral_seized"]) == (
            a.expected_debt_repaid, a.expected_collateral
        ), (a, got)  # fmt: skip
        assert got["fee"] == a.expected_fee and (a.expected_fee == 0) == (source == "morpho")
        assert got["profit"] >= a.min_profit
        # the sale's proceeds as predicted to 0.05% (later sales of the block priced on the quoted curve)
        assert abs(got["profit"] - a.expected_net) <= a.expected_out * 0.0005, (got["profit"], a.expected_net)
    profit = sum(o.actual["profit"] for o in outcomes if o.actual)
    assert await dc.balance(dep, "USDC", keeper) == profit > 0
    for symbol in ("WETH", "USDC"):
        assert await dc.balance(dep, symbol, kit.liquidator) == 0


@pytest.mark.parametrize("target", ["ours", "CometWithExtendedAssetList"])
async def test_comet_crash_handled_in_one_transaction_without_inventory(target, tmp_path):
    if target != "ours":
        require_real_bytecode(comet_missing(), "Compound v3")
    require_real_bytecode(uniswap_missing(), "Uniswap v3")
    await on_fresh_anvil(_comet_scenario, target, tmp_path, accounts=30)


async def _comet_scenario(w3: AsyncWeb3[Any], keeper_w3: AsyncWeb3[Any], target: str, tmp_path: Any) -> None:
    from tests.anvil.test_comet_versions import _deploy as deploy_comet
    from tests.anvil.test_comet_versions import _tx

    accounts = list(await w3.eth.accounts)
    admin, proxy_admin, lp, users = accounts[0], accounts[1], accounts[2], accounts[10:16]
    keeper = Account.from_key(DEV_KEYS[9]).address
    dep, c = await deploy_comet(w3, target, admin, proxy_admin)
    dc = DevChain(w3)

    async def supply(user: str, symbol: str, units: int) -> None:
        await dc.mint(dep, symbol, user, units)
        await dc.approve(dep, symbol, user, dep.comet, units)
        await _tx(w3, c.functions.supply(dep.tokens[symbol], units), user)

    await supply(lp, "USDC", 1_000_000 * E6)
    for k, u in enumerate(users):  # 1 to 3 WETH each, liquidatable at $2,300
        await supply(u, "WETH", (1 + k % 3) * 10**18)
        await _tx(w3, c.functions.withdraw(dep.tokens["USDC"], (1 + k % 3) * 2_460 * E6), u)
    await w3.provider.make_request("anvil_setBlockTimestampInterval", [0])  # type: ignore[arg-type]
    await dc.set_price(dep, "WETH", 2_300.0)
    kit = await deploy_flash(w3, dc, dep, keeper, lp, {"WETH": 2_300.0, "WBTC": 45_000.0, "USDC": 1.0},
                             depth_usd=4_000_000.0)  # fmt: skip
    settings = make_settings(dep, await w3.eth.chain_id, DEV_KEYS[9], (), aave=False, perps=False)
    settings = settings.model_copy(update={"flash": FlashSettings(**kit.settings("flash"))})
    k = await run_live_keeper(w3, Chain(keeper_w3, dep.multicall3), settings, tmp_path, blocks=2)

    (o,) = [o for o in k.history if isinstance(o.action, FlashAbsorb)]
    assert o.results and o.results[-1].status == 1, o.error
    assert set(o.action.accounts) == set(users)
    assert not any([await c.functions.isLiquidatable(u).call() for u in users])
    got = o.actual
    assert got is not None and got["profit"] >= o.action.min_profit and got["fee"] == o.action.expected_fee
    sales = sum(b.expected_out for b in o.action.buys)
    assert abs(got["profit"] - o.action.expected_net) <= sales * 0.0005, (got, o.action.expected_net)
    assert await dc.balance(dep, "USDC", keeper) == got["profit"]
    for symbol in ("WETH", "USDC"):
        assert await dc.balance(dep, symbol, kit.liquidator) == 0
