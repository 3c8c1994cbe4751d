"""The live keeper's predictive trigger on a real chain: it protects on the predicted oracle
answer (the off-chain market price past the feed's deviation threshold) before the feed moves,
where the static trigger sees nothing."""

from aiohttp import web

from keeper.settings import FeedSettings
from keeper.strategy.actions import Protect
from tests.anvil.conftest import free_port
from tests.chain.test_keeper_chain import E6, E18, WAD, _mine_and_step, fund_keeper, open_position, pool_hf
from tests.helpers import evolve


def configure(keeper, mode: str, url: str) -> None:
    s = keeper.settings
    keeper.settings = evolve(
        s,
        protect=evolve(s.protect, mode=mode),
        oracle=evolve(
            s.oracle,
            reference_url=url,
            reference_every_s=0.0,
            feeds={"WETH": FeedSettings(deviation_bps=50, heartbeat_s=3600)},
        ),
    )


async def test_predictive_protects_before_the_oracle_moves(env):
    market = {"WETH": 2_600.0, "USDC": 1.0}  # 13 % under the feed's answer: its next round

    async def prices(request: web.Request) -> web.Response:
        return web.json_response(market)

    app = web.Application()
    app.router.add_get("/prices", prices)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}/prices"
    try:
        user = env.accounts[7]
        await env.dc.set_price(env.dep, "WETH", 3_000.0)
        await open_position(env, user, "WETH", 10 * E18, "USDC", 20_000 * E6)
        await fund_keeper(env, usdc=20_000 * E6)
        before = await pool_hf(env, user) / WAD
        assert 1.15 < before < 1.3  # above the trigger at the oracle's answer

        static = env.keeper(protect=(user,), comet=False, perps=False, dry_run=True)
        configure(static, "static", url)
        await static.start()
        report = await _mine_and_step(env, static)
        assert report.outcomes == []  # the static trigger waits for the oracle

        keeper = env.keeper(protect=(user,), comet=False, perps=False)
        configure(keeper, "predictive", url)
        await keeper.start()
        report = await _mine_and_step(env, keeper)
        (out,) = report.outcomes
        assert isinstance(out.action, Protect) and out.action.kind == "repay" and out.ok, out.error
        after = await pool_hf(env, user) / WAD
        # the target (1.30) holds at the predicted answer: at the current one it is higher by 3000/2600
        assert after * 2_600 / 3_000 >= 1.30
        assert after * 2_600 / 3_000 < 1.30 * 1.01
        # the feed catches up: the position is above target at its new answer; nothing more to do
        await env.dc.set_price(env.dep, "WETH", 2_600.0)
        assert await pool_hf(env, user) / WAD >= 1.30
        report = await _mine_and_step(env, keeper)
        assert report.outcomes == []
    finally:
        await runner.cleanup()
