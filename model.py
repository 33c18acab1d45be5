"""The churn model package: LightGBM booster + calibrator + feature spec + training stats.

Everything fitted in training ships here, and loading it needs neither training code nor data:
a directory with ``booster.txt`` (LightGBM's text format) and ``model.json`` (calibrator, feature
spec with families and sentence templates, training-window statistics for drift, and the run
record). Calibrators follow scikit-learn's contract (``fit`` returns self, learned attributes end
in ``_``) and serialise to plain numbers, not pickles.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

PROB_FLOOR = 1e-4
ARTIFACT_KEY = "churn_model"  # the package's folder inside an MLflow model


def _logit(p: np.ndarray) -> np.ndarray:
    return np.asarray(logit(np.clip(p, 1e-6, 1 - 1e-6)), dtype=float)


class PlattCalibrator:
    """Logistic regression on the logit of the raw score."""

    kind = "platt"

    def fit(self, p: np.ndarray, y: np.ndarray) -> PlattCalibrator:
        """Learn slope ``a_`` and intercept ``b_``."""
        lr = LogisticRegression(C=1e6, max_iter=1000)
        lr.fit(_logit(p).reshape(-1, 1), y)
        self.a_ = float(lr.coef_[0, 0])
        self.b_ = float(lr.intercept_[0])
        return self

    def predict(self, p: np.ndarray) -> np.ndarray:
        """Calibrated probabilities."""
        return np.asarray(expit(self.a_ * _logit(p) + self.b_), dtype=float)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"kind": self.kind, "a": self.a_, "b": self.b_}


class IsotonicCalibrator:
    """Centred isotonic regression: monotone, linear between the centres of the isotonic steps.

    Plain isotonic regression is a step function: every score inside a step gets the same
    probability, which throws away the model's ranking there (ROC-AUC drops). Putting one knot at
    the mean score of each step and interpolating between them keeps the calibration and makes the
    map strictly increasing between the first and the last centre, so the ranking is kept.
    """

    kind = "isotonic"

    def fit(self, p: np.ndarray, y: np.ndarray) -> IsotonicCalibrator:
        """Learn the knots ``x_`` (step centres) and values ``y_``."""
        p = np.asarray(p, dtype=float)
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        fitted = iso.fit_transform(p, y)
        values, step = np.unique(fitted, return_inverse=True)
        centres = np.bincount(step, weights=p) / np.bincount(step)
        self.x_ = np.asarray(centres, dtype=float)
        self.y_ = np.asarray(values, dtype=float)
        return self

    def predict(self, p: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (never exactly 0 or 1: a step with no churn is not proof)."""
        return np.clip(np.interp(p, self.x_, self.y_), PROB_FLOOR, 1 - PROB_FLOOR)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"kind": self.kind, "x": self.x_.tolist(), "y": self.y_.tolist()}


Calibrator = PlattCalibrator | IsotonicCalibrator


def calibrator_from_dict(d: dict[str, Any]) -> Calibrator:
    """Rebuild a fitted calibrator from its JSON form."""
    if d["kind"] == "platt":
        c = PlattCalibrator()
        c.a_, c.b_ = float(d["a"]), float(d["b"])
        return c
    if d["kind"] == "isotonic":
        iso = IsotonicCalibrator()
        iso.x_, iso.y_ = np.asarray(d["x"], dtype=float), np.asarray(d["y"], dtype=float)
        return iso
    raise ValueError(f"unknown calibrator kind {d['kind']!r}")


# Below this many rows LightGBM predicts on one thread: starting OpenMP threads costs more than
# the work, and a server's workers already keep the cores busy (0 = LightGBM's default, all cores).
SINGLE_THREAD_ROWS = 2000


def _threads(n_rows: int) -> int:
    return 1 if n_rows < SINGLE_THREAD_ROWS else 0


class ChurnModel:
    """A trained churn model, ready to score indicator frames."""

    BOOSTER_FILE = "booster.txt"
    META_FILE = "model.json"

    def __init__(
        self,
        booster: lgb.Booster,
        calibrator: Calibrator,
        features: list[str],
        spec: dict[str, dict[str, Any]],
        stats: dict[str, Any],
        meta: dict[str, Any],
    ) -> None:
        self.booster = booster
        self.calibrator = calibrator
        self.features = features
        self.spec = spec
        self.stats = stats
        self.meta = meta

    def tracked_events(self) -> dict[str, list[str]]:
        """The key-event groups the model's features were built from (``events.tracked`` of
        its training config; empty for a model without them)."""
        events = self.meta.get("config", {}).get("events", {}) or {}
        return {
            str(g): [str(e) for e in names] for g, names in (events.get("tracked") or {}).items()
        }

    def matrix(self, indicators: pd.DataFrame) -> pd.DataFrame:
        """The model's feature matrix, columns in training order (missing columns are NaN)."""
        missing = [f for f in self.features if f not in indicators.columns]
        X = indicators.reindex(columns=self.features).astype("float64")
        if missing:
            X[missing] = np.nan
        return X

    def array(self, indicators: pd.DataFrame) -> np.ndarray:
        """:meth:`matrix` as a float64 array (what the booster reads; no per-call pandas cost)."""
        return np.asarray(
            indicators.reindex(columns=self.features).to_numpy(dtype=np.float64, na_value=np.nan),
            dtype=np.float64,
        )

    def raw_margin(self, indicators: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Uncalibrated log-odds (``indicators`` may be an :meth:`array` already)."""
        X = indicators if isinstance(indicators, np.ndarray) else self.array(indicators)
        return np.asarray(
            self.booster.predict(X, raw_score=True, num_threads=_threads(len(X))), float
        )

    def predict_proba(self, indicators: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Calibrated churn probability per row."""
        return self.calibrator.predict(np.asarray(expit(self.raw_margin(indicators)), float))

    def contributions(self, indicators: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Exact TreeSHAP contributions in log-odds, last column the bias."""
        X = indicators if isinstance(indicators, np.ndarray) else self.array(indicators)
        return np.asarray(
            self.booster.predict(X, pred_contrib=True, num_threads=_threads(len(X))), float
        )

    def save(self, path: Path) -> None:
        """Write the package into directory ``path``."""
        path.mkdir(parents=True, exist_ok=True)
        (path / self.BOOSTER_FILE).write_text(self.booster.model_to_string(), encoding="utf-8")
        doc = {
            "format": 1,
            "features": self.features,
            "calibrator": self.calibrator.to_dict(),
            "spec": self.spec,
            "stats": self.stats,
            "meta": self.meta,
        }
        (path / self.META_FILE).write_text(json.dumps(doc, indent=1, default=str), "utf-8")

    @classmethod
    def load(cls, path: Path) -> ChurnModel:
        """Read a package written by :meth:`save`."""
        path = Path(path)
        for name in (cls.BOOSTER_FILE, cls.META_FILE):
            if not (path / name).exists():
                raise FileNotFoundError(f"{path}: not a churnlens model (no {name})")
        doc = json.loads((path / cls.META_FILE).read_text("utf-8"))
        booster = lgb.Booster(model_str=(path / cls.BOOSTER_FILE).read_text("utf-8"))
        return cls(
            booster,
            calibrator_from_dict(doc["calibrator"]),
            list(doc["features"]),
            doc["spec"],
            doc["stats"],
            doc["meta"],
        )
