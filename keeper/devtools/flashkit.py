"""The flash path on a dev chain: Uniswap v3 pools for a market's assets against its stablecoin
(a sale pool and a second fee tier that can lend), priced at the oracle's prices, and keeper's
FlashLiquidator owned by the keeper. For the demo, deploy-testnet, tests and benchmarks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from web3 import AsyncWeb3

from keeper.devtools.devchain import Deployment, DevChain
from keeper.devtools.uniswap import Uniswap, deploy_uniswap

SALE_FEE, LEND_FEE = 3_000, 500


@dataclass
class FlashKit:
    uni: Uniswap
    liquidator: str
    pools: dict[tuple[str, int], str] = field(default_factory=dict)
    """(symbol, fee) -> pool of symbol against the quote asset."""

    def settings(self, funding: str = "flash", **extra: Any) -> dict[str, Any]:
        """The [flash] table for this deployment."""
        return {"funding": funding, "liquidator": self.liquidator, "router": self.uni.router,
                "factory": self.uni.factory, "quoter": self.uni.quoter, **extra}  # fmt: skip


async def deploy_liquidator(w3: AsyncWeb3[Any], owner: str, router: str) -> str:
    return await DevChain(w3).deploy("FlashLiquidator", owner, router)


async def deploy_flash(
    w3: AsyncWeb3[Any],
    dc: DevChain,
    dep: Deployment,
    owner: str | None,
    lp: str,
    prices: dict[str, float],
    depth_usd: float = 20_000_000.0,
    quote: str = "USDC",
    weth: str = "WETH",
) -> FlashKit:
    """Uniswap v3 (factory, QuoterV2, SwapRouter) with, for every other asset of `dep`, a
    full-range pool against `quote` at `prices` holding `depth_usd` (half each side) at the sale
    fee tier and half that at the lending tier; and, unless `owner` is None, a FlashLiquidator
    owned by `owner`. `dep`'s tokens must be mintable by its deployer (our MintableERC20)."""
    uni = await deploy_uniswap(w3, dep.deployer, dep.tokens[weth])
    kit = FlashKit(uni, await deploy_liquidator(w3, owner, uni.router) if owner else "")
    decimals = {s: int(await dc.view("MintableERC20", t, "decimals")) for s, t in dep.tokens.items()}
    for symbol, token in dep.tokens.items():
        if symbol == quote or symbol not in prices:
            continue
        for fee, share in ((SALE_FEE, 1.0), (LEND_FEE, 0.5)):
            side = depth_usd * share / 2
            amount = int(side / prices[symbol] * 10 ** decimals[symbol])
            amount_q = int(side / prices[quote] * 10 ** decimals[quote])
            await dc.mint(dep, symbol, lp, amount)
            await dc.mint(dep, quote, lp, amount_q)
            price = prices[symbol] / prices[quote]
            pair_decimals = (decimals[symbol], decimals[quote])
            pool = await uni.create_pool(token, dep.tokens[quote], fee, price, amount, amount_q, pair_decimals, lp)
            kit.pools[(symbol, fee)] = pool
    return kit
