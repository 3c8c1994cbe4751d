"""Deploys a full market of the *real* Aave v3 bytecode on a local anvil, for the tests that use
the real protocol as the oracle: v3.0.2 from the npm package @aave/core-v3 (1.19.3), v3.3.0 and
v3.7 from the upstream builds in ../shared/upstream (see its README; BUSL-1.1, test use only).

Nothing here ships the protocol's bytecode: it is read from node_modules and the upstream folder
at test time. `inputs_missing(version)` says, in one line, what a machine lacks to run a version.
Transactions come from anvil's unlocked dev accounts (test scaffolding, not the keeper's signing).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address
from web3 import AsyncWeb3

from keeper.devtools.devchain import Deployment, DevChain

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = ("3.0.2", "3.3.0", "3.7")
NPM_CORE = ROOT / "node_modules" / "@aave" / "core-v3" / "artifacts" / "contracts"
_NPM_PATHS = {
    "PoolAddressesProvider": "protocol/configuration/PoolAddressesProvider.sol",
    "ACLManager": "protocol/configuration/ACLManager.sol",
    "Pool": "protocol/pool/Pool.sol",
    "PoolConfigurator": "protocol/pool/PoolConfigurator.sol",
    "AaveOracle": "misc/AaveOracle.sol",
    "AaveProtocolDataProvider": "misc/AaveProtocolDataProvider.sol",
    "AToken": "protocol/tokenization/AToken.sol",
    "VariableDebtToken": "protocol/tokenization/VariableDebtToken.sol",
    "StableDebtToken": "protocol/tokenization/StableDebtToken.sol",
    "DefaultReserveInterestRateStrategy": "protocol/pool/DefaultReserveInterestRateStrategy.sol",
    **{
        lib: f"protocol/libraries/logic/{lib}.sol"
        for lib in (
            "SupplyLogic",
            "BorrowLogic",
            "LiquidationLogic",
            "EModeLogic",
            "BridgeLogic",
            "PoolLogic",
            "FlashLoanLogic",
            "ConfiguratorLogic",
        )
    },
}
# upstream builds name the deployable implementations "...Instance"
_UPSTREAM_NAMES = {
    "Pool": "PoolInstance",
    "PoolConfigurator": "PoolConfiguratorInstance",
    "AToken": "ATokenInstance",
    "VariableDebtToken": "VariableDebtTokenInstance",
    "DefaultReserveInterestRateStrategy": "DefaultReserveInterestRateStrategyV2",
}
GAS = 29_000_000
ZERO = "0x" + "0" * 40


def upstream_dir() -> Path | None:
    """The folder with the upstream builds: $KEEPER_UPSTREAM_DIR, else ../shared/upstream."""
    env = os.environ.get("KEEPER_UPSTREAM_DIR")
    for p in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "upstream", Path("/work/shared/upstream")]:
        if (p / "aave-v3.3.0.json").is_file():
            return p
    return None


def inputs_missing(version: str) -> str | None:
    """What this machine lacks to deploy `version` (None: nothing)."""
    if version == "3.0.2":
        if not (NPM_CORE / _NPM_PATHS["Pool"] / "Pool.json").is_file():
            return "node_modules/@aave/core-v3 (npm install: the pinned devDependency @aave/core-v3 1.19.3)"
        return None
    up = upstream_dir()
    name = f"aave-v{version}.json"
    if up is None or not (up / name).is_file():
        return f"../shared/upstream/{name} (or set KEEPER_UPSTREAM_DIR to the folder holding it)"
    return None


@cache
def artifacts(version: str) -> dict[str, dict[str, Any]]:
    """Contract name -> {abi, bytecode, linkReferences}, under the names this module uses."""
    if version == "3.0.2":
        out = {}
        for name, rel in _NPM_PATHS.items():
            a = json.loads((NPM_CORE / rel / f"{name}.json").read_text())
            out[name] = {"abi": a["abi"], "bytecode": a["bytecode"], "linkReferences": a["linkReferences"]}
        return out
    up = upstream_dir()
    assert up is not None, inputs_missing(version)
    raw = json.loads((up / f"aave-v{version}.json").read_text())["contracts"]
    by_upstream = {v: k for k, v in _UPSTREAM_NAMES.items()}
    return {by_upstream.get(k, k): v for k, v in raw.items()}


def linked(art: dict[str, Any], libraries: dict[str, str]) -> str:
    """Creation code with every library placeholder replaced by its deployed address."""
    code = art["bytecode"].removeprefix("0x")
    for _source, libs in art["linkReferences"].items():
        for lib, refs in libs.items():
            addr = libraries[lib].lower().removeprefix("0x")
            for ref in refs:
                start = 2 * ref["start"]
                code = code[:start] + addr + code[start + 2 * ref["length"] :]
    return "0x" + code


def pool_abi(version: str) -> list[dict[str, Any]]:
    """The Pool's ABI with the error entries of its libraries (a revert raised in a library
    reaches the caller unchanged)."""
    arts = artifacts(version)
    abi = list(arts["Pool"]["abi"])
    seen = {e.get("name") for e in abi if e.get("type") == "error"}
    for lib in ("SupplyLogic", "BorrowLogic", "LiquidationLogic", "PoolLogic", "FlashLoanLogic"):
        for e in arts.get(lib, {}).get("abi", []):
            if e.get("type") == "error" and e["name"] not in seen:
                abi.append(e)
                seen.add(e["name"])
    return abi


@dataclass(frozen=True)
class ReserveSpec:
    symbol: str
    decimals: int
    price_usd: float
    ltv_bps: int
    liquidation_threshold_bps: int
    liquidation_bonus_bps: int
    reserve_factor_bps: int
    rates_bps: tuple[int, int, int, int]
    """optimalUsageRatio, baseVariableBorrowRate, variableRateSlope1, variableRateSlope2."""
    supply_cap: int = 0
    debt_ceiling: int = 0
    """Isolation mode: USD with 2 decimals (v3.0-v3.6 only)."""
    borrowable_in_isolation: bool = False
    emode: bool = False
    """In e-mode category 1 ("ETH correlated"), as collateral and borrowable."""
    stable_borrowing: bool = False
    """v3.0 only: stable-rate borrowing enabled."""


RESERVES = (
    ReserveSpec("WETH", 18, 3_000.0, 8_050, 8_300, 10_500, 1_500, (8_000, 0, 380, 8_000), emode=True),
    ReserveSpec("WBTC", 8, 60_000.0, 7_300, 7_800, 10_500, 2_000, (4_500, 0, 400, 30_000), supply_cap=1_000),
    ReserveSpec(
        "USDC",
        6,
        1.0,
        7_700,
        8_000,
        10_450,
        1_000,
        (9_000, 0, 400, 6_000),
        borrowable_in_isolation=True,
        stable_borrowing=True,
    ),
    ReserveSpec("WSTETH", 18, 3_300.0, 7_500, 7_900, 10_600, 1_500, (4_500, 0, 450, 8_000), emode=True),
    ReserveSpec("ISO", 18, 10.0, 5_000, 6_500, 10_800, 2_000, (4_500, 0, 700, 30_000), debt_ceiling=1_000_000_00),
)
EMODE = (1, 9_000, 9_300, 10_100, "ETH correlated")
FLASH_PREMIUM_BPS = 5
"""FLASHLOAN_PREMIUM_TOTAL of Aave v3 Ethereum (0.05%)."""


@dataclass
class RealAave(Deployment):
    """A Deployment (pool, oracle, tokens, feeds: what keeper's settings need) of real bytecode."""

    version: str = ""
    revision: int = 0
    provider: str = ""
    configurator: str = ""
    stable_debt_tokens: dict[str, str] = field(default_factory=dict)
    listed: tuple[str, ...] = ()


class AaveDeployer(DevChain):
    """DevChain's helpers over the real contracts of one version (the test tokens, feeds and
    Multicall3 are ours)."""

    def __init__(self, w3: AsyncWeb3[Any], version: str):
        super().__init__(w3)
        self.version = version
        self.arts = artifacts(version)
        self.v30, self.v37 = version == "3.0.2", version == "3.7"

    def contract(self, name: str, address: str | None = None) -> Any:
        if name not in self.arts:
            return super().contract(name, address)
        abi = pool_abi(self.version) if name == "Pool" else self.arts[name]["abi"]
        assert address is not None, "real contracts are deployed with `create` (linked)"
        return self.w3.eth.contract(address=to_checksum_address(address), abi=abi)

    async def create(self, name: str, sender: str, *args: Any, libraries: dict[str, str] | None = None) -> str:
        art = self.arts[name]
        c = self.w3.eth.contract(abi=art["abi"], bytecode=linked(art, libraries or {}))
        tx = await c.constructor(*args).transact({"from": sender, "gas": GAS})
        receipt = await self.w3.eth.wait_for_transaction_receipt(tx)
        if receipt["status"] != 1:
            raise RuntimeError(f"deploying {name} ({self.version}) reverted")
        return str(receipt["contractAddress"])

    async def deploy_aave(self, admin: str, reserves: tuple[ReserveSpec, ...] = RESERVES) -> RealAave:
        if self.v37:  # v3.7 has no isolation mode
            reserves = tuple(r for r in reserves if not r.debt_ceiling)
        dc = self
        multicall = await dc.deploy("Multicall3", admin)
        tokens, feeds = {}, {}
        for s in reserves:
            tokens[s.symbol] = await dc.deploy("MintableERC20", admin, f"Test {s.symbol}", s.symbol, s.decimals)
            feeds[s.symbol] = await dc.deploy("MockAggregator", admin, 8, f"{s.symbol} / USD", round(s.price_usd * 1e8))
        provider = await self.create("PoolAddressesProvider", admin, "keeper test market", admin)
        await self.send("PoolAddressesProvider", provider, "setACLAdmin", admin, admin)
        acl = await self.create("ACLManager", admin, provider)
        await self.send("PoolAddressesProvider", provider, "setACLManager", admin, acl)
        for role in ("addPoolAdmin", "addEmergencyAdmin", "addRiskAdmin", "addAssetListingAdmin"):
            await self.send("ACLManager", acl, role, admin, admin)
        oracle = await self.create(
            "AaveOracle", admin, provider, list(tokens.values()), list(feeds.values()), ZERO, ZERO, 10**8
        )
        await self.send("PoolAddressesProvider", provider, "setPriceOracle", admin, oracle)
        strategy = "" if self.v30 else await self.create("DefaultReserveInterestRateStrategy", admin, provider)
        libs: dict[str, str] = {}
        for lib in ("BorrowLogic", "SupplyLogic", "LiquidationLogic", "EModeLogic", "BridgeLogic", "PoolLogic"):
            if lib in self.arts:
                libs[lib] = await self.create(lib, admin)
        libs["FlashLoanLogic"] = await self.create("FlashLoanLogic", admin, libraries=libs)
        impl_args = (provider, strategy) if self.v37 else (provider,)
        impl = await self.create("Pool", admin, *impl_args, libraries=libs)
        if not self.v37:
            await self.send("Pool", impl, "initialize", admin, provider)
        await self.send("PoolAddressesProvider", provider, "setPoolImpl", admin, impl)
        pool = await self.view("PoolAddressesProvider", provider, "getPool")
        cfg_libs = (
            {"ConfiguratorLogic": await self.create("ConfiguratorLogic", admin)}
            if "ConfiguratorLogic" in self.arts
            else {}
        )
        cfg_impl = await self.create("PoolConfigurator", admin, libraries=cfg_libs)
        if self.v30:
            await self.send("PoolConfigurator", cfg_impl, "initialize", admin, provider)
        await self.send("PoolAddressesProvider", provider, "setPoolConfiguratorImpl", admin, cfg_impl)
        configurator = await self.view("PoolAddressesProvider", provider, "getPoolConfigurator")
        data_provider = await self.create("AaveProtocolDataProvider", admin, provider)
        await self.send("PoolAddressesProvider", provider, "setPoolDataProvider", admin, data_provider)
        treasury = admin
        if self.v37:
            a_impl = await self.create("AToken", admin, pool, ZERO, treasury)
            v_impl = await self.create("VariableDebtToken", admin, pool, ZERO)
        else:
            a_impl = await self.create("AToken", admin, pool)
            v_impl = await self.create("VariableDebtToken", admin, pool)
        s_impl = await self.create("StableDebtToken", admin, pool) if self.v30 else ""
        inputs = [
            await self._init_input(s, tokens[s.symbol], a_impl, v_impl, s_impl, strategy, treasury, provider, admin)
            for s in reserves
        ]
        await self.send("PoolConfigurator", configurator, "initReserves", admin, inputs)
        await self._configure(configurator, admin, reserves, tokens)
        dep = RealAave(
            pool=pool,
            oracle=oracle,
            multicall3=multicall,
            tokens=tokens,
            aggregators=feeds,
            deployer=admin,
            version=self.version,
            provider=provider,
            configurator=configurator,
            listed=tuple(s.symbol for s in reserves),
        )
        dep.revision = int(await self.view("Pool", pool, "POOL_REVISION"))
        for s in reserves:
            d = await self.view("Pool", pool, "getReserveData", tokens[s.symbol])
            dep.a_tokens[s.symbol], dep.stable_debt_tokens[s.symbol], dep.debt_tokens[s.symbol] = d[8], d[9], d[10]
        return dep

    async def _init_input(
        self,
        s: ReserveSpec,
        token: str,
        a_impl: str,
        v_impl: str,
        s_impl: str,
        strategy: str,
        treasury: str,
        provider: str,
        admin: str,
    ) -> tuple[Any, ...]:
        names = (
            f"Aave Test {s.symbol}",
            f"aTest{s.symbol}",
            f"Aave Variable Debt {s.symbol}",
            f"variableDebt{s.symbol}",
        )
        if self.v30:
            ray = 10**27 // 10_000  # bps -> ray
            optimal, base, s1, s2 = s.rates_bps
            rs = await self.create(
                "DefaultReserveInterestRateStrategy",
                admin,
                provider,
                optimal * ray,
                base * ray,
                s1 * ray,
                s2 * ray,
                s1 * ray,
                s2 * ray,
                100 * ray,
                800 * ray,
                2_000 * ray,
            )
            return (
                a_impl,
                s_impl,
                v_impl,
                s.decimals,
                rs,
                token,
                treasury,
                ZERO,
                *names,
                f"Aave Stable Debt {s.symbol}",
                f"stableDebt{s.symbol}",
                b"",
            )
        rate_data = self.w3.codec.encode(["uint16", "uint32", "uint32", "uint32"], list(s.rates_bps))
        if self.v37:
            return (a_impl, v_impl, token, *names, b"", rate_data)
        return (a_impl, v_impl, True, strategy, token, treasury, ZERO, *names, b"", rate_data)

    async def _configure(
        self, configurator: str, admin: str, reserves: tuple[ReserveSpec, ...], tokens: dict[str, str]
    ) -> None:
        c = "PoolConfigurator"
        for s in reserves:
            t = tokens[s.symbol]
            await self.send(
                c,
                configurator,
                "configureReserveAsCollateral",
                admin,
                t,
                s.ltv_bps,
                s.liquidation_threshold_bps,
                s.liquidation_bonus_bps,
            )
            await self.send(c, configurator, "setReserveBorrowing", admin, t, not s.debt_ceiling)
            await self.send(c, configurator, "setReserveFactor", admin, t, s.reserve_factor_bps)
            await self.send(c, configurator, "setLiquidationProtocolFee", admin, t, 1_000)
            await self.send(c, configurator, "setReserveFlashLoaning", admin, t, True)
            if s.supply_cap:
                await self.send(c, configurator, "setSupplyCap", admin, t, s.supply_cap)
            if s.debt_ceiling:
                await self.send(c, configurator, "setDebtCeiling", admin, t, s.debt_ceiling)
            if s.borrowable_in_isolation and not self.v37:
                await self.send(c, configurator, "setBorrowableInIsolation", admin, t, True)
            if s.stable_borrowing and self.v30:
                await self.send(c, configurator, "setReserveStableRateBorrowing", admin, t, True)
        premium = "updateFlashloanPremium" if self.v37 else "updateFlashloanPremiumTotal"
        await self.send(c, configurator, premium, admin, FLASH_PREMIUM_BPS)
        cat, ltv, lt, lb, label = EMODE
        members = [tokens[s.symbol] for s in reserves if s.emode]
        if self.v30:
            await self.send(c, configurator, "setEModeCategory", admin, cat, ltv, lt, lb, ZERO, label)
            for t in members:
                await self.send(c, configurator, "setAssetEModeCategory", admin, t, cat)
            return
        extra = (False,) if self.v37 else ()
        await self.send(c, configurator, "setEModeCategory", admin, cat, ltv, lt, lb, label, *extra)
        for t in members:
            await self.send(c, configurator, "setAssetCollateralInEMode", admin, t, cat, True)
            await self.send(c, configurator, "setAssetBorrowableInEMode", admin, t, cat, True)


async def deploy_real_aave(w3: AsyncWeb3[Any], version: str, admin: str | None = None) -> RealAave:
    """A full real Aave market of `version` (one of VERSIONS) on the chain `w3` talks to."""
    if why := inputs_missing(version):
        raise FileNotFoundError(f"Aave v{version} bytecode missing: {why}")
    admin = admin or (await w3.eth.accounts)[0]
    return await AaveDeployer(w3, version).deploy_aave(admin)
