"""`keeper backtest`: replay a price path against positions, through the same trigger and sizing
code the live keeper runs (keeper.strategy.trigger, keeper.strategy.protect with Aave v3's integer
math), for three strategies side by side: predictive, static threshold (what the incumbent
protection products do: act below a fixed health factor at the oracle's current price) and
alert-only.

The world is simulated in pure Python over an Aave v3-style market (no chain): the CSV gives
market prices (and optionally the gas price) per timestamp; each Chainlink-style feed follows its
rules (an update when the market moved `deviation_bps` from the answer or `heartbeat_s` passed,
landing `lag_s` later; no update lands while gas is above `stall_above_gwei`, which is how feeds
lagged in the March 2020 and October 2025 crashes). A liquidator backruns every oracle update in
the same block (Aave v3.3 close factor and bonus); the keeper's action lands `reaction_s` after
the row it decided on.
"""

from __future__ import annotations

import csv
import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from keeper.config import ProtectSettings, _section, parse_protect
from keeper.errors import ConfigError
from keeper.protocols import aave_v3
from keeper.risk.predict import (
    SECONDS_PER_YEAR,
    Garch,
    ewma_step,
    garch_fit,
    health_sigma,
    health_under,
    next_oracle_answer,
)
from keeper.strategy.actions import Protect
from keeper.strategy.protect import decide_protect
from keeper.strategy.trigger import Arm, Risk, Trigger, evaluate, sizing_settings

STRATEGIES = ("predictive", "static", "alert")
BASE = 10**8  # Aave's USD base currency: 8 decimals
RAY = aave_v3.RAY


@dataclass(frozen=True)
class AssetSpec:
    symbol: str
    decimals: int = 18
    ltv_bps: int = 8000
    liquidation_threshold_bps: int = 8250
    liquidation_bonus_bps: int = 10500
    liquidation_protocol_fee_bps: int = 1000
    price: float = 0.0
    """Fixed USD price, for an asset without a column in the CSV."""


@dataclass(frozen=True)
class BacktestFeed:
    deviation_bps: int = 50
    heartbeat_s: int = 3600
    lag_s: float = 12.0
    """From the update condition to the answer on chain (one block)."""
    stall_above_gwei: float = math.inf
    """No update lands while the gas price is above this (the transmitters' gas cap)."""


@dataclass(frozen=True)
class PositionSpec:
    name: str
    collateral: tuple[tuple[str, float], ...]
    debt: tuple[tuple[str, float], ...]
    wallet: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Scenario:
    assets: tuple[AssetSpec, ...]
    feeds: tuple[tuple[str, BacktestFeed], ...]
    positions: tuple[PositionSpec, ...]
    protect: ProtectSettings
    reaction_s: float = 24.0
    """From the keeper's decision to its transaction's inclusion."""
    gas_per_action: int = 300_000
    gas_gwei: float = 30.0
    """Gas price when the CSV has no gas_gwei column."""
    native: str = "WETH"
    """The asset whose price pays gas."""
    warmup_s: float = 6 * 3600
    """Rows in the first this many seconds only feed the volatility estimate (and fit GARCH)."""


@dataclass(frozen=True)
class Path_:
    times: np.ndarray
    prices: dict[str, np.ndarray]
    gas_gwei: np.ndarray


@dataclass
class Outcome:
    """One position under one strategy."""

    liquidations: int = 0
    liquidation_loss_usd: float = 0.0
    """Bonus paid to liquidators (collateral seized minus debt repaid, at the oracle price)."""
    actions: int = 0
    capital_usd: float = 0.0
    """Value moved into the position by protective actions, at the market price."""
    gas_usd: float = 0.0
    min_health: float = math.inf
    alerts: int = 0
    health: list[float] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)
    """(time, 'action' | 'liquidation' | 'alert')."""
    shortfall: int = 0
    """Actions that could not reach the target (wallet too small)."""

    @property
    def cost_usd(self) -> float:
        return self.liquidation_loss_usd + self.gas_usd


# ---------------------------------------------------------------------------- inputs


def load_path(path: str | Path) -> Path_:
    """CSV: a `timestamp` column (unix seconds, increasing), one column of USD market prices per
    asset, optionally `gas_gwei`."""
    p = Path(path)
    try:
        rows = list(csv.DictReader(p.open()))
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
    assets = []
    for k, raw in enumerate(data.get("asset", [])):
        a = _section({"asset": raw}, "asset", AssetSpec, f"{where}: asset #{k + 1}", errors, {})
        if a is not None:
            assets.append(a)
    symbols = {a.symbol for a in assets}
    feeds = []
    for symbol, raw in dict(data.get("feeds", {})).items():
        if symbol not in symbols:
            errors.append(f"{where}: [feeds.{symbol}]: no such asset")
        f = _section({f"feeds.{symbol}": raw}, f"feeds.{symbol}", BacktestFeed, where, errors, {})
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
    protect = parse_protect(data.get("protect", {}), where, errors, {}, named=True)
    bt = _section(data, "backtest", _BacktestKnobs, where, errors, {})
    if not assets or not positions:
        errors.append(f"{where}: needs at least one [[asset]] and one [[position]]")
    if errors:
        raise ConfigError("invalid backtest:\n  - " + "\n  - ".join(errors))
    assert protect is not None and bt is not None
    return Scenario(tuple(assets), tuple(feeds), tuple(positions), protect, **bt.__dict__)


@dataclass(frozen=True)
class _BacktestKnobs:
    reaction_s: float = 24.0
    gas_per_action: int = 300_000
    gas_gwei: float = 30.0
    native: str = "WETH"
    warmup_s: float = 6 * 3600


# ---------------------------------------------------------------------------- the simulation


def _market(sc: Scenario, prices_usd: np.ndarray) -> aave_v3.Market:
    reserves = tuple(
        aave_v3.Reserve(f"0x{k + 1:040x}", k, f"0x{k + 101:040x}", f"0x{k + 201:040x}", a.symbol)
        for k, a in enumerate(sc.assets)
    )
    configs = tuple(
        aave_v3.ReserveConfig(
            ltv_bps=a.ltv_bps,
            liquidation_threshold_bps=a.liquidation_threshold_bps,
            liquidation_bonus_bps=a.liquidation_bonus_bps,
            decimals=a.decimals,
            active=True,
            frozen=False,
            borrowing_enabled=True,
            paused=False,
            reserve_factor_bps=1000,
            liquidation_protocol_fee_bps=a.liquidation_protocol_fee_bps,
        )
        for a in sc.assets
    )
    n = len(sc.assets)
    return aave_v3.Market(0, 0, reserves, configs, _base(prices_usd), (RAY,) * n, (RAY,) * n)


def _base(prices_usd: np.ndarray) -> tuple[int, ...]:
    return tuple(round(float(x) * BASE) for x in prices_usd)


def _position(sc: Scenario, spec: PositionSpec) -> tuple[aave_v3.Position, list[int]]:
    index = {a.symbol: k for k, a in enumerate(sc.assets)}
    n = len(sc.assets)
    coll, debt = [0] * n, [0] * n
    cfg = 0
    for s, amount in spec.collateral:
        k = index[s]
        coll[k] = int(amount * 10 ** sc.assets[k].decimals)
        cfg |= 1 << (2 * k + 1)
    for s, amount in spec.debt:
        k = index[s]
        debt[k] = int(amount * 10 ** sc.assets[k].decimals)
        cfg |= 1 << (2 * k)
    wallet = [0] * n
    for s, amount in spec.wallet:
        wallet[index[s]] = int(amount * 10 ** sc.assets[index[s]].decimals)
    return aave_v3.Position(spec.name, 0, cfg, 0, tuple(coll), tuple(debt)), wallet


def exposures(pos: aave_v3.Position, market: aave_v3.Market) -> tuple[np.ndarray, np.ndarray]:
    """(collateral value x liquidation threshold, debt value) per asset, USD, at the market's prices."""
    coll, debt = aave_v3.value_exposures(pos, market)
    return np.array(coll) / BASE, np.array(debt) / BASE


def _health(pos: aave_v3.Position, market: aave_v3.Market) -> float:
    hf = aave_v3.account_data(pos, market).health_factor_wad
    return math.inf if hf >= 2**255 else hf / aave_v3.WAD


def _liquidate(pos: aave_v3.Position, market: aave_v3.Market) -> tuple[aave_v3.Position, float] | None:
    """One liquidationCall as a liquidator would make it: the largest collateral against the
    largest debt, as much as the close factor allows (all of it where the dust rule requires).
    Returns the position after and the bonus paid (USD), or None when it is not liquidatable."""
    if aave_v3.account_data(pos, market).health_factor_wad >= aave_v3.WAD:
        return None
    n = len(market.configs)

    def value(i: int, amount: int) -> float:
        return amount * market.prices_base[i] / BASE / market.configs[i].unit

    c = max(
        range(n), key=lambda i: value(i, aave_v3.collateral_balance(pos, market, i)) if pos.is_collateral(i) else -1
    )
    d = max(range(n), key=lambda i: value(i, aave_v3.debt_balance(pos, market, i)))
    q = aave_v3.liquidation_quote(pos, market, c, d, aave_v3.max_liquidatable_debt(pos, market, c, d))
    if q.error == "103":
        q = aave_v3.liquidation_quote(pos, market, c, d, aave_v3.debt_balance(pos, market, d))
    if q.error:
        return None
    debt = list(pos.scaled_debt)
    debt[d] -= aave_v3.ray_div(q.debt_repaid, market.debt_index_ray[d])
    coll = list(pos.scaled_collateral)
    coll[c] -= aave_v3.ray_div(q.collateral_received + q.protocol_fee, market.income_ray[c])
    after = replace(pos, scaled_debt=tuple(max(0, x) for x in debt), scaled_collateral=tuple(max(0, x) for x in coll))
    return after, value(c, q.collateral_received + q.protocol_fee) - value(d, q.debt_repaid)


@dataclass
class _Book:
    """One strategy's copy of one position."""

    pos: aave_v3.Position
    wallet: list[int]
    arm: Arm = field(default_factory=Arm)
    pending: tuple[float, Protect] | None = None
    alerting: bool = False
    out: Outcome = field(default_factory=Outcome)


def run(sc: Scenario, path: Path_, strategies: tuple[str, ...] = STRATEGIES) -> dict[str, dict[str, Outcome]]:
    """Replay `path`; returns outcome[strategy][position name]."""
    symbols = [a.symbol for a in sc.assets]
    missing = [a.symbol for a in sc.assets if a.symbol not in path.prices and a.price <= 0]
    if missing:
        raise ConfigError(f"no price for {', '.join(missing)}: add a CSV column or a fixed `price` to its [[asset]]")
    n_rows, n = len(path.times), len(symbols)
    market_px = np.array(
        [
            path.prices[s] if s in path.prices else np.full(n_rows, a.price)
            for s, a in zip(symbols, sc.assets, strict=True)
        ]
    ).T  # (T, A)
    gas = np.where(np.isfinite(path.gas_gwei), path.gas_gwei, sc.gas_gwei)
    feed_of = dict(sc.feeds)
    deviation = np.array([feed_of.get(s, BacktestFeed()).deviation_bps / 1e4 for s in symbols])
    heartbeat = np.array([float(feed_of.get(s, BacktestFeed()).heartbeat_s) for s in symbols])
    has_feed = np.array([s in feed_of for s in symbols])  # the others are fixed or follow the market
    oracle = market_px[0].copy()
    updated = np.full(n, path.times[0])
    pending: list[tuple[float, int, float]] = []  # (land time, asset, answer)
    native = symbols.index(sc.native) if sc.native in symbols else 0

    books = {st: {spec.name: _Book(*_position(sc, spec)) for spec in sc.positions} for st in strategies}
    settings = {
        st: {spec.name: replace(sc.protect.for_account(spec.name), mode=st) for spec in sc.positions}
        for st in strategies
    }
    q0 = sc.protect.predictive
    cov = np.eye(n) * (q0.prior_vol**2 / SECONDS_PER_YEAR)
    start = path.times[0]
    garch: Garch | None = None
    garch_h = 0.0
    step_s = float(np.median(np.diff(path.times))) if n_rows > 1 else 60.0

    for t_idx in range(n_rows):
        now = float(path.times[t_idx])
        mkt = market_px[t_idx]
        if t_idx:
            r = np.log(mkt / market_px[t_idx - 1])
            cov = ewma_step(cov, r, now - float(path.times[t_idx - 1]), q0.half_life_s, q0.downside_weight)
            if garch is not None:
                garch_h = garch.omega + garch.alpha * float(r[native]) ** 2 + garch.beta * garch_h
        if q0.vol_model == "garch" and garch is None and now - start >= sc.warmup_s and t_idx > 50:
            garch = garch_fit(np.diff(np.log(market_px[: t_idx + 1, native])))
            garch_h = garch.long_run
        # assets without a feed follow the market at once
        oracle = np.where(has_feed, oracle, mkt)
        # events up to now, in time order: oracle answers (each backrun by a liquidator), keeper actions
        events: list[tuple[float, int, Any]] = [(w, 0, (i, a)) for w, i, a in pending if w <= now]
        pending = [x for x in pending if x[0] > now]
        for st in strategies:
            for name, b in books[st].items():
                if b.pending and b.pending[0] <= now:
                    events.append((b.pending[0], 1, (st, name)))
        for when, kind, what in sorted(events, key=lambda e: (e[0], e[1])):
            if kind == 0:
                i, answer = what
                oracle[i], updated[i] = answer, when
                market = _market(sc, oracle)
                for st in strategies:
                    for b in books[st].values():
                        _liquidations(b, market, when)
            else:
                st, name = what
                _land(books[st][name], _market(sc, oracle), mkt, gas[t_idx], sc, native, when)
        # feeds: a new round when the market moved enough or the heartbeat passed, unless stalled
        busy = {i for _, i, _ in pending}
        for i in range(n):
            if not has_feed[i] or i in busy or gas[t_idx] > feed_of[symbols[i]].stall_above_gwei:
                continue
            if abs(mkt[i] - oracle[i]) / oracle[i] >= deviation[i] or now - updated[i] >= heartbeat[i]:
                pending.append((now + feed_of[symbols[i]].lag_s, i, float(mkt[i])))
        market = _market(sc, oracle)
        if now - start < sc.warmup_s:
            continue
        predicted, _ = next_oracle_answer(oracle, mkt, updated, now, deviation, heartbeat)
        factors = (predicted / oracle)[None, :]
        ratio = 1.0
        if garch is not None:
            steps = max(1, int(q0.target_horizon_s / step_s))
            ratio = garch.horizon_variance(garch_h, steps) / (steps * garch.long_run)
        for st in strategies:
            for name, b in books[st].items():
                hf = _health(b.pos, market)
                b.out.health.append(hf)
                b.out.min_health = min(b.out.min_health, hf)
                if b.pending:
                    continue
                coll_lt, debt = exposures(b.pos, market)
                hf_pred = float(health_under(coll_lt[None, :], debt[None, :], factors)[0, 0])
                sigma = float(health_sigma(coll_lt[None, :], debt[None, :], cov)[0])
                s = settings[st][name]
                trig = evaluate(Risk(hf, hf_pred, sigma, ratio), s, b.arm, now)
                b.arm = trig.arm
                _alert(b, trig, now)
                if trig.act:
                    action = decide_protect(b.pos, market, b.wallet, sizing_settings(s, trig))
                    if action is not None:
                        b.pending = (now + sc.reaction_s, action)
                        for k, r_ in enumerate(market.reserves):
                            if r_.asset == action.asset:
                                b.wallet[k] -= action.amount
    return {st: {name: b.out for name, b in books[st].items()} for st in strategies}


def _alert(b: _Book, trig: Trigger, now: float) -> None:
    alerting = trig.act or trig.reason.startswith("alert-only")
    if alerting and not b.alerting:
        b.out.alerts += 1
        b.out.marks.append((now, "alert"))
    b.alerting = alerting


def _liquidations(b: _Book, market: aave_v3.Market, when: float) -> None:
    b.out.min_health = min(b.out.min_health, _health(b.pos, market))  # the answer lands, then the backrun
    hit = _liquidate(b.pos, market)
    if hit is not None:
        b.pos, loss = hit
        b.out.liquidations += 1
        b.out.liquidation_loss_usd += loss
        b.out.marks.append((when, "liquidation"))


def _land(
    b: _Book, market: aave_v3.Market, mkt: np.ndarray, gas_gwei: float, sc: Scenario, native: int, when: float
) -> None:
    assert b.pending is not None
    _, action = b.pending
    b.pending = None
    i = market.index_of(action.asset)
    if action.kind == "repay":
        b.pos = aave_v3.after_repay(b.pos, market, i, action.amount)
    else:
        b.pos = aave_v3.after_supply(b.pos, market, i, action.amount)
    b.out.actions += 1
    b.out.shortfall += not action.reaches_target
    b.out.capital_usd += action.amount / market.configs[i].unit * float(mkt[i])
    b.out.gas_usd += sc.gas_per_action * gas_gwei * 1e-9 * float(mkt[native])
    b.out.marks.append((when, "action"))


# ---------------------------------------------------------------------------- report


def table(results: dict[str, dict[str, Outcome]]) -> str:
    """Per strategy: totals over positions, then per position."""
    head = f"{'strategy':<11} {'position':<16} {'liquidations':>12} {'liq. loss $':>12} {'actions':>7} "
    head += f"{'capital $':>11} {'gas $':>8} {'total cost $':>12} {'min HF':>7}"
    lines = [head, "-" * len(head)]
    for st, per in results.items():
        rows = [("ALL", list(per.values()))] + [(name, [o]) for name, o in per.items()]
        for label, outs in rows:
            lines.append(
                f"{st:<11} {label:<16} {sum(o.liquidations for o in outs):>12} "
                f"{sum(o.liquidation_loss_usd for o in outs):>12,.0f} {sum(o.actions for o in outs):>7} "
                f"{sum(o.capital_usd for o in outs):>11,.0f} {sum(o.gas_usd for o in outs):>8,.0f} "
                f"{sum(o.cost_usd for o in outs):>12,.0f} {min(o.min_health for o in outs):>7.3f}"
            )
    return "\n".join(lines)


def chart(results: dict[str, dict[str, Outcome]], path: Path_, sc: Scenario, out: str | Path) -> None:
    """PNG: the market price, then each position's health over time per strategy, actions (^) and
    liquidations (x) marked."""
    from keeper.charts import pyplot

    plt = pyplot()
    names = [p.name for p in sc.positions]
    fig, axes = plt.subplots(len(names) + 1, 1, figsize=(11, 2.6 * (len(names) + 1)), sharex=True)
    t0 = path.times[0]
    hours = (path.times - t0) / 3600
    ax = axes[0]
    for sym, px in path.prices.items():
        ax.plot(hours, px, label=f"{sym} market")
    ax.set_ylabel("USD")
    ax.legend(loc="upper right")
    shown = hours[hours * 3600 >= sc.warmup_s]
    colors = {"predictive": "tab:green", "static": "tab:orange", "alert": "tab:gray"}
    for ax, name in zip(axes[1:], names, strict=True):
        for st, per in results.items():
            o = per[name]
            ax.plot(shown[: len(o.health)], o.health, color=colors.get(st), label=st, lw=1.2)
            for when, kind in o.marks:
                if kind == "alert":
                    continue
                k = min(int(np.searchsorted(path.times, when)), len(path.times) - 1)
                y = o.health[max(0, min(len(o.health) - 1, k - (len(hours) - len(shown))))]
                ax.plot((when - t0) / 3600, y, "^" if kind == "action" else "x", color=colors.get(st), ms=7)
        ax.axhline(1.0, color="red", lw=0.8, ls="--")
        ax.set_ylabel(f"{name}\nhealth")
        ax.set_ylim(0.8, 2.0)
        ax.legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("hours")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def describe(sc: Scenario) -> dict[str, Any]:
    """The inputs, for the report header."""
    return {
        "positions": [p.name for p in sc.positions],
        "trigger_hf": sc.protect.trigger_hf,
        "target_hf": sc.protect.target_hf,
        "reaction_s": sc.reaction_s,
        "feeds": {s: f.__dict__ for s, f in sc.feeds},
    }
