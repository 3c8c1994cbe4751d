"""Checks that span fields or bound values (pure): each returns the problems it finds as lines
naming the file and key."""

from __future__ import annotations

import re
from typing import Any

from keeper.settings.models import (
    CoreSettings,
    ExecutionSettings,
    FlashSettings,
    OpsSettings,
    OracleSettings,
    ProtectSettings,
    check_address,
)

MINIMUMS = {
    "poll_interval_s": 0.0,
    "log_chunk_blocks": 1,
    "multicall_chunk": 1,
    "reconcile_every_blocks": 0,
    "checkpoint_every_blocks": 1,
    "rpc_timeout_s": 0.1,
    "rpc_max_lag_blocks": 0,
}
PROTECT_LEVERS = ("repay", "supply", "deleverage")


def cross_checks(where: str, parts: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    core = parts.get("core")
    if isinstance(core, CoreSettings):
        if core.chain_id <= 0:
            errors.append(f"{where}: chain_id: required, a positive integer")
        for key, least in MINIMUMS.items():
            if getattr(core, key) < least:
                errors.append(f"{where}: {key}: must be at least {least} (got {getattr(core, key)})")
    protect = parts.get("protect")
    if isinstance(protect, ProtectSettings):
        errors += protect_problems(protect, where)
        for who in protect.positions:
            try:
                check_address(who)
            except ValueError as exc:
                errors.append(f"{where}: [protect.positions.{who}]: {exc}")
    oracle = parts.get("oracle")
    if isinstance(oracle, OracleSettings):
        if oracle.reference_url and not re.match(r"^https?://", oracle.reference_url):
            errors.append(f"{where}: [oracle] reference_url: expected an http(s):// URL")
        if oracle.max_age_s <= 0:
            errors.append(f"{where}: [oracle] max_age_s: must be positive")
        if any(v <= 0 for v in oracle.heartbeats.values()):
            errors.append(f"{where}: [oracle.heartbeats]: expected a table of asset = seconds (positive integers)")
        for symbol, feed in oracle.feeds.items():
            if feed.deviation_bps <= 0 or feed.heartbeat_s <= 0:
                errors.append(f"{where}: [oracle.feeds.{symbol}]: deviation_bps and heartbeat_s must be positive")
    ops = parts.get("ops")
    if isinstance(ops, OpsSettings) and ops.listen and not re.match(r"^[\w.\-]+:\d{1,5}$", ops.listen):
        errors.append(f"{where}: [ops] listen: expected host:port (or '' to turn the server off)")
    execution = parts.get("execution")
    if isinstance(execution, ExecutionSettings):
        errors += execution_problems(execution, where)
    flash = parts.get("flash")
    if isinstance(flash, FlashSettings):
        errors += flash_problems(flash, where)
    if isinstance(protect, ProtectSettings):
        errors += deleverage_problems(protect, flash if isinstance(flash, FlashSettings) else None, where)
    return errors


def deleverage_problems(p: ProtectSettings, f: FlashSettings | None, where: str) -> list[str]:
    """The deleverage lever quotes its sale on Uniswap v3 ([flash] factory and quoter)."""
    asked = "deleverage" in p.prefer or any("deleverage" in (o.prefer or ()) for o in p.positions.values())
    errors = []
    if asked and not p.deleverager:
        errors.append(f"{where}: [protect] prefer lists 'deleverage': [protect] deleverager is required "
                      "(deploy one: keeper deploy-deleverager)")  # fmt: skip
    if p.deleverager and f is not None:  # None: [flash] itself is invalid (reported on its own)
        for key in ("factory", "quoter"):
            if not getattr(f, key):
                errors.append(f"{where}: [flash] {key}: required with [protect] deleverager (its sales are quoted)")
    if not 0 < p.deleverage_tolerance < p.target_hf - 1.0:
        errors.append(f"{where}: [protect] deleverage_tolerance: above 0 and below target_hf - 1 "
                      f"(got {p.deleverage_tolerance})")  # fmt: skip
    return errors


def execution_problems(e: ExecutionSettings, where: str) -> list[str]:
    errors = []
    if e.max_fee_gwei <= 0:
        errors.append(f"{where}: [execution] max_fee_gwei: must be positive")
    url = e.private_rpc_url.get_secret_value() if e.private_rpc_url else ""
    if e.private_rpc_url is not None and not re.match(r"^https?://[^\s,]+$", url):
        errors.append(f"{where}: [execution] private_rpc_url: expected one http(s):// URL")
    if not 1 <= e.private_blocks <= 25:
        errors.append(f"{where}: [execution] private_blocks: between 1 and 25 (got {e.private_blocks})")
    return errors


def flash_problems(f: FlashSettings, where: str) -> list[str]:
    """[flash]: a funding that uses the contract needs the contract and the Uniswap v3 it quotes on."""
    errors = []
    if f.funding != "wallet":
        for key in ("liquidator", "factory", "quoter"):
            if not getattr(f, key):
                hint = " (deploy one: keeper deploy-liquidator)" if key == "liquidator" else ""
                errors.append(f"{where}: [flash] {key}: required with funding = {f.funding!r}{hint}")
    if f.source == "morpho" and not f.morpho:
        errors.append(f"{where}: [flash] morpho: required with source = 'morpho' (the Morpho Blue contract)")
    if not f.sizes or any(not 0 < x <= 1 for x in f.sizes):
        errors.append(f"{where}: [flash] sizes: fractions in (0, 1] of the largest liquidation (got {list(f.sizes)})")
    if not 0 <= f.slippage_bps < 10_000:
        errors.append(f"{where}: [flash] slippage_bps: between 0 and 9999 (got {f.slippage_bps})")
    if not f.fees or any(fee not in (100, 500, 3_000, 10_000) and not 0 < fee < 1_000_000 for fee in f.fees):
        errors.append(f"{where}: [flash] fees: Uniswap v3 fee tiers such as 500, 3000 (got {list(f.fees)})")
    return errors


def protect_problems(protect: ProtectSettings, where: str, levers: tuple[str, ...] = PROTECT_LEVERS) -> list[str]:
    """[protect] and every [protect.positions.<account>] as it applies to that account."""
    errors = _protect(protect, f"{where}: [protect]")
    for account in protect.positions:
        errors += _protect(protect.for_account(account), f"{where}: [protect.positions.{account}]")
    for p in protect.prefer:
        if p not in levers:
            errors.append(f"{where}: [protect] prefer: unknown action {p!r} (use {', '.join(map(repr, levers))})")
    return errors


def _protect(p: ProtectSettings, where: str) -> list[str]:
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
    if q.max_target_hf <= p.target_hf:
        errors.append(f"{where} predictive max_target_hf ({q.max_target_hf}) must be above target_hf ({p.target_hf})")
    if p.target_hf < p.trigger_hf * (1 + q.hysteresis):
        errors.append(
            f"{where} target_hf ({p.target_hf}) must be at least trigger_hf x (1 + hysteresis) "
            f"({p.trigger_hf * (1 + q.hysteresis):.4f}), or the trigger would never re-arm after reaching it"
        )
    return errors
