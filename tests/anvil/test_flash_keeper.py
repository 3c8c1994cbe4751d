"""The keeper liquidating through its FlashLiquidator with a wallet that holds only gas: on our Pool
(the loan from a Uniswap v3 pool: our Pool has no flash loans) and on the real Aave v3.0.2 (the
loan from the Pool's own flashLoanSimple), the sales on the real Uniswap v3. Every account is
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
from keeper.devtools.uniswap import inputs_missing as uniswap_missing
from keeper.protocols.aave_v3.actions import FlashLiquidate
from keeper.settings import FlashSettings
from keeper.sources.chain import Chain
from tests.anvil.conftest import DEV_KEYS, liquidations_per_user, on_fresh_anvil, require_real_bytecode, run_live_keeper
from tests.anvil.test_aave_versions import Market, _deploy

pytestmark = pytest.mark.slow
E6 = 10**6


@pytest.mark.parametrize(("target", "source"), [("ours", "auto"), ("3.0.2", "aave")])
async def test_keeper_liquidates_with_only_gas_in_the_wallet(target, source, tmp_path):
    if target != "ours":
        require_real_bytecode(inputs_missing(target), f"Aave v{target}")
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

    settings = make_settings(dep, await w3.eth.chain_id, DEV_KEYS[9], (), comet=False, perps=False)
    settings = settings.model_copy(update={"flash": FlashSettings(**kit.settings("flash", source=source))})
    chain = Chain(keeper_w3, dep.multicall3)
    k = await run_live_keeper(w3, chain, settings, tmp_path, blocks=2)

    outcomes = [o for o in k.history if isinstance(o.action, FlashLiquidate)]
    assert len(outcomes) == len(users), [(o.action.subject, o.error) for o in k.history]
    results = [r for o in outcomes for r in o.results]
    assert results and all(r.status == 1 for r in results), [(o.action.subject, o.error) for o in outcomes]
    assert len({o.block for o in outcomes}) == 1, "all decided at the first block after the crash"
    assert await liquidations_per_user(w3, dep.pool) == {u: 1 for u in users}
    expected_source = "uniswap" if target == "ours" else "aave"
    for o in outcomes:
        a = o.action
        assert a.lender_source == expected_source, a
        got = o.actual
        assert got is not None and (got["debt_repaid"], got["collateral_seized"]) == (
            a.expected_debt_repaid, a.expected_collateral
        ), (a, got)  # fmt: skip
        assert got["fee"] == a.expected_fee
        assert got["profit"] >= a.min_profit
        # the sale's proceeds as predicted to 0.05% (later sales of the block priced on the quoted curve)
        assert abs(got["profit"] - a.expected_net) <= a.expected_out * 0.0005, (got["profit"], a.expected_net)
    profit = sum(o.actual["profit"] for o in outcomes if o.actual)
    assert await dc.balance(dep, "USDC", keeper) == profit > 0
    for symbol in ("WETH", "USDC"):
        assert await dc.balance(dep, symbol, kit.liquidator) == 0
