"""Relationship: CSM contact, how recent it is, who starts the conversation."""

from __future__ import annotations

import pandas as pd

from ._math import ratio
from .registry import indicator


@indicator(
    family="relationship",
    direction="down",
    unit="count",
    source="touchpoints",
    en="{value:.0f} CSM touches in the last 13 weeks",
    ja="直近13週間のCSM接点は{value:.0f}回",
)
def touches_13w(sum_touches_13w: pd.Series) -> pd.Series:
    """CSM touchpoints in the last 13 weeks."""
    return sum_touches_13w


@indicator(
    family="relationship",
    direction="up",
    unit="weeks",
    source="touchpoints",
    en="Last CSM contact {value:.0f} weeks ago",
    ja="最後のCSM接点は{value:.0f}週間前",
)
def weeks_since_last_touch(
    since_touches: pd.Series, weeks_observed: pd.Series, sum_touches_26w: pd.Series
) -> pd.Series:
    """Weeks since the last touchpoint (the whole tenure when there was none)."""
    return since_touches.mask(since_touches.isna() & sum_touches_26w.notna(), weeks_observed)


@indicator(
    family="relationship",
    direction="down",
    unit="share",
    source="touchpoints",
    en="{value:.0%} of contacts in the last 13 weeks came from the customer",
    ja="直近13週間の接点のうち顧客からの連絡は{value:.0%}",
)
def inbound_share_13w(sum_touches_inbound_13w: pd.Series, sum_touches_13w: pd.Series) -> pd.Series:
    """Share of touchpoints in the last 13 weeks that the customer initiated."""
    return ratio(sum_touches_inbound_13w, sum_touches_13w)
