"""`keeper backtest` inputs: a scenario file (assets, feeds, positions, [protect]) and a CSV price
path, validated into frozen models with every problem reported at once."""

from __future__ import annotations

import csv
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from keeper.errors import ConfigError
from keeper.settings import Model, ProtectSettings
from keeper.settings.checks import protect_problems
from keeper.settings.report import message, where_text


class BacktestAsset(Model):
    symbol: str
    decimals: int = 18
    ltv_bps: int = 8000
    liquidation_threshold_bps: int = 8250
    liquidation_bonus_bps: int = 10500
    liquidation_protocol_fee_bps: int = 1000
    price: float = 0.0
    """Fixed USD price, for an asset without a column in the CSV."""


class BacktestFeed(Model):
    deviation_bps: int = 50
    heartbeat_s: int = 3600
    lag_s: float = 12.0
    """From the update condition to the answer on chain (one block)."""
    stall_above_gwei: float = math.inf
    """No update lands while the gas price is above this (the transmitters' gas cap)."""


class BacktestKnobs(Model):
    """[backtest]"""

    reaction_s: float = 24.0
    """From the keeper's decision to its transaction's inclusion."""
    gas_per_action: int = 300_000
    gas_per_deleverage: int = 600_000
    """Flash loan, repay, aToken transfer, withdraw, swap, repayment (555,653 measured on anvil:
    our Pool, a Uniswap v3 loan and sale, tests/anvil/test_deleverage_cli.py)."""
    gas_gwei: float = 30.0
    """Gas price when the CSV has no gas_gwei column."""
    native: str = "WETH"
    """The asset whose price pays gas."""
    warmup_s: float = 6 * 3600
    """Rows in the first this many seconds only feed the volatility estimate (and fit GARCH)."""
    dex_depth_usd: float = 20_000_000.0
    """The deleverage strategy's Uniswap v3 pool: full range, this much at the market price."""
    dex_fee_ppm: int = 500
    """Its fee tier (hundredths of a bip: 500 = 0.05 %)."""
    flash_fee_ppm: int = 500
    """The flash loan's fee (a Uniswap v3 pool's tier; Aave's 5 bps is 500 too)."""
    slippage_bps: int = 50
    """The sale's minimum out below its quote (as [flash] slippage_bps)."""


@dataclass(frozen=True)
class PositionSpec:
    name: str
    collateral: tuple[tuple[str, float], ...]
    debt: tuple[tuple[str, float], ...]
    wallet: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Scenario:
    assets: tuple[BacktestAsset, ...]
    feeds: tuple[tuple[str, BacktestFeed], ...]
    positions: tuple[PositionSpec, ...]
    protect: ProtectSettings
    knobs: BacktestKnobs


@dataclass(frozen=True)
class Path_:
    times: np.ndarray
    prices: dict[str, np.ndarray]
    gas_gwei: np.ndarray


def load_path(path: str | Path) -> Path_:
    """CSV: a `timestamp` column (unix seconds, increasing), one column of USD market prices per
    asset, optionally `gas_gwei`."""
    p = Path(path)
    try:
        with p.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the price path: {exc}") from None
    if not rows or "timestamp" not in rows[0]:
        raise ConfigError(f"{p}: expected a CSV with a header starting 'timestamp' and at least one row")
    cols = [c for c in rows[0] if c not in ("timestamp", "gas_gwei")]
    try:
        times = np.array([float(r["timestamp"]) for r in rows])
        prices = {c: np.array([float(r[c]) for r in rows]) for c in cols}
        gas = np.array([float(r["gas_gwei"]) for r in rows]) if "gas_gwei" in rows[0] else np.full(len(rows), np.nan)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{p}: not a number: {exc}") from None
    if np.any(np.diff(times) <= 0):
        raise ConfigError(f"{p}: timestamps must increase")
    for c, v in prices.items():
        if not np.all(np.isfinite(v) & (v > 0)):
            raise ConfigError(f"{p}: column {c}: prices must be positive numbers")
    return Path_(times, prices, gas)


def _model(model: type[BaseModel], raw: Any, where: str, errors: list[str]) -> Any:
    try:
        return model.model_validate(raw if isinstance(raw, dict) else {})
    except ValidationError as exc:
        for e in exc.errors():
            errors.append(f"{where} {where_text(tuple(e['loc']))}: {message(e)}")
        return None


def load_scenario(path: str | Path) -> Scenario:
    """A backtest file: [backtest], [[asset]], [feeds.SYMBOL], [[position]] and the same [protect]
    table (with [protect.predictive] and [protect.positions.NAME]) as a network's config."""
    p = Path(path)
    where = str(p)
    try:
        data = tomllib.loads(p.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    errors: list[str] = []
    assets = [
        a
        for k, raw in enumerate(data.get("asset", []))
        if (a := _model(BacktestAsset, raw, f"{where}: asset #{k + 1}", errors))
    ]
    symbols = {a.symbol for a in assets}
    feeds = []
    for symbol, raw in dict(data.get("feeds", {})).items():
        if symbol not in symbols:
            errors.append(f"{where}: [feeds.{symbol}]: no such asset")
        f = _model(BacktestFeed, raw, f"{where}: [feeds.{symbol}]", errors)
        if f is not None:
            feeds.append((symbol, f))
    positions = []
    for k, raw in enumerate(data.get("position", [])):
        at = f"{where}: position #{k + 1}"
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            errors.append(f"{at}: needs a name")
            continue
        parts = {}
        for part in ("collateral", "debt", "wallet"):
            table = raw.get(part, {})
            if not isinstance(table, dict) or any(s not in symbols for s in table):
                errors.append(f"{at} {part}: a table of asset symbol = amount, assets from [[asset]]")
                table = {}
            parts[part] = tuple((s, float(v)) for s, v in table.items())
        positions.append(PositionSpec(raw["name"], parts["collateral"], parts["debt"], parts["wallet"]))
    protect = _model(ProtectSettings, data.get("protect", {}), f"{where}: [protect]", errors)
    if protect is not None:
        errors += protect_problems(protect, where)
    knobs = _model(BacktestKnobs, data.get("backtest", {}), f"{where}: [backtest]", errors)
    if not assets or not positions:
        errors.append(f"{where}: needs at least one [[asset]] and one [[position]]")
    if errors:
        raise ConfigError("invalid backtest:\n  - " + "\n  - ".join(errors))
    return Scenario(tuple(assets), tuple(feeds), tuple(positions), protect, knobs)
