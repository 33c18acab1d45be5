"""Relationship: CSM contact, how recent it is, who starts the conversation."""

from __future__ import annotations

import numpy as np

from ._math import Values, isknown, ratio
from .registry import indicator


@indicator(
    family="relationship",
    direction="down",
    unit="count",
    source="touchpoints",
    en="{value:.0f} CSM touch{es} in the last 13 weeks",
    ja="直近13週間のCSM接点は{value:.0f}回",
)
def touches_13w(sum_touches_13w: Values) -> Values:
    """CSM touchpoints in the last 13 weeks."""
    return sum_touches_13w


@indicator(
    family="relationship",
    direction="up",
    unit="weeks",
    source="touchpoints",
    en="Last CSM contact {value:.0f} week{s} ago",
    ja="最後のCSM接点は{value:.0f}週間前",
)
def weeks_since_last_touch(
    since_touches: Values, weeks_observed: Values, sum_touches_26w: Values
) -> Values:
    """Weeks since the last touchpoint (the whole tenure when there was none)."""
    never = np.isnan(since_touches) & isknown(sum_touches_26w)
    return np.where(never, weeks_observed, since_touches)


@indicator(
    family="relationship",
    direction="down",
    unit="share",
    source="touchpoints",
    en="{value:.0%} of contacts in the last 13 weeks came from the customer",
    ja="直近13週間の接点のうち顧客からの連絡は{value:.0%}",
)
def inbound_share_13w(sum_touches_inbound_13w: Values, sum_touches_13w: Values) -> Values:
    """Share of touchpoints in the last 13 weeks that the customer initiated."""
    return ratio(sum_touches_inbound_13w, sum_touches_13w)
