"""Pure parts of the CSM page: change labels, filters, ranking, totals, CSV, charts, strings."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pytest

from churnlens.serving.scoring import recent_activity
from churnlens.serving.ui.charts import bar_chart, sparkline
from churnlens.serving.ui.i18n import STRINGS, text
from churnlens.serving.ui.views import (
    BadFilter,
    Change,
    Filters,
    account_view,
    change_since,
    csv_cell,
    filter_options,
    localized,
    page_of,
    portfolio_csv,
    ranked_entries,
    totals,
)
from churnlens.store import RiskPoint, StoredScore

D1, D2 = date(2025, 6, 8), date(2025, 6, 15)


def point(p: float, band: str, d: date = D1) -> RiskPoint:
    return RiskPoint(as_of=d, churn_probability=p, risk_band=band)


def stored(account: str, p: float, arr: float | None, **kw: Any) -> StoredScore:
    band = "red" if p >= 0.3 else "yellow" if p >= 0.12 else "green"
    row: dict[str, Any] = {
        "run_id": 2,
        "account_id": account,
        "as_of": D2,
        "scored_at": None,
        "model_version": "m",
        "source": "cli",
        "churn_probability": p,
        "risk_band": band,
        "health_score": round(100 * (1 - p)),
        "touch_tier": "high",
        "arr": arr,
        "arr_at_risk": None if arr is None else p * arr,
        "top_reasons": [{"family": "usage", "label": "Usage", "impact": 0.5, "evidence": ["x"]}],
        "playbooks": [{"title": "Call", "owner": "csm", "due_days": 3}],
        "lang": "en",
        "csm_id": "c1",
        "name": account.upper(),
        "plan": "pro",
    }
    row.update(kw)
    return StoredScore(**row)  # type: ignore[typeddict-item]


# ------------------------------------------------------------------------------- change labels
@pytest.mark.parametrize(
    ("now", "band", "prev", "kind", "label"),
    [
        (0.45, "red", point(0.20, "yellow"), "new_red", "new in red"),
        (0.45, "red", point(0.33, "red"), "up", "risk up 12 pts"),
        (0.21, "yellow", point(0.40, "red"), "down", "risk down 19 pts"),
        (0.204, "yellow", point(0.2, "yellow"), "steady", "no change"),
        (0.2, "yellow", None, "first", "first scoring"),
    ],
)
def test_change_since_previous_scoring(now, band, prev, kind, label):
    change = change_since(now, band, prev)
    assert change.kind == kind
    assert change.label("en") == label


def test_change_labels_in_japanese():
    assert Change("up", 12).label("ja") == "リスク 12pt 上昇"
    assert Change("down", -3).label("ja") == "リスク 3pt 低下"
    assert Change("new_red", 30).label("ja") == "新たに赤"


# ------------------------------------------------------------------------------------ filters
def test_filters_parse_and_round_trip_as_a_url():
    f = Filters.parse({"csm": "c1", "tier": "high", "band": "red", "segment": "pro", "lang": "ja"})
    assert (f.csm, f.tier, f.band, f.segment, f.lang, f.page) == (
        "c1",
        "high",
        "red",
        "pro",
        "ja",
        1,
    )
    assert Filters.parse(dict(pair.split("=") for pair in f.query().split("&"))) == f
    assert f.query(page=3).endswith("page=3")
    assert Filters.parse({}).query() == ""
    assert Filters.parse({"band": "", "csm": "  "}) == Filters()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"band": "purple"}, "band: expected one of red, yellow, green"),
        ({"tier": "vip"}, "tier: expected one of high, low, tech"),
        ({"lang": "fr"}, "lang: expected one of en, ja"),
        ({"page": "0"}, "page: expected a positive whole number"),
        ({"page": "x"}, "page: expected a positive whole number"),
        ({"csm": "c" * 300}, "csm: at most 255 characters"),
    ],
)
def test_bad_filters_name_the_parameter(params, message):
    with pytest.raises(BadFilter, match=message):
        Filters.parse(params)


def test_filters_match_csm_tier_band_segment():
    s = stored("a", 0.5, 1000.0)
    assert Filters().matches(s)
    assert Filters(csm="c1", tier="high", band="red", segment="pro").matches(s)
    for f in (Filters(csm="c2"), Filters(tier="low"), Filters(band="green"), Filters(segment="x")):
        assert not f.matches(s)


# ---------------------------------------------------------------------------- ranking, totals
def test_ranking_is_arr_at_risk_desc_unknown_last_then_id():
    latest = [
        stored("b", 0.5, 1000.0),  # 500
        stored("a", 0.1, 5000.0),  # 500: tie -> by id
        stored("c", 0.9, None),  # unknown ARR: last
        stored("d", 0.2, 10000.0),  # 2000
    ]
    entries = ranked_entries(latest, {})
    assert [e.score["account_id"] for e in entries] == ["d", "a", "b", "c"]


def test_previous_point_is_the_date_before_the_latest():
    latest = [stored("a", 0.45, 1000.0)]
    hist = {
        "a": [
            point(0.1, "green", date(2025, 6, 1)),
            point(0.2, "yellow", D1),
            point(0.45, "red", D2),
        ]
    }
    (entry,) = ranked_entries(latest, hist)
    assert entry.change == Change("new_red", 25)
    (only,) = ranked_entries(latest, {"a": [point(0.45, "red", D2)]})
    assert only.change.kind == "first"


def test_totals_overall_and_by_band():
    t = totals([stored("a", 0.5, 1000.0), stored("b", 0.1, 2000.0), stored("c", 0.4, None)])
    assert (t.all.accounts, t.all.arr, t.all.arr_at_risk) == (3, 3000.0, pytest.approx(700.0))
    assert t.by_band["red"].accounts == 2 and t.by_band["red"].arr_at_risk == pytest.approx(500.0)
    assert t.by_band["green"].arr == 2000.0 and t.by_band["yellow"].accounts == 0


def test_filter_options_and_pages():
    opts = filter_options([stored("a", 0.5, 1.0), stored("b", 0.1, 1.0, csm_id=None, plan="ent")])
    assert (
        opts.csms == ["c1"] and opts.segments == ["ent", "pro"] and opts.bands == ["red", "green"]
    )
    items = list(range(250))
    assert page_of(items, 1) == (0, 100)
    assert page_of(items, 3) == (200, 250)
    assert page_of(items, 99) == (200, 250)
    assert page_of([], 1) == (0, 0)


# -------------------------------------------------------------------------------- languages
def test_every_string_exists_in_both_languages():
    for key, entry in STRINGS.items():
        assert set(entry) == {"en", "ja"}, key
        assert entry["en"] and entry["ja"], key
    assert text("change_up", "ja", pts=3) != text("change_up", "en", pts=3)


def test_localized_uses_the_stored_translation_or_says_it_falls_back():
    s = stored("a", 0.5, 1.0)
    ja = {"top_reasons": [{"label": "利用"}], "playbooks": []}
    details = {
        "run_id": 2,
        "account_id": "a",
        "silent_decline": None,
        "activity": None,
        "translations": {"ja": ja},
    }
    assert localized(s, None, "en")[2] == "en"
    reasons, plays, shown = localized(s, details, "ja")  # type: ignore[arg-type]
    assert (reasons, plays, shown) == (ja["top_reasons"], [], "ja")
    assert localized(s, None, "ja")[2] == "en"  # no translation stored: shown as scored


# ------------------------------------------------------------------------------------------ CSV
@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+cmd", "'+cmd"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("plain", "plain"),
        (None, ""),
        (0.25, "0.25"),
        (-0.25, "-0.25"),  # numbers stay numbers
        (float("nan"), ""),
        (3, "3"),
    ],
)
def test_csv_cells_cannot_become_formulas(value, cell):
    assert csv_cell(value) == cell


def test_portfolio_csv_has_every_row_in_rank_order_and_neutralised_names():
    latest = [stored("a", 0.5, 1000.0, name="=cmd|' /C calc'!A0"), stored("b", 0.9, 5000.0)]
    out = portfolio_csv(ranked_entries(latest, {}), "en", lambda s: None)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["account_id"] for r in rows] == ["b", "a"]
    assert rows[1]["name"] == "'=cmd|' /C calc'!A0"
    assert rows[0]["next_play"] == "Call" and rows[0]["play_due"] == "2025-06-18"
    assert rows[0]["change"] == "first scoring"


# --------------------------------------------------------------------------------------- charts
def test_sparkline_is_valid_svg_with_one_point_per_value_and_escaped_label():
    svg = str(sparkline([0.1, 0.2, 0.6], band="red", label="<b>&"))
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    assert len(root.find(f"{ns}polyline").get("points").split()) == 3
    assert root.find(f"{ns}circle").get("fill") == "#c62828"
    assert root.get("aria-label") == "<b>&" and "<b>" not in svg
    assert "style=" not in svg  # the CSP has no unsafe-inline
    assert ET.fromstring(str(sparkline([], label="x"))).find(f"{ns}polyline") is None
    assert ET.fromstring(str(sparkline([0.4]))).find(f"{ns}circle") is not None


def test_bar_chart_draws_known_weeks_and_marks_unknown_ones():
    svg = str(bar_chart(["w1", "w2", "w3"], [4, None, 0], label="Logins"))
    rects = ET.fromstring(svg).findall("{http://www.w3.org/2000/svg}rect")
    assert len(rects) == 3
    assert [r.find("{http://www.w3.org/2000/svg}title").text for r in rects] == [
        "w1: 4",
        "w2: ?",
        "w3: 0",
    ]


# ------------------------------------------------------------------------------- account view
def test_account_view_silent_flag_due_dates_and_activity():
    s = stored(
        "a",
        0.45,
        1000.0,
        playbooks=[
            {"title": "Call", "owner": "csm", "due_days": 3, "tasks": [{"day": 2, "task": "call"}]}
        ],
    )
    details = {
        "run_id": 2,
        "account_id": "a",
        "silent_decline": 1,
        "activity": {
            "week_start": ["2025-06-02", "2025-06-09"],
            "logins": [5, 2],
            "touches": [None, None],
        },
        "translations": {},
    }
    v = account_view(s, [point(0.2, "yellow"), point(0.45, "red", D2)], details, "en")  # type: ignore[arg-type]
    assert v["silent"] and v["change"] == "new in red"
    assert v["plays"][0]["due"] == "2025-06-18"
    assert v["plays"][0]["tasks"][0]["date"] == "2025-06-17"
    charts = {c["key"]: c for c in v["activity"]["charts"]}
    assert charts["logins"]["svg"] is not None and charts["logins"]["note"] == "total 7"
    assert charts["touches"]["svg"] is None  # unknown source, said so
    assert charts["active_users"]["svg"] is None
    no_details = account_view(s, [], None, "en")
    assert no_details["activity"] is None and not no_details["silent"]
    silence = stored("a", 0.45, 1.0, top_reasons=[{"family": "silence", "label": "Silent"}])
    assert account_view(silence, [], None, "en")["silent"]  # no flag stored: the reason says so


# ------------------------------------------------------------------------------ stored activity
def test_recent_activity_keeps_the_last_weeks_per_account_and_the_silent_flag():
    weeks = pd.date_range("2025-01-06", periods=30, freq="7D")
    timeline = pd.DataFrame(
        {
            "account_id": ["a"] * 30 + ["b"] * 2,
            "week_start": list(weeks) + list(weeks[:2]),
            "logins": np.r_[np.arange(30.0), [1.0, np.nan]],
            "active_users": 1.0,
        }
    )
    ind = pd.DataFrame(
        {
            "account_id": ["a", "b"],
            "as_of": pd.Timestamp("2025-08-01"),
            "silent_decline": [1.0, np.nan],
        }
    )
    out = recent_activity(timeline, ind, weeks=26)
    assert out["a"]["activity"]["week_start"][0] == weeks[4].strftime("%Y-%m-%d")
    assert out["a"]["activity"]["logins"] == list(range(4, 30))
    assert out["b"]["activity"]["logins"] == [1, None]
    assert "tickets_opened" not in out["a"]["activity"]  # not in the timeline
    assert (out["a"]["silent_decline"], out["b"]["silent_decline"]) == (1, None)
