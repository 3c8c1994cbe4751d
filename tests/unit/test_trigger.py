"""The trigger: static, predictive (look-ahead, probability, target), hysteresis and cooldown."""

from __future__ import annotations

import math

import pytest

from keeper.risk.exposures import Risk
from keeper.risk.predict import SECONDS_PER_YEAR, first_passage, health_for_probability
from keeper.settings import PredictiveSettings, ProtectSettings
from keeper.strategy.trigger import Arm, evaluate

CALM = 0.5 / math.sqrt(SECONDS_PER_YEAR)
STORM = 15.0 / math.sqrt(SECONDS_PER_YEAR)  # a crash: about 1 % a minute
PRED = ProtectSettings(trigger_hf=1.15, target_hf=1.3, mode="predictive", predictive=PredictiveSettings(reaction_s=600))


def test_static_acts_only_below_the_trigger_at_the_oracle_price() -> None:
    s = PRED.model_copy(update={"mode": "static"})
    assert not evaluate(Risk(1.2, 0.9, STORM), s, Arm(), 0).act  # blind to the predicted price
    t = evaluate(Risk(1.14, 1.14, CALM), s, Arm(), 0)
    assert t.act and t.target_hf == 1.3


def test_predictive_acts_on_the_predicted_oracle_answer() -> None:
    t = evaluate(Risk(1.25, 1.05, CALM), PRED, Arm(), 0)
    assert t.act and "predicted health 1.0500" in t.reason
    # the target is reached at the predicted price: at the current price it is higher by 1.25/1.05
    assert t.target_hf == pytest.approx(1.3 * 1.25 / 1.05)
    assert not evaluate(Risk(1.25, 1.25, CALM), PRED, Arm(), 0).act


def test_predictive_acts_on_the_probability_and_raises_the_target_with_volatility() -> None:
    calm = evaluate(Risk(1.2, 1.2, CALM), PRED, Arm(), 0)
    storm = evaluate(Risk(1.2, 1.2, STORM), PRED, Arm(), 0)
    assert not calm.act and calm.probability < 1e-6
    assert storm.act and storm.probability == pytest.approx(float(first_passage(1.2, STORM, 600)))
    q = PRED.predictive
    want = float(health_for_probability(STORM, q.target_horizon_s, q.target_probability))
    assert storm.target_hf == pytest.approx(min(q.max_target_hf, max(1.3, want)))
    assert storm.target_hf > 1.3
    # after acting at that target the probability within the horizon is at most the level
    assert float(first_passage(storm.target_hf, STORM, q.target_horizon_s)) <= q.target_probability * 1.0001


def test_hysteresis_and_cooldown() -> None:
    t = evaluate(Risk(1.14, 1.14, CALM), PRED, Arm(), 1000)
    assert t.act and not t.arm.armed
    # still below (the action is landing or fell short): not again inside the cooldown ...
    again = evaluate(Risk(1.14, 1.14, CALM), PRED, t.arm, 1060)
    assert not again.act and again.reason == "cooldown"
    # ... but after it
    assert evaluate(Risk(1.14, 1.14, CALM), PRED, t.arm, 1000 + PRED.predictive.cooldown_s).act
    # just above the trigger: not re-armed (the band), so a dip back below waits for the cooldown
    band = evaluate(Risk(1.16, 1.16, CALM), PRED, t.arm, 1070)
    assert not band.act and not band.arm.armed
    assert evaluate(Risk(1.149, 1.149, CALM), PRED, band.arm, 1080).reason == "cooldown"
    # clearly above: re-armed, and the next dip acts at once
    up = evaluate(Risk(1.3, 1.3, CALM), PRED, band.arm, 1090)
    assert up.arm.armed
    assert evaluate(Risk(1.149, 1.149, CALM), PRED, up.arm, 1100).act


def test_an_emergency_ignores_the_cooldown() -> None:
    t = evaluate(Risk(1.14, 1.14, CALM), PRED, Arm(), 1000)
    assert evaluate(Risk(1.0, 0.99, CALM), PRED, t.arm, 1010).act


def test_alert_mode_never_acts() -> None:
    t = evaluate(Risk(1.25, 1.0, STORM), PRED.model_copy(update={"mode": "alert"}), Arm(), 0)
    assert not t.act and t.reason.startswith("alert-only")
