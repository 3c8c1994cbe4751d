"""Aave price sources of every kind are judged for staleness: a Chainlink aggregator by its own
round, a CAPO adapter (which answers only latestAnswer) by the feed it wraps, and a source whose
age cannot be judged is shown as such and raises one alert, never silently trusted."""

import logging

from web3 import AsyncWeb3
from web3.providers import AsyncHTTPProvider

from keeper.devtools.demo import make_settings
from keeper.devtools.devchain import DevChain
from keeper.protocols.aave_v3.market import AaveV3Market
from keeper.sources.chain import Chain
from tests.anvil.conftest import DEV_KEYS


async def _adapter(w3, dep):
    settings = make_settings(dep, await w3.eth.chain_id, DEV_KEYS[9], (), comet=False, perps=False)
    chain = Chain(w3, dep.multicall3)
    adapter = AaveV3Market(settings.markets["aave"][0], settings, dep.deployer)
    head = await chain.head()
    await adapter.load(chain, head.number)
    adapter.decode_market(await chain.multicall(adapter.market_calls(), head.number), head)
    return adapter, settings, head


async def test_capo_sources_are_judged_by_the_feed_they_wrap(anvil, caplog):
    w3 = AsyncWeb3(AsyncHTTPProvider(anvil))
    dc = DevChain(w3)
    dep = await dc.deploy_market((await w3.eth.accounts)[0])
    capo = await dc.deploy("PriceCapAdapterStable", dep.deployer, dep.aggregators["USDC"], 10**8 + 4 * 10**6)
    opaque = await dc.deploy("PriceCapAdapterStable", dep.deployer, capo, 10**9)  # wraps a source with no rounds
    await dc.send("AaveOracle", dep.oracle, "setAssetSources", dep.deployer, [dep.tokens["USDC"], dep.tokens["WBTC"]],
                  [capo, opaque])  # fmt: skip
    # WBTC's adapter wraps an adapter: its price is USDC's (capped), and its age is unknown
    with caplog.at_level(logging.WARNING):
        adapter, settings, head = await _adapter(w3, dep)
    usdc, wbtc = adapter.reader.reserves[2], adapter.reader.reserves[1]
    assert usdc.feed == dep.aggregators["USDC"] and "ASSET_TO_USD_AGGREGATOR" in usdc.feed_note
    assert wbtc.feed == ""
    notes = adapter.notes()
    assert any(n.startswith("WBTC: price age cannot be judged") for n in notes), notes
    assert any(n.startswith("USDC: price adapter") for n in notes), notes
    alerts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ALERT:")]
    assert len(alerts) == 1 and "WBTC" in alerts[0], alerts
    assert adapter.price_problems(head.timestamp, settings.oracle) == {}

    # the wrapped USDC feed goes stale: USDC's price is untrusted although the adapter answers
    stale = head.timestamp - settings.oracle.max_age_s - 10
    await dc.send("MockAggregator", dep.aggregators["USDC"], "updateRoundData", dep.deployer, 10**8, stale, stale)
    adapter, settings, head = await _adapter(w3, dep)
    problems = adapter.price_problems(head.timestamp, settings.oracle)
    assert list(problems) == [2] and problems[2].startswith("stale"), problems
    await w3.provider.disconnect()
