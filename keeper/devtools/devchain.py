"""Deploys our Aave v3- and Compound v3-compatible test markets on a local chain (eth-tester or anvil).

Used by `keeper demo` and the chain tests. Transactions here come from the chain's unlocked
dev accounts (this is test scaffolding, not the keeper's signing path).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address
from web3 import AsyncWeb3

from keeper.protocols.aave_v3.math import RAY, ReserveConfig

ARTIFACTS_PATH = Path(__file__).resolve().parent / "artifacts.json"


@cache
def artifacts() -> dict[str, Any]:
    return dict(json.loads(ARTIFACTS_PATH.read_text()))


@dataclass(frozen=True)
class AssetSpec:
    symbol: str
    decimals: int
    price_usd: float
    ltv_bps: int
    liquidation_threshold_bps: int
    liquidation_bonus_bps: int
    liquidation_protocol_fee_bps: int = 1_000
    reserve_factor_bps: int = 1_000
    borrow_rate: float = 0.05
    """Annual variable borrow rate (fraction)."""

    def config(self) -> ReserveConfig:
        return ReserveConfig(
            ltv_bps=self.ltv_bps,
            liquidation_threshold_bps=self.liquidation_threshold_bps,
            liquidation_bonus_bps=self.liquidation_bonus_bps,
            decimals=self.decimals,
            active=True,
            frozen=False,
            borrowing_enabled=True,
            paused=False,
            reserve_factor_bps=self.reserve_factor_bps,
            liquidation_protocol_fee_bps=self.liquidation_protocol_fee_bps,
        )


# Parameters in the range of Aave v3 Ethereum's.
DEFAULT_ASSETS = (
    AssetSpec("WETH", 18, 3_000.0, 8_050, 8_300, 10_500, 1_000, 1_500, 0.03),
    AssetSpec("WBTC", 8, 60_000.0, 7_300, 7_800, 10_500, 1_000, 2_000, 0.02),
    AssetSpec("USDC", 6, 1.0, 7_500, 7_800, 10_450, 1_000, 1_000, 0.06),
)


@dataclass
class Deployment:
    pool: str
    oracle: str
    multicall3: str
    tokens: dict[str, str] = field(default_factory=dict)
    aggregators: dict[str, str] = field(default_factory=dict)
    a_tokens: dict[str, str] = field(default_factory=dict)
    debt_tokens: dict[str, str] = field(default_factory=dict)
    specs: dict[str, AssetSpec] = field(default_factory=dict)
    deployer: str = ""
    comet: str = ""
    """The Comet market (base USDC; WETH and WBTC collateral), once `deploy_comet` ran."""
    perps: str = ""
    """The Synthetix-v3-style perps market (ETH and BTC, snxUSD margin), once `deploy_perps` ran."""
    snx_usd: str = ""


@dataclass(frozen=True)
class CometAssetSpec:
    symbol: str
    borrow_collateral_factor: float
    liquidate_collateral_factor: float
    liquidation_factor: float
    supply_cap: float
    """Whole tokens."""


# In the range of Compound v3's USDC market on Ethereum.
COMET_ASSETS = (
    CometAssetSpec("WETH", 0.83, 0.90, 0.95, 350_000),
    CometAssetSpec("WBTC", 0.70, 0.77, 0.95, 18_000),
)
COMET_BASE = "USDC"
COMET_TARGET_RESERVES = 5_000_000
COMET_BASE_BORROW_MIN = 100
COMET_STORE_FRONT_PRICE_FACTOR = 0.6
_YEAR = 365 * 86_400


@dataclass(frozen=True)
class PerpSpec:
    market_id: int
    symbol: str
    feed_symbol: str
    skew_scale: float
    """Whole units of the asset."""
    max_funding_velocity: float
    initial_margin_ratio: float
    minimum_initial_margin_ratio: float
    maintenance_margin_scalar: float
    flag_reward_ratio: float
    minimum_position_margin: float
    """USD."""


# Shaped like Synthetix v3's ETH and BTC markets (ids 100 and 200 on Base).
PERP_MARKETS = (
    PerpSpec(100, "ETH", "WETH", 1_000_000, 9.0, 2.0, 0.02, 0.5, 0.0005, 0.0),
    PerpSpec(200, "BTC", "WBTC", 35_000, 9.0, 2.0, 0.02, 0.5, 0.0005, 0.0),
)
PERPS_MIN_KEEPER_REWARD_USD = 1.0
PERPS_MAX_KEEPER_REWARD_USD = 500.0
PERPS_LIQUIDITY_USD = 10_000_000
PERPS_STALENESS_S = 90_000
PERMISSIONS = (b"PERPS_MODIFY_COLLATERAL".ljust(32, b"\0"), b"PERPS_COMMIT_ASYNC_ORDER".ljust(32, b"\0"))


def _per_second(rate_per_year: float) -> int:
    return int(rate_per_year * 10**18) // _YEAR


class DevChain:
    """Helpers over an AsyncWeb3 connected to a local dev chain."""

    def __init__(self, w3: AsyncWeb3[Any]):
        self.w3 = w3

    def contract(self, name: str, address: str | None = None) -> Any:
        a = artifacts()["contracts"][name]
        if address is None:
            return self.w3.eth.contract(abi=a["abi"], bytecode=a["bytecode"])
        return self.w3.eth.contract(address=to_checksum_address(address), abi=a["abi"])

    async def deploy(self, name: str, sender: str, *args: Any) -> str:
        tx_hash = await self.contract(name).constructor(*args).transact({"from": sender})
        receipt = await self.w3.eth.wait_for_transaction_receipt(tx_hash)
        return str(receipt["contractAddress"])

    async def send(self, name: str, address: str, method: str, sender: str, *args: Any) -> Any:
        tx_hash = await getattr(self.contract(name, address).functions, method)(*args).transact({"from": sender})
        receipt = await self.w3.eth.wait_for_transaction_receipt(tx_hash)
        if receipt["status"] != 1:
            raise RuntimeError(f"{name}.{method} reverted")
        return receipt

    async def view(self, name: str, address: str, method: str, *args: Any) -> Any:
        return await getattr(self.contract(name, address).functions, method)(*args).call()

    async def deploy_market(self, deployer: str, assets: tuple[AssetSpec, ...] = DEFAULT_ASSETS) -> Deployment:
        multicall = await self.deploy("Multicall3", deployer)
        tokens, aggs = {}, {}
        for s in assets:
            tokens[s.symbol] = await self.deploy("MintableERC20", deployer, f"Test {s.symbol}", s.symbol, s.decimals)
            aggs[s.symbol] = await self.deploy(
                "MockAggregator", deployer, 8, f"{s.symbol} / USD", round(s.price_usd * 1e8)
            )
        oracle = await self.deploy(
            "AaveOracle", deployer, list(tokens.values()), list(aggs.values()), "0x" + "0" * 40, 10**8
        )
        pool = await self.deploy("Pool", deployer, oracle)
        dep = Deployment(
            pool=pool,
            oracle=oracle,
            multicall3=multicall,
            tokens=tokens,
            aggregators=aggs,
            specs={s.symbol: s for s in assets},
            deployer=deployer,
        )
        for s in assets:
            token = tokens[s.symbol]
            a_token = await self.deploy(
                "AToken", deployer, pool, token, deployer, f"aTest {s.symbol}", f"a{s.symbol}", s.decimals
            )
            debt = await self.deploy(
                "VariableDebtToken", deployer, pool, token, f"variableDebt {s.symbol}", f"vd{s.symbol}", s.decimals
            )
            await self.send(
                "Pool",
                pool,
                "initReserve",
                deployer,
                token,
                a_token,
                debt,
                s.config().to_bitmap(),
                int(s.borrow_rate * RAY),
            )
            dep.a_tokens[s.symbol], dep.debt_tokens[s.symbol] = a_token, debt
        return dep

    async def deploy_comet(self, dep: Deployment, assets: tuple[CometAssetSpec, ...] = COMET_ASSETS) -> str:
        """A Comet market on the same tokens and price feeds (USDC base), as on mainnet where
        Aave and Compound read the same Chainlink feeds."""
        e18 = 10**18
        rates = (
            int(0.90 * e18),  # supplyKink
            _per_second(0.059),  # supply slope low
            _per_second(2.90),  # supply slope high
            0,  # supply base
            int(0.90 * e18),  # borrowKink
            _per_second(0.061),  # borrow slope low
            _per_second(3.20),  # borrow slope high
            _per_second(0.015),  # borrow base
        )
        base_unit = 10 ** dep.specs[COMET_BASE].decimals
        comet = await self.deploy(
            "Comet",
            dep.deployer,
            dep.tokens[COMET_BASE],
            dep.aggregators[COMET_BASE],
            COMET_BASE_BORROW_MIN * base_unit,
            COMET_TARGET_RESERVES * base_unit,
            int(COMET_STORE_FRONT_PRICE_FACTOR * e18),
            rates,
        )
        for a in assets:
            await self.send(
                "Comet",
                comet,
                "addAsset",
                dep.deployer,
                dep.tokens[a.symbol],
                dep.aggregators[a.symbol],
                int(a.borrow_collateral_factor * e18),
                int(a.liquidate_collateral_factor * e18),
                int(a.liquidation_factor * e18),
                int(a.supply_cap * 10 ** dep.specs[a.symbol].decimals),
            )
        dep.comet = comet
        return comet

    async def comet_supply(self, dep: Deployment, symbol: str, user: str, amount: int) -> None:
        """Mint `amount` to `user` and supply it to the Comet market (base or collateral)."""
        await self.mint(dep, symbol, user, amount)
        await self.approve(dep, symbol, user, dep.comet, amount)
        await self.send("Comet", dep.comet, "supply", user, dep.tokens[symbol], amount)

    async def comet_borrow(self, dep: Deployment, user: str, amount: int) -> None:
        """Withdraw base beyond the user's supply: a borrow."""
        await self.send("Comet", dep.comet, "withdraw", user, dep.tokens[COMET_BASE], amount)

    async def deploy_perps(self, dep: Deployment, markets: tuple[PerpSpec, ...] = PERP_MARKETS) -> str:
        """A perps market on the deployment's price feeds, with snxUSD margin and LP liquidity."""
        e18 = 10**18
        usd = await self.deploy("MintableERC20", dep.deployer, "Synthetic USD", "snxUSD", 18)
        perps = await self.deploy("PerpsMarket", dep.deployer, usd)
        for m in markets:
            await self.send(
                "PerpsMarket", perps, "createMarket", dep.deployer, m.market_id, m.symbol, m.symbol,
                dep.aggregators[m.feed_symbol], PERPS_STALENESS_S,
            )  # fmt: skip
            await self.send(
                "PerpsMarket", perps, "setFundingParameters", dep.deployer, m.market_id,
                int(m.skew_scale * e18), int(m.max_funding_velocity * e18),
            )  # fmt: skip
            await self.send(
                "PerpsMarket", perps, "setLiquidationParameters", dep.deployer, m.market_id,
                int(m.initial_margin_ratio * e18), int(m.minimum_initial_margin_ratio * e18),
                int(m.maintenance_margin_scalar * e18), int(m.flag_reward_ratio * e18),
                int(m.minimum_position_margin * e18),
            )  # fmt: skip
        await self.send(
            "PerpsMarket", perps, "setKeeperRewardGuards", dep.deployer,
            int(PERPS_MIN_KEEPER_REWARD_USD * e18), 0, int(PERPS_MAX_KEEPER_REWARD_USD * e18), 0,
        )  # fmt: skip
        await self.send("MintableERC20", usd, "mint", dep.deployer, perps, PERPS_LIQUIDITY_USD * e18)
        dep.perps, dep.snx_usd = perps, usd
        return perps

    async def perps_open(
        self, dep: Deployment, owner: str, margin_usd: int, market_id: int, size: int, keeper: str | None = None
    ) -> int:
        """Create a perps account for `owner` with `margin_usd` (18 decimals) of snxUSD and a
        position of `size` (signed, 18 decimals) settled at once; optionally let `keeper` add
        margin and commit orders for it. Returns the account id."""
        c = self.contract("PerpsMarket", dep.perps)
        account_id = int(await c.functions.createAccount().call({"from": owner}))
        await self.send("PerpsMarket", dep.perps, "createAccount", owner)
        await self.send("MintableERC20", dep.snx_usd, "mint", dep.deployer, owner, margin_usd)
        await self.send("MintableERC20", dep.snx_usd, "approve", owner, dep.perps, margin_usd)
        await self.send("PerpsMarket", dep.perps, "modifyCollateral", owner, account_id, 0, margin_usd)
        if size:
            request = (market_id, account_id, size, 0, 2**255 if size > 0 else 0, b"\0" * 32, "0x" + "0" * 40)
            await self.send("PerpsMarket", dep.perps, "commitOrder", owner, request)
            await self.send("PerpsMarket", dep.perps, "settleOrder", owner, account_id)
        if keeper:
            for permission in PERMISSIONS:
                await self.send("PerpsMarket", dep.perps, "grantPermission", owner, account_id, permission, keeper)
        return account_id

    # -- scenario helpers
    async def mint(self, dep: Deployment, symbol: str, to: str, amount: int) -> None:
        await self.send("MintableERC20", dep.tokens[symbol], "mint", dep.deployer, to, amount)

    async def approve(self, dep: Deployment, symbol: str, owner: str, spender: str, amount: int) -> None:
        await self.send("MintableERC20", dep.tokens[symbol], "approve", owner, spender, amount)

    async def supply(self, dep: Deployment, symbol: str, user: str, amount: int) -> None:
        await self.mint(dep, symbol, user, amount)
        await self.approve(dep, symbol, user, dep.pool, amount)
        await self.send("Pool", dep.pool, "supply", user, dep.tokens[symbol], amount, user, 0)

    async def borrow(self, dep: Deployment, symbol: str, user: str, amount: int) -> None:
        await self.send("Pool", dep.pool, "borrow", user, dep.tokens[symbol], amount, 2, 0, user)

    async def set_price(self, dep: Deployment, symbol: str, price_usd: float) -> None:
        await self.send("MockAggregator", dep.aggregators[symbol], "updateAnswer", dep.deployer, round(price_usd * 1e8))

    async def heartbeat(self, dep: Deployment) -> None:
        """Every feed posts a new round with its current answer, as Chainlink feeds do at least
        once per heartbeat (after `advance_time`, or the keeper's oracle guard sees stale prices)."""
        for agg in dep.aggregators.values():
            answer = await self.view("MockAggregator", agg, "latestAnswer")
            await self.send("MockAggregator", agg, "updateAnswer", dep.deployer, answer)

    async def account_data(self, dep: Deployment, user: str) -> tuple[int, ...]:
        return tuple(await self.view("Pool", dep.pool, "getUserAccountData", user))

    async def balance(self, dep: Deployment, symbol: str, owner: str) -> int:
        return int(await self.view("MintableERC20", dep.tokens[symbol], "balanceOf", owner))

    async def advance_time(self, seconds: int) -> None:
        """Move the chain's clock forward and mine a block (eth-tester or anvil)."""
        provider = self.w3.provider
        tester = getattr(provider, "ethereum_tester", None)
        if tester is not None:
            latest = await self.w3.eth.get_block("latest")
            tester.time_travel(int(latest["timestamp"]) + seconds)
            tester.mine_blocks(1)
        else:
            await provider.make_request("evm_increaseTime", [seconds])
            await provider.make_request("evm_mine", [])
