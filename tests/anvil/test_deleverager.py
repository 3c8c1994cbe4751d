"""keeper's Deleverager (contracts/Deleverager.sol) on anvil with the real Uniswap v3 (npm
artifacts), on our Pool and on the real Aave v3.0.2 bytecode: a protected position that the
crash took near liquidation is brought back, in one transaction and with no cash in the
keeper's wallet, by a flash loan of the debt asset (from a Uniswap v3 pool, and from the Pool's
own flashLoanSimple on the real Pool), the repayment, the user's collateral taken as aTokens
(the user's approval) and sold on Uniswap v3, the loan repaid; what the sale brings beyond the
loan goes back to the user, the contract keeps nothing, and the health factor the Pool reports
afterwards lies in the range given. Then every revert path: not the owner, a health factor out
of range (both sides), a sale short of the loan, the sale's minimum out, a path that does not
lead from the collateral to the debt asset, no aToken approval, a withdrawal the Pool refuses
(it would leave the position unhealthy), and callbacks from anyone but the lender (a stranger,
a hostile lender calling twice, reentering, or never calling back)."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from eth_utils import to_checksum_address
from web3 import AsyncWeb3

from keeper.devtools.devchain import DevChain, artifacts
from keeper.devtools.flashkit import LEND_FEE, SALE_FEE, deploy_flash
from keeper.devtools.real_aave import FLASH_PREMIUM_BPS
from keeper.devtools.real_comet import inputs_missing as comet_missing
from keeper.devtools.uniswap import inputs_missing as uniswap_missing
from keeper.sources.abi import event, load_abi
from keeper.sources.uniswap import encode_path
from tests.anvil.conftest import DEV_KEYS, on_fresh_anvil, require_real_bytecode
from tests.anvil.test_flash_liquidator import borrowed, on_aave_with_uniswap, reverts

pytestmark = pytest.mark.slow
E18, E6 = 10**18, 10**6
CRASH = 2_550.0
"""10 WETH, 20,000 USDC of debt: HF 1.245 at $3,000, 1.058 at $2,550."""


@pytest.mark.parametrize("target", ["ours", "3.0.2"])
async def test_deleverage_in_one_transaction_and_every_revert_path(target):
    await on_aave_with_uniswap(_scenario, target)


async def _scenario(w3: AsyncWeb3[Any], _: Any, target: str) -> None:
    sc = await borrowed(w3, target, 3, CRASH)
    admin, lp, stranger, users, owner, dep, dc, market = (
        sc.admin, sc.lp, sc.stranger, sc.users, sc.owner, sc.dep, sc.dc, sc.market
    )  # fmt: skip
    weth, usdc, wbtc = dep.tokens["WETH"], dep.tokens["USDC"], dep.tokens["WBTC"]
    a_weth = dep.a_tokens["WETH"]
    kit = await deploy_flash(w3, dc, dep, None, lp, {"WETH": CRASH, "WBTC": 45_000.0, "USDC": 1.0})
    address = await dc.deploy("Deleverager", owner, kit.uni.router)
    dl = w3.eth.contract(address=to_checksum_address(address), abi=artifacts()["contracts"]["Deleverager"]["abi"])
    erc20 = artifacts()["contracts"]["MintableERC20"]["abi"]
    sale = encode_path([weth, usdc], [SALE_FEE])
    lender = kit.pools[("WETH", LEND_FEE)]
    f = dl.functions

    def token(a: str) -> Any:
        return w3.eth.contract(address=a, abi=erc20)

    async def approve_a_weth(user: str, amount: int) -> None:
        tx = await token(a_weth).functions.approve(address, amount).transact({"from": user})
        assert (await w3.eth.wait_for_transaction_receipt(tx))["status"] == 1

    async def hf(user: str) -> int:
        return int((await market.pool.functions.getUserAccountData(user).call())[5])

    repay, withdraw = 6_000 * E6, int(2.45 * E18)  # sells 2.45 WETH (~$6,200) for the 6,000 USDC loan + fee

    def plan(user: str, *, w: int = withdraw, path: bytes = sale, min_out: int = 0, lo: int = 0, hi: int = 2**255):
        return (dep.pool, user, weth, a_weth, repay, w, (path, min_out), lo, hi)

    # -- one transaction each: the loan from a Uniswap v3 pool, then from the real Pool itself
    sources = [("uniswap", (0, lender, usdc, repay))]
    if target != "ours":
        sources.append(("aave", (1, dep.pool, usdc, repay)))
    for (source, loan), user in zip(sources, users, strict=False):
        await approve_a_weth(user, withdraw)
        before_hf, before_usdc = await hf(user), int(await token(usdc).functions.balanceOf(user).call())
        predicted = int(await f.deleverageAave(loan, plan(user)).call({"from": owner}))
        slack = predicted // 10**6  # a second of interest may pass between the call and the block that mines it
        tx = await f.deleverageAave(loan, plan(user, lo=predicted - slack, hi=predicted + slack)).transact(
            {"from": owner, "gas": 3_000_000}
        )
        receipt = await w3.eth.wait_for_transaction_receipt(tx)
        assert receipt["status"] == 1, f"{target} {source}: reverted"
        got = _deleveraged(receipt, address)
        fee = -(-repay * LEND_FEE // 10**6) if source == "uniswap" else (repay * FLASH_PREMIUM_BPS + 5_000) // 10_000
        assert (got["repaid"], got["collateralSold"], got["fee"]) == (repay, withdraw, fee), got
        assert abs(got["healthFactor"] - predicted) <= slack and got["healthFactor"] == await hf(user) > before_hf
        expected = (10 - withdraw / E18) * CRASH * 0.83 / (20_000 - repay / E6)  # 1.141 (interest aside)
        assert abs(predicted / E18 - expected) < 1e-4, (predicted, expected)
        assert int(await token(usdc).functions.balanceOf(user).call()) - before_usdc == got["returned"] > 0
        for t in (weth, usdc, a_weth):
            assert int(await token(t).functions.balanceOf(address).call()) == 0, "a token was left in the contract"
        assert int(await token(usdc).functions.balanceOf(owner).call()) == 0  # the keeper needed no cash

    # -- revert paths
    user = users[2]
    loan = (0, lender, usdc, repay)
    assert await reverts(f.deleverageAave(loan, plan(user)), owner) in ("TransferFailed", "HealthOutOfRange")
    await approve_a_weth(user, withdraw)
    predicted = int(await f.deleverageAave(loan, plan(user)).call({"from": owner}))
    assert await reverts(f.deleverageAave(loan, plan(user)), stranger) == "NotOwner"
    assert await reverts(f.deleverageAave(loan, plan(user, lo=predicted + 1)), owner) == "HealthOutOfRange"
    # a second of interest may pass between two calls (the health factor falls): below by more than that
    assert (
        await reverts(f.deleverageAave(loan, plan(user, hi=predicted - predicted // 10**6)), owner)
        == "HealthOutOfRange"
    )
    assert await reverts(f.deleverageAave(loan, plan(user, w=withdraw // 2)), owner) == "SaleTooSmall"
    assert await reverts(f.deleverageAave(loan, plan(user, min_out=10**30)), owner) == "Too little received"
    wrong_way = encode_path([usdc, weth], [SALE_FEE])
    assert await reverts(f.deleverageAave(loan, plan(user, path=wrong_way)), owner) == "BadPath"
    assert await reverts(f.deleverageAave(loan, plan(user, path=encode_path([weth, wbtc], [SALE_FEE]))), owner) == (
        "BadPath"
    )
    await approve_a_weth(user, 9 * E18)  # 9 of 10 WETH for 6,000 of 20,000 USDC: the Pool refuses the transfer
    assert await reverts(f.deleverageAave(loan, plan(user, w=9 * E18)), owner) == "TransferFailed"
    assert await reverts(f.uniswapV3FlashCallback(0, 0, b""), stranger) == "UnexpectedCallback"
    assert await reverts(f.executeOperation(usdc, 1, 0, address, b""), stranger) == "UnexpectedCallback"
    assert await reverts(f.onMorphoFlashLoan(1, b"\0" * 32), stranger) == "UnexpectedCallback"
    hostile = await dc.deploy("HostileLender", admin, *sorted([weth, usdc], key=str.lower))
    await dc.mint(dep, "USDC", hostile, 100_000 * E6)
    h_loan = (0, hostile, usdc, repay)
    reentry = dl.encode_abi("deleverageAave", [h_loan, plan(user)])
    await approve_a_weth(user, withdraw)
    for mode, expected in ((0, "UnexpectedCallback"), (1, "Reentrancy"), (2, "NoCallback")):
        await dc.send("HostileLender", hostile, "setMode", admin, mode, bytes.fromhex(reentry[2:]))
        assert await reverts(f.deleverageAave(h_loan, plan(user)), owner) == expected, mode


def _deleveraged(receipt: Any, address: str) -> dict[str, Any]:
    ev = event("Deleverager", "Deleveraged")
    [entry] = [
        e for e in receipt["logs"] if e["address"].lower() == address.lower() and bytes(e["topics"][0]) == ev.topic
    ]
    return dict(ev.decode([bytes(t) for t in entry["topics"]], bytes(entry["data"])))


@pytest.mark.parametrize("target", ["ours", "Comet"])
async def test_comet_deleverage_in_one_transaction(target):
    """Compound v3: the base borrowed and supplied to the user, the collateral withdrawn with
    `withdrawFrom` (the user `allow`ed the contract), sold, the loan repaid. The health factor the
    contract computes from Comet's views equals the keeper's integer replica, before and after."""
    if target != "ours":
        require_real_bytecode(comet_missing(), "Compound v3")
    require_real_bytecode(uniswap_missing(), "Uniswap v3")
    await on_fresh_anvil(_comet_scenario, target)


async def _comet_scenario(w3: AsyncWeb3[Any], keeper_w3: Any, target: str) -> None:
    from keeper.devtools.demo import make_settings
    from keeper.protocols.comet import math as comet
    from keeper.sources.chain import Chain
    from tests.anvil.test_comet_versions import _deploy as deploy_comet
    from tests.anvil.test_comet_versions import _parity, _tx

    accounts = list(await w3.eth.accounts)
    admin, proxy_admin, lp, stranger, user = accounts[0], accounts[1], accounts[2], accounts[3], accounts[10]
    owner = Account.from_key(DEV_KEYS[9]).address
    dep, _ = await deploy_comet(w3, target, admin, proxy_admin)
    c = w3.eth.contract(address=dep.comet, abi=load_abi("Comet"))
    dc = DevChain(w3)
    weth, usdc = dep.tokens["WETH"], dep.tokens["USDC"]
    info = await c.functions.getAssetInfoByAddress(weth).call()
    borrow_cf, liquidate_cf = info[4] / E18, info[5] / E18

    async def supply(who: str, symbol: str, units: int) -> None:
        await dc.mint(dep, symbol, who, units)
        await dc.approve(dep, symbol, who, dep.comet, units)
        await _tx(w3, c.functions.supply(dep.tokens[symbol], units), who)

    await supply(lp, "USDC", 1_000_000 * E6)
    await supply(user, "WETH", 10 * E18)
    borrowed = int(10 * 3_000 * borrow_cf * 0.95)
    await _tx(w3, c.functions.withdraw(usdc, borrowed * E6), user)
    crash = borrowed * 1.05 / (10 * liquidate_cf)  # HF 1.05
    await dc.set_price(dep, "WETH", crash)
    kit = await deploy_flash(w3, dc, dep, None, lp, {"WETH": crash, "WBTC": 45_000.0, "USDC": 1.0})
    address = await dc.deploy("Deleverager", owner, kit.uni.router)
    dl = w3.eth.contract(address=to_checksum_address(address), abi=artifacts()["contracts"]["Deleverager"]["abi"])
    f = dl.functions
    settings = make_settings(dep, await w3.eth.chain_id, DEV_KEYS[9], (user,), aave=False, perps=False)
    chain = Chain(keeper_w3, dep.multicall3)

    async def replica() -> tuple[int, int]:
        """The keeper's health factor at the head, and the contract's view at the same block."""
        block = await w3.eth.block_number
        p, m = (await _parity(chain, settings, owner, c, [user]))[user]
        return comet.health_factor_wad(p, m.accrued()), await f.cometHealthFactor(dep.comet, user).call(
            block_identifier=block
        )

    keepers, contracts = await replica()
    assert keepers == contracts and 1.04 * E18 < contracts < 1.06 * E18
    before = contracts
    repay = 8_000 * E6
    withdraw = int(repay / E6 * 1.02 / crash * E18)
    loan = (0, kit.pools[("WETH", LEND_FEE)], usdc, repay)
    job = (dep.comet, user, weth, repay, withdraw, (encode_path([weth, usdc], [SALE_FEE]), 0), 0, 2**255)
    assert await reverts(f.deleverageComet(loan, job), owner) == "Unauthorized"  # not allowed yet
    await _tx(w3, c.functions.allow(address, True), user)
    assert await reverts(f.deleverageComet(loan, job), stranger) == "NotOwner"
    predicted = int(await f.deleverageComet(loan, job).call({"from": owner}))
    too_high = (*job[:6], predicted + 1, 2**255)
    assert await reverts(f.deleverageComet(loan, too_high), owner) == "HealthOutOfRange"
    usdc_before = await dc.balance(dep, "USDC", user)
    slack = predicted // 10**6  # a second of interest may pass between the call and the block that mines it
    in_range = (*job[:6], predicted - slack, predicted + slack)
    tx = await f.deleverageComet(loan, in_range).transact({"from": owner, "gas": 3_000_000})
    receipt = await w3.eth.wait_for_transaction_receipt(tx)
    assert receipt["status"] == 1
    got = _deleveraged(receipt, address)
    assert (got["repaid"], got["collateralSold"]) == (repay, withdraw) and abs(got["healthFactor"] - predicted) <= slack
    keepers, contracts = await replica()
    assert got["healthFactor"] == contracts == keepers > before, (got, contracts, keepers)
    assert await dc.balance(dep, "USDC", user) - usdc_before == got["returned"] > 0
    for symbol in ("WETH", "USDC"):
        assert await dc.balance(dep, symbol, address) == 0
