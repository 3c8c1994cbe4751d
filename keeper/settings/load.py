"""Load the settings: `config/<network>.toml` for everything public, the environment (and an env
file, through pydantic-settings) for secrets and overrides.

Every TOML key can be overridden as `KEEPER_<SECTION>_<KEY>` (top-level keys: `KEEPER_<KEY>`;
nested tables: `KEEPER_PROTECT_PREDICTIVE_HALF_LIFE_S`; [[comet]] tables: `KEEPER_COMET_<N>_<KEY>`,
or `KEEPER_COMET_<KEY>` when there is one). An override's value is read as a TOML value (`1.45`,
`true`, `"text"`, `[1, 2]`, `{WETH = 3600}`), else as a plain string. Every problem is collected
and reported at once, naming the file (or variable) and key and the expected type.
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from keeper.errors import ConfigError
from keeper.protocols.registry import PROTOCOLS
from keeper.settings.checks import cross_checks
from keeper.settings.models import (
    CoreSettings,
    ExecutionSettings,
    FlashSettings,
    LiquidateSettings,
    OpsSettings,
    OracleSettings,
    ProtectSettings,
    Settings,
    check_address,
)
from keeper.settings.report import message, where_text

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
SECTIONS: dict[str, type[BaseModel]] = {
    "protect": ProtectSettings,
    "liquidate": LiquidateSettings,
    "flash": FlashSettings,
    "execution": ExecutionSettings,
    "oracle": OracleSettings,
    "ops": OpsSettings,
}


class Environment(BaseSettings):
    """What only the environment (or the env file) may say: secrets and where they come from."""

    model_config = SettingsConfigDict(env_prefix="KEEPER_", extra="ignore", case_sensitive=True)

    RPC_URL: SecretStr | None = None
    WS_URL: SecretStr | None = None
    PRIVATE_KEY: SecretStr | None = None
    KEYSTORE: str | None = None
    KEYSTORE_PASSWORD: SecretStr | None = None
    ADDRESS: str | None = None
    ALERT_WEBHOOKS: SecretStr | None = None


def resolve_config_path(network: str) -> Path:
    """`network` is a name under config/ (`local`, `mainnet`) or a path to a TOML file."""
    p = Path(network)
    return p if p.suffix == ".toml" else CONFIG_DIR / f"{network}.toml"


def read_env(env_file: str | None) -> dict[str, str]:
    """KEEPER_* variables: the process environment over the env file."""
    values: dict[str, str] = {}
    if env_file:
        if not Path(env_file).is_file():
            raise ConfigError(f"env file {env_file} does not exist")
        from dotenv import dotenv_values

        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ)
    return {k: v for k, v in values.items() if k.startswith("KEEPER_")}


def load_settings(network: str, env_file: str | None = None, *, require_key: bool = True) -> Settings:
    """Read and validate the configuration; ConfigError listing every problem."""
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
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read: {exc}") from None
    env = read_env(env_file)
    try:
        secrets = Environment(_env_file=env_file) if env_file else Environment()  # type: ignore[call-arg]
    except ValidationError as exc:
        raise ConfigError(f"environment: {exc}") from None
    errors: list[str] = []
    overridden = apply_overrides(data, env)
    parts = validate(data, where, overridden, errors)
    rpc_url, ws_url = _urls(secrets, errors)
    from keeper.execution.signer import key_from_env, relay_auth_from_env

    private_key, address = key_from_env(env, errors)
    relay_auth_key = relay_auth_from_env(env, errors)
    if address is None and secrets.ADDRESS:
        address = _address(secrets.ADDRESS, "KEEPER_ADDRESS", errors)
    if require_key and private_key is None:
        errors.append(
            "no signing key: set KEEPER_PRIVATE_KEY, or KEEPER_KEYSTORE and KEEPER_KEYSTORE_PASSWORD "
            "(use --dry-run with KEEPER_ADDRESS to watch without a key)"
        )
    elif address is None:
        errors.append("no keeper address: set KEEPER_PRIVATE_KEY, a keystore, or KEEPER_ADDRESS")
    if secrets.ALERT_WEBHOOKS:
        from keeper.app.alerts import parse_webhooks

        try:
            parse_webhooks(secrets.ALERT_WEBHOOKS.get_secret_value())
        except ValueError as exc:
            errors.append(f"KEEPER_ALERT_WEBHOOKS: {exc}")
    if errors:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(errors))
    core = parts.pop("core")
    assert isinstance(core, CoreSettings) and rpc_url is not None
    return Settings(
        **{**core.model_dump(), "network": core.network or path.stem},
        **parts,
        rpc_url=rpc_url,
        ws_url=ws_url,
        alert_webhooks=secrets.ALERT_WEBHOOKS,
        private_key=private_key,
        relay_auth_key=relay_auth_key,
        address=address,
        source=where,
    )


def validate(data: dict[str, Any], where: str, overridden: dict[tuple[Any, ...], str], errors: list[str]) -> Any:
    """Each section validated on its own (so every section's problems are reported together),
    then the checks that span fields."""
    tables = {e.table for e in PROTOCOLS}
    parts: dict[str, Any] = {}
    core_keys = set(CoreSettings.model_fields)
    for key in sorted(set(data) - core_keys - set(SECTIONS) - tables):
        hint = " (secrets such as the RPC URL belong in the environment: KEEPER_RPC_URL)" if "rpc" in key else ""
        errors.append(f"{where}: {key}: unknown key{hint}")
    core_raw = {k: v for k, v in data.items() if k in core_keys}
    parts["core"] = _model(CoreSettings, core_raw, where, (), overridden, errors)
    for name, model in SECTIONS.items():
        raw = data.get(name, {})
        parts[name] = _model(model, raw, where, (name,), overridden, errors)
    markets: dict[str, tuple[Any, ...]] = {}
    for e in PROTOCOLS:
        raw = data.get(e.table)
        if raw is None:
            continue
        items = raw if isinstance(raw, list) and e.many else [raw]
        found = []
        for k, item in enumerate(items):
            loc: tuple[Any, ...] = (e.table,) if len(items) == 1 and not isinstance(raw, list) else (e.table, k)
            m = _model(e.settings, item, where, loc, overridden, errors)
            if m is not None:
                found.append(m)
        markets[e.table] = tuple(found)
    parts["markets"] = markets
    if not data.keys() & tables and not any(f"[{t}]" in x for t in tables for x in errors):
        errors.append(
            f"{where}: no market to watch: add an [aave] table (pool, oracle), [comet] (comet) and/or [perps] (market)"
        )
    needs_native = any(e.needs_native_asset and e.table in data for e in PROTOCOLS)
    core = parts["core"]
    if needs_native and core is not None and not core.native_asset:
        errors.append(f"{where}: native_asset: required with a lending market ([aave], [comet])")
    errors += cross_checks(where, parts)
    return parts


def _model(
    model: type[BaseModel],
    raw: Any,
    where: str,
    loc: tuple[Any, ...],
    overridden: dict[tuple[Any, ...], str],
    errors: list[str],
) -> Any:
    if not isinstance(raw, dict):
        errors.append(f"{where}: {where_text(loc)} must be a table")
        return None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            full = loc + tuple(err["loc"])
            errors.append(f"{overridden.get(full, where)}: {where_text(full)}: {message(err)}")
        return _without_errors(model, raw, exc)


def _without_errors(model: type[BaseModel], raw: dict[str, Any], exc: ValidationError) -> Any:
    """The section validated without the keys that failed (their defaults instead), so that the
    checks spanning fields still run and every problem is reported at once; None if it cannot be."""
    pruned = copy.deepcopy(raw)
    for _ in range(3):
        for err in exc.errors():
            node: Any = pruned
            path = err["loc"]
            for part in path[:-1]:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node.pop(path[-1], None)
        try:
            return model.model_validate(pruned)
        except ValidationError as again:
            exc = again
    return None


def apply_overrides(data: dict[str, Any], env: dict[str, str]) -> dict[tuple[Any, ...], str]:
    """Apply KEEPER_<SECTION>_<KEY> to `data` in place; returns {location: variable} of what was set."""
    applied: dict[tuple[Any, ...], str] = {}
    for loc, var in override_names(data):
        if var in env:
            _set(data, loc, parse_value(env[var]))
            applied[loc] = var
    return applied


def override_names(data: dict[str, Any]) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(location in the TOML data, environment variable) for every settable key."""
    for key in CoreSettings.model_fields:
        yield (key,), f"KEEPER_{key.upper()}"
    for name, model in SECTIONS.items():
        yield from _fields(model, (name,))
    for e in PROTOCOLS:
        raw = data.get(e.table)
        if e.many and isinstance(raw, list):
            for k in range(len(raw)):
                yield from _fields(e.settings, (e.table, k), prefix=f"{e.table}_{k + 1}")
        else:
            yield from _fields(e.settings, (e.table,))


def _fields(model: type[BaseModel], loc: tuple[Any, ...], prefix: str = "") -> Iterator[tuple[tuple[Any, ...], str]]:
    for key, field in model.model_fields.items():
        annotation = field.annotation
        name = f"KEEPER_{(prefix or '_'.join(str(x) for x in loc)).upper()}_{key.upper()}"
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _fields(annotation, (*loc, key), prefix=f"{prefix or '_'.join(map(str, loc))}_{key}")
        else:
            yield (*loc, key), name


def parse_value(text: str) -> Any:
    """An override's value: a TOML value where it parses as one, else the string itself (an
    address stays a string: TOML would read 0x... as a hexadecimal integer)."""
    if re.fullmatch(r"0x[0-9a-fA-F]{40}", text.strip()):
        return text.strip()
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _set(data: dict[str, Any], loc: tuple[Any, ...], value: Any) -> None:
    node: Any = data
    for part in loc[:-1]:
        if isinstance(part, int):
            node = node[part]
        elif isinstance(node, dict):
            node = node.setdefault(part, {})
    if isinstance(node, dict):
        node[loc[-1]] = value


def _urls(secrets: Environment, errors: list[str]) -> tuple[SecretStr | None, SecretStr | None]:
    rpc = secrets.RPC_URL.get_secret_value() if secrets.RPC_URL else ""
    if not rpc:
        errors.append("no RPC URL: set KEEPER_RPC_URL in the environment or the env file")
    else:
        urls = [u.strip() for u in rpc.split(",") if u.strip()]
        if not urls or not all(re.match(r"^(https?|wss?)://", u) for u in urls):
            errors.append("KEEPER_RPC_URL: expected an http(s):// or ws(s):// URL, or several comma-separated")
        elif len(urls) > 1 and any(u.startswith(("ws://", "wss://")) for u in urls):
            errors.append("KEEPER_RPC_URL: several endpoints (failover) must all be http(s)://")
    ws = secrets.WS_URL.get_secret_value() if secrets.WS_URL else (rpc if rpc.startswith(("ws://", "wss://")) else "")
    if ws and not re.match(r"^wss?://", ws):
        errors.append("KEEPER_WS_URL: expected a ws(s):// URL")
    return (SecretStr(rpc) if rpc else None), (SecretStr(ws) if ws else None)


def _address(value: str, where: str, errors: list[str]) -> str | None:
    try:
        return check_address(value)
    except ValueError as exc:
        errors.append(f"{where}: {exc}")
        return None
