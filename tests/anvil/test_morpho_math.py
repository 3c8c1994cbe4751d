"""keeper's Morpho Blue integer replica (keeper/protocols/morpho_blue/math.py) against the real
Morpho contract (npm @morpho-org/morpho-blue 1.0.0, built with solc 0.8.19) on anvil, on random
positions: interest accrued off-chain for 30 days from the stored state and the IRM's
`borrowRateView` (with a 10 % fee taken in supply shares) equals what `accrueInterest` stores,
to the unit; after a price drop, the health classification equals Morpho's own (a liquidation of
one unit reverts "position is healthy" exactly where the replica finds the position healthy);
and for every unhealthy position, what `liquidate` returns for a given seizure, and for the
largest seizure the replica allows, is what the replica predicts."""

from __future__ import annotations

import random
from typing import Any

import pytest
from web3 import AsyncWeb3
from web3.exceptions import ContractLogicError

from keeper.devtools.devchain import DevChain
from keeper.devtools.real_morpho import RealMorpho, inputs_missing
from keeper.protocols.morpho_blue import math as mb
from tests.anvil.conftest import on_fresh_anvil, require_real_bytecode

pytestmark = pytest.mark.slow
E18, E6 = 10**18, 10**6
USERS = 12


async def test_the_replica_matches_the_real_morpho_on_random_positions():
    require_real_bytecode(inputs_missing(), "Morpho Blue")
    await on_fresh_anvil(_scenario, accounts=USERS + 4)


async def _scenario(w3: AsyncWeb3[Any], _: Any) -> None:
    accounts = list(await w3.eth.accounts)
    admin, lp, liquidator, users = accounts[0], accounts[1], accounts[2], accounts[4 : 4 + USERS]
    dc = DevChain(w3)
    dep = await dc.deploy_market(admin)
    rm = RealMorpho(w3)
    md = await rm.deploy(admin)
    params = await rm.create_market(md, dep, "WETH", "USDC", 0.86)
    morpho = rm.contract("Morpho", md.morpho)
    f = morpho.functions
    await rm._send(f.setFeeRecipient(admin), admin)
    await rm._send(f.setFee(params.as_tuple(), 10**17), admin)
    p = params.as_tuple()

    async def approve(symbol: str, who: str, amount: int) -> None:
        await dc.mint(dep, symbol, who, amount)
        await dc.approve(dep, symbol, who, md.morpho, amount)

    await approve("USDC", lp, 10_000_000 * E6)
    await rm._send(f.supply(p, 10_000_000 * E6, 0, lp, b""), lp)
    rng = random.Random(5)
    price = int(await w3.eth.contract(address=params.oracle, abi=_ORACLE_ABI).functions.price().call())
    assert price == 3_000 * 10**36 * E6 // E18  # $3,000 WETH in USDC units per wei, x 1e36
    for u in users:
        weth = int(rng.uniform(1, 40) * E18)
        await approve("WETH", u, weth)
        await rm._send(f.supplyCollateral(p, weth, u, b""), u)
        most = mb.max_borrow(mb.Position(u, 0, 0, 0, weth), price, params.lltv)
        await rm._send(f.borrow(p, int(most * rng.uniform(0.80, 0.985)), 0, u, u), u)

    # 30 days without a transaction on the market: the replica accrues from the stored state
    await w3.provider.make_request("evm_increaseTime", [30 * 86_400])  # type: ignore[arg-type]
    await w3.provider.make_request("evm_mine", [])
    block = await w3.eth.get_block("latest")
    stored = mb.MarketState(*await f.market(params.id).call(block_identifier=block["number"]))
    irm = w3.eth.contract(address=md.irm, abi=rm.contract("IrmMock").abi)
    rate = int(await irm.functions.borrowRateView(p, _market_tuple(stored)).call(block_identifier=block["number"]))
    at = block["timestamp"] + 12
    await w3.provider.make_request("evm_setNextBlockTimestamp", [at])  # type: ignore[arg-type]
    await rm._send(f.accrueInterest(p), lp)
    after = mb.MarketState(*await f.market(params.id).call())
    assert stored.accrued(rate, at) == after, (stored.accrued(rate, at), after)
    assert after.total_borrow_assets > stored.total_borrow_assets  # interest
    assert after.total_supply_shares > stored.total_supply_shares  # the fee's shares

    # a price drop: some positions become unhealthy
    await approve("USDC", liquidator, 10_000_000 * E6)
    await dc.set_price(dep, "WETH", 2_800.0)
    head = await w3.eth.block_number
    price = int(await w3.eth.contract(address=params.oracle, abi=_ORACLE_ABI).functions.price().call())
    m = mb.MarketState(*await f.market(params.id).call(block_identifier=head))
    assert m.last_update < (await w3.eth.get_block(head))["timestamp"] or m == after
    unhealthy = 0
    for u in users:
        _, shares, coll = await f.position(params.id, u).call(block_identifier=head)
        pos = mb.Position(u, head, 0, shares, coll)
        healthy = mb.is_healthy(pos, m, price, params.lltv)
        hf = mb.health_factor_wad(pos, m, price, params.lltv)
        assert (hf >= mb.WAD) == healthy
        try:
            await f.liquidate(p, u, 1, 0, b"").call({"from": liquidator}, block_identifier=head)
            chain_healthy = False
        except ContractLogicError as exc:
            assert "position is healthy" in str(exc), exc
            chain_healthy = True
        assert chain_healthy == healthy, (u, hf)
        if healthy:
            continue
        unhealthy += 1
        for seized in (coll // 7, mb.max_seizable(pos, m, price, params.lltv)):
            q = mb.liquidation(pos, m, price, params.lltv, seized)
            assert q is not None
            got = await f.liquidate(p, u, seized, 0, b"").call({"from": liquidator}, block_identifier=head)
            assert tuple(got) == (q.seized, q.repaid_assets), (u, seized, got, q)
        too_many = mb.max_seizable(pos, m, price, params.lltv) + 10**12
        if too_many <= coll:
            assert mb.liquidation(pos, m, price, params.lltv, too_many) is None
            with pytest.raises(ContractLogicError):
                await f.liquidate(p, u, too_many, 0, b"").call({"from": liquidator}, block_identifier=head)
    assert 0 < unhealthy < USERS, unhealthy


def _market_tuple(m: mb.MarketState) -> tuple[int, ...]:
    return (m.total_supply_assets, m.total_supply_shares, m.total_borrow_assets, m.total_borrow_shares,
            m.last_update, m.fee)  # fmt: skip


_ORACLE_ABI = [
    {"type": "function", "name": "price", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "uint256"}]},
]  # fmt: skip
