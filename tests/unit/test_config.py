"""Configuration: every bad input is named with its file and key; secrets never print."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from keeper.errors import ConfigError
from keeper.settings.load import load_settings

KEY = "0x" + "4c" * 32  # test-only key
GOOD = """
chain_id = 31337
native_asset = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
multicall3 = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
[aave]
pool = "0x2279B7A0a67DB372996a5FaB50D91eAA73d2eBe6"
oracle = "0xa513E6E4b8f2a923D98304ec87F64353C4D5C853"
[protect]
trigger_hf = 1.1
target_hf = 1.3
"""


@pytest.fixture
def env(monkeypatch):
    for k in (
        "KEEPER_PRIVATE_KEY",
        "KEEPER_KEYSTORE",
        "KEEPER_KEYSTORE_PASSWORD",
        "KEEPER_ADDRESS",
        "KEEPER_RPC_URL",
        "KEEPER_CHAIN_ID",
    ):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("KEEPER_RPC_URL", "http://127.0.0.1:8545")
    return monkeypatch


def write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "net.toml"
    p.write_text(text)
    return str(p)


def test_good_config_and_redacted_repr(tmp_path, env):
    env.setenv("KEEPER_PRIVATE_KEY", KEY)
    s = load_settings(write(tmp_path, GOOD))
    assert s.chain_id == 31337 and s.protect.target_hf == 1.3
    assert s.address is not None and s.address.startswith("0x")
    assert KEY[2:] not in repr(s) and "4c4c4c4c" not in str(s)
    assert "http://127.0.0.1:8545" not in repr(s)


def test_shipped_configs_parse(env):
    env.setenv("KEEPER_PRIVATE_KEY", KEY)
    assert load_settings("mainnet").chain_id == 1
    assert load_settings("mainnet").oracle.max_age_s == 90_000
    assert load_settings("local").chain_id == 31337


def test_env_overrides_a_key(tmp_path, env):
    env.setenv("KEEPER_PRIVATE_KEY", KEY)
    env.setenv("KEEPER_PROTECT_TARGET_HF", "1.45")
    assert load_settings(write(tmp_path, GOOD)).protect.target_hf == 1.45


def test_env_file_is_read(tmp_path, env):
    f = tmp_path / "k.env"
    f.write_text(f"KEEPER_PRIVATE_KEY={KEY}\n")
    assert load_settings(write(tmp_path, GOOD), str(f)).private_key is not None


def test_all_errors_reported_at_once_with_file_and_key(tmp_path, env):
    bad = GOOD.replace('pool = "0x2279B7A0a67DB372996a5FaB50D91eAA73d2eBe6"', 'pool = "0x1234"')
    bad = bad.replace("target_hf = 1.3", "target_hf = 1.05\ncolour = 'red'")
    path = write(tmp_path, bad)
    with pytest.raises(ConfigError) as e:
        load_settings(path)
    msg = str(e.value)
    assert f"{path}: [aave] pool: expected a 0x-prefixed 20-byte hex address" in msg
    assert "[protect] target_hf (1.05) must be above trigger_hf (1.1)" in msg
    assert "[protect] colour: unknown key" in msg
    assert "no signing key" in msg


def test_bad_checksum_is_caught(tmp_path, env):
    env.setenv("KEEPER_PRIVATE_KEY", KEY)
    bad = GOOD.replace("0x2279B7A0a67DB372996a5FaB50D91eAA73d2eBe6", "0x2279b7A0a67DB372996a5FaB50D91eAA73d2eBe6")
    with pytest.raises(ConfigError, match="bad EIP-55 checksum"):
        load_settings(write(tmp_path, bad))


def test_malformed_key_is_not_echoed(tmp_path, env):
    env.setenv("KEEPER_PRIVATE_KEY", "0xdeadbeefcafe")
    with pytest.raises(ConfigError) as e:
        load_settings(write(tmp_path, GOOD))
    assert "KEEPER_PRIVATE_KEY: malformed" in str(e.value) and "deadbeefcafe" not in str(e.value)


def test_keystore(tmp_path, env):
    from eth_account import Account

    ks = tmp_path / "ks.json"
    import json

    ks.write_text(json.dumps(Account.encrypt(KEY, "pw", iterations=2)))
    env.setenv("KEEPER_KEYSTORE", str(ks))
    env.setenv("KEEPER_KEYSTORE_PASSWORD", "wrong")
    with pytest.raises(ConfigError, match="cannot decrypt"):
        load_settings(write(tmp_path, GOOD))
    env.setenv("KEEPER_KEYSTORE_PASSWORD", "pw")
    assert load_settings(write(tmp_path, GOOD)).address == Account.from_key(KEY).address


def test_missing_file_and_bad_toml(tmp_path, env):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_settings(str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "chain_id = [\n"))


def test_dry_run_accepts_an_address_without_key(tmp_path, env):
    env.setenv("KEEPER_ADDRESS", "0x2279B7A0a67DB372996a5FaB50D91eAA73d2eBe6")
    s = load_settings(write(tmp_path, GOOD), require_key=False)
    assert s.private_key is None and s.address == "0x2279B7A0a67DB372996a5FaB50D91eAA73d2eBe6"


def test_cli_reports_config_error_with_exit_code_2(tmp_path):
    bad = write(tmp_path, GOOD.replace("chain_id = 31337", "chain_id = 'one'"))
    r = subprocess.run(
        [sys.executable, "-m", "keeper", "run", "--network", bad],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "KEEPER_RPC_URL": "http://127.0.0.1:1"},
        timeout=60,
    )
    assert r.returncode == 2
    assert "configuration error" in r.stderr and "chain_id: expected int" in r.stderr
    assert "Traceback" not in r.stderr


def test_rpc_url_is_not_read_from_toml(tmp_path, env):
    env.setenv("KEEPER_PRIVATE_KEY", KEY)
    env.delenv("KEEPER_RPC_URL")
    with pytest.raises(ConfigError) as e:
        load_settings(write(tmp_path, 'rpc_url = "https://node.example/key"\n' + GOOD))
    assert "rpc_url: unknown key (secrets such as the RPC URL belong in the environment" in str(e.value)
    assert "no RPC URL: set KEEPER_RPC_URL" in str(e.value)


def test_comet_markets_one_or_several(tmp_path, env):
    env.setenv("KEEPER_PRIVATE_KEY", KEY)
    one = GOOD + '[comet]\ncomet = "0xc3d688B66703497DAA19211EEdff47f25384cdc3"\nstart_block = 15331586\n'
    s = load_settings(write(tmp_path, one))
    assert s.market_tables("aave") and [c.comet for c in s.market_tables("comet")] == [
        "0xc3d688B66703497DAA19211EEdff47f25384cdc3"
    ]
    assert s.market_tables("comet")[0].start_block == 15331586
    several = GOOD.split("[aave]")[0] + (
        '[[comet]]\ncomet = "0xc3d688B66703497DAA19211EEdff47f25384cdc3"\n'
        '[[comet]]\ncomet = "0xA17581A9E3356d9A858b789D68B4d866e593aE94"\n'
        "[protect]\ntrigger_hf = 1.1\ntarget_hf = 1.3\n"
    )
    s = load_settings(write(tmp_path, several))
    assert not s.market_tables("aave") and len(s.market_tables("comet")) == 2


def test_comet_errors_and_no_market(tmp_path, env):
    env.setenv("KEEPER_PRIVATE_KEY", KEY)
    bad = GOOD + '[comet]\ncomet = "0x1234"\nbase = "USDC"\n'
    with pytest.raises(ConfigError) as e:
        load_settings(write(tmp_path, bad))
    assert "[comet] comet: expected a 0x-prefixed 20-byte hex address" in str(e.value)
    assert "[comet] base: unknown key" in str(e.value)
    none = GOOD.replace("[aave]", "[aave_v2]")
    with pytest.raises(ConfigError, match="aave_v2: unknown key"):
        load_settings(write(tmp_path, none))
    nothing = "\n".join(line for line in GOOD.splitlines() if not line.startswith(("pool", "oracle", "[aave]")))
    with pytest.raises(ConfigError, match=r"no market to watch: add an \[aave\] table"):
        load_settings(write(tmp_path, nothing))


def test_perps_table_and_its_errors(tmp_path, env):
    env.setenv("KEEPER_PRIVATE_KEY", KEY)
    s = load_settings("base")
    (perps,) = s.market_tables("perps")
    assert not s.market_tables("aave") and perps.native_market_id == 100 and s.native_asset == ""
    assert perps.trigger_ratio == 2.0 and perps.target_ratio == 3.0 and not perps.settle_orders
    bad = (
        "chain_id = 8453\n[perps]\n"
        'market = "0x0A2AF931eFFd34b81ebcc57E3d3c9B1E1dE1C9Ce"\n'
        "accounts = ['one']\nprefer = ['close']\ntrigger_ratio = 3.0\ntarget_ratio = 2.0\n"
    )
    with pytest.raises(ConfigError) as e:
        load_settings(write(tmp_path, bad))
    msg = str(e.value)
    for part in (
        "[perps] usd_token: required",
        "[perps] native_market_id: required",
        "[perps] accounts: expected a list of account ids",
        "[perps] prefer: unknown action 'close'",
        "1 < trigger_ratio < target_ratio",
    ):
        assert part in msg, (part, msg)


def test_several_rpc_endpoints(tmp_path, env):
    env.setenv("KEEPER_PRIVATE_KEY", KEY)
    env.setenv("KEEPER_RPC_URL", "http://127.0.0.1:8545, https://node.example/key")
    assert load_settings(write(tmp_path, GOOD)).rpc_url.get_secret_value().count(",") == 1
    env.setenv("KEEPER_RPC_URL", "http://127.0.0.1:8545,wss://node.example/key")
    with pytest.raises(ConfigError, match=r"several endpoints \(failover\) must all be http"):
        load_settings(write(tmp_path, GOOD))


def test_oracle_heartbeats_and_reference(tmp_path, env):
    env.setenv("KEEPER_PRIVATE_KEY", KEY)
    oracle = '[oracle]\nmax_age_s = 90000\nreference_url = "https://prices.example/usd"\n'
    s = load_settings(write(tmp_path, GOOD + oracle + "[oracle.heartbeats]\nWETH = 3600\n"))
    assert s.oracle.max_age_for("WETH") == 3600 and s.oracle.max_age_for("USDC") == 90000
    assert s.oracle.reference_url == "https://prices.example/usd"
    bad = GOOD + '[oracle]\nreference_url = "prices"\n[oracle.heartbeats]\nWETH = "1h"\n'
    with pytest.raises(ConfigError) as e:
        load_settings(write(tmp_path, bad))
    assert "[oracle.heartbeats] WETH: expected int, got '1h'" in str(e.value)
    assert "reference_url: expected an http" in str(e.value)


def test_ws_url_for_new_heads(tmp_path, env):
    env.setenv("KEEPER_PRIVATE_KEY", KEY)
    env.setenv("KEEPER_WS_URL", "ws://127.0.0.1:8545")
    s = load_settings(write(tmp_path, GOOD))
    assert s.ws_url is not None and s.ws_url.get_secret_value() == "ws://127.0.0.1:8545" and "8545" not in repr(s)
    env.setenv("KEEPER_WS_URL", "http://127.0.0.1:8545")
    with pytest.raises(ConfigError, match="KEEPER_WS_URL: expected a ws"):
        load_settings(write(tmp_path, GOOD))


def test_predictive_settings_per_position_overrides_and_feeds(tmp_path, env):
    env.setenv("KEEPER_PRIVATE_KEY", KEY)
    who = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    extra = f"""mode = "predictive"
[protect.predictive]
half_life_s = 600
[protect.positions."{who}"]
trigger_hf = 1.2
reaction_s = 30
[oracle.feeds.WETH]
deviation_bps = 100
heartbeat_s = 3600
"""
    s = load_settings(write(tmp_path, GOOD + extra))
    assert s.protect.mode == "predictive" and s.protect.predictive.half_life_s == 600
    own = s.protect.for_account(who.lower())
    assert own.trigger_hf == 1.2 and own.predictive.reaction_s == 30 and own.predictive.half_life_s == 600
    assert s.protect.for_account("0x" + "1" * 40).trigger_hf == 1.1
    feed = s.oracle.feed_for("WETH")
    assert feed is not None and feed.deviation_bps == 100
    bad = (
        GOOD.replace("target_hf = 1.3", "target_hf = 1.12")
        + f"""mode = "psychic"
[protect.predictive]
max_liquidation_probability = 2
[protect.positions."{who}"]
trigger_hf = 1.5
colour = "red"
[oracle.feeds.WETH]
deviation_bps = 0
"""
    )
    with pytest.raises(ConfigError) as e:
        load_settings(write(tmp_path, bad))
    text = str(e.value)
    assert "mode: one of static, predictive, alert" in text
    assert "max_liquidation_probability: must be between 0 and 1" in text
    assert "colour: unknown key" in text
    assert f"[protect.positions.{who}] target_hf (1.12) must be above trigger_hf (1.5)" in text
    assert "must be at least trigger_hf x (1 + hysteresis)" in text
    assert "[oracle.feeds.WETH]: deviation_bps and heartbeat_s must be positive" in text


EVERYTHING = (
    GOOD
    + """deleverager = "0x8A791620dd6260079BF849Dc5567aDC3F2FdC318"
[comet]
comet = "0xc3d688B66703497DAA19211EEdff47f25384cdc3"
[perps]
market = "0x0A2AF931eFFd34b81ebcc57E3d3c9B1E1dE1C9Ce"
usd_token = "0x09d51516F38980035153a554c26Df3C6f51a23C3"
native_market_id = 100
trigger_ratio = 2.0
target_ratio = 3.0
[flash]
funding = "auto"
liquidator = "0x1F98431c8aD98523631AE4a59f267346ea31F984"
factory = "0x1F98431c8aD98523631AE4a59f267346ea31F984"
quoter = "0x61fFE014bA17989E743c5F6cB21bF9697530B21e"
router = "0xE592427A0AEce92De3Edee1F18E0157C05861564"
morpho = "0xBBBBBbbBBb9cC5e90e3b3Af64bdAF62C37EEFFCb"
"""
)
OTHER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def _toml(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"


def _changed(loc, value):
    """A valid value different from `value` for the key at `loc`."""
    key = loc[-1]
    special = {
        "mode": "predictive",
        "vol_model": "garch",
        "alert_min_tier": "warning",
        "listen": "127.0.0.1:9200",
        "reference_url": "https://prices.example/usd",
        "heartbeats": {"WETH": 3600},
        "feeds": {"WETH": {"deviation_bps": 60, "heartbeat_s": 3600}},
        "positions": {OTHER: {"trigger_hf": 1.12}},
        "accounts": [1, 2] if loc[0] == "perps" else [OTHER],
        "funding": "flash",
        "source": "aave",
        "fees": [500, 3000],
        "private_rpc_url": "https://relay.example/key",
    }
    if key in special:
        return special[key]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.001 if math.isfinite(value) else 1.0
    if isinstance(value, tuple):
        return list(reversed(value))
    if isinstance(value, str):
        return OTHER if value.startswith("0x") or key == "native_asset" else "changed"
    raise AssertionError(f"no test value for {loc}: {value!r}")


def _at(settings, loc):
    node = settings
    if loc[0] in ("aave", "comet", "perps"):
        node, loc = settings.market_tables(loc[0])[0], loc[1:]
    for part in loc:
        node = getattr(node, part)
    return node


def _plain(value):
    if hasattr(value, "get_secret_value"):
        return value.get_secret_value()
    if hasattr(value, "model_dump"):
        return value.model_dump(exclude_none=True)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return list(value) if isinstance(value, tuple) else value


def test_every_key_is_overridable_from_the_environment(tmp_path, env):
    """Walks every key of the settings model (every section, nested table and market table) and
    checks that KEEPER_<SECTION>_<KEY> takes effect."""
    import tomllib

    from keeper.settings.load import override_names

    env.setenv("KEEPER_PRIVATE_KEY", KEY)
    path = write(tmp_path, EVERYTHING)
    base = load_settings(path)
    names = list(override_names(tomllib.loads(EVERYTHING)))
    assert len(names) >= 75 and ("KEEPER_AAVE_POOL" in dict((v, k) for k, v in names))
    for loc, var in names:
        want = _changed(loc, _at(base, loc))
        env.setenv(var, _toml(want))
        try:
            got = _at(load_settings(path), loc)
        finally:
            env.delenv(var)
        assert _plain(got) == _plain(want) or str(got) == str(want), (var, got, want)


def test_wrong_types_are_rejected_with_the_setting_named(tmp_path, env):
    env.setenv("KEEPER_PRIVATE_KEY", KEY)
    bad = GOOD + '[execution]\nreplace_after_blocks = 0.6\n[liquidate]\nenabled = "false"\n'
    env.setenv("KEEPER_EXECUTION_MAX_FEE_GWEI", "lots")
    with pytest.raises(ConfigError) as e:
        load_settings(write(tmp_path, bad))
    text = str(e.value)
    assert "KEEPER_EXECUTION_MAX_FEE_GWEI: [execution] max_fee_gwei: expected float (a number), got 'lots'" in text
    assert "[execution] replace_after_blocks: expected int, got 0.6" in text
    assert "[liquidate] enabled: expected bool (true or false), got 'false'" in text


def test_a_wrong_type_exits_2_without_a_traceback(tmp_path):
    bad = write(tmp_path, GOOD + '[execution]\nmax_fee_gwei = "lots"\n')
    r = subprocess.run(
        [sys.executable, "-m", "keeper", "run", "--network", bad],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "KEEPER_RPC_URL": "http://127.0.0.1:1", "KEEPER_PRIVATE_KEY": KEY},
        timeout=60,
    )
    assert r.returncode == 2 and "max_fee_gwei: expected float" in r.stderr and "Traceback" not in r.stderr
    assert KEY[2:] not in r.stderr + r.stdout


def test_secrets_stay_out_of_repr(tmp_path, env):
    env.setenv("KEEPER_PRIVATE_KEY", KEY)
    env.setenv("KEEPER_ALERT_WEBHOOKS", "https://hooks.example/secret-token")
    s = load_settings(write(tmp_path, GOOD))
    text = repr(s) + str(s) + s.model_dump_json()
    assert KEY[2:] not in text and "secret-token" not in text and "127.0.0.1:8545" not in text


def test_deleverage_and_morpho_lending_settings_are_checked(tmp_path, env):
    env.setenv("KEEPER_PRIVATE_KEY", KEY)
    asked = GOOD + 'prefer = ["deleverage", "repay"]\ndeleverage_tolerance = 0.5\n[flash]\nsource = "morpho"\n'
    with pytest.raises(ConfigError) as e:
        load_settings(write(tmp_path, asked))
    text = str(e.value)
    assert "[protect] prefer lists 'deleverage': [protect] deleverager is required" in text
    assert "[protect] deleverage_tolerance: above 0 and below target_hf - 1 (got 0.5)" in text
    assert "[flash] morpho: required with source = 'morpho'" in text
    unquoted = GOOD + 'deleverager = "0x8A791620dd6260079BF849Dc5567aDC3F2FdC318"\n'
    with pytest.raises(ConfigError, match=r"\[flash\] quoter: required with \[protect\] deleverager"):
        load_settings(write(tmp_path, unquoted))
    fine = unquoted + (
        '[flash]\nfactory = "0x1F98431c8aD98523631AE4a59f267346ea31F984"\n'
        'quoter = "0x61fFE014bA17989E743c5F6cB21bF9697530B21e"\n'
        'morpho = "0xBBBBBbbBBb9cC5e90e3b3Af64bdAF62C37EEFFCb"\nsource = "morpho"\n'
    )
    s = load_settings(write(tmp_path, fine))
    assert s.protect.deleverager and s.flash.morpho and s.flash.source == "morpho"
