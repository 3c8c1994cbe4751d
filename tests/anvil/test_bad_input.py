"""Bad input through the `keeper` command: one clear line naming the setting, exit 2 for the
configuration and 3 for the chain, never a traceback, nothing sent."""

import asyncio
import sys

import pytest
from aiohttp import web
from eth_account import Account

from keeper.execution.signer import SECP256K1_N
from tests.anvil.conftest import DEV_KEYS, ROOT, free_port
from tests.anvil.test_cli_on_anvil import keeper_cli

ADDRESS = Account.from_key(DEV_KEYS[9]).address


def one_clear_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("keeper:")]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize("key", [0, SECP256K1_N, SECP256K1_N + 5, 2**256 - 1])
def test_a_key_out_of_range_is_a_configuration_error(key):
    hex_key = "0x" + key.to_bytes(32, "big").hex()
    r = keeper_cli("run", "--network", "local", "--blocks", "1",
                   env={"KEEPER_RPC_URL": "http://127.0.0.1:9", "KEEPER_PRIVATE_KEY": hex_key})  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "KEEPER_PRIVATE_KEY: malformed" in r.stderr and "curve order" in r.stderr
    assert "Traceback" not in r.stderr and hex_key[2:] not in r.stderr + r.stdout


async def test_addresses_without_code_are_named(anvil):
    # a fresh anvil: config/local.toml's addresses hold no contract yet
    r = await asyncio.to_thread(keeper_cli, "status", "--network", "local",
                                env={"KEEPER_RPC_URL": anvil, "KEEPER_ADDRESS": ADDRESS})  # fmt: skip
    assert r.returncode == 2, r.stderr
    line = one_clear_line(r.stderr)
    assert "no contract code on chain 31337 at multicall3 = 0x5FbDB2315678afecb367f032d93F642f64180aa3, " in line
    assert "[aave] pool = 0x2279B7A0a67DB372996a5FaB50D91eAA73d2eBe6" in line
    assert "[comet] comet = 0x68B1D87F95878fE05B998F19b66F4baba5De1aed" in line
    assert line.endswith("config/local.toml)")


def test_an_unwritable_journal_path_is_a_configuration_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    path = blocker / "journal.sqlite"  # its parent is a file: it cannot be created, even by root
    r = keeper_cli("run", "--network", "local", "--blocks", "1",
                   env={"KEEPER_RPC_URL": "http://127.0.0.1:9", "KEEPER_PRIVATE_KEY": DEV_KEYS[9],
                        "KEEPER_EXECUTION_JOURNAL_PATH": str(path)})  # fmt: skip
    assert r.returncode == 2, r.stderr
    line = one_clear_line(r.stderr)
    assert f"the journal {path} cannot be written" in line and "journal_path" in line


async def test_an_endpoint_that_is_not_json_rpc_exits_3_with_one_line():
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html><body>Welcome to nginx!</body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "keeper", "status", "--network", "local",
            env={"PATH": "/usr/bin:/bin", "KEEPER_RPC_URL": f"http://127.0.0.1:{port}", "KEEPER_ADDRESS": ADDRESS,
                 "KEEPER_RPC_RETRY_BUDGET_S": "2"},
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await runner.cleanup()
    stderr = err.decode()
    assert proc.returncode == 3, stderr
    line = one_clear_line(stderr)
    assert "does not answer JSON-RPC" in line and "KEEPER_RPC_URL" in line
