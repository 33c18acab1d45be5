"""Stage 2 entry point: every registered indicator for every ``(account_id, as_of)`` request.

The one function used by training (many dates per account) and by serving (a timeline sent in a
request): :func:`compute_indicators`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..schema import TIMELINE_SOURCE, tracked_column, tracked_groups
from ._math import Values
from .inputs import window_arrays
from .registry import REGISTRY, in_family_order
from .tracked import compute_tracked, indicator_names

log = logging.getLogger(__name__)

SOURCES = ("usage_events", "tickets", "surveys", "touchpoints", "contracts")


def availability_column(source: str) -> str:
    """Name of the 0/1 column that says whether ``source`` was known for a request."""
    return f"has_{source}"


def indicator_columns(tracked: Sequence[str] = ()) -> list[str]:
    """The value columns of :func:`compute_indicators` with tracked event groups ``tracked``:
    every registered indicator (family order), the groups' indicators, the availability flags."""
    groups = [n for g in tracked for n in indicator_names(g)]
    return [*in_family_order(), *groups, *(availability_column(s) for s in SOURCES)]


def resolve(inputs: Mapping[str, Values], names: list[str] | None = None) -> dict[str, Values]:
    """Evaluate indicators (and what they depend on) from ``inputs``, Hamilton style."""
    done: dict[str, Values] = {}
    stack: list[str] = []

    def value(name: str) -> Values:
        if name in done:
            return done[name]
        if name in REGISTRY:
            if name in stack:
                raise ValueError(f"indicator cycle: {' -> '.join([*stack, name])}")
            stack.append(name)
            ind = REGISTRY[name]
            args = {p: (inputs[p] if p in inputs and p != name else value(p)) for p in ind.inputs}
            stack.pop()
            done[name] = np.asarray(ind.func(**args), dtype=np.float64)
            return done[name]
        if name in inputs:
            return inputs[name]
        raise KeyError(f"unknown indicator input {name!r}")

    wanted = names or in_family_order()
    for name in wanted:
        value(name)
    return {n: done[n] for n in wanted}


def _dates(values: object, n: int) -> npt.NDArray[np.datetime64]:
    """``n`` midnight ``datetime64[us]`` dates from one date or a sequence of them."""
    if isinstance(values, pd.Series | pd.Index | np.ndarray | list | tuple):
        stamps = pd.to_datetime(pd.Series(list(values) if not len(values) else values))
        if isinstance(stamps.dtype, pd.DatetimeTZDtype):
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        return np.asarray(stamps.dt.normalize().to_numpy(dtype="datetime64[us]"))
    one = pd.Timestamp(values)  # type: ignore[arg-type]
    if one.tzinfo is not None:
        one = one.tz_convert("UTC").tz_localize(None)
    return np.full(n, one.normalize().to_datetime64().astype("datetime64[us]"))


def compute_indicators(
    timeline: pd.DataFrame,
    profiles: pd.DataFrame,
    requests: pd.DataFrame | None = None,
    *,
    as_of: object | None = None,
    tracked: Sequence[str] | None = None,
) -> pd.DataFrame:
    """All indicators for each request, point in time.

    Args:
        timeline: weekly timeline (stage 1 output or an API request's ``weeks``).
        profiles: one row per account (``account_id, created_at`` + optional profile columns).
        requests: ``account_id, as_of`` pairs; alternatively give ``as_of`` for every profile.
        as_of: one date applied to every account in ``profiles`` when ``requests`` is None.
        tracked: tracked event groups whose indicators to compute (:mod:`.tracked`); default
            every group with a column (``events__<group>``) in ``timeline``. A group the timeline
            lacks gets unknown (NaN) indicators.

    Returns:
        ``account_id, as_of``, one column per registered indicator, the tracked groups'
        indicators and ``has_<source>`` flags.
    """
    groups = list(tracked_groups(timeline.columns) if tracked is None else tracked)
    if requests is None:
        if as_of is None:
            raise ValueError("give either requests or as_of")
        ids = profiles["account_id"].astype(str).to_numpy(dtype=object)
        dates = _dates(as_of, len(ids))
    else:
        ids = requests["account_id"].astype(str).to_numpy(dtype=object)
        dates = _dates(requests["as_of"], len(ids))
    inputs = window_arrays(timeline, profiles, ids, dates, [tracked_column(g) for g in groups])
    values = resolve(inputs.values)
    values |= compute_tracked(inputs.values, groups)
    known: dict[str, Values] = {}
    for source in SOURCES:
        cols = [c for c, s in TIMELINE_SOURCE.items() if s == source]
        seen = np.zeros(len(ids), dtype=bool)
        for c in cols:
            seen |= ~np.isnan(inputs.values[f"sum_{c}_26w"])
        known[availability_column(source)] = seen.astype(np.float64)
    # An indicator whose source is unknown for a request is NaN, never a default.
    sources = {name: ind.source for name, ind in REGISTRY.items()}
    sources |= dict.fromkeys((n for g in groups for n in indicator_names(g)), "usage_events")
    for name, source in sources.items():
        if source in SOURCES:
            values[name] = np.where(known[availability_column(source)] > 0, values[name], np.nan)
    return pd.DataFrame(
        {
            "account_id": pd.Series(ids, dtype=str),
            "as_of": dates,
            **values,
            **known,
        }
    )
