"""Transparent baselines: the rule-based health score a CS team builds by hand.

The score starts at 100 and loses points for each warning sign, the way health scores in CS
platforms are configured (usage trend, breadth, support load, NPS, silence, onboarding). Unknown
sources cost nothing. It needs no training, so it also ranks accounts before a model exists.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# (indicator, condition, points lost) — read as "if condition then lose points".
HEALTH_RULES: tuple[tuple[str, str, float], ...] = (
    ("logins_change_4w_vs_prior_8w", "<= -0.3", 20.0),
    ("logins_change_4w_vs_prior_8w", "<= -0.1", 10.0),
    ("active_users_per_seat_4w", "< 0.3", 10.0),
    ("feature_breadth_change_4w_vs_prior_8w", "<= -0.25", 10.0),
    ("ticket_spike_4w_vs_13w", ">= 2", 10.0),
    ("urgent_tickets_13w", ">= 2", 5.0),
    ("nps_detractor", ">= 1", 15.0),
    ("weeks_since_survey_answer", ">= 26", 5.0),
    ("silent_decline", ">= 1", 15.0),
    ("value_reached", "< 1", 10.0),
    ("seats_change_13w", "< 0", 10.0),
)


def health_score(indicators: pd.DataFrame) -> pd.Series:
    """Rule-based health 0-100 (higher is healthier) from an indicator frame."""
    score = np.full(len(indicators), 100.0)
    for name, cond, points in HEALTH_RULES:
        op, threshold = cond.split()
        v = indicators[name].to_numpy(dtype=float)
        t = float(threshold)
        hit = {"<=": v <= t, "<": v < t, ">=": v >= t, ">": v > t}[op]
        score -= np.where(np.isnan(v), 0.0, np.where(hit, points, 0.0))
    return pd.Series(np.clip(score, 0.0, 100.0), index=indicators.index, name="health_score")
