"""Deploys a market of the *real* Compound v3 bytecode (Comet or CometWithExtendedAssetList, with
its extension, behind the TransparentUpgradeableProxy Comet deployments use) on a local anvil,
from ../shared/upstream/comet.json (see its README; BUSL-1.1, test use only, never shipped).

`inputs_missing()` says, in one line, what a machine lacks. Transactions come from anvil's
unlocked dev accounts (test scaffolding, not the keeper's signing path).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_utils import keccak, to_checksum_address
from web3 import AsyncWeb3

from keeper.devtools.devchain import Deployment, DevChain
from keeper.devtools.real_aave import upstream_dir

E18 = 10**18


def inputs_missing() -> str | None:
    up = upstream_dir()
    if up is None or not (up / "comet.json").is_file():
        return "../shared/upstream/comet.json (or set KEEPER_UPSTREAM_DIR to the folder holding it)"
    return None


@cache
def artifacts() -> dict[str, dict[str, Any]]:
    up = upstream_dir()
    assert up is not None, inputs_missing()
    return dict(json.loads((up / "comet.json").read_text())["contracts"])


def proxy_abi(implementation: str) -> list[dict[str, Any]]:
    """What users call the proxy with: the implementation's ABI and its extension's (the
    functions the implementation lacks fall through to the extension)."""
    arts = artifacts()
    ext = "CometExtAssetList" if implementation == "CometWithExtendedAssetList" else "CometExt"
    abi = [e for e in arts[implementation]["abi"] if e["type"] != "constructor"]
    have = {(e["type"], e.get("name")) for e in abi}
    return abi + [e for e in arts[ext]["abi"] if e["type"] != "constructor" and (e["type"], e.get("name")) not in have]


@dataclass(frozen=True)
class Collateral:
    symbol: str
    decimals: int
    price_usd: float
    borrow_cf: float
    liquidate_cf: float
    liquidation_factor: float
    supply_cap: float
    """Whole tokens."""


def collaterals(n: int) -> tuple[Collateral, ...]:
    """WETH and WBTC, then `n - 2` test collaterals at $100 (the extended list holds up to 24)."""
    first = (
        Collateral("WETH", 18, 3_000.0, 0.83, 0.90, 0.95, 350_000),
        Collateral("WBTC", 8, 60_000.0, 0.70, 0.77, 0.95, 18_000),
    )
    rest = tuple(Collateral(f"C{i:02d}", 18, 100.0, 0.75, 0.80, 0.93, 10_000_000) for i in range(2, n))
    return (first + rest)[:n]


@dataclass
class RealComet(Deployment):
    implementation: str = ""
    collaterals: tuple[str, ...] = ()


async def deploy_real_comet(w3: AsyncWeb3[Any], implementation: str, n_collaterals: int, admin: str,
                            proxy_admin: str) -> RealComet:  # fmt: skip
    """A Comet market (USDC base) of the real `implementation` with `n_collaterals` collaterals.
    `proxy_admin` must be an account used for nothing else (a transparent proxy sends its
    admin's calls to the admin functions only)."""
    if why := inputs_missing():
        raise FileNotFoundError(f"Compound v3 bytecode missing: {why}")
    dc = DevChain(w3)
    arts = artifacts()
    specs = collaterals(n_collaterals)
    dep = RealComet(pool="", oracle="", multicall3=await dc.deploy("Multicall3", admin), deployer=admin,
                    implementation=implementation, collaterals=tuple(s.symbol for s in specs))  # fmt: skip
    for symbol, decimals, price in [("USDC", 6, 1.0)] + [(s.symbol, s.decimals, s.price_usd) for s in specs]:
        dep.tokens[symbol] = await dc.deploy("MintableERC20", admin, f"Test {symbol}", symbol, decimals)
        dep.aggregators[symbol] = await dc.deploy("MockAggregator", admin, 8, f"{symbol} / USD", round(price * 1e8))

    async def create(name: str, *args: Any) -> str:
        c = w3.eth.contract(abi=arts[name]["abi"], bytecode=arts[name]["bytecode"])
        receipt = await w3.eth.wait_for_transaction_receipt(
            await c.constructor(*args).transact({"from": admin, "gas": 15_000_000})
        )
        if receipt["status"] != 1:
            raise RuntimeError(f"deploying {name} reverted")
        return str(receipt["contractAddress"])

    ext_config = (b"Compound USDC".ljust(32, b"\0"), b"cUSDCv3".ljust(32, b"\0"))
    if implementation == "CometWithExtendedAssetList":
        ext = await create("CometExtAssetList", ext_config, await create("AssetListFactory"))
    else:
        ext = await create("CometExt", ext_config)
    assets = [
        (dep.tokens[s.symbol], dep.aggregators[s.symbol], s.decimals, int(s.borrow_cf * E18), int(s.liquidate_cf * E18),
         int(s.liquidation_factor * E18), int(s.supply_cap * 10**s.decimals))
        for s in specs
    ]  # fmt: skip
    config = (
        admin, admin, dep.tokens["USDC"], dep.aggregators["USDC"], ext,
        int(0.90 * E18), int(0.059 * E18), int(2.90 * E18), 0,
        int(0.90 * E18), int(0.061 * E18), int(3.20 * E18), int(0.015 * E18),
        int(0.60 * E18), 10**15, 402_083_333_333, 402_083_333_333, 1_000_000 * 10**6, 100 * 10**6,
        5_000_000 * 10**6, assets,
    )  # fmt: skip
    impl = await create(implementation, config)
    dep.comet = await create("TransparentUpgradeableProxy", impl, proxy_admin, keccak(text="initializeStorage()")[:4])
    dep.comet = to_checksum_address(dep.comet)
    return dep
