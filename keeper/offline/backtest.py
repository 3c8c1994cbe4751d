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

import math
from dataclasses import dataclass, field, replace
from typing import Any, cast

import numpy as np

from keeper.errors import ConfigError
from keeper.offline import dex
from keeper.offline.charts import chart
from keeper.offline.scenario import BacktestFeed, Path_, PositionSpec, Scenario, load_path, load_scenario
from keeper.protocols.aave_v3 import math as aave
from keeper.protocols.aave_v3.levers import decide_protect
from keeper.protocols.aave_v3.liquidation import liquidation_quote, max_liquidatable_debt
from keeper.protocols.aave_v3.rounding import ray_div
from keeper.risk.exposures import lookahead_factors, position_risk
from keeper.risk.intmath import WAD, wad_to_health
from keeper.risk.predict import SECONDS_PER_YEAR, Garch, ewma_step, garch_fit
from keeper.strategy.actions import Deleverage, Protect
from keeper.strategy.trigger import Arm, Trigger, evaluate, sizing_settings

__all__ = ["STRATEGIES", "PositionOutcome", "Scenario", "chart", "load_path", "load_scenario", "run", "table"]

STRATEGIES = ("predictive", "static", "alert", "deleverage")
"""deleverage: the static trigger, repaying with the position's own collateral (keeper.offline.dex),
no wallet: what the Deleverager costs against the static strategy's wallet-funded repay."""
MODES = {"deleverage": "static"}
BASE = 10**8  # Aave's USD base currency: 8 decimals
RAY = aave.RAY


@dataclass
class PositionOutcome:
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
    sale_cost_usd: float = 0.0
    """Deleverage: the collateral's market value sold less what came back (fees, price impact)."""
    reverted: int = 0
    """Deleverages the contract would have refused at inclusion (the price moved meanwhile)."""

    @property
    def cost_usd(self) -> float:
        return self.liquidation_loss_usd + self.gas_usd + self.sale_cost_usd


# ---------------------------------------------------------------------------- the simulation


def _market(sc: Scenario, prices_usd: np.ndarray) -> aave.Market:
    reserves = tuple(
        aave.Reserve(f"0x{k + 1:040x}", k, f"0x{k + 101:040x}", f"0x{k + 201:040x}", a.symbol)
        for k, a in enumerate(sc.assets)
    )
    configs = tuple(
        aave.ReserveConfig(
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
    return aave.Market(0, 0, reserves, configs, _base(prices_usd), (RAY,) * n, (RAY,) * n)


def _base(prices_usd: np.ndarray) -> tuple[int, ...]:
    return tuple(round(float(x) * BASE) for x in prices_usd)


def _position(sc: Scenario, spec: PositionSpec) -> tuple[aave.Position, list[int]]:
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
    return aave.Position(spec.name, 0, cfg, 0, tuple(coll), tuple(debt)), wallet


def exposures(pos: aave.Position, market: aave.Market) -> tuple[np.ndarray, np.ndarray]:
    """(collateral value x liquidation threshold, debt value) per asset, USD, at the market's prices."""
    coll, debt = aave.value_exposures(pos, market)
    return np.array(coll) / BASE, np.array(debt) / BASE


def _health(pos: aave.Position, market: aave.Market) -> float:
    return wad_to_health(aave.account_data(pos, market).health_factor_wad)


def _liquidate(pos: aave.Position, market: aave.Market) -> tuple[aave.Position, float] | None:
    """One liquidationCall as a liquidator would make it: the largest collateral against the
    largest debt, as much as the close factor allows (all of it where the dust rule requires).
    Returns the position after and the bonus paid (USD), or None when it is not liquidatable."""
    if aave.account_data(pos, market).health_factor_wad >= WAD:
        return None
    n = len(market.configs)

    def value(i: int, amount: int) -> float:
        return amount * market.prices_base[i] / BASE / market.configs[i].unit

    c = max(range(n), key=lambda i: value(i, aave.collateral_balance(pos, market, i)) if pos.is_collateral(i) else -1)
    d = max(range(n), key=lambda i: value(i, aave.debt_balance(pos, market, i)))
    q = liquidation_quote(pos, market, c, d, max_liquidatable_debt(pos, market, c, d))
    if q.error == "103":
        q = liquidation_quote(pos, market, c, d, aave.debt_balance(pos, market, d))
    if q.error:
        return None
    debt = list(pos.scaled_debt)
    debt[d] -= ray_div(q.debt_repaid, market.debt_index_ray[d])
    coll = list(pos.scaled_collateral)
    coll[c] -= ray_div(q.collateral_received + q.protocol_fee, market.income_ray[c])
    after = replace(pos, scaled_debt=tuple(max(0, x) for x in debt), scaled_collateral=tuple(max(0, x) for x in coll))
    return after, value(c, q.collateral_received + q.protocol_fee) - value(d, q.debt_repaid)


@dataclass
class _Book:
    """One strategy's copy of one position."""

    pos: aave.Position
    wallet: list[int]
    arm: Arm = field(default_factory=Arm)
    pending: tuple[float, Protect | Deleverage] | None = None
    alerting: bool = False
    out: PositionOutcome = field(default_factory=PositionOutcome)


def run(sc: Scenario, path: Path_, strategies: tuple[str, ...] = STRATEGIES) -> dict[str, dict[str, PositionOutcome]]:
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
    gas = np.where(np.isfinite(path.gas_gwei), path.gas_gwei, sc.knobs.gas_gwei)
    feed_of = dict(sc.feeds)
    deviation = np.array([feed_of.get(s, BacktestFeed()).deviation_bps / 1e4 for s in symbols])
    heartbeat = np.array([float(feed_of.get(s, BacktestFeed()).heartbeat_s) for s in symbols])
    has_feed = np.array([s in feed_of for s in symbols])  # the others are fixed or follow the market
    oracle = market_px[0].copy()
    updated = np.full(n, path.times[0])
    pending: list[tuple[float, int, float]] = []  # (land time, asset, answer)
    native = symbols.index(sc.knobs.native) if sc.knobs.native in symbols else 0

    books = {st: {spec.name: _Book(*_position(sc, spec)) for spec in sc.positions} for st in strategies}
    settings = {
        st: {
            spec.name: sc.protect.for_account(spec.name).model_copy(update={"mode": MODES.get(st, st)})
            for spec in sc.positions
        }
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
        if q0.vol_model == "garch" and garch is None and now - start >= sc.knobs.warmup_s and t_idx > 50:
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
        if now - start < sc.knobs.warmup_s:
            continue
        factors = lookahead_factors(oracle, mkt, updated, now, deviation, heartbeat)
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
                s = settings[st][name]
                trig = evaluate(position_risk(hf, coll_lt, debt, factors, cov, ratio), s, b.arm, now)
                b.arm = trig.arm
                _alert(b, trig, now)
                if trig.act:
                    sized = sizing_settings(s, trig)
                    action: Protect | Deleverage | None = (
                        dex.decide(b.pos, market, list(mkt), sized, sc.knobs)
                        if st == "deleverage"
                        else decide_protect(b.pos, market, b.wallet, sized)
                    )
                    if action is not None:
                        b.pending = (now + sc.knobs.reaction_s, action)
                        for k, r_ in enumerate(market.reserves):
                            if r_.asset == getattr(action, "asset", None):
                                b.wallet[k] -= getattr(action, "amount", 0)
    return {st: {name: b.out for name, b in books[st].items()} for st in strategies}


def _alert(b: _Book, trig: Trigger, now: float) -> None:
    alerting = trig.act or trig.reason.startswith("alert-only")
    if alerting and not b.alerting:
        b.out.alerts += 1
        b.out.marks.append((now, "alert"))
    b.alerting = alerting


def _liquidations(b: _Book, market: aave.Market, when: float) -> None:
    b.out.min_health = min(b.out.min_health, _health(b.pos, market))  # the answer lands, then the backrun
    hit = _liquidate(b.pos, market)
    if hit is not None:
        b.pos, loss = hit
        b.out.liquidations += 1
        b.out.liquidation_loss_usd += loss
        b.out.marks.append((when, "liquidation"))


def _land(
    b: _Book, market: aave.Market, mkt: np.ndarray, gas_gwei: float, sc: Scenario, native: int, when: float
) -> None:
    assert b.pending is not None
    _, action = b.pending
    b.pending = None
    if action.kind == "deleverage":
        landed = dex.land(cast(Deleverage, action), b.pos, market, list(mkt), sc.knobs)
        if landed is None:  # refused by its simulation: nothing sent, decided again next row
            b.out.reverted += 1
            return
        b.pos = landed.pos
        b.out.sale_cost_usd += landed.cost_usd
    else:
        action = cast(Protect, action)
        i = market.index_of(action.asset)
        if action.kind == "repay":
            b.pos = aave.after_repay(b.pos, market, i, action.amount)
        else:
            b.pos = aave.after_supply(b.pos, market, i, action.amount)
        b.out.capital_usd += action.amount / market.configs[i].unit * float(mkt[i])
    b.out.actions += 1
    b.out.shortfall += not action.reaches_target
    gas = sc.knobs.gas_per_deleverage if action.kind == "deleverage" else sc.knobs.gas_per_action
    b.out.gas_usd += gas * gas_gwei * 1e-9 * float(mkt[native])
    b.out.marks.append((when, "action"))


# ---------------------------------------------------------------------------- report


def table(results: dict[str, dict[str, PositionOutcome]]) -> str:
    """Per strategy: totals over positions, then per position."""
    head = f"{'strategy':<11} {'position':<16} {'liquidations':>12} {'liq. loss $':>12} {'actions':>7} "
    head += f"{'capital $':>11} {'gas $':>8} {'sale $':>8} {'total cost $':>12} {'min HF':>7}"
    lines = [head, "-" * len(head)]
    for st, per in results.items():
        rows = [("ALL", list(per.values()))] + [(name, [o]) for name, o in per.items()]
        for label, outs in rows:
            lines.append(
                f"{st:<11} {label:<16} {sum(o.liquidations for o in outs):>12} "
                f"{sum(o.liquidation_loss_usd for o in outs):>12,.0f} {sum(o.actions for o in outs):>7} "
                f"{sum(o.capital_usd for o in outs):>11,.0f} {sum(o.gas_usd for o in outs):>8,.0f} "
                f"{sum(o.sale_cost_usd for o in outs):>8,.0f} "
                f"{sum(o.cost_usd for o in outs):>12,.0f} {min(o.min_health for o in outs):>7.3f}"
            )
    return "\n".join(lines)
