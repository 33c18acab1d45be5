"""TreeSHAP contributions -> reason families -> the reasons a CSM reads.

LightGBM's ``Booster.predict(X, pred_contrib=True)`` gives exact TreeSHAP contributions in
log-odds: one column per feature plus a last column for the bias (the expected margin); each row
sums to the raw margin. Features are grouped by the reason family of their indicator
(:func:`~churnlens.features.indicators.describe`); ``has_<source>`` availability flags count for
the family of their source. Pure functions only.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pandas as pd

from ..features.indicators import (
    FAMILIES,
    FAMILY_LABELS,
    availability_column,
    describe,
    render,
)
from ..features.indicators.registry import Family, Lang

LANGS: tuple[Lang, ...] = ("en", "ja")
MAX_EVIDENCE = 3

# Availability flags are not indicators: "we know nothing about tickets" belongs with support.
AVAILABILITY_FAMILIES: dict[str, Family] = {
    availability_column("usage_events"): "usage",
    availability_column("tickets"): "support",
    availability_column("surveys"): "voice",
    availability_column("touchpoints"): "relationship",
    availability_column("contracts"): "commercial",
}


@dataclass(frozen=True)
class Reason:
    """One risk-raising reason family for one account, with the evidence a CSM reads."""

    family: str
    label: str
    impact: float
    evidence: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "family": self.family,
            "label": self.label,
            "impact": self.impact,
            "evidence": list(self.evidence),
        }


def check_lang(lang: str) -> Lang:
    """``lang`` if it is a supported language, else ValueError."""
    if lang not in LANGS:
        raise ValueError(f"unsupported language {lang!r}; expected one of {', '.join(LANGS)}")
    return lang


@functools.cache
def feature_family(name: str) -> Family:
    """The reason family of model feature ``name`` (an indicator or a ``has_<source>`` flag)."""
    ind = describe(name)
    if ind is not None:
        return ind.family
    if name in AVAILABILITY_FAMILIES:
        return AVAILABILITY_FAMILIES[name]
    raise ValueError(
        f"feature {name!r} is neither a registered indicator nor an availability flag "
        f"({', '.join(AVAILABILITY_FAMILIES)}); cannot assign it a reason family"
    )


def _family_codes(feature_names: Sequence[str]) -> np.ndarray:
    """Index into FAMILIES of each feature; ValueError for unknown or repeated names."""
    seen: set[str] = set()
    for name in feature_names:
        if name in seen:
            raise ValueError(f"feature {name!r} appears more than once in feature_names")
        seen.add(name)
    return np.array([FAMILIES.index(feature_family(n)) for n in feature_names], dtype=np.intp)


def _feature_part(contrib: np.ndarray, n_features: int) -> np.ndarray:
    """The feature columns of a ``pred_contrib`` matrix (bias dropped), shape-checked."""
    if contrib.ndim != 2 or contrib.shape[1] != n_features + 1:
        raise ValueError(
            f"contributions must have shape (n_rows, {n_features + 1}) "
            f"({n_features} features + bias), got {contrib.shape}"
        )
    return contrib[:, :n_features]


def family_contributions(contrib: np.ndarray, feature_names: Sequence[str]) -> pd.DataFrame:
    """Sum per reason family of each row's feature contributions (bias excluded).

    Args:
        contrib: ``(n_rows, n_features + 1)`` from ``Booster.predict(X, pred_contrib=True)``.
        feature_names: the model's features, in column order.

    Returns:
        ``(n_rows, len(FAMILIES))`` frame, columns in FAMILIES order (0.0 for absent families).
    """
    onehot = _family_onehot(tuple(feature_names))
    feats = _feature_part(np.asarray(contrib, dtype="float64"), len(feature_names))
    return pd.DataFrame(feats @ onehot, columns=list(FAMILIES))


@functools.lru_cache(maxsize=16)
def _family_onehot(feature_names: tuple[str, ...]) -> np.ndarray:
    """``(n_features, len(FAMILIES))`` 0/1 matrix: which family each feature belongs to."""
    codes = _family_codes(feature_names)
    onehot = np.zeros((len(codes), len(FAMILIES)))
    onehot[np.arange(len(codes)), codes] = 1.0
    return onehot


def as_float(value: object) -> float:
    """``value`` as a float; NaN for None, pandas NA and anything not numeric."""
    try:
        return float(cast(float, value))
    except (TypeError, ValueError):
        return math.nan


def reasons(
    contrib_row: np.ndarray,
    feature_names: Sequence[str],
    values: Mapping[str, float],
    lang: str = "en",
    top_k: int = 3,
    min_impact: float = 0.0,
) -> list[Reason]:
    """The risk-raising reason families of one account, most impactful first.

    Args:
        contrib_row: one row of ``pred_contrib`` (``n_features + 1`` values, bias last; a row
            without the bias column is accepted too).
        feature_names: the model's features, in column order.
        values: indicator values of the account (for the evidence sentences).
        lang: "en" or "ja".
        top_k: at most this many reasons.
        min_impact: only families whose summed contribution exceeds this (log-odds).

    Returns:
        Reasons with impact > ``min_impact`` ranked by impact (ties in FAMILIES order); each with
        up to three evidence sentences from the family's indicators that raised risk most.
    """
    language = check_lang(lang)
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")
    row = np.asarray(contrib_row, dtype="float64").ravel()
    n = len(feature_names)
    if row.shape[0] == n:
        row = np.append(row, 0.0)
    feats = _feature_part(row.reshape(1, -1), n)[0]
    by_family = feats @ _family_onehot(tuple(feature_names))
    impacts = {fam: float(by_family[i]) for i, fam in enumerate(FAMILIES)}
    ranked = sorted(
        (fam for fam in FAMILIES if impacts[fam] > min_impact),
        key=lambda fam: -impacts[fam],
    )[:top_k]
    out: list[Reason] = []
    for fam in ranked:
        mine = [
            (row[i], name)
            for i, name in enumerate(feature_names)
            if row[i] > 0 and (ind := describe(name)) is not None and ind.family == fam
        ]
        mine.sort(key=lambda pair: -pair[0])  # stable: equal contributions keep column order
        evidence: list[str] = []
        for _, name in mine:
            value = as_float(values.get(name))
            if math.isnan(value):
                continue
            text = render(name, value, language)
            if text:
                evidence.append(text)
            if len(evidence) == MAX_EVIDENCE:
                break
        label = FAMILY_LABELS[fam][language]
        out.append(Reason(fam, label, float(impacts[fam]), evidence))
    return out


def check_additivity(contrib: np.ndarray, raw_margin: np.ndarray, atol: float = 1e-6) -> None:
    """Raise ValueError unless every contribution row (bias included) sums to its raw margin."""
    c = np.asarray(contrib, dtype="float64")
    m = np.asarray(raw_margin, dtype="float64").ravel()
    if c.ndim != 2 or c.shape[0] != m.shape[0]:
        raise ValueError(
            f"contributions of shape {c.shape} do not match {m.shape[0]} raw margins; "
            "expected (n_rows, n_features + 1)"
        )
    gap = np.abs(c.sum(axis=1) - m)
    bad = ~(gap <= atol)  # NaN counts as a mismatch
    if bad.any():
        worst = int(np.nanargmax(np.where(np.isnan(gap), np.inf, gap)))
        raise ValueError(
            f"{int(bad.sum())} of {len(m)} contribution rows do not sum to the raw margin "
            f"(atol {atol:g}); worst row {worst}: sum {c[worst].sum():.9g} vs margin "
            f"{m[worst]:.9g}"
        )
