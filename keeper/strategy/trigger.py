"""When to protect a position, and to what health: the plain health trigger, the predictive one
(look-ahead oracle price and probability of liquidation), or alert-only. Pure: the live keeper and
`keeper backtest` call the same function with the same inputs.

Predictive: the health that matters is the worse of the health at the oracle's current answer and
at its predicted next answer (keeper.risk.predict.next_oracle_answer), because an oracle update and
the liquidation that backruns it land in the same block. The keeper acts when that health is below
trigger_hf, or when the probability of touching 1 within the reaction horizon exceeds
max_liquidation_probability. It then aims for the health at which the probability of liquidation
within target_horizon_s stays below target_probability (never below target_hf), expressed at the
oracle's price, so the action is sized with the protocol's own integer math. After an action the
trigger is disarmed: it re-arms once health is clearly above the trigger (hysteresis); until then it
acts again only after a cooldown (the last action fell short or the price kept falling) or in an
emergency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from keeper.risk.exposures import Risk
from keeper.risk.predict import first_passage, health_for_probability
from keeper.settings import ProtectSettings

FORCE_HF = 1e12
"""A trigger no health reaches: passed to the sizing code once the decision to act is made."""


@dataclass(frozen=True)
class Arm:
    """Trigger state of one position."""

    armed: bool = True
    last_action_s: float = -math.inf


@dataclass(frozen=True)
class Trigger:
    act: bool
    reason: str
    """Why it acts, or why not ('healthy', 'cooldown', 'alert-only', ...)."""
    health: float
    """The health the decision used (the worse of current and predicted for 'predictive')."""
    probability: float
    """Probability of liquidation within the reaction horizon (0 for 'static')."""
    target_hf: float
    """Target at the oracle's current prices (what the sizing code aims for)."""
    arm: Arm


def evaluate(risk: Risk, s: ProtectSettings, arm: Arm, now_s: float) -> Trigger:
    """Decide whether to act on one position now; returns the new trigger state with the decision."""
    if s.mode == "static":
        act = risk.health < s.trigger_hf
        reason = f"health {risk.health:.4f} < trigger {s.trigger_hf}" if act else "healthy"
        return Trigger(act, reason, risk.health, 0.0, s.target_hf, Arm(not act, now_s) if act else arm)
    q = s.predictive
    h = min(risk.health, risk.health_predicted)
    gap = q.gap_bps / 1e4
    p = float(first_passage(h * math.exp(-gap), risk.sigma, q.reaction_s)) if math.isfinite(h) else 0.0
    reasons = []
    if risk.health_predicted < s.trigger_hf <= risk.health:
        reasons.append(f"predicted health {risk.health_predicted:.4f} < trigger {s.trigger_hf}")
    elif h < s.trigger_hf:
        reasons.append(f"health {h:.4f} < trigger {s.trigger_hf}")
    if p > q.max_liquidation_probability:
        reasons.append(f"P(liquidation within {q.reaction_s:g}s) {p:.2e} > {q.max_liquidation_probability:g}")
    if reasons:
        needed = health_for_probability(risk.sigma * math.sqrt(risk.horizon_variance_ratio), q.target_horizon_s,
                                        q.target_probability)  # fmt: skip
        target = min(q.max_target_hf, max(s.target_hf, float(needed) * math.exp(gap)))
        target_at_oracle = target * risk.health / h if math.isfinite(h) and h > 0 else target
    else:
        target_at_oracle = s.target_hf
        rearm = not arm.armed and h >= s.trigger_hf * (1 + q.hysteresis) and p < q.max_liquidation_probability / 2
        return Trigger(False, "healthy", h, p, target_at_oracle, Arm(True, arm.last_action_s) if rearm else arm)
    if s.mode == "alert":
        return Trigger(False, "alert-only: " + "; ".join(reasons), h, p, target_at_oracle, arm)
    emergency = p > q.emergency_probability or h <= 1.0
    if not arm.armed and now_s - arm.last_action_s < q.cooldown_s and not emergency:
        return Trigger(False, "cooldown", h, p, target_at_oracle, arm)
    return Trigger(True, "; ".join(reasons), h, p, target_at_oracle, Arm(False, now_s))


def sizing_settings(s: ProtectSettings, t: Trigger) -> ProtectSettings:
    """Settings for the sizing code (the protocols' levers) once `t` decided to act."""
    return s.model_copy(update={"trigger_hf": FORCE_HF, "target_hf": t.target_hf})
