"""The keeper protecting its own position with no cash in its wallet, through its Deleverager, on
anvil with the real Uniswap v3: on the real Aave v3.0.2 bytecode, and on our Comet and the real
Compound v3 (CometWithExtendedAssetList); our Pool is covered from the command line
(tests/anvil/test_deleverage_cli.py). The position is borrowed against and the borrowed asset sent away;
a price crash takes it under the trigger. `keeper protect-setup --send` gives the grant (the
aToken approval, Comet's allow); then one keeper block brings the position to target in one
transaction: the health factor the market reports lies in the on-chain range and equals the
keeper's prediction, the chain's figures (the Deleveraged event) are the predicted ones, the
contract keeps nothing, and what the sale brought beyond the loan is the only cash the wallet
holds afterwards. On Aave, a deleverage decided before a further price drop is refused by its
simulation (the contract's HealthOutOfRange), reported, and nothing is sent."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from web3 import AsyncWeb3

from keeper.app.protect_setup import protect_setup, readiness
from keeper.devtools.demo import make_settings
from keeper.devtools.devchain import DevChain, artifacts
from keeper.devtools.flashkit import deploy_flash
from keeper.devtools.real_aave import inputs_missing
from keeper.devtools.real_comet import inputs_missing as comet_missing
from keeper.devtools.uniswap import inputs_missing as uniswap_missing
from keeper.risk.intmath import MAX_UINT256, WAD
from keeper.settings import FlashSettings
from keeper.sources.chain import Chain
from keeper.strategy.actions import Deleverage
from tests.anvil.conftest import DEV_KEYS, live_keeper, on_fresh_anvil, require_real_bytecode, run_live_keeper
from tests.anvil.test_aave_versions import Market, _deploy

pytestmark = pytest.mark.slow
E18, E6 = 10**18, 10**6


def settings_for(dep: Any, chain_id: int, kit: Any, deleverager: str, *, aave: bool) -> Any:
    me = Account.from_key(DEV_KEYS[9]).address
    s = make_settings(dep, chain_id, DEV_KEYS[9], (me,), trigger=1.15, target=1.25, aave=aave, comet=not aave,
                      perps=False)  # fmt: skip
    return s.model_copy(update={
        "flash": FlashSettings(**kit.settings("wallet")),
        "protect": s.protect.model_copy(update={"deleverager": deleverager}),
    })  # fmt: skip


async def grant(chain: Chain, settings: Any, tmp_path: Any) -> None:
    """`keeper protect-setup` (what it prints, then --send) with the keeper's own key."""
    k = live_keeper(chain, settings, tmp_path / "setup")
    text, code = await protect_setup(k, send=True, revoke=False)
    assert code == 0 and "missing: run keeper protect-setup" in text and "status 1" in text, text
    assert "revoke later:" in text, text
    assert all(r.granted for r in await readiness(k)), text


async def check_outcome(w3: AsyncWeb3[Any], k: Any, dep: Any, deleverager: str, collateral: str) -> Any:
    (o,) = [o for o in k.history if isinstance(o.action, Deleverage)]
    a = o.action
    assert o.results and o.results[-1].status == 1, o.error
    got = o.actual
    assert got is not None, o.results
    assert got["repaid"] == a.repay and got["fee"] == a.expected_fee, (got, a)
    assert abs(got["collateral_sold"] - a.withdraw) <= 2, (got, a)  # aToken rounding: a unit or two
    assert a.min_hf_wad <= got["health_factor"] <= a.max_hf_wad
    assert abs(got["health_factor"] / WAD - a.health_after) < 1e-6, (got["health_factor"], a.health_after)
    assert 1.20 <= got["health_factor"] / WAD <= 1.30 and a.reaches_target
    dc = DevChain(w3)
    for symbol in ("WETH", "USDC"):
        assert await dc.balance(dep, symbol, deleverager) == 0
    assert await dc.balance(dep, "USDC", Account.from_key(DEV_KEYS[9]).address) == got["returned"]
    assert a.collateral_symbol == collateral
    return got


@pytest.mark.parametrize("target", ["3.0.2"])
async def test_the_keeper_deleverages_its_aave_position_with_an_empty_wallet(target, tmp_path):
    require_real_bytecode(inputs_missing(target), f"Aave v{target}")
    require_real_bytecode(uniswap_missing(), "Uniswap v3")
    await on_fresh_anvil(_aave, target, tmp_path)


async def _aave(w3: AsyncWeb3[Any], keeper_w3: AsyncWeb3[Any], target: str, tmp_path: Any) -> None:
    accounts = list(await w3.eth.accounts)
    admin, lp, me = accounts[0], accounts[1], Account.from_key(DEV_KEYS[9]).address
    dep = await _deploy(w3, target, admin)
    dc, market = DevChain(w3), Market(w3, target, dep)
    await market.supply(lp, "USDC", 5_000_000)
    await market.supply(me, "WETH", 10)  # HF 1.245 at $3,000, 1.058 at $2,550
    await market.tx(me, "borrow", dep.tokens["USDC"], 20_000 * E6, 2, 0, me)
    usdc = w3.eth.contract(address=dep.tokens["USDC"], abi=artifacts()["contracts"]["MintableERC20"]["abi"])
    await w3.eth.wait_for_transaction_receipt(await usdc.functions.transfer(lp, 20_000 * E6).transact({"from": me}))
    await w3.provider.make_request("anvil_setBlockTimestampInterval", [0])  # type: ignore[arg-type]
    await dc.set_price(dep, "WETH", 2_550.0)
    kit = await deploy_flash(w3, dc, dep, None, lp, {"WETH": 2_550.0, "WBTC": 45_000.0, "USDC": 1.0},
                             depth_usd=4_000_000.0)  # fmt: skip
    deleverager = await dc.deploy("Deleverager", me, kit.uni.router)
    for symbol in dep.tokens:
        assert await dc.balance(dep, symbol, me) == 0, "the wallet holds only gas"
    settings = settings_for(dep, await w3.eth.chain_id, kit, deleverager, aave=True)
    chain = Chain(keeper_w3, dep.multicall3)
    await grant(chain, settings, tmp_path)
    a_weth = w3.eth.contract(address=dep.a_tokens["WETH"], abi=artifacts()["contracts"]["MintableERC20"]["abi"])
    assert await a_weth.functions.allowance(me, deleverager).call() == MAX_UINT256

    # decided at $2,550, then the price falls further before it is sent: the simulation reverts
    probe = live_keeper(chain, settings, tmp_path / "probe")
    await probe.start()
    w, head = probe.watches[0], await chain.head()
    snap = w.book.snapshot()  # type: ignore[union-attr]
    flash = await probe.flash_reads.context(chain, head, w, snap)
    (action,) = w.decide(head, snap, dict(probe.wallet), 10**9, flash)
    assert isinstance(action, Deleverage) and action.reaches_target, action
    nonce = await w3.eth.get_transaction_count(me)
    await dc.set_price(dep, "WETH", 2_390.0)
    out = await probe._execute(head, w, action)
    assert not out.sent and "HealthOutOfRange" in (out.error or ""), out.error
    assert await w3.eth.get_transaction_count(me) == nonce
    await dc.set_price(dep, "WETH", 2_550.0)

    k = await run_live_keeper(w3, chain, settings, tmp_path, blocks=2)
    got = await check_outcome(w3, k, dep, deleverager, "WETH")
    hf = (await market.pool.functions.getUserAccountData(me).call())[5]
    assert hf == got["health_factor"]
    assert await dc.balance(dep, "WETH", deleverager) == 0 and await a_weth.functions.balanceOf(deleverager).call() == 0


@pytest.mark.parametrize("target", ["ours", "CometWithExtendedAssetList"])
async def test_the_keeper_deleverages_its_comet_position_with_an_empty_wallet(target, tmp_path):
    if target != "ours":
        require_real_bytecode(comet_missing(), "Compound v3")
    require_real_bytecode(uniswap_missing(), "Uniswap v3")
    await on_fresh_anvil(_comet, target, tmp_path, accounts=20)


async def _comet(w3: AsyncWeb3[Any], keeper_w3: AsyncWeb3[Any], target: str, tmp_path: Any) -> None:
    from tests.anvil.test_comet_versions import _deploy as deploy_comet
    from tests.anvil.test_comet_versions import _tx

    accounts = list(await w3.eth.accounts)
    admin, proxy_admin, lp, me = accounts[0], accounts[1], accounts[2], Account.from_key(DEV_KEYS[9]).address
    dep, c = await deploy_comet(w3, target, admin, proxy_admin)
    dc = DevChain(w3)
    weth, usdc = dep.tokens["WETH"], dep.tokens["USDC"]
    info = await c.functions.getAssetInfoByAddress(weth).call()
    price = await c.functions.getPrice(info[2]).call() / 1e8
    borrow_cf, liquidate_cf = info[4] / 1e18, info[5] / 1e18

    async def supply(user: str, symbol: str, units: int) -> None:
        await dc.mint(dep, symbol, user, units)
        await dc.approve(dep, symbol, user, dep.comet, units)
        await _tx(w3, c.functions.supply(dep.tokens[symbol], units), user)

    await supply(lp, "USDC", 1_000_000 * E6)
    await supply(me, "WETH", 10 * E18)
    borrowed = int(10 * price * borrow_cf * 0.97 * E6)
    await _tx(w3, c.functions.withdraw(usdc, borrowed), me)
    token = w3.eth.contract(address=usdc, abi=artifacts()["contracts"]["MintableERC20"]["abi"])
    await w3.eth.wait_for_transaction_receipt(await token.functions.transfer(lp, borrowed).transact({"from": me}))
    await w3.provider.make_request("anvil_setBlockTimestampInterval", [0])  # type: ignore[arg-type]
    crash = 1.08 * borrowed / E6 / (10 * liquidate_cf)  # health factor 1.08: under the trigger, not liquidatable
    await dc.set_price(dep, "WETH", crash)
    kit = await deploy_flash(w3, dc, dep, None, lp, {"WETH": crash, "WBTC": 45_000.0, "USDC": 1.0},
                             depth_usd=4_000_000.0)  # fmt: skip
    deleverager = await dc.deploy("Deleverager", me, kit.uni.router)
    settings = settings_for(dep, await w3.eth.chain_id, kit, deleverager, aave=False)
    chain = Chain(keeper_w3, dep.multicall3)
    await grant(chain, settings, tmp_path)
    assert await c.functions.isAllowed(me, deleverager).call()

    k = await run_live_keeper(w3, chain, settings, tmp_path, blocks=2)
    got = await check_outcome(w3, k, dep, deleverager, "WETH")
    dl = w3.eth.contract(address=deleverager, abi=artifacts()["contracts"]["Deleverager"]["abi"])
    assert await dl.functions.cometHealthFactor(dep.comet, me).call() == got["health_factor"]
    assert not await c.functions.isLiquidatable(me).call()
