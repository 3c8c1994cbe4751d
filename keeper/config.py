"""Settings: `config/<network>.toml` for everything public, the environment for secrets.

Parsed once into a frozen `Settings` and passed down; opens no connections. Every problem is
collected and reported together, naming the file and key.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from eth_utils import is_checksum_address, to_checksum_address

from keeper.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
MULTICALL3 = "0xcA11bde05977b3631167028862bE2a173976CA11"
"""Multicall3's address on Ethereum and most EVM chains."""
_PRIVATE_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class Secret:
    """A string that never prints itself."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True)
class AaveMarket:
    pool: str
    """Aave v3 Pool (proxy) address."""
    oracle: str
    """AaveOracle address (prices in the base currency, 8 decimals on USD markets)."""
    start_block: int = 0
    """First block scanned for the Pool's events when discovering accounts."""


@dataclass(frozen=True)
class CometSettings:
    comet: str
    """Compound v3 Comet proxy address (one market: one base asset)."""
    start_block: int = 0
    """First block scanned for the market's events when discovering accounts."""


@dataclass(frozen=True)
class PerpsSettings:
    market: str
    """Synthetix v3 PerpsMarketProxy address."""
    usd_token: str
    """snxUSD (collateral id 0): what the keeper adds as margin."""
    native_market_id: int
    """The market whose index price is the native coin's (ETH), to value gas."""
    accounts: tuple[int, ...] = ()
    """Perps account ids to protect (the keeper's address needs PERPS_MODIFY_COLLATERAL and, to
    reduce, PERPS_COMMIT_ASYNC_ORDER on each)."""
    prefer: tuple[str, ...] = ("add_margin", "reduce")
    settle_orders: bool = False
    """Settle the keeper's own reduce orders right after committing them. Only where the market
    settles on chain without off-chain price data (our test market); on Synthetix's deployed
    markets settlement keepers do it with Pyth data."""
    reduce_slippage_bps: int = 100
    trigger_ratio: float = 0.0
    """Act when the margin ratio (available margin / (maintenance margin + reward)) is below
    this; 0: [protect] trigger_hf."""
    target_ratio: float = 0.0
    """Bring the margin ratio back to this; 0: [protect] target_hf."""
    start_block: int = 0


@dataclass(frozen=True)
class PredictiveSettings:
    """The volatility-aware, look-ahead trigger (`mode = "predictive"`); see keeper.strategy.trigger."""

    half_life_s: float = 1800.0
    """EWMA half-life of the volatility estimate: an observed return's weight halves every this many seconds."""
    downside_weight: float = 0.0
    """Asymmetric EWMA: a falling price counts (1 + this) times in the variance."""
    vol_model: str = "ewma"
    """'ewma', or 'garch' (GARCH(1,1) fitted to the observed returns scales the horizon variance)."""
    prior_vol: float = 0.8
    """Annualised volatility assumed for every asset before prices have been observed."""
    reaction_s: float = 60.0
    """Reaction horizon: detection + simulation + inclusion + oracle lag, seconds."""
    max_liquidation_probability: float = 1e-3
    """Act when the probability of liquidation within reaction_s exceeds this."""
    target_horizon_s: float = 3600.0
    """After acting, the probability of liquidation within this many seconds ..."""
    target_probability: float = 0.01
    """... stays below this: the target health rises with volatility (never below target_hf)."""
    max_target_hf: float = 2.5
    gap_bps: int = 0
    """Oracle jump allowance added to the barrier (e.g. a CAPO or exchange-rate gap)."""
    hysteresis: float = 0.03
    """After acting, the trigger re-arms once health is this fraction above trigger_hf (and the
    probability below half the level); until then it acts again only after cooldown_s."""
    cooldown_s: float = 120.0
    emergency_probability: float = 0.05
    """Above this probability the cooldown is ignored."""


_PREDICTIVE_KEYS = frozenset(f.name for f in fields(PredictiveSettings))


@dataclass(frozen=True)
class FeedSettings:
    """A Chainlink-style feed's update rules, for the look-ahead ([oracle.feeds.SYMBOL]); the
    market price it is compared with is the off-chain reference ([oracle] reference_url)."""

    deviation_bps: int = 50
    heartbeat_s: int = 3600


@dataclass(frozen=True)
class ProtectSettings:
    accounts: tuple[str, ...] = ()
    """Positions to keep healthy (usually the key's own address)."""
    trigger_hf: float = 1.15
    """Act when the health factor falls below this."""
    target_hf: float = 1.30
    """Bring the health factor back to this."""
    prefer: tuple[str, ...] = ("repay", "supply")
    """Order in which to try actions: repay debt from the wallet, supply collateral from the wallet."""
    target_buffer_bps: int = 2
    """Aim this many basis points above target, to absorb interest accrued before inclusion."""
    mode: str = "static"
    """'static': act below trigger_hf at the oracle price; 'predictive': also act on the
    predicted oracle price and on the probability of liquidation ([protect.predictive]);
    'alert': never act, only alert."""
    predictive: PredictiveSettings = PredictiveSettings()
    positions: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    """Per-account overrides of any [protect] or [protect.predictive] key ([protect.positions."0x..."])."""

    def for_account(self, account: str) -> ProtectSettings:
        """These settings with the account's own overrides applied."""
        for who, items in self.positions:
            if who.lower() == account.lower():
                own = dict(items)
                pred = {k: v for k, v in own.items() if k in _PREDICTIVE_KEYS}
                top = {k: v for k, v in own.items() if k not in _PREDICTIVE_KEYS}
                return replace(self, **top, predictive=replace(self.predictive, **pred), positions=())
        return self


@dataclass(frozen=True)
class LiquidateSettings:
    enabled: bool = True
    min_profit_usd: float = 1.0
    """Skip liquidations whose expected profit after gas is below this (oracle base currency)."""
    gas_estimate: int = 450_000
    """Gas assumed when screening a liquidation before it is estimated on chain."""
    comet_absorb_always: bool = False
    """Compound v3: absorb liquidatable accounts even when buying their collateral afterwards
    would not pay for the gas (keeps the market solvent at the keeper's expense)."""
    comet_slippage_bps: int = 50
    """Compound v3: buyCollateral's minAmount is the quote less this (a price update may land first)."""


@dataclass(frozen=True)
class OracleSettings:
    max_age_s: int = 90_000
    """A price source whose latest round is older than this (heartbeat + slack, seconds) is stale:
    no action on accounts exposed to that asset. 25 h suits Chainlink's 24 h heartbeat feeds."""
    heartbeats: tuple[tuple[str, int], ...] = ()
    """(asset symbol or address, max age s) for feeds with their own heartbeat (ETH/USD: 1 h)."""
    reference_url: str = ""
    """Optional off-chain reference: a URL answering JSON {"SYMBOL": usd_price, ...}."""
    max_deviation_bps: int = 300
    """An on-chain price further than this from the reference is untrusted (no action on it)."""
    reference_every_s: float = 10.0
    feeds: tuple[tuple[str, FeedSettings], ...] = ()
    """(asset symbol, update rules and market price source) for the look-ahead ([oracle.feeds.SYMBOL])."""

    def feed_for(self, symbol: str) -> FeedSettings | None:
        return next((f for key, f in self.feeds if key == symbol), None)

    def max_age_for(self, symbol: str, address: str = "") -> int:
        for key, age in self.heartbeats:
            if key == symbol or (address and key.lower() == address.lower()):
                return age
        return self.max_age_s


@dataclass(frozen=True)
class OpsSettings:
    listen: str = "127.0.0.1:9108"
    """host:port of the operations server (/metrics, /healthz, the status page /); '' turns it off."""
    max_block_age_s: float = 120.0
    """/healthz fails when no block was processed for this long (seconds)."""
    max_lag_blocks: int = 5
    """/healthz fails when the keeper is this many blocks behind the node's head."""
    alert_min_tier: str = "info"
    """Lowest tier sent to the webhooks: info (actions taken), warning, critical."""
    alert_cooldown_s: float = 600.0
    """The same alert (kind and subject) is not sent again within this many seconds."""
    status_top: int = 50
    """Positions on the status page per market (the protected ones, then the riskiest)."""


@dataclass(frozen=True)
class ExecutionSettings:
    max_fee_gwei: float = 200.0
    """Never pay more than this per gas (EIP-1559 maxFeePerGas cap)."""
    priority_fee_gwei: float = 1.0
    gas_limit_multiplier: float = 1.25
    max_gas_spend_native: float = 0.05
    """Upper bound of gas_limit x max_fee for one transaction, in the native coin (ETH)."""
    max_gas_spend_native_per_day: float = 0.5
    """Gas paid in 24 h (mined, plus the worst case of what is in flight), native coin."""
    max_actions_per_hour: int = 120
    account_cooldown_s: float = 0.0
    """No new action on an account within this many seconds of the last one sent for it."""
    kill_switch_file: str = ""
    """While this file exists (or KEEPER_KILL_SWITCH=1), nothing is sent; monitoring goes on."""
    min_native_balance: float = 0.05
    """ALERT when the keeper's gas balance falls below this (native coin)."""
    journal_path: str = ""
    """SQLite journal; empty: .keeper/<network>-<address>.sqlite under the working directory."""
    receipt_timeout_s: float = 120.0
    replace_after_blocks: int = 3
    """A transaction not mined after this many blocks is replaced with bumped fees (or cancelled)."""
    fee_bump_pct: float = 12.5
    """Minimum fee increase of a replacement (geth and most nodes require 10%)."""
    receipt_poll_s: float = 0.5


@dataclass(frozen=True)
class Settings:
    network: str
    chain_id: int
    rpc_url: Secret
    aave: AaveMarket | None
    native_asset: str
    """Asset (listed on every watched market) whose price converts gas, paid in the native coin,
    to the market's price units: WETH on Ethereum."""
    protect: ProtectSettings
    liquidate: LiquidateSettings
    execution: ExecutionSettings
    oracle: OracleSettings = OracleSettings()
    comets: tuple[CometSettings, ...] = ()
    perps: PerpsSettings | None = None
    multicall3: str = MULTICALL3
    """Multicall3 (the same address on most chains; set it for a local chain)."""
    ws_url: Secret | None = None
    """KEEPER_WS_URL (or a ws(s):// KEEPER_RPC_URL): newHeads subscription that wakes the loop."""
    ops: OpsSettings = OpsSettings()
    alert_webhooks: Secret | None = None
    """KEEPER_ALERT_WEBHOOKS: comma-separated `format=url` (json, slack, discord, telegram)."""
    private_key: Secret | None = None
    address: str | None = None
    """The keeper's address: from the key, or KEEPER_ADDRESS for a key-less dry run."""
    poll_interval_s: float = 2.0
    log_chunk_blocks: int = 5_000
    multicall_chunk: int = 400
    rpc_timeout_s: float = 20.0
    """Per request; with several endpoints a slower one is left for the next."""
    rpc_max_lag_blocks: int = 5
    """With several endpoints: one this many blocks behind the best is out of rotation."""
    checkpoint_every_blocks: int = 100
    """Save where discovery would resume (block, known accounts) this often."""
    reconcile_every_blocks: int = 300
    """Re-read every account of every market this often (0: never) and count drift: catches what
    no event announced (e.g. a Comet borrow by base transfer, which names only the receiver)."""
    source: str = ""


def _check_address(value: Any, where: str, errors: list[str]) -> str:
    if not isinstance(value, str) or not _ADDRESS.match(value):
        errors.append(f"{where}: expected a 0x-prefixed 20-byte hex address, got {value!r}")
        return "0x" + "0" * 40
    body = value[2:]
    if body != body.lower() and body != body.upper() and not is_checksum_address(value):
        errors.append(f"{where}: address {value} has a bad EIP-55 checksum (typo?)")
        return "0x" + "0" * 40
    return str(to_checksum_address(value))


def _section(data: dict[str, Any], name: str, cls: type, where: str, errors: list[str], env: dict[str, str]) -> Any:
    raw = dict(data.get(name, {}))
    if not isinstance(raw, dict):
        errors.append(f"{where}: [{name}] must be a table")
        raw = {}
    known = {f.name: f for f in fields(cls)}
    for key in raw:
        if key not in known:
            errors.append(f"{where}: [{name}] {key}: unknown key (known: {', '.join(sorted(known))})")
    for key in known:
        env_key = f"KEEPER_{name.upper()}_{key.upper()}"
        if env_key in env:
            raw[key] = env[env_key]
    kwargs: dict[str, Any] = {}
    for key, f in known.items():
        if key not in raw:
            continue
        kwargs[key] = _coerce(raw[key], f.type, f"{where}: [{name}] {key}", errors)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        errors.append(f"{where}: [{name}] {exc}")
        return None


def _coerce(value: Any, type_name: Any, where: str, errors: list[str]) -> Any:
    t = str(type_name)
    try:
        if t == "bool":
            if isinstance(value, str):
                if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError
                return value.lower() in ("1", "true", "yes")
            if not isinstance(value, bool):
                raise ValueError
            return value
        if t == "int":
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if t == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if t.startswith("tuple[str"):
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, list | tuple):
                raise ValueError
            return tuple(str(i).strip() for i in items if str(i).strip())
        if t == "str":
            if not isinstance(value, str):
                raise ValueError
            return value
    except ValueError:
        errors.append(f"{where}: expected {t}, got {value!r}")
        return None
    return value


def resolve_config_path(network: str) -> Path:
    """`network` is a name under config/ (`local`, `mainnet`) or a path to a TOML file."""
    p = Path(network)
    if p.suffix == ".toml":
        return p
    return CONFIG_DIR / f"{network}.toml"


def read_env(env_file: str | None) -> dict[str, str]:
    """The process environment over the env file (the env file never overrides a set variable)."""
    values: dict[str, str] = {}
    if env_file:
        path = Path(env_file)
        if not path.is_file():
            raise ConfigError(f"env file {env_file} does not exist")
        values.update({k: v for k, v in dotenv_values(path).items() if v is not None})
    values.update(os.environ)
    return values


def load_settings(network: str, env_file: str | None = None, *, require_key: bool = True) -> Settings:
    """Read and validate the configuration; raise ConfigError listing every problem."""
    path = resolve_config_path(network)
    where = str(path)
    if not path.is_file():
        raise ConfigError(
            f"{where}: configuration file not found (networks in {CONFIG_DIR}: "
            f"{', '.join(sorted(p.stem for p in CONFIG_DIR.glob('*.toml')))})"
        )
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    env = read_env(env_file)
    errors: list[str] = []

    chain_id = _coerce(env.get("KEEPER_CHAIN_ID", data.get("chain_id")), "int", f"{where}: chain_id", errors)
    if chain_id is None or (isinstance(chain_id, int) and chain_id <= 0):
        errors.append(f"{where}: chain_id: required, a positive integer")

    top_level = {
        "network",
        "chain_id",
        "native_asset",
        "poll_interval_s",
        "log_chunk_blocks",
        "reconcile_every_blocks",
        "checkpoint_every_blocks",
        "rpc_timeout_s",
        "rpc_max_lag_blocks",
        "multicall_chunk",
        "multicall3",
        "aave",
        "comet",
        "perps",
        "protect",
        "liquidate",
        "execution",
        "oracle",
        "ops",
    }
    for key in sorted(set(data) - top_level):
        hint = " (secrets such as the RPC URL belong in the environment: KEEPER_RPC_URL)" if "rpc" in key else ""
        errors.append(f"{where}: {key}: unknown key{hint}")
    rpc_url = env.get("KEEPER_RPC_URL")
    if not rpc_url:
        errors.append("no RPC URL: set KEEPER_RPC_URL in the environment or the env file")
    else:
        urls = [u.strip() for u in str(rpc_url).split(",") if u.strip()]
        if not urls or not all(re.match(r"^(https?|wss?)://", u) for u in urls):
            errors.append("KEEPER_RPC_URL: expected an http(s):// or ws(s):// URL, or several comma-separated")
        elif len(urls) > 1 and any(u.startswith(("ws://", "wss://")) for u in urls):
            errors.append("KEEPER_RPC_URL: several endpoints (failover) must all be http(s)://")
    ws_url = env.get("KEEPER_WS_URL") or (str(rpc_url) if str(rpc_url or "").startswith(("ws://", "wss://")) else "")
    if ws_url and not re.match(r"^wss?://", ws_url):
        errors.append("KEEPER_WS_URL: expected a ws(s):// URL")

    aave = _aave(data.get("aave"), where, errors)
    comets = _comets(data.get("comet"), where, errors)
    perps = _perps(data.get("perps"), where, errors)
    if aave is None and not comets and perps is None and not any("[aave]" in e for e in errors):
        errors.append(
            f"{where}: no market to watch: add an [aave] table (pool, oracle), [comet] (comet) and/or [perps] (market)"
        )
    multicall3 = _check_address(data.get("multicall3", MULTICALL3), f"{where}: multicall3", errors)
    native_asset = ""
    if "native_asset" in data or aave is not None or comets:
        native_asset = _check_address(data.get("native_asset"), f"{where}: native_asset", errors)
    numbers: dict[str, Any] = {}
    for key, kind, default, least in (
        ("poll_interval_s", "float", 2.0, 0.0),
        ("log_chunk_blocks", "int", 5_000, 1),
        ("multicall_chunk", "int", 400, 1),
        ("reconcile_every_blocks", "int", 300, 0),
        ("checkpoint_every_blocks", "int", 100, 1),
        ("rpc_timeout_s", "float", 20.0, 0.1),
        ("rpc_max_lag_blocks", "int", 5, 0),
    ):
        value = _coerce(data.get(key, default), kind, f"{where}: {key}", errors)
        if value is not None and value < least:
            errors.append(f"{where}: {key}: must be at least {least} (got {value})")
        numbers[key] = value

    protect = parse_protect(data.get("protect", {}), where, errors, env)
    liquidate = _section(data, "liquidate", LiquidateSettings, where, errors, env)
    execution = _section(data, "execution", ExecutionSettings, where, errors, env)
    oracle_raw = data.get("oracle", {})
    heartbeats = oracle_raw.pop("heartbeats", {}) if isinstance(oracle_raw, dict) else {}
    feeds_raw = oracle_raw.pop("feeds", {}) if isinstance(oracle_raw, dict) else {}
    oracle = _section(data, "oracle", OracleSettings, where, errors, env)
    if isinstance(oracle_raw, dict):
        oracle_raw["heartbeats"] = heartbeats  # leave the parsed TOML as it was
        oracle_raw["feeds"] = feeds_raw
    feeds = []
    for symbol, spec in (feeds_raw if isinstance(feeds_raw, dict) else {}).items():
        name = f"oracle.feeds.{symbol}"
        feed = _section({name: spec}, name, FeedSettings, where, errors, {})
        if feed is not None and (feed.deviation_bps <= 0 or feed.heartbeat_s <= 0):
            errors.append(f"{where}: [oracle.feeds.{symbol}]: deviation_bps and heartbeat_s must be positive")
        if feed is not None:
            feeds.append((str(symbol), feed))
    if oracle is not None:
        oracle = replace(oracle, feeds=tuple(feeds))
    if not isinstance(heartbeats, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in heartbeats.values()
    ):
        errors.append(f"{where}: [oracle.heartbeats]: expected a table of asset = seconds (positive integers)")
    elif oracle is not None:
        oracle = OracleSettings(**{**oracle.__dict__, "heartbeats": tuple(heartbeats.items())})
    if oracle is not None and oracle.reference_url and not re.match(r"^https?://", oracle.reference_url):
        errors.append(f"{where}: [oracle] reference_url: expected an http(s):// URL")
    if oracle is not None and oracle.max_age_s <= 0:
        errors.append(f"{where}: [oracle] max_age_s: must be positive")
    ops = _section(data, "ops", OpsSettings, where, errors, env)
    if ops is not None and ops.listen and not re.match(r"^[\w.\-]+:\d{1,5}$", ops.listen):
        errors.append(f"{where}: [ops] listen: expected host:port (or '' to turn the server off)")
    if ops is not None and ops.alert_min_tier not in ("info", "warning", "critical"):
        errors.append(f"{where}: [ops] alert_min_tier: one of info, warning, critical")
    webhooks = env.get("KEEPER_ALERT_WEBHOOKS", "")
    if webhooks:
        from keeper.alerts import parse_webhooks

        try:
            parse_webhooks(webhooks)
        except ValueError as exc:
            errors.append(f"KEEPER_ALERT_WEBHOOKS: {exc}")
    if execution is not None and execution.max_fee_gwei <= 0:
        errors.append(f"{where}: [execution] max_fee_gwei: must be positive")

    private_key, address = _key_from_env(env, errors)
    if address is None and "KEEPER_ADDRESS" in env:
        address = _check_address(env["KEEPER_ADDRESS"], "KEEPER_ADDRESS", errors)
    if require_key and private_key is None:
        errors.append(
            "no signing key: set KEEPER_PRIVATE_KEY, or KEEPER_KEYSTORE and KEEPER_KEYSTORE_PASSWORD "
            "(use --dry-run with KEEPER_ADDRESS to watch without a key)"
        )
    elif address is None:
        errors.append("no keeper address: set KEEPER_PRIVATE_KEY, a keystore, or KEEPER_ADDRESS")

    if errors:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(errors))
    assert protect is not None and liquidate is not None and execution is not None
    assert oracle is not None and ops is not None
    return Settings(
        network=str(data.get("network", path.stem)),
        chain_id=int(chain_id),
        rpc_url=Secret(str(rpc_url)),
        ws_url=Secret(ws_url) if ws_url else None,
        aave=aave,
        comets=comets,
        perps=perps,
        multicall3=multicall3,
        native_asset=native_asset,
        protect=protect,
        liquidate=liquidate,
        execution=execution,
        oracle=oracle,
        ops=ops,
        alert_webhooks=Secret(webhooks) if webhooks else None,
        private_key=private_key,
        address=address,
        source=where,
        **numbers,
    )


def parse_protect(
    raw: Any, where: str, errors: list[str], env: dict[str, str], *, named: bool = False
) -> ProtectSettings | None:
    """[protect] with its [protect.predictive] defaults and [protect.positions.<account>] overrides;
    `named` accepts position names instead of addresses (the backtester's positions)."""
    protect_raw = dict(raw) if isinstance(raw, dict) else {}
    predictive = _section(protect_raw, "predictive", PredictiveSettings, f"{where}: [protect]", errors, {})
    positions = _positions(protect_raw.pop("positions", {}), where, errors, named)
    protect_raw.pop("predictive", None)
    protect = _section({"protect": protect_raw}, "protect", ProtectSettings, where, errors, env)
    if protect is None:
        return None
    accounts = tuple(_check_address(a, f"{where}: [protect] accounts", errors) for a in protect.accounts)
    protect = replace(protect, accounts=accounts, predictive=predictive or PredictiveSettings(), positions=positions)
    if protect.mode not in ("static", "predictive", "alert"):
        errors.append(f"{where}: [protect] mode: one of static, predictive, alert (got {protect.mode!r})")
    errors += _check_protect(protect, f"{where}: [protect]")
    for account, _ in protect.positions:
        errors += _check_protect(protect.for_account(account), f"{where}: [protect.positions.{account}]")
    for p in protect.prefer:
        if p not in ("repay", "supply"):
            errors.append(f"{where}: [protect] prefer: unknown action {p!r} (use 'repay', 'supply')")
    return protect


def _check_protect(p: ProtectSettings, where: str) -> list[str]:
    """Trigger/target consistency (a target at or below the trigger would act again at once)."""
    errors = []
    if p.trigger_hf <= 1.0:
        errors.append(f"{where} trigger_hf: must be above 1.0 (got {p.trigger_hf})")
    if p.target_hf <= p.trigger_hf:
        errors.append(
            f"{where} target_hf ({p.target_hf}) must be above trigger_hf ({p.trigger_hf}), "
            "or the keeper would act again at once"
        )
    q = p.predictive
    for name in ("max_liquidation_probability", "target_probability", "emergency_probability"):
        if not 0 < getattr(q, name) < 1:
            errors.append(f"{where} predictive {name}: must be between 0 and 1 (got {getattr(q, name)})")
    for name in ("half_life_s", "reaction_s", "target_horizon_s", "prior_vol"):
        if getattr(q, name) <= 0:
            errors.append(f"{where} predictive {name}: must be positive (got {getattr(q, name)})")
    if q.vol_model not in ("ewma", "garch"):
        errors.append(f"{where} predictive vol_model: 'ewma' or 'garch' (got {q.vol_model!r})")
    if q.max_target_hf <= p.target_hf:
        errors.append(f"{where} predictive max_target_hf ({q.max_target_hf}) must be above target_hf ({p.target_hf})")
    if p.target_hf < p.trigger_hf * (1 + q.hysteresis):
        errors.append(
            f"{where} target_hf ({p.target_hf}) must be at least trigger_hf x (1 + hysteresis) "
            f"({p.trigger_hf * (1 + q.hysteresis):.4f}), or the trigger would never re-arm after reaching it"
        )
    return errors


def _positions(
    raw: Any, where: str, errors: list[str], named: bool
) -> tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]:
    """[protect.positions."0x..."]: per-account overrides, each key checked and typed as in [protect]."""
    if not isinstance(raw, dict):
        errors.append(f"{where}: [protect.positions] must be a table of account = {{overrides}}")
        return ()
    types = {f.name: f.type for f in fields(ProtectSettings) if f.name not in ("accounts", "predictive", "positions")}
    types |= {f.name: f.type for f in fields(PredictiveSettings)}
    out = []
    for account, items in raw.items():
        at = f"{where}: [protect.positions.{account}]"
        address = str(account) if named else _check_address(account, at, errors)
        if not isinstance(items, dict):
            errors.append(f"{at}: must be a table")
            continue
        own = []
        for key, value in items.items():
            if key not in types:
                errors.append(f"{at} {key}: unknown key (known: {', '.join(sorted(types))})")
                continue
            own.append((key, _coerce(value, types[key], f"{at} {key}", errors)))
        out.append((address, tuple(own)))
    return tuple(out)


def _aave(raw: Any, where: str, errors: list[str]) -> AaveMarket | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        errors.append(f"{where}: [aave] must be a table with pool and oracle")
        return None
    for key in ("pool", "oracle"):
        if key not in raw:
            errors.append(f"{where}: [aave] {key}: required")
    for key in sorted(set(raw) - {"pool", "oracle", "start_block"}):
        hint = " (multicall3 is a top-level key)" if key == "multicall3" else ""
        errors.append(f"{where}: [aave] {key}: unknown key{hint}")
    return AaveMarket(
        pool=_check_address(raw.get("pool"), f"{where}: [aave] pool", errors),
        oracle=_check_address(raw.get("oracle"), f"{where}: [aave] oracle", errors),
        start_block=_coerce(raw.get("start_block", 0), "int", f"{where}: [aave] start_block", errors) or 0,
    )


def _comets(raw: Any, where: str, errors: list[str]) -> tuple[CometSettings, ...]:
    """[comet] (one market) or [[comet]] (several)."""
    if raw is None:
        return ()
    tables = [raw] if isinstance(raw, dict) else raw
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        errors.append(f"{where}: [comet] must be a table, or [[comet]] tables")
        return ()
    out = []
    for k, t in enumerate(tables):
        name = "[comet]" if isinstance(raw, dict) else f"[[comet]] #{k + 1}"
        if "comet" not in t:
            errors.append(f"{where}: {name} comet: required (the Comet proxy address)")
        for key in sorted(set(t) - {"comet", "start_block"}):
            errors.append(f"{where}: {name} {key}: unknown key")
        out.append(
            CometSettings(
                comet=_check_address(t.get("comet"), f"{where}: {name} comet", errors),
                start_block=_coerce(t.get("start_block", 0), "int", f"{where}: {name} start_block", errors) or 0,
            )
        )
    return tuple(out)


def _perps(raw: Any, where: str, errors: list[str]) -> PerpsSettings | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        errors.append(f"{where}: [perps] must be a table")
        return None
    known = {f.name for f in fields(PerpsSettings)}
    for key in sorted(set(raw) - known):
        errors.append(f"{where}: [perps] {key}: unknown key (known: {', '.join(sorted(known))})")
    for key in ("market", "usd_token", "native_market_id"):
        if key not in raw:
            errors.append(f"{where}: [perps] {key}: required")
    accounts = raw.get("accounts", [])
    if not isinstance(accounts, list) or not all(isinstance(a, int) and not isinstance(a, bool) for a in accounts):
        errors.append(f"{where}: [perps] accounts: expected a list of account ids (integers), got {accounts!r}")
        accounts = []
    trigger, target = raw.get("trigger_ratio", 0.0), raw.get("target_ratio", 0.0)
    numeric = isinstance(trigger, int | float) and isinstance(target, int | float)
    if numeric and (trigger or target) and not 1.0 < trigger < target:
        errors.append(
            f"{where}: [perps] trigger_ratio ({trigger}) and target_ratio ({target}): set both, with "
            "1 < trigger_ratio < target_ratio"
        )
    prefer = _coerce(raw.get("prefer", ["add_margin", "reduce"]), "tuple[str, ...]", f"{where}: [perps] prefer", errors)
    for p in prefer or ():
        if p not in ("add_margin", "reduce"):
            errors.append(f"{where}: [perps] prefer: unknown action {p!r} (use 'add_margin', 'reduce')")
    return PerpsSettings(
        market=_check_address(raw.get("market"), f"{where}: [perps] market", errors),
        usd_token=_check_address(raw.get("usd_token"), f"{where}: [perps] usd_token", errors),
        native_market_id=_coerce(raw.get("native_market_id", 0), "int", f"{where}: [perps] native_market_id", errors)
        or 0,
        accounts=tuple(accounts),
        prefer=tuple(prefer or ()),
        settle_orders=bool(_coerce(raw.get("settle_orders", False), "bool", f"{where}: [perps] settle_orders", errors)),
        reduce_slippage_bps=_coerce(
            raw.get("reduce_slippage_bps", 100), "int", f"{where}: [perps] reduce_slippage_bps", errors
        )
        or 0,
        trigger_ratio=_coerce(raw.get("trigger_ratio", 0.0), "float", f"{where}: [perps] trigger_ratio", errors) or 0.0,
        target_ratio=_coerce(raw.get("target_ratio", 0.0), "float", f"{where}: [perps] target_ratio", errors) or 0.0,
        start_block=_coerce(raw.get("start_block", 0), "int", f"{where}: [perps] start_block", errors) or 0,
    )


def _key_from_env(env: dict[str, str], errors: list[str]) -> tuple[Secret | None, str | None]:
    from eth_account import Account

    raw = env.get("KEEPER_PRIVATE_KEY")
    if raw:
        if not _PRIVATE_KEY.match(raw.strip()):
            errors.append("KEEPER_PRIVATE_KEY: malformed (expected 32 bytes of hex, 0x-prefixed)")
            return None, None
        key = raw.strip() if raw.strip().startswith("0x") else "0x" + raw.strip()
        return Secret(key), str(Account.from_key(key).address)
    keystore = env.get("KEEPER_KEYSTORE")
    if keystore:
        password = env.get("KEEPER_KEYSTORE_PASSWORD")
        if password is None:
            errors.append("KEEPER_KEYSTORE is set but KEEPER_KEYSTORE_PASSWORD is not")
            return None, None
        try:
            encrypted = Path(keystore).read_text()
            key_bytes = Account.decrypt(encrypted, password)
        except FileNotFoundError:
            errors.append(f"KEEPER_KEYSTORE: file {keystore} not found")
            return None, None
        except ValueError:
            errors.append(f"KEEPER_KEYSTORE: cannot decrypt {keystore} (wrong password or not a keystore)")
            return None, None
        key = "0x" + bytes(key_bytes).hex()
        return Secret(key), str(Account.from_key(key).address)
    return None, None
