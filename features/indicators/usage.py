"""Usage decline: how often the account logs in and whether that is falling."""

from __future__ import annotations

from ._math import Values, change, ratio
from .registry import indicator


@indicator(
    family="usage",
    direction="down",
    unit="count",
    source="usage_events",
    en="{value:.0f} login{s} in the last 4 weeks",
    ja="直近4週間のログイン数は{value:.0f}回",
)
def logins_4w(sum_logins_4w: Values) -> Values:
    """Logins in the last 4 complete weeks."""
    return sum_logins_4w


@indicator(
    family="usage",
    direction="down",
    unit="ratio",
    source="usage_events",
    en="Logins {trend} {abs:.0%} in the last 4 weeks vs the prior 8",
    ja="直近4週間のログインが前8週間比で{abs:.0%}{trend}",
)
def logins_change_4w_vs_prior_8w(
    sum_logins_4w: Values,
    sum_logins_prior_8w: Values,
    weeks_4w: Values,
    weeks_prior_8w: Values,
) -> Values:
    """Change of the weekly login rate, last 4 weeks vs the 8 weeks before."""
    return change(ratio(sum_logins_4w, weeks_4w), ratio(sum_logins_prior_8w, weeks_prior_8w))


@indicator(
    family="usage",
    direction="down",
    unit="share per week",
    source="usage_events",
    en="Login trend over 12 weeks: {value:+.1%} per week",
    ja="12週間のログイン傾向: 週あたり{value:+.1%}",
)
def logins_slope_12w(slope_logins_12w: Values) -> Values:
    """Least-squares slope of weekly logins over 12 weeks, relative to their mean."""
    return slope_logins_12w


@indicator(
    family="usage",
    direction="down",
    unit="share",
    source="usage_events",
    en="{value:.0%} of seats active in the last 4 weeks",
    ja="直近4週間のアクティブ率は席数の{value:.0%}",
)
def active_users_per_seat_4w(
    sum_active_users_4w: Values, weeks_4w: Values, now_seats: Values
) -> Values:
    """Average weekly active users over the last 4 weeks per licensed seat."""
    return ratio(ratio(sum_active_users_4w, weeks_4w), now_seats)


@indicator(
    family="usage",
    direction="down",
    unit="ratio",
    source="usage_events",
    en="Active users {trend} {abs:.0%} in the last 4 weeks vs the prior 8",
    ja="直近4週間のアクティブユーザーが前8週間比で{abs:.0%}{trend}",
)
def active_users_change_4w_vs_prior_8w(
    sum_active_users_4w: Values,
    sum_active_users_prior_8w: Values,
    weeks_4w: Values,
    weeks_prior_8w: Values,
) -> Values:
    """Change of average weekly active users, last 4 weeks vs the 8 weeks before."""
    return change(
        ratio(sum_active_users_4w, weeks_4w), ratio(sum_active_users_prior_8w, weeks_prior_8w)
    )


@indicator(
    family="usage",
    direction="down",
    unit="ratio",
    source="usage_events",
    en="Logins in the last 4 weeks are {abs:.0%} below the account's best 4 weeks",
    ja="直近4週間のログインはこれまでの最高の4週間より{abs:.0%}少ない",
)
def logins_vs_peak_4w(sum_logins_4w: Values, peak_logins_4w: Values) -> Values:
    """Logins in the last 4 weeks relative to the account's highest 4-week total so far, minus 1."""
    return change(sum_logins_4w, peak_logins_4w)


@indicator(
    family="usage",
    direction="down",
    unit="ratio",
    source="usage_events",
    en="Logins {trend} {abs:.0%} in the last 4 weeks vs the last 26",
    ja="直近4週間のログインが26週間平均比で{abs:.0%}{trend}",
)
def logins_change_4w_vs_26w(
    sum_logins_4w: Values, sum_logins_26w: Values, weeks_4w: Values, weeks_26w: Values
) -> Values:
    """Change of the weekly login rate, last 4 weeks vs the average of the last 26."""
    return change(ratio(sum_logins_4w, weeks_4w), ratio(sum_logins_26w, weeks_26w))


@indicator(
    family="usage",
    direction="down",
    unit="share per week",
    source="usage_events",
    en="Login trend over 26 weeks: {value:+.1%} per week",
    ja="26週間のログイン傾向: 週あたり{value:+.1%}",
)
def logins_slope_26w(slope_logins_26w: Values) -> Values:
    """Least-squares slope of weekly logins over 26 weeks, relative to their mean."""
    return slope_logins_26w


@indicator(
    family="usage",
    direction="down",
    unit="ratio",
    source="usage_events",
    en="Weekly active users in the last 4 weeks are {abs:.0%} below the account's best 4 weeks",
    ja="直近4週間のアクティブユーザーはこれまでの最高の4週間より{abs:.0%}少ない",
)
def active_users_vs_peak_4w(sum_active_users_4w: Values, peak_active_users_4w: Values) -> Values:
    """Weekly active users over the last 4 weeks relative to the best 4 weeks so far, minus 1."""
    return change(sum_active_users_4w, peak_active_users_4w)
