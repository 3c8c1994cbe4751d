"""Webhook alerts: parsing KEEPER_ALERT_WEBHOOKS, each format's payload, tiers, cooldown."""

import asyncio
import logging

import pytest
from aiohttp import web

from keeper.app.alerts import AlertHandler, alert, parse_webhooks
from keeper.devtools.anvil import free_port


def test_parse_webhooks_and_errors_do_not_echo_urls() -> None:
    hooks = parse_webhooks(
        "slack=https://hooks.example/T/SECRET, https://ops.example/k, telegram=https://api.t.me/bot1:X/sendMessage?chat_id=42"
    )
    assert [h.format for h in hooks] == ["slack", "json", "telegram"]
    assert "SECRET" not in repr(hooks[0]) and "SECRET" not in hooks[0].name
    a = {"tier": "critical", "kind": "stale oracle", "message": "WETH stale"}
    assert hooks[0].payload(a) == {"text": "[CRITICAL] keeper stale oracle: WETH stale"}
    assert hooks[2].payload(a) == {"chat_id": "42", "text": "[CRITICAL] keeper stale oracle: WETH stale"}
    assert parse_webhooks("discord=https://d.example/x")[0].payload(a)["content"].startswith("[CRITICAL]")
    for bad, why in (
        ("pager=https://p.example/SECRET", "unknown format 'pager'"),
        ("slack=ftp://x/SECRET", "expected an http(s):// URL"),
        ("telegram=https://api.t.me/botSECRET/sendMessage", "needs ?chat_id"),
    ):
        with pytest.raises(ValueError, match="entry 1") as err:
            parse_webhooks(bad)
        assert why in str(err.value) and "SECRET" not in str(err.value)


async def test_tiers_cooldown_and_delivery() -> None:
    got: list[dict] = []

    async def receive(request: web.Request) -> web.Response:
        got.append(await request.json())
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    handler = AlertHandler(parse_webhooks(f"json=http://127.0.0.1:{port}/"), min_tier="warning", cooldown_s=60)
    logger = logging.getLogger("keeper.test-alerts")
    logger.addHandler(handler)
    try:
        logger.info("liquidated", extra=alert("liquidation", "0xabc", "info"))  # below min tier: not sent
        logger.warning("ALERT: WETH stale", extra=alert("stale oracle", "WETH", "critical"))
        logger.warning("ALERT: WETH stale again", extra=alert("stale oracle", "WETH", "critical"))  # cooldown
        logger.warning("ALERT: WBTC stale", extra=alert("stale oracle", "WBTC", "critical"))
        logger.warning("ALERT: plain alert line")  # no kind: still an alert
        logger.warning("an ordinary warning")  # not an alert
        await handler.flush_async()
        await asyncio.sleep(0)
    finally:
        logger.removeHandler(handler)
        await runner.cleanup()
    assert [(a["kind"], a["subject"]) for a in got] == [
        ("stale oracle", "WETH"),
        ("stale oracle", "WBTC"),
        ("alert", "plain alert line"),
    ]
    assert got[0]["tier"] == "critical" and got[0]["message"] == "WETH stale"
    assert handler.sent == 3 and handler.suppressed == 1 and len(handler.recent) == 5
