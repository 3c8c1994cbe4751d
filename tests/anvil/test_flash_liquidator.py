"""keeper's FlashLiquidator (contracts/FlashLiquidator.sol) on anvil with the real Uniswap v3 (npm
artifacts), on our Pool and on the real Aave v3.0.2 and v3.3.0 bytecode: a liquidation funded by
a Uniswap v3 pool's flash and by the Aave Pool's own flashLoanSimple, the collateral sold in the
same transaction, the profit (exactly the sale's quote less the repaid debt and the loan's fee)
sent to the owner, nothing left in the contract; and every revert path: not the owner, a
callback from anyone but the lender (directly, through a third party's Aave flash loan, twice),
reentrancy, no callback, a loan asset the lender lacks, a path that does not lead from the
collateral to the debt asset, the sale's minimum out, minProfit, the lender's lock when it is also
the sale pool, and the Pool's own refusal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account
from eth_utils import to_checksum_address
from web3 import AsyncWeb3

from keeper.devtools.devchain import DevChain, artifacts
from keeper.devtools.flashkit import LEND_FEE, SALE_FEE, deploy_flash
from keeper.devtools.real_aave import FLASH_PREMIUM_BPS, inputs_missing
from keeper.devtools.real_comet import inputs_missing as comet_missing
from keeper.devtools.uniswap import inputs_missing as uniswap_missing
from keeper.risk.intmath import MAX_UINT256
from keeper.sources.abi import error_name, event
from keeper.sources.uniswap import encode_path
from tests.anvil.conftest import DEV_KEYS, on_fresh_anvil, require_real_bytecode
from tests.anvil.test_aave_versions import Market, _deploy

pytestmark = pytest.mark.slow
E18, E6 = 10**18, 10**6
CRASH = 2_300.0


def revert_of(exc: BaseException) -> str:
    """The revert's name (custom error) or message, as the node returned it."""
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        return error_name(bytes.fromhex(data[2:])) or data
    return str(exc)


async def reverts(call: Any, sender: str) -> str:
    try:
        await call.call({"from": sender, "gas": 5_000_000})
    except Exception as exc:
        return revert_of(exc)
    raise AssertionError("expected a revert")


async def on_aave_with_uniswap(scenario: Any, target: str) -> None:
    """`scenario(w3, _, target)` on a fresh anvil, where the real bytecode it needs is present."""
    if target != "ours":
        require_real_bytecode(inputs_missing(target), f"Aave v{target}")
    require_real_bytecode(uniswap_missing(), "Uniswap v3")
    await on_fresh_anvil(scenario, target)


@dataclass
class Scene:
    admin: str
    lp: str
    stranger: str
    users: list[str]
    owner: str
    dep: Any
    dc: DevChain
    market: Market


async def borrowed(w3: AsyncWeb3[Any], target: str, n_users: int, price: float) -> Scene:
    """Our Pool or the real one with a USDC lender and `n_users` accounts holding 10 WETH and
    borrowing 20,000 USDC (HF 10 x 3000 x 0.83 / 20,000 = 1.245), then WETH at `price`."""
    accounts = list(await w3.eth.accounts)
    admin, lp, stranger, users = accounts[0], accounts[1], accounts[2], accounts[10 : 10 + n_users]
    dep = await _deploy(w3, target, admin)
    dc, market = DevChain(w3), Market(w3, target, dep)
    await market.supply(lp, "USDC", 5_000_000)
    for u in users:
        await market.supply(u, "WETH", 10)
        await market.tx(u, "borrow", dep.tokens["USDC"], 20_000 * E6, 2, 0, u)
    await dc.set_price(dep, "WETH", price)
    return Scene(admin, lp, stranger, users, Account.from_key(DEV_KEYS[9]).address, dep, dc, market)


@pytest.mark.parametrize("target", ["ours", "3.0.2", "3.3.0"])
async def test_flash_liquidation_and_every_revert_path(target):
    await on_aave_with_uniswap(_scenario, target)


async def _scenario(w3: AsyncWeb3[Any], _: Any, target: str) -> None:
    sc = await borrowed(w3, target, 4, CRASH)  # at $2,300: HF 0.954 (close factor 50%)
    admin, lp, stranger, users, owner, dep, dc = sc.admin, sc.lp, sc.stranger, sc.users, sc.owner, sc.dep, sc.dc
    weth, usdc, wbtc = dep.tokens["WETH"], dep.tokens["USDC"], dep.tokens["WBTC"]
    kit = await deploy_flash(w3, dc, dep, owner, lp, {"WETH": CRASH, "WBTC": 45_000.0, "USDC": 1.0})
    liq = w3.eth.contract(
        address=to_checksum_address(kit.liquidator), abi=artifacts()["contracts"]["FlashLiquidator"]["abi"]
    )
    sale = encode_path([weth, usdc], [SALE_FEE])
    lender = kit.pools[("WETH", LEND_FEE)]
    erc20 = artifacts()["contracts"]["MintableERC20"]["abi"]

    async def balance(token: str, who: str) -> int:
        return int(await w3.eth.contract(address=token, abi=erc20).functions.balanceOf(who).call())

    def aave(user: str, path: bytes = sale, min_out: int = 0, cover: int = MAX_UINT256) -> tuple[Any, ...]:
        return (dep.pool, weth, user, cover, (path, min_out))

    uni_loan = (0, lender, usdc, 20_000 * E6)

    # -- a liquidation funded by a Uniswap v3 flash, then by the Aave Pool's own flash loan (real Pools)
    sources = [("uniswap", uni_loan)] + ([("aave", (1, dep.pool, usdc, 20_000 * E6))] if target != "ours" else [])
    for (source, loan), user in zip(sources, users, strict=False):
        collateral_before = await balance(dep.a_tokens["WETH"], user) if "WETH" in dep.a_tokens else None
        assert collateral_before is None or collateral_before > 0
        before = await balance(usdc, owner)
        tx = await liq.functions.liquidateAave(loan, aave(user), 1).transact({"from": owner, "gas": 3_000_000})
        receipt = await w3.eth.wait_for_transaction_receipt(tx)
        assert receipt["status"] == 1, f"{target} {source}: reverted"
        got = _events(receipt, dep.pool, kit.liquidator)
        call, flash = got["LiquidationCall"], got["FlashLiquidation"]
        # the sale paid exactly what QuoterV2 quotes for the seized amount before this transaction
        quoted = (
            await kit.uni.contract("QuoterV2", kit.uni.quoter)
            .functions.quoteExactInputSingle((weth, usdc, call["liquidatedCollateralAmount"], SALE_FEE, 0))
            .call(block_identifier=receipt["blockNumber"] - 1)
        )
        fee = (
            -(-loan[3] * LEND_FEE // 10**6) if source == "uniswap" else (loan[3] * FLASH_PREMIUM_BPS + 5_000) // 10_000
        )
        assert flash["fee"] == fee, (source, flash)
        assert flash["profit"] == quoted[0] - call["debtToCover"] - fee > 0, (source, flash, call, quoted[0])
        assert await balance(usdc, owner) - before == flash["profit"]
        for token in (weth, usdc):
            assert await balance(token, kit.liquidator) == 0, "a token was left in the contract"

    # -- revert paths (eth_call: the same EVM; the first one is also sent, to show it on chain)
    user = users[2]
    f = liq.functions
    assert await reverts(f.liquidateAave(uni_loan, aave(user), 1), stranger) == "NotOwner"
    assert await reverts(f.sweep(usdc), stranger) == "NotOwner"
    assert await reverts(f.uniswapV3FlashCallback(0, 0, b""), stranger) == "UnexpectedCallback"
    assert await reverts(f.executeOperation(usdc, 1, 0, kit.liquidator, b""), stranger) == "UnexpectedCallback"
    assert await reverts(f.onMorphoFlashLoan(1, b"\0" * 32), stranger) == "UnexpectedCallback"
    assert await reverts(f.liquidateAave(uni_loan, aave(user, min_out=10**30), 1), owner) == "Too little received"
    assert await reverts(f.liquidateAave(uni_loan, aave(user), 10**30), owner) == "ProfitTooLow"
    assert (
        await reverts(f.liquidateAave(uni_loan, aave(user, encode_path([usdc, weth], [SALE_FEE])), 1), owner)
        == "BadPath"
    )
    assert await reverts(f.liquidateAave(uni_loan, aave(user, b""), 1), owner) == "BadPath"  # WETH is not USDC
    to_wbtc = aave(user, encode_path([weth, wbtc], [SALE_FEE]))  # the lender (WETH/USDC) has no WBTC to lend
    assert await reverts(f.liquidateAave((0, lender, wbtc, 1), to_wbtc, 1), owner) == "LenderLacksAsset"
    sale_pool = kit.pools[("WETH", SALE_FEE)]  # the lender's lock refuses the sale through it
    assert await reverts(f.liquidateAave((0, sale_pool, usdc, 20_000 * E6), aave(user), 1), owner) == "LOK"
    healthy = lp  # no debt: the Pool's own refusal comes back as the Pool names it
    refused = await reverts(f.liquidateAave(uni_loan, aave(healthy), 1), owner)
    assert refused in ("45 (HEALTH_FACTOR_NOT_BELOW_THRESHOLD)", "HealthFactorNotBelowThreshold"), refused
    if target != "ours":  # a third party's flash loan naming our contract as receiver
        pool = w3.eth.contract(address=dep.pool, abi=_flash_abi())
        their = pool.functions.flashLoanSimple(kit.liquidator, usdc, 1_000 * E6, b"", 0)
        assert await reverts(their, stranger) == "UnexpectedCallback"
    tx = await f.liquidateAave(uni_loan, aave(user), 10**30).transact({"from": owner, "gas": 3_000_000})
    assert (await w3.eth.wait_for_transaction_receipt(tx))["status"] == 0  # on chain too: nothing moved

    # -- a hostile lender: a second callback, reentry into the entry point, no callback at all
    hostile = await dc.deploy("HostileLender", admin, *sorted([weth, usdc], key=str.lower))
    await dc.mint(dep, "USDC", hostile, 100_000 * E6)
    h_loan = (0, hostile, usdc, 20_000 * E6)
    reentry = liq.encode_abi("liquidateAave", [h_loan, aave(user), 1])
    for mode, expected in ((0, "UnexpectedCallback"), (1, "Reentrancy"), (2, "NoCallback")):
        await dc.send("HostileLender", hostile, "setMode", admin, mode, bytes.fromhex(reentry[2:]))
        assert await reverts(f.liquidateAave(h_loan, aave(user), 1), owner) == expected, mode
    await dc.send("HostileLender", hostile, "setMode", admin, 3, b"")  # an honest one works
    tx = await f.liquidateAave(h_loan, aave(user), 1).transact({"from": owner, "gas": 3_000_000})
    assert (await w3.eth.wait_for_transaction_receipt(tx))["status"] == 1

    # -- tokens sent by anyone else are swept to the owner
    await dc.mint(dep, "WBTC", kit.liquidator, 12345)
    before = await balance(wbtc, owner)
    await (await _sent(w3, f.sweep(wbtc), owner))
    assert await balance(wbtc, owner) - before == 12345 and await balance(wbtc, kit.liquidator) == 0


async def _sent(w3: AsyncWeb3[Any], call: Any, sender: str) -> Any:
    tx = await call.transact({"from": sender, "gas": 500_000})

    async def mined() -> None:
        assert (await w3.eth.wait_for_transaction_receipt(tx))["status"] == 1

    return mined()


def _flash_abi() -> list[dict[str, Any]]:
    from keeper.sources.abi import load_abi

    return load_abi("AaveV3PoolFlashLoan")


def _events(receipt: Any, pool: str, liquidator: str) -> dict[str, dict[str, Any]]:
    out = {}
    for name, abi, address in (
        ("LiquidationCall", "AaveV3Pool", pool),
        ("FlashLiquidation", "FlashLiquidator", liquidator),
    ):
        ev = event(abi, name)
        for entry in receipt["logs"]:
            if entry["address"].lower() == address.lower() and bytes(entry["topics"][0]) == ev.topic:
                out[name] = ev.decode([bytes(t) for t in entry["topics"]], bytes(entry["data"]))
    return out


@pytest.mark.parametrize("target", ["ours", "Comet"])
async def test_comet_absorb_buy_and_sale_in_one_transaction(target):
    if target != "ours":
        require_real_bytecode(comet_missing(), "Compound v3")
    require_real_bytecode(uniswap_missing(), "Uniswap v3")
    await on_fresh_anvil(_comet_scenario, target)


async def _comet_scenario(w3: AsyncWeb3[Any], _: Any, target: str) -> None:
    from tests.anvil.test_comet_versions import _deploy as deploy_comet
    from tests.anvil.test_comet_versions import _tx

    accounts = list(await w3.eth.accounts)
    admin, proxy_admin, lp, users = accounts[0], accounts[1], accounts[2], accounts[10:12]
    owner = Account.from_key(DEV_KEYS[9]).address
    dep, c = await deploy_comet(w3, target, admin, proxy_admin)
    dc = DevChain(w3)
    weth, usdc = dep.tokens["WETH"], dep.tokens["USDC"]

    async def supply(user: str, symbol: str, units: int) -> None:
        await dc.mint(dep, symbol, user, units)
        await dc.approve(dep, symbol, user, dep.comet, units)
        await _tx(w3, c.functions.supply(dep.tokens[symbol], units), user)

    await supply(lp, "USDC", 1_000_000 * E6)
    for u in users:  # liquidatable at $2,300 (0.83 x 3000 x 1 WETH borrowable before)
        await supply(u, "WETH", E18)
        await _tx(w3, c.functions.withdraw(usdc, 2_460 * E6), u)
    await dc.set_price(dep, "WETH", CRASH)
    assert all([await c.functions.isLiquidatable(u).call() for u in users])
    kit = await deploy_flash(w3, dc, dep, owner, lp, {"WETH": CRASH, "WBTC": 45_000.0, "USDC": 1.0})
    liq = w3.eth.contract(address=kit.liquidator, abi=artifacts()["contracts"]["FlashLiquidator"]["abi"])
    f = liq.functions
    loan = (0, kit.pools[("WETH", LEND_FEE)], usdc, 4_000 * E6)
    sale = (encode_path([weth, usdc], [SALE_FEE]), 0)
    job = (dep.comet, users, [weth], [4_000 * E6], [sale])
    assert (
        await reverts(f.liquidateComet(loan, (dep.comet, users, [weth], [4_000 * E6], []), 1), owner)
        == "LengthMismatch"
    )
    bad = (dep.comet, users, [weth], [4_000 * E6], [(encode_path([usdc, weth], [SALE_FEE]), 0)])
    assert await reverts(f.liquidateComet(loan, bad, 1), owner) == "BadPath"
    assert await reverts(f.liquidateComet(loan, job, 10**30), owner) == "ProfitTooLow"
    assert await reverts(f.liquidateComet(loan, job, 1), lp) == "NotOwner"

    before = await dc.balance(dep, "USDC", owner)
    tx = await f.liquidateComet(loan, job, 1).transact({"from": owner, "gas": 5_000_000})
    receipt = await w3.eth.wait_for_transaction_receipt(tx)
    assert receipt["status"] == 1
    absorbed = [e for e in receipt["logs"] if bytes(e["topics"][0]) == event("Comet", "AbsorbDebt").topic]
    bought = [e for e in receipt["logs"] if bytes(e["topics"][0]) == event("Comet", "BuyCollateral").topic]
    assert len(absorbed) == 2 and len(bought) == 1, "absorb, buy and sale in one transaction"
    ev = event("FlashLiquidator", "FlashLiquidation")
    (flash,) = [ev.decode([bytes(t) for t in e["topics"]], bytes(e["data"])) for e in receipt["logs"]
                if bytes(e["topics"][0]) == ev.topic]  # fmt: skip
    assert flash["profit"] > 0 and await dc.balance(dep, "USDC", owner) - before == flash["profit"]
    assert not any([await c.functions.isLiquidatable(u).call() for u in users])
    for symbol in ("WETH", "USDC"):
        assert await dc.balance(dep, symbol, kit.liquidator) == 0
