"""Adoption and breadth: how many features, how much core use, how deep per user."""

from __future__ import annotations

from ._math import Values, change, ratio
from .registry import indicator


@indicator(
    family="adoption",
    direction="down",
    unit="features per week",
    source="usage_events",
    en="{value:.1f} features used per week in the last 4 weeks",
    ja="直近4週間に週平均{value:.1f}個の機能を利用",
)
def feature_breadth_4w(sum_distinct_features_4w: Values, weeks_4w: Values) -> Values:
    """Average number of distinct features used per week over the last 4 weeks."""
    return ratio(sum_distinct_features_4w, weeks_4w)


@indicator(
    family="adoption",
    direction="down",
    unit="ratio",
    source="usage_events",
    en="Feature breadth {trend} {abs:.0%} in the last 4 weeks vs the prior 8",
    ja="利用機能の幅が前8週間比で{abs:.0%}{trend}",
)
def feature_breadth_change_4w_vs_prior_8w(
    feature_breadth_4w: Values,
    sum_distinct_features_prior_8w: Values,
    weeks_prior_8w: Values,
) -> Values:
    """Change of weekly feature breadth, last 4 weeks vs the 8 weeks before."""
    return change(feature_breadth_4w, ratio(sum_distinct_features_prior_8w, weeks_prior_8w))


@indicator(
    family="adoption",
    direction="down",
    unit="share",
    source="usage_events",
    en="Core features are {value:.0%} of activity in the last 4 weeks",
    ja="直近4週間の利用のうちコア機能は{value:.0%}",
)
def core_feature_share_4w(sum_core_feature_events_4w: Values, sum_events_4w: Values) -> Values:
    """Share of the last 4 weeks' events that used a core feature."""
    return ratio(sum_core_feature_events_4w, sum_events_4w)


@indicator(
    family="adoption",
    direction="down",
    unit="events per user",
    source="usage_events",
    en="{value:.0f} action{s} per active user per week in the last 4 weeks",
    ja="直近4週間のアクティブユーザー1人あたり週{value:.0f}アクション",
)
def events_per_active_user_4w(sum_events_4w: Values, sum_active_users_4w: Values) -> Values:
    """Depth of use: events per weekly active user over the last 4 weeks."""
    return ratio(sum_events_4w, sum_active_users_4w)


@indicator(
    family="adoption",
    direction="down",
    unit="ratio",
    source="usage_events",
    en="Core-feature use {trend} {abs:.0%} in the last 4 weeks vs the prior 8",
    ja="直近4週間のコア機能利用が前8週間比で{abs:.0%}{trend}",
)
def core_use_change_4w_vs_prior_8w(
    sum_core_feature_events_4w: Values,
    sum_core_feature_events_prior_8w: Values,
    weeks_4w: Values,
    weeks_prior_8w: Values,
) -> Values:
    """Change of weekly core-feature events, last 4 weeks vs the 8 weeks before."""
    return change(
        ratio(sum_core_feature_events_4w, weeks_4w),
        ratio(sum_core_feature_events_prior_8w, weeks_prior_8w),
    )


@indicator(
    family="adoption",
    direction="down",
    unit="ratio",
    source="usage_events",
    en="Core-feature use in the last 4 weeks is {abs:.0%} below the account's best 4 weeks",
    ja="直近4週間のコア機能利用はこれまでの最高の4週間より{abs:.0%}少ない",
)
def core_use_vs_peak_4w(
    sum_core_feature_events_4w: Values, peak_core_feature_events_4w: Values
) -> Values:
    """Core-feature events in the last 4 weeks relative to the best 4 weeks so far, minus 1."""
    return change(sum_core_feature_events_4w, peak_core_feature_events_4w)


@indicator(
    family="adoption",
    direction="down",
    unit="share per week",
    source="usage_events",
    en="Core-feature trend over 12 weeks: {value:+.1%} per week",
    ja="12週間のコア機能利用の傾向: 週あたり{value:+.1%}",
)
def core_use_slope_12w(slope_core_feature_events_12w: Values) -> Values:
    """Least-squares slope of weekly core-feature events over 12 weeks, relative to their mean."""
    return slope_core_feature_events_12w
