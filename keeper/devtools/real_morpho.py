"""Deploys the *real* Morpho Blue (npm @morpho-org/morpho-blue 1.0.0, compiled with solc 0.8.19 by
scripts/build-morpho.mjs into build/morpho.json; BUSL-1.1, test use only, never shipped) on a
local chain, with the package's IrmMock (a rate equal to utilization per year) and our
MorphoChainlinkOracle over the deployment's feeds, and creates markets.

`inputs_missing()` says, in one line, what a machine lacks. Transactions come from the chain's
unlocked dev accounts (test scaffolding, not the keeper's signing path)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from web3 import AsyncWeb3

from keeper.devtools.devchain import Deployment, DevChain
from keeper.protocols.morpho_blue.math import MarketParams

ROOT = Path(__file__).resolve().parents[2]
BUILT = ROOT / "build" / "morpho.json"


def inputs_missing() -> str | None:
    if not BUILT.is_file():
        return "build/morpho.json (scripts/setup.sh compiles node_modules/@morpho-org/morpho-blue with solc 0.8.19)"
    return None


@cache
def artifacts() -> dict[str, dict[str, Any]]:
    assert BUILT.is_file(), inputs_missing()
    return dict(json.loads(BUILT.read_text())["contracts"])


@dataclass
class MorphoDeployment:
    morpho: str
    irm: str
    owner: str
    markets: dict[str, MarketParams] = field(default_factory=dict)
    """Name ('WETH/USDC': collateral/loan) -> its MarketParams."""


class RealMorpho:
    def __init__(self, w3: AsyncWeb3[Any]):
        self.w3 = w3

    def contract(self, name: str, address: str | None = None) -> Any:
        art = artifacts()[name]
        if address is None:
            return self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        return self.w3.eth.contract(address=self.w3.to_checksum_address(address), abi=art["abi"])

    async def _send(self, fn: Any, sender: str) -> Any:
        receipt = await self.w3.eth.wait_for_transaction_receipt(await fn.transact({"from": sender, "gas": 8_000_000}))
        if receipt["status"] != 1:
            raise RuntimeError(f"{fn.fn_name} reverted")
        return receipt

    async def deploy(self, owner: str) -> MorphoDeployment:
        receipt = await self._send(self.contract("Morpho").constructor(owner), owner)
        morpho = str(receipt["contractAddress"])
        receipt = await self._send(self.contract("IrmMock").constructor(), owner)
        irm = str(receipt["contractAddress"])
        await self._send(self.contract("Morpho", morpho).functions.enableIrm(irm), owner)
        return MorphoDeployment(morpho, irm, owner)

    async def create_market(
        self, md: MorphoDeployment, dep: Deployment, collateral: str, loan: str, lltv: float
    ) -> MarketParams:
        """A market lending `loan` against `collateral` (symbols of `dep`), priced by our oracle
        over `dep`'s feeds, at `lltv` (enabled first)."""
        dc = DevChain(self.w3)
        decimals = {s: int(await dc.view("MintableERC20", t, "decimals")) for s, t in dep.tokens.items()}
        oracle = await dc.deploy("MorphoChainlinkOracle", md.owner, dep.aggregators[collateral],
                                 dep.aggregators[loan], decimals[collateral], decimals[loan])  # fmt: skip
        wad = round(lltv * 10**18)
        m = self.contract("Morpho", md.morpho)
        if not await m.functions.isLltvEnabled(wad).call():
            await self._send(m.functions.enableLltv(wad), md.owner)
        params = MarketParams(dep.tokens[loan], dep.tokens[collateral], oracle, md.irm, wad)
        await self._send(m.functions.createMarket(params.as_tuple()), md.owner)
        md.markets[f"{collateral}/{loan}"] = params
        return params
