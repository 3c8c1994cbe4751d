"""The real Uniswap v3 on a dev chain, from the compiled artifacts of the pinned npm packages
(`@uniswap/v3-core` 1.0.1, `@uniswap/v3-periphery` 1.4.4; package.json): the factory, QuoterV2,
SwapRouter and the NonfungiblePositionManager, and pools initialised at a price with full-range
liquidity. The periphery finds pools by CREATE2 with the core pool's init code hash, which the
npm pool bytecode matches (checked at load). For tests, the demo and benchmarks; not the keeper."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from eth_utils import keccak, to_checksum_address
from web3 import AsyncWeb3

from keeper.sources.uniswap import POOL_INIT_CODE_HASH, pool_address

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = {
    "UniswapV3Factory": "@uniswap/v3-core/artifacts/contracts/UniswapV3Factory.sol/UniswapV3Factory.json",
    "UniswapV3Pool": "@uniswap/v3-core/artifacts/contracts/UniswapV3Pool.sol/UniswapV3Pool.json",
    "QuoterV2": "@uniswap/v3-periphery/artifacts/contracts/lens/QuoterV2.sol/QuoterV2.json",
    "SwapRouter": "@uniswap/v3-periphery/artifacts/contracts/SwapRouter.sol/SwapRouter.json",
    "NonfungiblePositionManager": (
        "@uniswap/v3-periphery/artifacts/contracts/NonfungiblePositionManager.sol/NonfungiblePositionManager.json"
    ),
}
TICK_SPACING = {100: 1, 500: 10, 3_000: 60, 10_000: 200}
MAX_TICK = 887_272


def inputs_missing() -> str | None:
    """Which npm artifact is missing (None: all there)."""
    for name, rel in ARTIFACTS.items():
        if not (ROOT / "node_modules" / rel).exists():
            return f"node_modules/{rel} ({name}: run scripts/setup.sh)"
    return None


@cache
def artifact(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "node_modules" / ARTIFACTS[name]).read_text())
    if name == "UniswapV3Pool" and keccak(hexstr=data["bytecode"]).hex() != POOL_INIT_CODE_HASH:
        raise ValueError("the npm UniswapV3Pool bytecode does not match the periphery's POOL_INIT_CODE_HASH")
    return data


def sqrt_price_x96(price: float, decimals0: int, decimals1: int) -> int:
    """sqrtPriceX96 for `price` token1 per token0 in whole units (raw: x 10^(d1 - d0))."""
    raw = price * 10 ** (decimals1 - decimals0)
    return int(math.sqrt(raw) * 2**96)


@dataclass
class Uniswap:
    w3: AsyncWeb3[Any]
    deployer: str
    factory: str
    quoter: str
    router: str
    positions: str
    weth: str
    pools: dict[tuple[str, str, int], str] = field(default_factory=dict)

    def contract(self, name: str, address: str) -> Any:
        return self.w3.eth.contract(address=to_checksum_address(address), abi=artifact(name)["abi"])

    async def _send(self, call: Any, sender: str) -> Any:
        tx_hash = await call.transact({"from": sender})
        receipt = await self.w3.eth.wait_for_transaction_receipt(tx_hash)
        if receipt["status"] != 1:
            raise RuntimeError(f"{call.fn_name} reverted")
        return receipt

    async def create_pool(
        self,
        token_a: str,
        token_b: str,
        fee: int,
        price_b_per_a: float,
        amount_a: int,
        amount_b: int,
        decimals: tuple[int, int],
        provider: str,
    ) -> str:
        """A pool of (token_a, token_b) at `price_b_per_a` (whole units), with full-range
        liquidity from `provider` (who holds and has not approved the amounts; approved here).
        Returns the pool's address."""
        erc20 = [
            {"name": "approve", "type": "function", "stateMutability": "nonpayable",
             "inputs": [{"name": "s", "type": "address"}, {"name": "a", "type": "uint256"}],
             "outputs": [{"name": "", "type": "bool"}]},
        ]  # fmt: skip
        a_first = token_a.lower() < token_b.lower()
        t0, t1 = (token_a, token_b) if a_first else (token_b, token_a)
        d0, d1 = decimals if a_first else decimals[::-1]
        price01 = price_b_per_a if a_first else 1 / price_b_per_a
        factory = self.contract("UniswapV3Factory", self.factory)
        await self._send(factory.functions.createPool(t0, t1, fee), self.deployer)
        address = str(await factory.functions.getPool(t0, t1, fee).call())
        pool = self.contract("UniswapV3Pool", address)
        await self._send(pool.functions.initialize(sqrt_price_x96(price01, d0, d1)), self.deployer)
        amounts = (amount_a, amount_b) if a_first else (amount_b, amount_a)
        for token, amount in zip((t0, t1), amounts, strict=True):
            c = self.w3.eth.contract(address=to_checksum_address(token), abi=erc20)
            await self._send(c.functions.approve(self.positions, amount), provider)
        spacing = TICK_SPACING[fee]
        lower, upper = -(MAX_TICK // spacing) * spacing, (MAX_TICK // spacing) * spacing
        params = (t0, t1, fee, lower, upper, amounts[0], amounts[1], 0, 0, provider, 2**255)
        await self._send(self.contract("NonfungiblePositionManager", self.positions).functions.mint(params), provider)
        self.pools[(t0.lower(), t1.lower(), fee)] = address
        return address

    async def quote_exact_input_single(self, token_in: str, token_out: str, fee: int, amount_in: int) -> int:
        """QuoterV2's amount out (an eth_call: the quoter reverts inside to report)."""
        quoter = self.contract("QuoterV2", self.quoter)
        out = await quoter.functions.quoteExactInputSingle((token_in, token_out, amount_in, fee, 0)).call()
        return int(out[0])


async def deploy_uniswap(w3: AsyncWeb3[Any], deployer: str, weth: str) -> Uniswap:
    """The factory, QuoterV2, SwapRouter and NonfungiblePositionManager (no token descriptor)."""

    async def deploy(name: str, *args: Any) -> str:
        a = artifact(name)
        tx_hash = (
            await w3.eth.contract(abi=a["abi"], bytecode=a["bytecode"]).constructor(*args).transact({"from": deployer})
        )
        receipt = await w3.eth.wait_for_transaction_receipt(tx_hash)
        return str(receipt["contractAddress"])

    factory = await deploy("UniswapV3Factory")
    quoter = await deploy("QuoterV2", factory, weth)
    router = await deploy("SwapRouter", factory, weth)
    positions = await deploy("NonfungiblePositionManager", factory, weth, "0x" + "00" * 20)
    return Uniswap(w3, deployer, factory, quoter, router, positions, to_checksum_address(weth))


__all__ = ["POOL_INIT_CODE_HASH", "Uniswap", "deploy_uniswap", "inputs_missing", "pool_address", "sqrt_price_x96"]
