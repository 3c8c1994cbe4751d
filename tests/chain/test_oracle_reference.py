"""Per-feed heartbeats and the optional off-chain reference price guard."""

from aiohttp import web

from tests.anvil.conftest import free_port
from tests.chain.test_keeper_chain import E6, E8, E18, _mine_and_step, fund_keeper, open_position
from tests.helpers import evolve


def with_oracle(keeper, **changes):
    s = keeper.settings
    keeper.settings = evolve(s, oracle=evolve(s.oracle, **changes))


async def test_a_price_far_from_the_reference_is_not_acted_on(env, caplog):
    reference = {"WETH": 3_000.0, "USDC": 1.0}

    async def prices(request: web.Request) -> web.Response:
        return web.json_response(reference)

    app = web.Application()
    app.router.add_get("/prices", prices)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        victim = env.accounts[4]
        await open_position(env, victim, "WETH", 10 * E18, "USDC", 24_000 * E6)
        await fund_keeper(env, usdc=50_000 * E6)
        await env.dc.set_price(env.dep, "WETH", 2_850.0)  # 5% under the reference: beyond 3%
        keeper = env.keeper(comet=False, perps=False)
        with_oracle(keeper, reference_url=f"http://127.0.0.1:{port}/prices", reference_every_s=0.0)
        await keeper.start()
        with caplog.at_level("WARNING", logger="keeper"):
            report = await _mine_and_step(env, keeper)
        assert report.outcomes == [] and report.below_one == 1
        assert any(
            "WETH is untrusted" in r.getMessage() and "deviates 500 bps" in r.getMessage() for r in caplog.records
        )
        reference["WETH"] = 2_851.0  # the market moved for real: on-chain and reference agree
        report = await _mine_and_step(env, keeper)
        (out,) = report.outcomes
        assert out.ok, out.error
    finally:
        await runner.cleanup()


async def test_unreachable_reference_alerts_and_goes_on(env, caplog):
    victim = env.accounts[5]
    await open_position(env, victim, "WETH", 10 * E18, "USDC", 24_000 * E6)
    await fund_keeper(env, usdc=50_000 * E6)
    await env.dc.set_price(env.dep, "WETH", 2_850.0)
    keeper = env.keeper(comet=False, perps=False)
    with_oracle(keeper, reference_url=f"http://127.0.0.1:{free_port()}/nothing-here", reference_every_s=0.0)
    await keeper.start()
    with caplog.at_level("WARNING", logger="keeper"):
        report = await _mine_and_step(env, keeper)
    assert report.outcomes[0].ok
    assert any("off-chain reference unavailable" in r.getMessage() for r in caplog.records)


async def test_per_feed_heartbeat(env):
    victim = env.accounts[6]
    await open_position(env, victim, "WETH", 10 * E18, "USDC", 24_000 * E6)
    await fund_keeper(env, usdc=50_000 * E6)
    now = (await env.w3.eth.get_block("latest"))["timestamp"]
    two_hours_ago = now - 7_200
    await env.dc.send(
        "MockAggregator", env.dep.aggregators["WETH"], "updateRoundData", env.dep.deployer, 2_850 * E8,
        two_hours_ago, two_hours_ago,
    )  # fmt: skip
    keeper = env.keeper(comet=False, perps=False)
    with_oracle(keeper, heartbeats={"WETH": 3_600})  # ETH/USD: a 1 h heartbeat
    await keeper.start()
    report = await _mine_and_step(env, keeper)
    assert report.outcomes == [] and report.below_one == 1  # a 2 h old round is stale for this feed

    keeper = env.keeper(comet=False, perps=False)  # the global 25 h max age alone accepts it
    await keeper.start()
    report = await _mine_and_step(env, keeper)
    assert report.outcomes[0].ok, report.outcomes[0].error
