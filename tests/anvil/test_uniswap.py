"""The real Uniswap v3 from its npm artifacts on anvil: pools at a price with full-range liquidity,
QuoterV2's quote equal to what SwapRouter then swaps, pools where the periphery computes them."""

import os

import pytest
from web3 import AsyncWeb3
from web3.providers import AsyncHTTPProvider

from keeper.devtools.devchain import DevChain
from keeper.devtools.uniswap import deploy_uniswap, inputs_missing, pool_address, sqrt_price_x96

E18, E6 = 10**18, 10**6


def require_uniswap() -> None:
    missing = inputs_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the Uniswap v3 npm artifacts: {missing}")
        pytest.skip(f"Uniswap v3 npm artifacts missing: {missing}")


def test_sqrt_price_of_weth_usdc_at_3000():
    # USDC (6) per WETH (18) at $3,000 when WETH is token0: raw price 3000e6 / 1e18
    assert sqrt_price_x96(3_000.0, 18, 6) == pytest.approx((3_000 * 10**6 / 10**18) ** 0.5 * 2**96, rel=1e-12)


async def test_quote_equals_the_swap_and_pools_are_where_the_periphery_looks(anvil):
    require_uniswap()
    w3 = AsyncWeb3(AsyncHTTPProvider(anvil, request_kwargs={"timeout": 60}))
    accounts = list(await w3.eth.accounts)
    dc = DevChain(w3)
    dep = await dc.deploy_market(accounts[0])
    weth, usdc = dep.tokens["WETH"], dep.tokens["USDC"]
    uni = await deploy_uniswap(w3, accounts[0], weth)
    lp, trader = accounts[1], accounts[2]
    await dc.mint(dep, "WETH", lp, 1_000 * E18)
    await dc.mint(dep, "USDC", lp, 3_000_000 * E6)
    pool = await uni.create_pool(weth, usdc, 3_000, 3_000.0, 1_000 * E18, 3_000_000 * E6, (18, 6), lp)
    assert pool == pool_address(uni.factory, weth, usdc, 3_000)  # the init code hash matches

    quoted = await uni.quote_exact_input_single(weth, usdc, 3_000, 10 * E18)
    # 10 WETH into 1,000 WETH / 3M USDC at 0.3%: about 10 x 3000 x 0.997 / 1.01
    assert 29_500 * E6 < quoted < 29_800 * E6, quoted
    await dc.mint(dep, "WETH", trader, 10 * E18)
    await dc.approve(dep, "WETH", trader, uni.router, 10 * E18)
    router = uni.contract("SwapRouter", uni.router)
    deadline = (await w3.eth.get_block("latest"))["timestamp"] + 600
    before = await dc.balance(dep, "USDC", trader)
    await uni._send(
        router.functions.exactInputSingle((weth, usdc, 3_000, trader, deadline, 10 * E18, quoted, 0)), trader
    )
    assert await dc.balance(dep, "USDC", trader) - before == quoted  # the quote is what the swap pays
    with pytest.raises(Exception, match="Too little received"):  # min out above what the pool pays
        await dc.mint(dep, "WETH", trader, 10 * E18)
        await dc.approve(dep, "WETH", trader, uni.router, 10 * E18)
        again = await uni.quote_exact_input_single(weth, usdc, 3_000, 10 * E18)
        await router.functions.exactInputSingle((weth, usdc, 3_000, trader, deadline, 10 * E18, again + 1, 0)).call(
            {"from": trader}
        )
