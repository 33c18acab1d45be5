"""The silent customer: absence of signals read as risk, not as health (DOMAIN.md, seed 004)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._math import flag, ratio
from .registry import indicator


@indicator(
    family="silence",
    direction="up",
    unit="ratio",
    source="usage_events",
    en="Quiet for {value:.1f}x the account's usual gap between active weeks",
    ja="通常の活動間隔の{value:.1f}倍の期間、活動なし",
)
def silence_ratio(
    since_any_activity: pd.Series,
    weeks_observed: pd.Series,
    active_weeks_to_date: pd.Series,
    usage_known: pd.Series,
) -> pd.Series:
    """Weeks since any activity divided by the account's own mean gap between active weeks."""
    quiet = since_any_activity.fillna(weeks_observed)
    mean_gap = ratio(weeks_observed, active_weeks_to_date.clip(lower=1))
    return ratio(quiet, mean_gap).where(usage_known > 0)


@indicator(
    family="silence",
    direction="up",
    unit="channels",
    source="usage_events",
    en="{value:.0f} of the customer's channels went quiet (tickets, surveys, replies)",
    ja="問い合わせ・アンケート・返信のうち{value:.0f}つの接点が途絶",
)
def quiet_channels_13w(
    sum_tickets_opened_13w: pd.Series,
    sum_surveys_answered_26w: pd.Series,
    sum_touches_inbound_13w: pd.Series,
) -> pd.Series:
    """How many of tickets, survey answers (26 weeks) and inbound contacts went silent."""
    parts = [sum_tickets_opened_13w, sum_surveys_answered_26w, sum_touches_inbound_13w]
    quiet = sum((p == 0).astype(float) for p in parts)
    known = sum(p.notna().astype(float) for p in parts)
    return pd.Series(np.where(known > 0, quiet, np.nan), index=sum_tickets_opened_13w.index)


@indicator(
    family="silence",
    direction="up",
    unit="flag",
    source="usage_events",
    en="Usage is sliding while the customer files no tickets, answers no surveys "
    "and does not reach out: the silent-customer pattern",
    ja="利用が減る一方で問い合わせ・アンケート回答・連絡がない「サイレントカスタマー」の兆候",
)
def silent_decline(
    logins_change_4w_vs_prior_8w: pd.Series,
    logins_slope_12w: pd.Series,
    quiet_channels_13w: pd.Series,
    sum_tickets_opened_13w: pd.Series,
    sum_surveys_answered_26w: pd.Series,
    sum_touches_inbound_13w: pd.Series,
) -> pd.Series:
    """1 when logins decline and every known feedback channel is quiet."""
    declining = (logins_change_4w_vs_prior_8w <= -0.2) | (logins_slope_12w <= -0.03)
    known = sum(
        p.notna().astype(float)
        for p in (sum_tickets_opened_13w, sum_surveys_answered_26w, sum_touches_inbound_13w)
    )
    all_quiet = (quiet_channels_13w == known) & (known > 0)
    usage_known = logins_change_4w_vs_prior_8w.notna() | logins_slope_12w.notna()
    return flag(declining & all_quiet, usage_known & (known > 0))
