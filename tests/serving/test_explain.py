"""Explanations: TreeSHAP contributions, reason families, evidence sentences."""

from __future__ import annotations

import math
import warnings
from itertools import combinations
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from churnlens.features.indicators import FAMILIES, FAMILY_LABELS, render
from churnlens.serving.explain import (
    Reason,
    check_additivity,
    family_contributions,
    feature_family,
    reasons,
)

FEATURES = [
    "logins_change_4w_vs_prior_8w",  # usage
    "ticket_spike_4w_vs_13w",  # support
    "nps_last",  # voice
    "has_tickets",  # support (availability flag)
    "tenure_weeks",  # lifecycle
]


@pytest.fixture(scope="module")
def model() -> tuple[lgb.Booster, pd.DataFrame]:
    """A tiny booster on synthetic data where usage decline and ticket spikes raise risk."""
    rng = np.random.default_rng(7)
    n = 300
    x = pd.DataFrame(
        {
            "logins_change_4w_vs_prior_8w": rng.uniform(-1.0, 0.5, n),
            "ticket_spike_4w_vs_13w": rng.gamma(2.0, 0.6, n),
            "nps_last": rng.integers(0, 11, n).astype(float),
            "has_tickets": rng.integers(0, 2, n).astype(float),
            "tenure_weeks": rng.uniform(1.0, 200.0, n),
        }
    )
    x.loc[x["has_tickets"] == 0, "ticket_spike_4w_vs_13w"] = np.nan
    x.loc[rng.random(n) < 0.2, "nps_last"] = np.nan
    logit = (
        -2.0 * x["logins_change_4w_vs_prior_8w"]
        + 0.8 * x["ticket_spike_4w_vs_13w"].fillna(0.0)
        - 0.3 * (x["nps_last"].fillna(7.0) - 7.0)
        - 0.01 * x["tenure_weeks"]
    )
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    params = {
        "objective": "binary",
        "verbose": -1,
        "seed": 7,
        "deterministic": True,
        "num_leaves": 7,
        "min_data_in_leaf": 10,
    }
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=20)
    return booster, x


def _shap_values(booster: lgb.Booster, x: pd.DataFrame) -> tuple[np.ndarray, float]:
    """shap's TreeExplainer values for the positive class, whatever shape this version returns."""
    with warnings.catch_warnings():  # shap's import and its binary-output notice are noisy
        warnings.simplefilter("ignore")
        import shap

        explainer = shap.TreeExplainer(booster)
        values: Any = explainer.shap_values(x)
    expected: Any = explainer.expected_value
    if isinstance(values, list):  # older shap: [negative class, positive class]
        values = values[-1]
    values = np.asarray(values)
    if values.ndim == 3:  # (rows, features, classes)
        values = values[..., -1]
    base = float(np.ravel(expected)[-1])
    return values, base


def _tree_expectation(node: dict[str, Any], x: np.ndarray, subset: frozenset[int]) -> float:
    """E[tree(x) | x_S] with LightGBM's path-dependent (cover-weighted) convention."""
    if "leaf_value" in node:
        return float(node["leaf_value"])
    feat = node["split_feature"]
    left, right = node["left_child"], node["right_child"]
    if feat in subset:
        v = x[feat]
        missing = node["missing_type"]
        if math.isnan(v) and missing != "NaN":
            v = 0.0
        is_missing = (missing == "NaN" and math.isnan(v)) or (missing == "Zero" and v == 0.0)
        go_left = node["default_left"] if is_missing else v <= node["threshold"]
        return _tree_expectation(left if go_left else right, x, subset)

    def count(child: dict[str, Any]) -> float:
        return float(child.get("internal_count", child.get("leaf_count", 0)))

    wl, wr = count(left), count(right)
    return (wl * _tree_expectation(left, x, subset) + wr * _tree_expectation(right, x, subset)) / (
        wl + wr
    )


def _brute_force_shapley(booster: lgb.Booster, x: np.ndarray) -> np.ndarray:
    """Exact Shapley values of the path-dependent value function, over all feature subsets."""
    trees = [t["tree_structure"] for t in booster.dump_model()["tree_info"]]
    m = x.shape[0]

    def value(subset: frozenset[int]) -> float:
        return sum(_tree_expectation(t, x, subset) for t in trees)

    phi = np.zeros(m + 1)
    for i in range(m):
        others = [j for j in range(m) if j != i]
        for size in range(m):
            weight = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
            for s in combinations(others, size):
                subset = frozenset(s)
                phi[i] += weight * (value(subset | {i}) - value(subset))
    phi[m] = value(frozenset())
    return phi


def test_pred_contrib_matches_shap_tree_explainer(model: tuple[lgb.Booster, pd.DataFrame]):
    booster, x = model
    contrib = booster.predict(x, pred_contrib=True)
    assert contrib.shape == (len(x), len(FEATURES) + 1)
    values, base = _shap_values(booster, x)
    assert values.shape == (len(x), len(FEATURES))
    np.testing.assert_allclose(contrib[:, :-1], values, atol=1e-6, rtol=0)
    np.testing.assert_allclose(contrib[:, -1], base, atol=1e-6, rtol=0)


def test_pred_contrib_is_exact_tree_shap(model: tuple[lgb.Booster, pd.DataFrame]):
    # An independent check: Shapley values computed from the dumped trees by brute force.
    booster, x = model
    rows = x.iloc[[0, 1, 2, 3, 4]]
    assert rows.isna().to_numpy().any()  # the missing-value branches are exercised
    contrib = booster.predict(rows, pred_contrib=True)
    for k in range(len(rows)):
        expected = _brute_force_shapley(booster, rows.to_numpy(dtype="float64")[k])
        np.testing.assert_allclose(contrib[k], expected, atol=1e-6, rtol=0)


def test_contributions_add_up_to_the_raw_margin(model: tuple[lgb.Booster, pd.DataFrame]):
    booster, x = model
    contrib = booster.predict(x, pred_contrib=True)
    margin = booster.predict(x, raw_score=True)
    check_additivity(contrib, margin)
    broken = contrib.copy()
    broken[17, 2] += 1e-3
    with pytest.raises(ValueError, match=r"1 of 300 .*worst row 17"):
        check_additivity(broken, margin)
    with pytest.raises(ValueError, match="do not sum"):
        check_additivity(np.full_like(contrib, np.nan), margin)
    with pytest.raises(ValueError, match="do not match"):
        check_additivity(contrib, margin[:-1])


def test_family_contributions_sum_per_family(model: tuple[lgb.Booster, pd.DataFrame]):
    booster, x = model
    contrib = booster.predict(x, pred_contrib=True)
    fam = family_contributions(contrib, FEATURES)
    assert list(fam.columns) == list(FAMILIES)
    assert fam.shape == (len(x), len(FAMILIES))
    np.testing.assert_allclose(fam["usage"], contrib[:, 0])
    np.testing.assert_allclose(fam["support"], contrib[:, 1] + contrib[:, 3])  # + has_tickets
    np.testing.assert_allclose(fam["voice"], contrib[:, 2])
    np.testing.assert_allclose(fam["lifecycle"], contrib[:, 4])
    for absent in ("adoption", "silence", "relationship", "commercial"):
        assert (fam[absent] == 0.0).all()
    # Families plus bias give back the raw margin.
    np.testing.assert_allclose(
        fam.sum(axis=1) + contrib[:, -1], booster.predict(x, raw_score=True), atol=1e-9
    )


def test_availability_flags_map_to_their_source_family():
    assert feature_family("has_usage_events") == "usage"
    assert feature_family("has_tickets") == "support"
    assert feature_family("has_surveys") == "voice"
    assert feature_family("has_touchpoints") == "relationship"
    assert feature_family("has_contracts") == "commercial"
    assert feature_family("silent_decline") == "silence"


def test_unknown_or_repeated_feature_is_an_error_naming_it():
    contrib = np.zeros((2, 3))
    with pytest.raises(ValueError, match="'mystery_score'"):
        family_contributions(contrib, ["logins_4w", "mystery_score"])
    with pytest.raises(ValueError, match="'logins_4w' appears more than once"):
        family_contributions(contrib, ["logins_4w", "logins_4w"])
    with pytest.raises(ValueError, match=r"shape \(n_rows, 3\)"):
        family_contributions(np.zeros((2, 2)), ["logins_4w", "nps_last"])
    with pytest.raises(ValueError, match="'mystery_score'"):
        reasons(np.zeros(3), ["logins_4w", "mystery_score"], {})


# A hand-made row: usage +0.8 (0.5 + 0.4 - 0.1), support +0.3 (0.1 + 0.2 from has_tickets),
# voice -0.6, lifecycle +1.2, commercial +0.05; bias last.
NAMES = [
    "logins_change_4w_vs_prior_8w",
    "logins_4w",
    "active_users_per_seat_4w",
    "ticket_spike_4w_vs_13w",
    "has_tickets",
    "nps_last",
    "tenure_weeks",
    "in_first_90_days",
    "time_to_value_weeks",
    "onboarding_done",
    "weeks_to_renewal",
]
ROW = np.array([0.5, 0.4, -0.1, 0.1, 0.2, -0.6, 0.3, 0.6, 0.25, 0.05, 0.05, -1.5])
VALUES = {
    "logins_change_4w_vs_prior_8w": -0.45,
    "logins_4w": 12.0,
    "active_users_per_seat_4w": 0.8,  # lowered risk: never evidence
    "ticket_spike_4w_vs_13w": 2.5,
    "has_tickets": 1.0,
    "nps_last": 9.0,
    "tenure_weeks": 6.0,
    "in_first_90_days": 1.0,
    "time_to_value_weeks": 5.0,
    "onboarding_done": 0.0,  # a flag that is off renders nothing
    "weeks_to_renewal": 30.0,
}


def test_reasons_rank_risk_raising_families_by_impact():
    out = reasons(ROW, NAMES, VALUES, top_k=10)
    assert [r.family for r in out] == ["lifecycle", "usage", "support", "commercial"]
    assert [r.impact for r in out] == pytest.approx([1.2, 0.8, 0.3, 0.05])
    assert all(isinstance(r, Reason) and r.impact > 0 for r in out)
    assert "voice" not in {r.family for r in out}  # lowered risk
    assert out[0].label == FAMILY_LABELS["lifecycle"]["en"]


def test_reasons_top_k_and_min_impact():
    assert [r.family for r in reasons(ROW, NAMES, VALUES)] == ["lifecycle", "usage", "support"]
    assert [r.family for r in reasons(ROW, NAMES, VALUES, top_k=1)] == ["lifecycle"]
    assert reasons(ROW, NAMES, VALUES, top_k=0) == []
    assert [r.family for r in reasons(ROW, NAMES, VALUES, top_k=10, min_impact=0.5)] == [
        "lifecycle",
        "usage",
    ]
    assert reasons(-np.abs(ROW), NAMES, VALUES) == []


def test_evidence_is_ordered_by_contribution_and_capped():
    out = {r.family: r for r in reasons(ROW, NAMES, VALUES, top_k=10)}
    # lifecycle: in_first_90_days 0.6 > tenure 0.3 > time_to_value 0.25 > onboarding_done 0.05
    assert out["lifecycle"].evidence == [
        render("in_first_90_days", 1.0),
        render("tenure_weeks", 6.0),
        render("time_to_value_weeks", 5.0),
    ]
    assert out["usage"].evidence == [
        "Logins down 45% in the last 4 weeks vs the prior 8",
        "12 logins in the last 4 weeks",
    ]
    # has_tickets is not an indicator: it adds impact but no sentence.
    assert out["support"].evidence == ["Tickets in the last 4 weeks at 2.5x the 13-week rate"]
    assert out["commercial"].evidence == ["Renewal in 30 weeks"]
    # Four renderable sentences in lifecycle (onboarding_done on): the weakest one is dropped.
    four = reasons(ROW, NAMES, dict(VALUES, onboarding_done=1.0), top_k=1)[0]
    assert len(four.evidence) == 3 and render("onboarding_done", 1.0) not in four.evidence


def test_evidence_skips_nan_missing_and_empty_sentences():
    values = dict(VALUES, logins_change_4w_vs_prior_8w=float("nan"))
    del values["logins_4w"]
    out = {r.family: r for r in reasons(ROW, NAMES, values, top_k=10)}
    assert out["usage"].evidence == []  # still a reason: positive impact, nothing to render
    assert out["usage"].impact == pytest.approx(0.8)
    names = ["onboarding_done", "has_tickets"]
    only_flags = reasons(np.array([0.4, 0.2, 0.0]), names, {"onboarding_done": 0.0})
    assert [(r.family, r.evidence) for r in only_flags] == [("lifecycle", []), ("support", [])]
    assert all(s for r in reasons(ROW, NAMES, VALUES, top_k=10) for s in r.evidence)
    # pandas NA and None are missing too; a pandas Series works as the mapping
    series = pd.Series({"logins_change_4w_vs_prior_8w": pd.NA, "logins_4w": None}, dtype=object)
    assert reasons(ROW, NAMES, series, top_k=10)[1].evidence == []


def test_evidence_in_japanese():
    out = reasons(ROW, NAMES, VALUES, lang="ja", top_k=2)
    assert [r.label for r in out] == [
        FAMILY_LABELS["lifecycle"]["ja"],
        FAMILY_LABELS["usage"]["ja"],
    ]
    assert out[1].evidence == [
        "直近4週間のログインが前8週間比で45%減少",
        "直近4週間のログイン数は12回",
    ]
    assert out[0].evidence[0] == "解約が最も多い契約後90日以内"
    with pytest.raises(ValueError, match="unsupported language 'fr'"):
        reasons(ROW, NAMES, VALUES, lang="fr")


def test_reasons_accept_a_row_without_bias_and_to_dict():
    with_bias = reasons(ROW, NAMES, VALUES)
    assert reasons(ROW[:-1], NAMES, VALUES) == with_bias
    d = with_bias[0].to_dict()
    assert d == {
        "family": "lifecycle",
        "label": "Lifecycle and onboarding",
        "impact": pytest.approx(1.2),
        "evidence": with_bias[0].evidence,
    }
    assert d["evidence"] is not with_bias[0].evidence


def test_reasons_on_the_model_in_japanese(model: tuple[lgb.Booster, pd.DataFrame]):
    booster, x = model
    contrib = booster.predict(x, pred_contrib=True)
    fam = family_contributions(contrib, FEATURES)
    k = int(np.argmax(contrib[:, 0]))  # the row where usage decline raises risk most
    row_values = x.iloc[k].to_dict()
    out = reasons(contrib[k], FEATURES, row_values, lang="ja", top_k=5)
    expected = [f for f in fam.columns if fam.iloc[k][f] > 0]
    assert sorted(r.family for r in out) == sorted(expected)
    assert [r.impact for r in out] == sorted((r.impact for r in out), reverse=True)
    usage = next(r for r in out if r.family == "usage")
    assert usage.impact == pytest.approx(contrib[k, 0])
    assert usage.evidence == [render("logins_change_4w_vs_prior_8w", row_values[FEATURES[0]], "ja")]
    assert "ログイン" in usage.evidence[0]


@settings(max_examples=60, deadline=None)
@given(
    row=arrays(np.float64, len(NAMES) + 1, elements=st.floats(-2, 2, allow_nan=False, width=32)),
    top_k=st.integers(0, 9),
    min_impact=st.floats(-0.5, 0.5),
)
def test_reasons_properties(row: np.ndarray, top_k: int, min_impact: float):
    out = reasons(row, NAMES, VALUES, top_k=top_k, min_impact=min_impact)
    fam = family_contributions(row.reshape(1, -1), NAMES).iloc[0]
    qualifying = [f for f in FAMILIES if fam[f] > min_impact]
    assert len(out) == min(top_k, len(qualifying))
    impacts = [r.impact for r in out]
    assert impacts == sorted(impacts, reverse=True)
    assert all(r.impact > min_impact and r.impact == pytest.approx(fam[r.family]) for r in out)
    if out:  # the strongest families are the ones returned
        assert min(impacts) >= max(
            [fam[f] for f in qualifying if f not in {r.family for r in out}], default=-math.inf
        )
    assert all(0 <= len(r.evidence) <= 3 and all(r.evidence) for r in out)
