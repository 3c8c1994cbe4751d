"""The same Compound v3 scenario on the real Comet (12 collaterals) and CometWithExtendedAssetList
(24 collaterals, the implementation mainnet cUSDCv3 runs) from ../shared/upstream/comet.json,
behind the upstream TransparentUpgradeableProxy, and on our own contracts/Comet.sol:

- one account on every collateral offset (16-23 included, whose assets-in flags live in
  userBasic._reserved), every third one liquidatable after a 20% crash;
- the keeper's integer replica equals isLiquidatable, isBorrowCollateralized and borrowBalanceOf
  for every account, before and after the crash;
- the absorb takes exactly the accounts Comet calls liquidatable (an account that is not can
  never block the batch), buys equal their BuyCollateral events, the protected account lands in
  [target, target x 1.001], and no transaction reverts.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from web3 import AsyncWeb3

from keeper.devtools.demo import make_settings
from keeper.devtools.devchain import DevChain, artifacts
from keeper.devtools.real_comet import collaterals, deploy_real_comet, inputs_missing, proxy_abi
from keeper.devtools.relay import LocalRelay
from keeper.protocols.comet import math as comet
from keeper.protocols.comet.actions import Absorb, BuyCollateral
from keeper.protocols.comet.market import CometMarketAdapter
from keeper.sources.abi import event
from keeper.sources.chain import Chain
from tests.anvil.conftest import DEV_KEYS, on_fresh_anvil, require_real_bytecode, run_live_keeper

pytestmark = pytest.mark.slow
TARGETS = {"ours": 2, "Comet": 12, "CometWithExtendedAssetList": 24}
CRASH = 0.8
VALUE = 10_000.0
"""USD of collateral each account supplies."""


def _borrow_usd(i: int, s: Any, liquidatable: bool) -> float:
    if liquidatable:  # above the liquidation line after the crash, below the borrow line before
        return VALUE * (s.borrow_cf + s.liquidate_cf * CRASH) / 2
    return VALUE * s.liquidate_cf * CRASH * 0.6


async def _deploy(w3: AsyncWeb3[Any], target: str, admin: str, proxy_admin: str) -> tuple[Any, Any]:
    if target == "ours":
        dc = DevChain(w3)
        dep = await dc.deploy_market(admin)
        await dc.deploy_comet(dep)
        return dep, w3.eth.contract(address=dep.comet, abi=artifacts()["contracts"]["Comet"]["abi"])
    dep = await deploy_real_comet(w3, target, TARGETS[target], admin, proxy_admin)
    return dep, w3.eth.contract(address=dep.comet, abi=proxy_abi(target))


async def _tx(w3: AsyncWeb3[Any], fn: Any, sender: str) -> None:
    r = await w3.eth.wait_for_transaction_receipt(await fn.transact({"from": sender, "gas": 3_000_000}))
    assert r["status"] == 1


async def _parity(chain: Chain, settings: Any, keeper: str, c: Any, users: list[str]) -> dict[str, Any]:
    adapter = CometMarketAdapter(settings.markets["comet"][0], settings, keeper)
    head = await chain.head()
    await adapter.load(chain, head.number)
    adapter.decode_market(await chain.multicall(adapter.market_calls(), head.number), head)
    m = adapter.market
    out = {}
    for p in await adapter.read_positions(chain, users, head.number):
        f = c.functions
        onchain = (
            await f.isLiquidatable(p.user).call(block_identifier=head.number),
            await f.isBorrowCollateralized(p.user).call(block_identifier=head.number),
            await f.borrowBalanceOf(p.user).call(block_identifier=head.number),
        )
        mine = (comet.is_liquidatable(p, m), comet.is_borrow_collateralized(p, m), comet.borrow_balance(p, m.accrued()))
        assert mine == onchain, f"{p.user}: keeper {mine} != Comet {onchain}"
        assert p.liquidatable_onchain == onchain[0]
        out[p.user] = (p, m)
    return out


@pytest.mark.parametrize(
    "target, private",
    [(t, False) for t in TARGETS] + [("ours", True), ("CometWithExtendedAssetList", True)],
)
async def test_the_same_scenario_on_every_comet(target, private, tmp_path):
    """`private`: through the local relay, the absorb and its buys as one bundle in one block."""
    if target != "ours":
        require_real_bytecode(inputs_missing(), "Compound v3")
    await on_fresh_anvil(_scenario, target, tmp_path, private, accounts=40)


async def _scenario(w3: AsyncWeb3[Any], keeper_w3: AsyncWeb3[Any], target: str, tmp_path: Any, private: bool) -> None:
    accounts = await w3.eth.accounts
    admin, proxy_admin, lp, protected, *wallets = accounts[:3] + accounts[10:]
    dep, c = await _deploy(w3, target, admin, proxy_admin)
    dc = DevChain(w3)
    specs = collaterals(TARGETS[target])
    usdc = dep.tokens["USDC"]

    async def supply(user: str, symbol: str, units: int) -> None:
        await dc.mint(dep, symbol, user, units)
        await dc.approve(dep, symbol, user, dep.comet, units)
        await _tx(w3, c.functions.supply(dep.tokens[symbol], units), user)

    await supply(lp, "USDC", 10_000_000 * 10**6)
    users, doomed = [], set()
    for i, s in enumerate(specs):
        user = wallets[i]
        units = int(VALUE / s.price_usd * 10**s.decimals)
        await supply(user, s.symbol, units)
        await _tx(w3, c.functions.withdraw(usdc, int(_borrow_usd(i, s, i % 3 == 0) * 10**6)), user)
        users.append(user)
        if i % 3 == 0:
            doomed.add(user)
    await supply(protected, "WETH", int(VALUE / 3_000 * 10**18))
    await _tx(w3, c.functions.withdraw(usdc, 6_500 * 10**6), protected)  # HF 1.38 -> 1.108 after the crash

    keeper = Account.from_key(DEV_KEYS[9]).address
    settings = make_settings(dep, await w3.eth.chain_id, DEV_KEYS[9], (protected,), aave=False, perps=False)
    await dc.mint(dep, "USDC", keeper, 5_000_000 * 10**6)
    await dc.approve(dep, "USDC", keeper, dep.comet, 2**255)
    chain = Chain(keeper_w3, dep.multicall3)
    before = await _parity(chain, settings, keeper, c, [*users, protected])
    assert not any(comet.is_liquidatable(p, m) for p, m in before.values())

    await w3.provider.make_request("anvil_setBlockTimestampInterval", [0])  # type: ignore[arg-type]
    for s in specs:
        await dc.set_price(dep, s.symbol, s.price_usd * CRASH)
    after = await _parity(chain, settings, keeper, c, [*users, protected])
    assert {u for u, (p, m) in after.items() if comet.is_liquidatable(p, m)} == doomed
    assert any(i >= 16 for i, u in enumerate(users) if u not in doomed) == (len(specs) > 16)

    relay = LocalRelay(w3.provider.endpoint_uri) if private else None
    if relay is not None:
        await relay.start()
    try:
        k = await run_live_keeper(w3, chain, settings, tmp_path, relay_url=relay.url if relay else None)
    finally:
        if relay is not None:
            await relay.stop()
    if relay is not None:  # the absorb and every buy as one bundle, landed in one block
        chained = [r for o in k.history if isinstance(o.action, Absorb | BuyCollateral) for r in o.results]
        assert len({r.block for r in chained}) == 1 and {r.tx_hash for r in chained} <= set(relay.included)
        assert [m for m, _ in relay.received].count("eth_sendBundle") == settings.execution.private_blocks

    results = [r for o in k.history for r in o.results]
    assert results and all(r.status == 1 for r in results), [o.error for o in k.history]
    absorbed = await _events(w3, dep.comet, "AbsorbDebt")
    assert sorted(AsyncWeb3.to_checksum_address(e["borrower"]) for _, e in absorbed) == sorted(doomed)
    (absorb,) = [o.action for o in k.history if isinstance(o.action, Absorb)]
    assert sum(e["basePaidOut"] for _, e in absorbed) == absorb.expected_base_paid_out
    seized = await _events(w3, dep.comet, "AbsorbCollateral")
    by_asset: dict[str, int] = {}
    for _, e in seized:
        symbol = next(s for s, a in dep.tokens.items() if a.lower() == str(e["asset"]).lower())
        by_asset[symbol] = by_asset.get(symbol, 0) + e["collateralAbsorbed"]
    assert by_asset == dict(absorb.expected_seized), (by_asset, absorb.expected_seized)
    buys = [o for o in k.history if isinstance(o.action, BuyCollateral)]
    events = dict(await _events(w3, dep.comet, "BuyCollateral"))
    assert buys and len(events) == len(buys)
    for o in buys:
        e = events[o.results[-1].tx_hash]
        assert (e["baseAmount"], e["collateralAmount"]) == (o.action.base_amount, o.action.expected_collateral)
    final = await _parity(chain, settings, keeper, c, [protected])
    p, m = final[protected]
    hf = comet.health_factor_wad(p, m) / 1e18
    # Comet's custom errors are named by the upstream signatures, inside eth_simulateV1 too
    healthy = next(u for u in users if u not in doomed)
    call = c.encode_abi("absorb", [keeper, [healthy]])
    sims = await chain.simulate_bundle(keeper, [(dep.comet, bytes.fromhex(call[2:]), 0)])
    assert sims == [(0, "NotLiquidatable")], sims
    assert settings.protect.target_hf <= hf <= settings.protect.target_hf * 1.001, hf


async def _events(w3: AsyncWeb3[Any], comet_address: str, name: str) -> list[tuple[str, dict[str, Any]]]:
    """(transaction hash, decoded event) of every `name` event of the market, in order."""
    ev = event("Comet", name)
    logs = await w3.eth.get_logs({"address": comet_address, "fromBlock": 0, "toBlock": "latest", "topics": [ev.topic]})
    return [
        (
            "0x" + bytes(log["transactionHash"]).hex().removeprefix("0x"),
            ev.decode(list(log["topics"]), bytes(log["data"])),
        )
        for log in logs
    ]
