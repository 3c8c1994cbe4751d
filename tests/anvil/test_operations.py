"""Operations, the way the README tells an operator to run the keeper: `keeper run` with the
operations server and webhooks, against anvil. The status page is rendered by headless
Chromium; metrics and /healthz are scraped; alerts arrive at a local webhook receiver in the
generic JSON and the Slack format, de-duplicated."""

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys

import aiohttp
import pytest
from aiohttp import web
from eth_account import Account

from tests.anvil.conftest import DEV_KEYS, ROOT, free_port
from tests.anvil.test_cli_on_anvil import deploy_and_open

E6 = 10**6


class Receiver:
    """A webhook endpoint that keeps what it is sent, by path."""

    def __init__(self) -> None:
        self.got: dict[str, list[dict]] = {}

    async def handle(self, request: web.Request) -> web.Response:
        self.got.setdefault(request.path, []).append(json.loads(await request.read()))
        return web.json_response({"ok": True})

    async def start(self) -> tuple[web.AppRunner, str]:
        app = web.Application()
        app.router.add_post("/{hook}", self.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner, f"http://127.0.0.1:{port}"


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


async def until(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


async def test_metrics_healthz_status_page_and_webhooks(anvil, tmp_path):
    browser = chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have chromium (apt install chromium)")
        pytest.skip("chromium missing")
    dc, dep, victim, _ = await deploy_and_open(anvil)
    liquidator = Account.from_key(DEV_KEYS[9]).address
    await dc.mint(dep, "USDC", liquidator, 100_000 * E6)
    receiver = Receiver()
    runner, hooks = await receiver.start()
    port = free_port()
    ops = f"http://127.0.0.1:{port}"
    kill = tmp_path / "kill"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "KEEPER_RPC_URL": anvil,
        "KEEPER_PRIVATE_KEY": DEV_KEYS[9],
        "KEEPER_EXECUTION_JOURNAL_PATH": str(tmp_path / "journal.sqlite"),
        "KEEPER_EXECUTION_KILL_SWITCH_FILE": str(kill),
        "KEEPER_ALERT_WEBHOOKS": f"json={hooks}/json,slack={hooks}/slack",
        "KEEPER_OPS_MAX_BLOCK_AGE_S": "4",
        "KEEPER_POLL_INTERVAL_S": "0.2",
    }
    await dc.w3.provider.make_request("evm_setIntervalMining", [1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "keeper", "run", "--network", "local", "--listen", f"127.0.0.1:{port}"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        async with aiohttp.ClientSession() as http:

            async def get(path: str) -> tuple[int, str]:
                try:
                    async with http.get(ops + path) as r:
                        return r.status, await r.text()
                except aiohttp.ClientError:
                    return 0, ""

            async def healthy():  # type: ignore[no-untyped-def]
                return (await get("/healthz"))[0] == 200

            await until(healthy, 60, "/healthz 200")

            async def liquidated():  # type: ignore[no-untyped-def]
                return [a for a in receiver.got.get("/json", []) if a["kind"] == "liquidation"]

            alerts = await until(liquidated, 60, "a liquidation alert")
            assert alerts[0]["tier"] == "info" and alerts[0]["message"], alerts
            assert any("liquidation" in m["text"] for m in receiver.got.get("/slack", [])), receiver.got

            async def scraped():  # type: ignore[no-untyped-def]
                status, text = await get("/metrics")
                assert status == 200
                samples = {
                    line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines()
                    if line[:1] != "#"
                }
                sent = [
                    v for k, v in samples.items() if k.startswith("keeper_actions_total{") and 'outcome="sent"' in k
                ]
                # an Aave liquidation, an absorb and its purchase, a perps liquidation
                return (samples, text) if sum(sent) >= 4 else None

            samples, text = await until(scraped, 60, "four actions sent in /metrics")
            watched = {k: v for k, v in samples.items() if k.startswith("keeper_accounts_watched{")}
            assert len(watched) == 3 and all(v >= 1 for v in watched.values()), text
            assert samples["keeper_block_lag"] <= 1 and samples["keeper_loop_duration_seconds"] > 0
            assert "# TYPE keeper_rpc_latency_seconds gauge" in text

            # the status page, rendered by its script in a real browser
            dom = subprocess.run(
                [
                    browser,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--virtual-time-budget=5000",
                    "--dump-dom",
                    ops + "/",
                ],
                capture_output=True,
                text=True,
                timeout=90,
            ).stdout
            assert 'class="position"' in dom and victim in dom, dom[:2000]
            assert 'class="action"' in dom and "Liquidate" in dom, dom[:2000]
            assert "aave-v3" in dom and "comet" in dom and "perps" in dom

            # the kill switch: a critical alert, once (same subject within the cooldown)
            kill.write_text("stop")

            async def killed():  # type: ignore[no-untyped-def]
                return [a for a in receiver.got.get("/json", []) if a["kind"] == "kill switch"]

            got = await until(killed, 30, "a kill switch alert")
            assert got[0]["tier"] == "critical"
            kill.unlink()
            await asyncio.sleep(2)
            kill.write_text("stop again")
            await asyncio.sleep(3)
            assert len(await killed()) == 1, "the same alert within its cooldown is not sent twice"

            # blocks stop: /healthz fails
            await dc.w3.provider.make_request("evm_setIntervalMining", [0])

            async def unhealthy():  # type: ignore[no-untyped-def]
                status, body = await get("/healthz")
                return status == 503 and "no block processed for" in body

            await until(unhealthy, 30, "/healthz 503")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        await runner.cleanup()
    assert DEV_KEYS[9][2:] not in out + err
    assert hooks.split("//")[1] not in err, "webhook URLs are secrets"
