"""Calibration step: pick isotonic or Platt by held-out Brier score on the validation window."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import brier_score_loss

from ..model import Calibrator, IsotonicCalibrator, PlattCalibrator


def choose_calibrator(
    p: np.ndarray, y: np.ndarray, groups: np.ndarray, method: str, seed: int
) -> tuple[Calibrator, dict[str, float]]:
    """Fit isotonic and Platt on half the validation accounts, compare Brier on the other half.

    The winner (or the configured ``method``) is then refitted on the whole validation window.
    """
    rng = np.random.default_rng(seed)
    uniq = np.unique(groups)
    half = set(rng.permutation(uniq)[: len(uniq) // 2].tolist())
    a = np.array([g in half for g in groups])
    scores: dict[str, float] = {}
    for cls in (IsotonicCalibrator, PlattCalibrator):
        briers = []
        for fit_mask in (a, ~a):
            if len(np.unique(y[fit_mask])) < 2 or (~fit_mask).sum() == 0:
                continue
            cal = cls().fit(p[fit_mask], y[fit_mask])
            briers.append(brier_score_loss(y[~fit_mask], cal.predict(p[~fit_mask])))
        scores[cls.kind] = float(np.mean(briers)) if briers else float("inf")
    kind = method if method != "auto" else min(scores, key=lambda k: scores[k])
    chosen: Calibrator = IsotonicCalibrator() if kind == "isotonic" else PlattCalibrator()
    return chosen.fit(p, y), scores
