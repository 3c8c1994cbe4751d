"""Private submission's parts without a chain: its settings (each bad value named), the relay
identity's signature (what Flashbots checks, byte for byte eth-account's), the relay client's
reading of what a relay answers, and the journal's route column on an older file."""

import json
import sqlite3

import pytest
from aiohttp import web
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak
from pydantic import SecretStr

from keeper.errors import ConfigError, TransientError
from keeper.execution.journal import Journal
from keeper.execution.signer import RelayAuth
from keeper.settings.load import load_settings
from keeper.sources.relay import Relay, RelayRefused
from tests.unit.test_config import GOOD, KEY, write

AUTH = "0x" + "42" * 32
API = "relay-api-key-7f3a"


@pytest.fixture
def env(monkeypatch):
    for k in ("KEEPER_PRIVATE_KEY", "KEEPER_KEYSTORE", "KEEPER_ADDRESS", "KEEPER_RELAY_AUTH_KEY"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("KEEPER_RPC_URL", "http://127.0.0.1:8545")
    monkeypatch.setenv("KEEPER_PRIVATE_KEY", KEY)
    return monkeypatch


def test_private_settings_load_and_the_url_stays_secret(tmp_path, env):
    env.setenv("KEEPER_RELAY_AUTH_KEY", AUTH)
    text = GOOD + f'[execution]\nprivate_rpc_url = "https://relay.example/{API}"\nprivate_blocks = 5\n'
    s = load_settings(write(tmp_path, text))
    assert s.execution.private_rpc_url is not None and s.execution.private_blocks == 5
    assert API not in repr(s) and API not in str(s) and AUTH[2:] not in repr(s)
    assert s.execution.private_fallback_protect and s.execution.private_fallback_liquidate
    assert not s.execution.private_also_public


def test_private_rpc_url_from_the_environment(tmp_path, env):
    env.setenv("KEEPER_EXECUTION_PRIVATE_RPC_URL", f"https://relay.example/{API}")
    s = load_settings(write(tmp_path, GOOD))
    assert s.execution.private_rpc_url is not None
    assert s.execution.private_rpc_url.get_secret_value().endswith(API)


@pytest.mark.parametrize(
    "extra, expected",
    [
        ('private_rpc_url = "ftp://relay"', "[execution] private_rpc_url: expected one http(s):// URL"),
        ('private_rpc_url = "https://a,https://b"', "[execution] private_rpc_url: expected one http(s):// URL"),
        ("private_blocks = 0", "[execution] private_blocks: between 1 and 25 (got 0)"),
        ('private_fallback_liquidate = "no"', "[execution] private_fallback_liquidate"),
    ],
)
def test_bad_private_settings_are_named(tmp_path, env, extra, expected):
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, GOOD + "[execution]\n" + extra + "\n"))
    assert expected in str(err.value)


@pytest.mark.parametrize(
    "value, expected",
    [("0x1234", "KEEPER_RELAY_AUTH_KEY: malformed"), (KEY, "must not be the keeper's own key")],
)
def test_bad_relay_auth_keys_are_named_and_not_echoed(tmp_path, env, value, expected):
    env.setenv("KEEPER_RELAY_AUTH_KEY", value)
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, GOOD))
    assert expected in str(err.value) and value[2:] not in str(err.value)


def test_the_relay_signature_is_eth_accounts_over_the_bodys_hex_keccak():
    auth = RelayAuth(SecretStr(AUTH))
    body = b'{"jsonrpc":"2.0","id":1,"method":"eth_sendBundle","params":[]}'
    address, signature = auth.header(body).split(":")
    message = encode_defunct(text="0x" + keccak(body).hex())
    assert address == Account.from_key(AUTH).address
    assert signature.removeprefix("0x") == Account.sign_message(message, AUTH).signature.hex().removeprefix("0x")
    assert Account.recover_message(message, signature=signature) == address
    assert AUTH[2:] not in repr(auth)


async def _serve(reply) -> tuple[web.AppRunner, str]:  # type: ignore[no-untyped-def]
    async def handle(request: web.Request) -> web.StreamResponse:
        return reply(json.loads(await request.read()))

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/{API}"


@pytest.mark.parametrize(
    "reply, error, text",
    [
        (lambda p: web.Response(text='{"jsonrpc": "2.0", "resu'), TransientError, "not JSON"),
        (lambda p: web.Response(status=503, text="busy"), TransientError, "HTTP 503"),
        (lambda p: web.json_response([1, 2]), TransientError, "not a JSON-RPC reply"),
        (lambda p: web.json_response({"jsonrpc": "2.0", "id": p["id"], "result": 7}), TransientError, "unexpected"),
        (
            lambda p: web.json_response({"jsonrpc": "2.0", "id": p["id"], "error": {"code": -32000, "message": "no"}}),
            RelayRefused,
            "refused eth_sendPrivateTransaction: no",
        ),
    ],
)
async def test_what_a_relay_answers_is_read_as_a_fault_or_a_refusal(reply, error, text):
    runner, url = await _serve(reply)
    relay = Relay(url)
    try:
        with pytest.raises(error) as err:
            await relay.send_private(b"\x02", 10)
        assert text in str(err.value) and API not in str(err.value) and API not in repr(relay)
    finally:
        await relay.close()
        await runner.cleanup()


async def test_a_relay_that_is_not_there_is_a_transient_fault():
    relay = Relay("http://127.0.0.1:9", timeout_s=2)
    with pytest.raises(TransientError):
        await relay.send_bundle([b"\x02"], 5)
    await relay.close()


def test_a_journal_from_before_private_submission_gets_its_route_column(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE txs (hash TEXT PRIMARY KEY, action_key TEXT, nonce INTEGER NOT NULL, raw BLOB NOT NULL, "
        "description TEXT, role TEXT NOT NULL, max_fee_wei INTEGER NOT NULL, gas_limit INTEGER NOT NULL, "
        "state TEXT NOT NULL, gas_cost_wei INTEGER NOT NULL DEFAULT 0, block INTEGER, created REAL NOT NULL, "
        "updated REAL NOT NULL)"
    )
    db.execute("INSERT INTO txs VALUES ('0xaa', NULL, 3, x'02', 'old', 'action', 1, 21000, 'sent', 0, NULL, 0, 0)")
    db.commit()
    db.close()
    j = Journal(path)
    [row] = j.pending_txs()
    assert (row.hash, row.route) == ("0xaa", "public")
    j.add_tx(None, "0xbb", 4, b"\x02", "new", 1, 21_000, "action", "private")
    assert {r.hash: r.route for r in j.pending_txs()} == {"0xaa": "public", "0xbb": "private"}
