"""The silent customer: absence of signals read as risk, not as health (DOMAIN.md, seed 004)."""

from __future__ import annotations

import numpy as np

from ._math import Values, count_true, fill, flag, isknown, keep, ratio
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
    since_any_activity: Values,
    weeks_observed: Values,
    active_weeks_to_date: Values,
    usage_known: Values,
) -> Values:
    """Weeks since any activity divided by the account's own mean gap between active weeks."""
    quiet = fill(since_any_activity, weeks_observed)
    mean_gap = ratio(weeks_observed, np.maximum(active_weeks_to_date, 1.0))
    return keep(ratio(quiet, mean_gap), usage_known > 0)


@indicator(
    family="silence",
    direction="up",
    unit="channels",
    source="usage_events",
    en="{value:.0f} of the customer's channels went quiet (tickets, surveys, replies)",
    ja="問い合わせ・アンケート・返信のうち{value:.0f}つの接点が途絶",
)
def quiet_channels_13w(
    sum_tickets_opened_13w: Values,
    sum_surveys_answered_26w: Values,
    sum_touches_inbound_13w: Values,
) -> Values:
    """How many of tickets, survey answers (26 weeks) and inbound contacts went silent."""
    parts = [sum_tickets_opened_13w, sum_surveys_answered_26w, sum_touches_inbound_13w]
    quiet = count_true(*(p == 0 for p in parts))
    known = count_true(*(isknown(p) for p in parts))
    return keep(quiet, known > 0)


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
    logins_change_4w_vs_prior_8w: Values,
    logins_slope_12w: Values,
    quiet_channels_13w: Values,
    sum_tickets_opened_13w: Values,
    sum_surveys_answered_26w: Values,
    sum_touches_inbound_13w: Values,
) -> Values:
    """1 when logins decline and every known feedback channel is quiet."""
    declining = (logins_change_4w_vs_prior_8w <= -0.2) | (logins_slope_12w <= -0.03)
    channels = (sum_tickets_opened_13w, sum_surveys_answered_26w, sum_touches_inbound_13w)
    known = count_true(*(isknown(p) for p in channels))
    all_quiet = (quiet_channels_13w == known) & (known > 0)
    usage_known = isknown(logins_change_4w_vs_prior_8w) | isknown(logins_slope_12w)
    return flag(declining & all_quiet, usage_known & (known > 0))
