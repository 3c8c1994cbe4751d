"""`[protect] mode = "alert"` never acts, on every market kind: an account below its trigger
raises an alert and the keeper's nonce does not move (Aave, Compound v3, perps)."""

import logging

import pytest

E18, E6 = 10**18, 10**6


async def _aave(env, user):
    await env.dc.supply(env.dep, "WETH", user, 10 * E18)
    await env.dc.borrow(env.dep, "USDC", user, 21_000 * E6)
    await env.dc.mint(env.dep, "USDC", env.keeper_address, 10_000 * E6)
    await env.dc.set_price(env.dep, "WETH", 2_800.0)  # HF 1.107 < 1.15
    return env.keeper(protect=(user,), comet=False, perps=False, mode="alert")


async def _comet(env, user):
    await env.dc.comet_supply(env.dep, "WETH", user, 10 * E18)
    await env.dc.comet_borrow(env.dep, user, 22_000 * E6)
    await env.dc.mint(env.dep, "USDC", env.keeper_address, 10_000 * E6)
    await env.dc.set_price(env.dep, "WETH", 2_700.0)  # HF 1.10 < 1.15
    return env.keeper(protect=(user,), aave=False, perps=False, mode="alert")


async def _perps(env, user):
    a = await env.dc.perps_open(env.dep, user, 3_000 * E18, 100, 10 * E18, keeper=env.keeper_address)
    await env.dc.send("MintableERC20", env.dep.snx_usd, "mint", env.dep.deployer, env.keeper_address, 5_000 * E18)
    await env.dc.set_price(env.dep, "WETH", 2_740.0)  # margin ratio 1.39 < 1.5
    return env.keeper(aave=False, comet=False, perps_accounts=(a,), trigger=1.5, target=2.0, mode="alert")


@pytest.mark.parametrize("market", [_aave, _comet, _perps], ids=["aave", "comet", "perps"])
async def test_alert_mode_sends_nothing(env, market, caplog):
    keeper = await market(env, env.accounts[5])
    nonce = await env.w3.eth.get_transaction_count(env.keeper_address)
    await keeper.start()
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            env.w3.provider.ethereum_tester.mine_blocks(1)
            await keeper.step()
    await keeper.drain()
    assert await env.w3.eth.get_transaction_count(env.keeper_address) == nonce
    assert not [o for o in keeper.history if o.sent]
    alerts = [r.getMessage() for r in caplog.records if "ALERT:" in r.getMessage() and "at risk" in r.getMessage()]
    assert alerts, [r.getMessage() for r in caplog.records]
