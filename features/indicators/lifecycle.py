"""Lifecycle: tenure, the risky first 90 days, onboarding and time to value."""

from __future__ import annotations

from ._math import Values, fill, flag, isknown, keep
from .registry import indicator

ONBOARDED_CORE_WEEKS = 3


@indicator(
    family="lifecycle",
    direction="down",
    unit="weeks",
    source="accounts",
    en="Customer for {value:.0f} week{s}",
    ja="契約から{value:.0f}週間",
)
def tenure_weeks(tenure_days: Values) -> Values:
    """Weeks since the account was created."""
    return tenure_days / 7.0


@indicator(
    family="lifecycle",
    direction="up",
    unit="flag",
    source="accounts",
    en="In the first 90 days, when churn is most common",
    ja="解約が最も多い契約後90日以内",
)
def in_first_90_days(tenure_days: Values) -> Values:
    """1 while the account is less than 90 days old."""
    return flag(tenure_days < 90, isknown(tenure_days))


@indicator(
    family="lifecycle",
    direction="down",
    unit="flag",
    source="usage_events",
    en="Onboarding complete (core features used in 3+ weeks)",
    ja="オンボーディング完了（3週以上コア機能を利用）",
)
def onboarding_done(core_weeks_to_date: Values) -> Values:
    """1 once core features have been used in at least 3 different weeks."""
    return flag(core_weeks_to_date >= ONBOARDED_CORE_WEEKS, isknown(core_weeks_to_date))


@indicator(
    family="lifecycle",
    direction="down",
    unit="flag",
    source="usage_events",
    en="Has reached first value (used a core feature)",
    ja="初回の価値実感に到達（コア機能を利用）",
)
def value_reached(weeks_to_first_core: Values, usage_known: Values) -> Values:
    """1 once any core feature has been used."""
    return flag(isknown(weeks_to_first_core), usage_known > 0)


@indicator(
    family="lifecycle",
    direction="up",
    unit="weeks",
    source="usage_events",
    en="Time to value: {value:.0f} week{s} to first core-feature use (or still waiting)",
    ja="価値実感までの期間: コア機能の初回利用まで{value:.0f}週間（未到達を含む）",
)
def time_to_value_weeks(
    weeks_to_first_core: Values, weeks_observed: Values, usage_known: Values
) -> Values:
    """Weeks from start to first core-feature use; the tenure so far if not reached yet."""
    return keep(fill(weeks_to_first_core, weeks_observed), usage_known > 0)
