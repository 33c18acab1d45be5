"""Property tests (hypothesis) on the API's request models and on the indicator functions.

Request models (``serving/schemas.py``): any JSON-ish input either validates or raises
``pydantic.ValidationError`` whose :func:`describe_errors` lines each start with a field path of
the model (or ``body`` for the whole body) -- never another exception; valid requests round-trip
through JSON unchanged.

Indicators (``compute_indicators``): on any valid weekly timeline (Mondays, counts >= 0 or unknown,
whole source tables missing, any as-of on or after creation) there is no exception, one row per
account in profile order, no infinity, the ``has_<source>`` flags are 0/1 and an unknown source's
indicators are NaN (never a default). Weeks after as-of change nothing (point in time). Through a
real model trained on a small simulated base: the booster never sees NaN in the columns that are
always known (availability flags, tenure), and every score is a finite probability.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from churnlens.config import Config, load_config
from churnlens.datasets.simulator import SimulatorConfig, simulate, write_base
from churnlens.features.indicators import compute_indicators
from churnlens.features.indicators.compute import SOURCES, availability_column
from churnlens.features.indicators.registry import REGISTRY
from churnlens.features.schema import TIMELINE_COLUMNS, TIMELINE_SOURCE
from churnlens.model import ChurnModel
from churnlens.serving.playbooks import Catalog, load_catalog
from churnlens.serving.schemas import (
    MAX_WEEKS,
    PredictRequest,
    ScoreAccountsRequest,
    WeekIn,
    describe_errors,
    field_path,
)
from churnlens.serving.scoring import score_frame
from churnlens.serving.service import request_frames
from churnlens.training.pipeline import train

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
WEEK_ADAPTER: TypeAdapter[WeekIn] = TypeAdapter(WeekIn)
MONDAY0 = date(2020, 1, 6)  # a Monday
# Counts a real export can hold (a week of logins of a very large account is ~1e7).
COUNT = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)

# ------------------------------------------------------------------------------ JSON-ish input
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN and +-inf too: Python callers can send them
    | st.text(max_size=12)
    | st.sampled_from(["2025-06-16", "2025-06-15T10:00:00+09:00", "NaN", "-1", "1e400", ""])
)
JSONISH = st.recursive(
    SCALARS,
    lambda kids: st.lists(kids, max_size=4)
    | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=20,
)


def path_pattern(roots: list[str]) -> re.Pattern[str]:
    """``root``, then any ``[i]`` / ``.name`` steps, then ``: `` and a non-empty problem."""
    alt = "|".join(re.escape(r) for r in [*roots, "body"])
    return re.compile(rf"^(?:{alt})(?:\[\d+\]|\.[A-Za-z_][A-Za-z_0-9]*)*: \S")


def assert_named(err: ValidationError, pattern: re.Pattern[str]) -> None:
    """Every line ``describe_errors`` makes names a field path of the model."""
    lines = describe_errors(err.errors(include_url=False))
    assert lines, err
    for line in lines:
        assert pattern.match(line), line
        # A line of PredictRequest's cross-field check joins several problems, each with a path.
        for part in line.split("; ")[1:]:
            assert pattern.match(part), part


@dataclass(frozen=True)
class Target:
    """A request model: how to validate Python input and JSON bytes, and its field names."""

    python: Any
    json: Any
    roots: list[str]


TARGETS = {
    "PredictRequest": Target(
        PredictRequest.model_validate, PredictRequest.model_validate_json, ["as_of", "accounts"]
    ),
    "ScoreAccountsRequest": Target(
        ScoreAccountsRequest.model_validate,
        ScoreAccountsRequest.model_validate_json,
        ["account_ids"],
    ),
    "WeekIn": Target(
        WEEK_ADAPTER.validate_python,
        WEEK_ADAPTER.validate_json,
        ["week_start", *TIMELINE_COLUMNS],
    ),
}


@pytest.mark.parametrize("name", list(TARGETS))
@SETTINGS
@given(value=JSONISH)
def test_any_jsonish_input_validates_or_names_the_field(name: str, value: Any) -> None:
    t = TARGETS[name]
    pattern = path_pattern(t.roots)
    try:
        t.python(value)
    except ValidationError as err:
        assert_named(err, pattern)
    try:  # BentoML's path: JSON text (NaN / inf become the NaN / Infinity tokens)
        t.json(json.dumps(value).encode())
    except ValidationError as err:
        assert_named(err, pattern)


@SETTINGS
@given(raw=st.binary(max_size=64))
def test_any_bytes_are_valid_json_or_a_named_body_error(raw: bytes) -> None:
    pattern = path_pattern(TARGETS["PredictRequest"].roots)
    try:
        PredictRequest.model_validate_json(raw)
    except ValidationError as err:
        assert_named(err, pattern)


# ------------------------------------------------------------------------------ valid requests
def monday(weeks: int) -> date:
    return MONDAY0 + timedelta(weeks=weeks)


@st.composite
def week_rows(draw: st.DrawFn, first: int, last: int, max_size: int = 12) -> list[dict[str, Any]]:
    """Distinct Mondays between week numbers ``first`` and ``last``, counts or unknowns."""
    if last < first:
        return []
    numbers = draw(
        st.lists(st.integers(first, last), unique=True, max_size=min(max_size, last - first + 1))
    )
    rows = []
    for n in numbers:
        row: dict[str, Any] = {"week_start": monday(n).isoformat()}
        for col in draw(st.lists(st.sampled_from(TIMELINE_COLUMNS), unique=True)):
            row[col] = draw(st.none() | COUNT | st.integers(0, 10**6))
        rows.append(row)
    return rows


@st.composite
def predict_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A ``POST /predict`` body the schema accepts (JSON types)."""
    as_of_week = draw(st.integers(0, 300))
    as_of = monday(as_of_week) + timedelta(days=draw(st.integers(0, 6)))
    ids = draw(st.lists(st.text(min_size=1, max_size=16), min_size=1, max_size=4, unique=True))
    accounts = []
    for aid in ids:
        created_week = draw(st.integers(max(0, as_of_week - 120), as_of_week))
        created = datetime.combine(monday(created_week), datetime.min.time())
        created += timedelta(days=draw(st.integers(0, 6)), seconds=draw(st.integers(0, 86399)))
        if created.date() > as_of:
            created = datetime.combine(as_of, datetime.min.time())
        aware = draw(st.booleans())
        profile: dict[str, Any] = {
            "created_at": created.replace(tzinfo=UTC).isoformat() if aware else created.isoformat()
        }
        for key, strat in (
            ("arr", st.none() | COUNT),
            ("seats", st.none() | st.integers(0, 10**5)),
            ("plan", st.none() | st.text(max_size=10)),
            ("touch_tier", st.none() | st.sampled_from(["high", "low", "tech", "odd"])),
            ("renewal_date", st.none() | st.dates(date(2019, 1, 1), date(2031, 1, 1))),
            ("billing_period", st.none() | st.sampled_from(["monthly", "Annual", "yr", "weekly"])),
        ):
            if draw(st.booleans()):
                value = draw(strat)
                profile[key] = value.isoformat() if isinstance(value, date) else value
        weeks = draw(week_rows(created_week, (as_of - MONDAY0).days // 7, MAX_WEEKS))
        accounts.append({"account_id": aid, "profile": profile, "weeks": weeks})
    return {"as_of": as_of.isoformat(), "accounts": accounts}


@SETTINGS
@given(body=predict_bodies())
def test_valid_requests_validate_and_round_trip(body: dict[str, Any]) -> None:
    req = PredictRequest.model_validate(body)
    assert [a.account_id for a in req.accounts] == [a["account_id"] for a in body["accounts"]]
    assert PredictRequest.model_validate_json(req.model_dump_json()) == req
    assert PredictRequest.model_validate_json(json.dumps(body)) == req
    ids = ScoreAccountsRequest.model_validate({"account_ids": [a.account_id for a in req.accounts]})
    assert ScoreAccountsRequest.model_validate_json(ids.model_dump_json()) == ids


@SETTINGS
@given(body=predict_bodies(), data=st.data())
def test_one_bad_field_in_a_valid_request_is_named(
    body: dict[str, Any], data: st.DataObject
) -> None:
    """Replace one value anywhere in a valid body with junk: accepted, or that path is named."""
    holders: list[tuple[Any, Any, str]] = []

    def walk(node: Any, path: str) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for k, v in items:
            step = f"[{k}]" if isinstance(k, int) else (f".{k}" if path else k)
            holders.append((node, k, path + step))
            if isinstance(v, dict | list):
                walk(v, path + step)

    walk(body, "")
    node, key, where = data.draw(st.sampled_from(holders))
    node[key] = data.draw(JSONISH)
    try:
        PredictRequest.model_validate_json(json.dumps(body))
    except ValidationError as err:
        assert_named(err, path_pattern(TARGETS["PredictRequest"].roots))
        for e in err.errors(include_url=False):
            if e["type"] == "inconsistent":  # cross-field: names its own paths (checked above)
                continue
            path = field_path(e["loc"])
            assert path.startswith(where) or where.startswith(path), (where, path)


# ------------------------------------------------------------------------------ indicators
@st.composite
def timelines(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame, date, set[str]]:
    """Profiles, a weekly timeline (some sources' columns absent, some values NaN), an as-of.

    Hypothesis draws the shape (accounts, which weeks, which sources are missing, how many
    unknown and zero cells, magnitudes); the cell values come from a drawn seed (fast).
    """
    n = draw(st.integers(1, 5))
    as_of_week = draw(st.integers(0, 200))
    as_of = monday(as_of_week) + timedelta(days=draw(st.integers(0, 6)))
    dropped = set(draw(st.lists(st.sampled_from(SOURCES), unique=True, max_size=3)))
    cols = [c for c in TIMELINE_COLUMNS if TIMELINE_SOURCE[c] not in dropped]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    p_nan, p_zero = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])), draw(st.sampled_from([0.0, 0.5]))
    scale = draw(st.sampled_from([1.0, 100.0, 1e9]))
    frames: list[pd.DataFrame] = []
    profiles: list[dict[str, Any]] = []
    last = (as_of - MONDAY0).days // 7
    for i in range(n):
        created_week = draw(st.integers(max(0, as_of_week - 110), as_of_week))
        created = min(monday(created_week) + timedelta(days=draw(st.integers(0, 6))), as_of)
        profiles.append(
            {
                "account_id": f"a{i}",
                "created_at": pd.Timestamp(created),
                "arr": draw(st.none() | COUNT),
                "seats": draw(st.none() | st.integers(0, 5000)),
                "renewal_date": draw(st.none() | st.dates(date(2019, 1, 1), date(2030, 1, 1))),
                "billing_period": draw(st.none() | st.sampled_from(["monthly", "annual", "?"])),
            }
        )
        span = last - created_week + 1
        if span <= 0:
            continue
        numbers = draw(
            st.lists(st.integers(created_week, last), unique=True, max_size=min(span, 60))
        )
        values = np.floor(rng.exponential(scale, size=(len(numbers), len(cols))))
        values[rng.random(values.shape) < p_zero] = 0.0
        values[rng.random(values.shape) < p_nan] = np.nan
        frame = pd.DataFrame(values, columns=cols)
        frame.insert(0, "week_start", [pd.Timestamp(monday(k)) for k in numbers])
        frame.insert(0, "account_id", f"a{i}")
        frames.append(frame)
    timeline = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["account_id", "week_start", *cols])
    )
    accounts = pd.DataFrame(profiles)
    accounts["renewal_date"] = pd.to_datetime(accounts["renewal_date"])
    return timeline, accounts, as_of, dropped


ALWAYS_KNOWN = ["tenure_weeks", "in_first_90_days", *(availability_column(s) for s in SOURCES)]


def check_indicators(ind: pd.DataFrame, accounts: pd.DataFrame, dropped: set[str]) -> None:
    assert ind["account_id"].tolist() == accounts["account_id"].tolist()
    numeric = ind.drop(columns=["account_id", "as_of"]).to_numpy(dtype=np.float64)
    assert not np.isinf(numeric).any()
    for col in ALWAYS_KNOWN:
        assert ind[col].notna().all(), col
    for source in SOURCES:
        flags = ind[availability_column(source)]
        assert set(flags.unique()) <= {0.0, 1.0}
        of_source = [n for n, i in REGISTRY.items() if i.source == source]
        unknown = ind[flags == 0]
        # An unknown source's indicators are NaN, never a default such as 0.
        assert unknown[of_source].isna().all().all(), source
        if source in dropped:
            assert (flags == 0).all(), source


@SETTINGS
@given(case=timelines())
def test_indicators_on_any_valid_timeline(
    case: tuple[pd.DataFrame, pd.DataFrame, date, set[str]],
) -> None:
    timeline, accounts, as_of, dropped = case
    ind = compute_indicators(timeline, accounts, as_of=as_of)
    check_indicators(ind, accounts, dropped)
    # Point in time: weeks after as_of (even absurd ones) change nothing.
    late_week = monday((as_of - MONDAY0).days // 7 + 1)
    late = pd.DataFrame(
        {
            "account_id": accounts["account_id"],
            "week_start": pd.Timestamp(late_week),
            **{c: 1e6 for c in timeline.columns if c in TIMELINE_COLUMNS},
        }
    )
    later = compute_indicators(pd.concat([timeline, late]), accounts, as_of=as_of)
    pd.testing.assert_frame_equal(later, ind)


# ------------------------------------------------------------------------ through a real model
@dataclass
class Scorer:
    model: ChurnModel
    cfg: Config
    catalog: Catalog


@pytest.fixture(scope="module")
def scorer(tmp_path_factory: pytest.TempPathFactory) -> Scorer:
    """A model trained (no registry) on 200 simulated accounts."""
    root: Path = tmp_path_factory.mktemp("properties")
    write_base(simulate(SimulatorConfig(n_accounts=200, seed=11)), root / "data")
    cfg = load_config(None, root / "data")
    train(root / "data", cfg, register=False).model.save(root / "model")
    return Scorer(ChurnModel.load(root / "model"), cfg, load_catalog(None))


def finite_or_none(value: Any) -> bool:
    """Every float in a (nested) score row is finite or absent."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(finite_or_none(v) for v in value.values())
    if isinstance(value, list):
        return all(finite_or_none(v) for v in value)
    return True


@settings(SETTINGS, max_examples=40)
@given(body=predict_bodies())
def test_any_valid_request_scores_without_nan_where_it_must_not(
    scorer: Scorer, body: dict[str, Any]
) -> None:
    """The API's own path: request frames -> indicators -> booster -> score rows."""
    req = PredictRequest.model_validate(body)
    timeline, profiles = request_frames(req)
    ind = compute_indicators(timeline, profiles, as_of=req.as_of)
    X = scorer.model.array(ind)
    assert not np.isinf(X).any()
    for col in ALWAYS_KNOWN:
        if col in scorer.model.features:
            assert not np.isnan(X[:, scorer.model.features.index(col)]).any(), col
    proba = scorer.model.predict_proba(ind)
    assert np.isfinite(proba).all() and ((proba >= 0) & (proba <= 1)).all()
    rows = score_frame(scorer.model, ind, profiles, scorer.cfg, scorer.catalog)
    assert [r["account_id"] for r in rows] == [a.account_id for a in req.accounts]
    for r in rows:
        assert finite_or_none(r), r
        assert 0 <= r["health_score"] <= 100
        assert r["risk_band"] in ("red", "yellow", "green")


@SETTINGS
@given(value=st.floats(min_value=0, allow_nan=False, allow_infinity=False))
def test_request_frames_keep_unknown_counts_as_nan(value: float) -> None:
    """A count left out or null in a request is NaN in the timeline frame, never 0."""
    body = {
        "as_of": "2024-03-03",
        "accounts": [
            {
                "account_id": "a",
                "profile": {"created_at": "2024-01-01"},
                "weeks": [{"week_start": "2024-02-26", "logins": value, "events": None}],
            }
        ],
    }
    timeline, _ = request_frames(PredictRequest.model_validate(body))
    assert timeline["logins"].tolist() == [value]
    assert np.isnan(timeline["events"]).all() and np.isnan(timeline["tickets_opened"]).all()
