"""Stage 2 entry point: every registered indicator for every ``(account_id, as_of)`` request.

The one function used by training (many dates per account) and by serving (a timeline sent in a
request): :func:`compute_indicators`.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..schema import TIMELINE_SOURCE
from .inputs import request_frame, window_inputs
from .registry import FAMILIES, REGISTRY

log = logging.getLogger(__name__)

SOURCES = ("usage_events", "tickets", "surveys", "touchpoints", "contracts")


def availability_column(source: str) -> str:
    """Name of the 0/1 column that says whether ``source`` was known for a request."""
    return f"has_{source}"


def resolve(inputs: pd.DataFrame, names: list[str] | None = None) -> dict[str, pd.Series]:
    """Evaluate indicators (and what they depend on) from ``inputs``, Hamilton style."""
    done: dict[str, pd.Series] = {}
    stack: list[str] = []

    def value(name: str) -> pd.Series:
        if name in done:
            return done[name]
        if name in REGISTRY:
            if name in stack:
                raise ValueError(f"indicator cycle: {' -> '.join([*stack, name])}")
            stack.append(name)
            ind = REGISTRY[name]
            args = {
                p: (inputs[p] if p in inputs.columns and p != name else value(p))
                for p in ind.inputs
            }
            stack.pop()
            out = ind.func(**args)
            done[name] = pd.Series(np.asarray(out, dtype="float64"), index=inputs.index)
            return done[name]
        if name in inputs.columns:
            return inputs[name]
        raise KeyError(f"unknown indicator input {name!r}")

    wanted = names or sorted(REGISTRY, key=lambda n: FAMILIES.index(REGISTRY[n].family))
    for name in wanted:
        value(name)
    return {n: done[n] for n in wanted}


def compute_indicators(
    timeline: pd.DataFrame,
    profiles: pd.DataFrame,
    requests: pd.DataFrame | None = None,
    *,
    as_of: object | None = None,
) -> pd.DataFrame:
    """All indicators for each request, point in time.

    Args:
        timeline: weekly timeline (stage 1 output or an API request's ``weeks``).
        profiles: one row per account (``account_id, created_at`` + optional profile columns).
        requests: ``account_id, as_of`` pairs; alternatively give ``as_of`` for every profile.
        as_of: one date applied to every account in ``profiles`` when ``requests`` is None.

    Returns:
        ``account_id, as_of``, one column per registered indicator and ``has_<source>`` flags.
    """
    if requests is None:
        if as_of is None:
            raise ValueError("give either requests or as_of")
        requests = request_frame(profiles["account_id"], [as_of] * len(profiles))
    else:
        requests = request_frame(requests["account_id"], requests["as_of"])
    inputs = window_inputs(timeline, profiles, requests)
    values = resolve(inputs)
    out = pd.DataFrame({"account_id": inputs["account_id"], "as_of": inputs["as_of"], **values})
    for source in SOURCES:
        cols = [c for c, s in TIMELINE_SOURCE.items() if s == source]
        known = np.zeros(len(inputs), dtype=bool)
        for c in cols:
            known |= inputs[f"sum_{c}_26w"].notna().to_numpy()
        out[availability_column(source)] = known.astype("float64")
    # An indicator whose source is unknown for a request is NaN, never a default.
    for name, ind in REGISTRY.items():
        if ind.source in SOURCES:
            out[name] = out[name].where(out[availability_column(ind.source)] > 0)
    return out
