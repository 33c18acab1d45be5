"""Unit tests of the training steps on tiny inline data."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from churnlens.errors import ChurnlensError
from churnlens.model import (
    PROB_FLOOR,
    IsotonicCalibrator,
    PlattCalibrator,
    calibrator_from_dict,
)
from churnlens.training.calibrate import choose_calibrator
from churnlens.training.drift import drift_report, psi, training_stats
from churnlens.training.fit import refit_rounds
from churnlens.training.metrics import (
    arr_captured,
    evaluate,
    expected_calibration_error,
    top_decile,
)
from churnlens.training.pipeline import baselines_ahead
from churnlens.training.split import assign, time_windows


def _sundays(n: int) -> pd.Series:
    return pd.Series(pd.date_range("2024-01-07", periods=n, freq="7D"))


def test_windows_are_ordered_with_a_purge_gap_of_one_horizon():
    dates = _sundays(104)
    end = date(2025, 12, 31)
    w = time_windows(dates, end, horizon_weeks=13, test_weeks=13, valid_weeks=13)
    h = pd.Timedelta(weeks=13)
    assert w.test_end + h <= pd.Timestamp(end) + pd.Timedelta(days=1)
    assert w.valid_end + h <= w.test_start  # validation labels end before test dates
    assert w.train_end + h <= w.valid_start
    part = assign(dates, w)
    assert set(part) == {"train", "valid", "test", ""}
    last_train = dates[part == "train"].max()
    assert (dates[part == "valid"] > last_train + h - pd.Timedelta(days=1)).all()


def test_too_short_history_is_a_clear_error():
    with pytest.raises(ChurnlensError, match="not enough history"):
        time_windows(_sundays(30), date(2024, 8, 31), 13, 13, 13)
    with pytest.raises(ChurnlensError, match="complete 13-week horizon"):
        time_windows(_sundays(5), date(2024, 2, 10), 13, 13, 13)


def test_metrics_on_known_values():
    y = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
    p = np.array([0.1, 0.1, 0.1, 0.1, 0.2, 0.2, 0.2, 0.2, 0.9, 0.3])
    lift, recall = top_decile(y, p)
    assert lift == pytest.approx(5.0) and recall == pytest.approx(0.5)
    assert expected_calibration_error(np.array([0, 1] * 50), np.full(100, 0.5)) == pytest.approx(0)
    assert expected_calibration_error(np.zeros(100), np.full(100, 0.3)) == pytest.approx(0.3)
    arr = np.array([1, 1, 1, 1, 1, 1, 1, 1, 100, 1.0])
    assert arr_captured(y, p, arr) == pytest.approx(100 / 101)
    m = evaluate(y, p, arr)
    assert m["roc_auc"] == pytest.approx(1.0) and 0 < m["brier"] < 1


def test_baselines_ahead_of_the_model_are_named():
    def m(model: float, health: float, logistic: float) -> dict[str, dict[str, float]]:
        return {
            "model": {"roc_auc": model},
            "health_score": {"roc_auc": health},
            "logistic": {"roc_auc": logistic},
        }

    assert baselines_ahead(m(0.90, 0.75, 0.87)) == []
    assert baselines_ahead(m(0.5686, 0.4667, 0.6081)) == ["logistic"]  # ravenstack, 2026-12-06
    assert baselines_ahead(m(0.70, 0.70, 0.71)) == ["health_score", "logistic"]  # a tie: not beaten


def test_calibrators_fix_a_miscalibrated_score_and_roundtrip():
    rng = np.random.default_rng(0)
    true = rng.uniform(0, 0.4, 20_000)
    y = (rng.uniform(size=true.size) < true).astype(int)
    raw = np.clip(true * 2, 0, 0.99)  # twice too high
    for cls in (PlattCalibrator, IsotonicCalibrator):
        cal = cls().fit(raw, y)
        assert brier_score_loss(y, cal.predict(raw)) < brier_score_loss(y, raw)
        again = calibrator_from_dict(cal.to_dict())
        np.testing.assert_allclose(again.predict(raw[:50]), cal.predict(raw[:50]))
    chosen, scores = choose_calibrator(raw, y, np.arange(raw.size) % 500, "auto", seed=1)
    assert chosen.kind == min(scores, key=lambda k: scores[k])
    forced, _ = choose_calibrator(raw, y, np.arange(raw.size) % 500, "platt", seed=1)
    assert forced.kind == "platt"


def test_isotonic_calibration_keeps_the_ranking():
    rng = np.random.default_rng(3)
    raw = rng.uniform(0, 1, 5_000)
    y = (rng.uniform(size=raw.size) < raw**2).astype(int)
    cal = IsotonicCalibrator().fit(raw, y)
    inside = (raw > cal.x_[0]) & (raw < cal.x_[-1])
    out = cal.predict(np.sort(raw[inside]))
    above = out[:-1] > 2 * PROB_FLOOR  # below the probability floor every value is the floor
    assert np.all(np.diff(out) >= 0) and np.all(np.diff(out)[above] > 0)  # no ties in between
    assert roc_auc_score(y, cal.predict(raw)) == pytest.approx(roc_auc_score(y, raw), abs=2e-3)


def test_refit_rounds_scale_with_the_rows():
    assert refit_rounds(100, 1_000, 1_650) == 165
    assert refit_rounds(0, 1_000, 2_000) == 1


def test_drift_psi_is_zero_on_the_same_data_and_flags_a_shift():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=5000), "b": rng.normal(size=5000)})
    ind = X.assign(has_tickets=1.0)
    stats = training_stats(X, ind)
    same = drift_report(stats, X, ind).set_index("feature")
    assert same["psi"].max() < 1e-9
    shifted = X.assign(a=X["a"] + 1.5, b=np.where(rng.uniform(size=5000) < 0.5, np.nan, X["b"]))
    rep = drift_report(stats, shifted, ind).set_index("feature")
    assert rep.loc["a", "status"] == "retrain" and rep.loc["b", "missing_now"] > 0.4
    assert psi(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0
