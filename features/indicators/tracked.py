"""Key events: three indicators per tracked event group (``events.tracked`` in the config).

A group ``g`` is the timeline column ``events__g`` (its events per week, see
:mod:`churnlens.features.timeline`). Its indicators are named ``events__g__<what>``:

- ``events__g__12w``: the group's events in the last 12 weeks (how much);
- ``events__g__share_12w``: their share of all the account's events in those 12 weeks (the mix,
  independent of the account's size);
- ``events__g__pace_4w_12w``: the last 4 weeks' weekly rate over the 12 weeks' (1 = steady,
  below 1 = slowing, above = speeding up), smoothed by one event so that a group used once is not
  a 3x surge.

They are not in :data:`~churnlens.features.indicators.registry.REGISTRY` (their names depend on
the config); :func:`describe` gives their metadata, family ``adoption`` and no risk direction:
whether more of a group's events means more risk (errors, dislikes) or less (exports, invites) is
what the model learns. Shorter windows than 12 weeks (a young account) count the weeks it has.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence

import numpy as np

from ..schema import TRACKED_GROUP, tracked_column
from ._math import Values, ratio
from .registry import Indicator, IndicatorFn

_WHAT = ("12w", "share_12w", "pace_4w_12w")
_NAME = re.compile(rf"events__(?P<group>{TRACKED_GROUP.pattern})__(?P<what>{'|'.join(_WHAT)})")


def count_12w(count_4w: Values, count_prior_8w: Values) -> Values:
    """Events of the group in the last 12 weeks (NaN when both windows are unknown)."""
    both_unknown = np.isnan(count_4w) & np.isnan(count_prior_8w)
    return np.where(both_unknown, np.nan, np.nan_to_num(count_4w) + np.nan_to_num(count_prior_8w))


def share_12w(group_12w: Values, events_12w: Values) -> Values:
    """The group's share of all events in the last 12 weeks (NaN without events)."""
    return ratio(group_12w, events_12w)


def pace_4w_12w(count_4w: Values, group_12w: Values, weeks_4w: Values, weeks_12w: Values) -> Values:
    """Weekly rate of the last 4 weeks over that of the last 12, each smoothed by one event."""
    scaled_4w = ratio(count_4w * weeks_12w, weeks_4w)  # the 4 weeks' rate over the 12 weeks
    return ratio(scaled_4w + 1.0, group_12w + 1.0)


_FUNCS: dict[str, IndicatorFn] = {
    "12w": count_12w,
    "share_12w": share_12w,
    "pace_4w_12w": pace_4w_12w,
}
_META: dict[str, tuple[str, str, str, str]] = {  # unit, description, English, Japanese
    "12w": (
        "count",
        "Events of the group {label!r} in the last 12 weeks.",
        "{label}: {value:.0f} event{s} in the last 12 weeks",
        "直近12週間の「{label}」イベント: {value:.0f}件",
    ),
    "share_12w": (
        "share",
        "Share of all events in the last 12 weeks that were {label!r}.",
        "{label}: {value:.0%} of all events in the last 12 weeks",
        "直近12週間の全イベントのうち「{label}」は{value:.0%}",
    ),
    "pace_4w_12w": (
        "ratio",
        "Weekly rate of {label!r} events, last 4 weeks over the last 12 (1 = steady).",
        "{label}: the last 4 weeks at {value:.1f}x the 12-week pace",
        "直近4週間の「{label}」イベントは12週間平均の{value:.1f}倍のペース",
    ),
}


def indicator_names(group: str) -> list[str]:
    """The indicators of tracked group ``group``, in a fixed order."""
    return [f"{tracked_column(group)}__{what}" for what in _WHAT]


@functools.lru_cache(maxsize=4096)
def describe(name: str) -> Indicator | None:
    """Metadata of tracked-group indicator ``name``; None when ``name`` is not one."""
    m = _NAME.fullmatch(name)
    if m is None:
        return None
    group, what = m.group("group"), m.group("what")
    label = group.replace("_", " ")
    unit, description, en, ja = _META[what]
    return Indicator(
        name=name,
        func=_FUNCS[what],
        family="adoption",
        direction="none",
        unit=unit,
        description=description.format(label=label),
        en=en.replace("{label}", label),  # a group name has no braces (TRACKED_GROUP)
        ja=ja.replace("{label}", label),
        source="usage_events",
    )


def compute_tracked(inputs: Mapping[str, Values], groups: Sequence[str]) -> dict[str, Values]:
    """Every indicator of each group in ``groups`` from the window sums of ``inputs``
    (``sum_events__<g>_4w``, ``..._prior_8w``, the same of ``events`` and the windows' weeks)."""
    weeks_4w = inputs["weeks_4w"]
    weeks_12w = weeks_4w + inputs["weeks_prior_8w"]
    events_12w = count_12w(inputs["sum_events_4w"], inputs["sum_events_prior_8w"])
    out: dict[str, Values] = {}
    for group in groups:
        col = tracked_column(group)
        c4 = inputs[f"sum_{col}_4w"]
        c12 = count_12w(c4, inputs[f"sum_{col}_prior_8w"])
        n12, share, pace = indicator_names(group)
        out[n12] = c12
        out[share] = share_12w(c12, events_12w)
        out[pace] = pace_4w_12w(c4, c12, weeks_4w, weeks_12w)
    return out
