"""Playbook catalog: schema, completeness, tiers, bands and the choice of plays."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from churnlens.errors import ChurnlensError
from churnlens.features.contract import TOUCH_TIERS
from churnlens.features.indicators import FAMILIES
from churnlens.serving.explain import Reason
from churnlens.serving.playbooks import (
    BANDS,
    TIERS,
    Catalog,
    Play,
    PlaybookError,
    choose_playbooks,
    load_catalog,
    risk_band,
    touch_tier,
)

PACKAGED = Path(__file__).parents[2] / "serving" / "playbooks.yaml"
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    """The packaged catalog."""
    return load_catalog()


def _reason(family: str, impact: float = 1.0) -> Reason:
    return Reason(family, family, impact, [])


def _raw() -> dict[str, Any]:
    return yaml.safe_load(PACKAGED.read_text(encoding="utf-8"))


def _write(tmp_path: Path, raw: object) -> Path:
    path = tmp_path / "playbooks.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


# ---------------------------------------------------------------- the packaged catalog


def test_packaged_catalog_loads(catalog: Catalog):
    assert catalog.version == 1
    assert len(catalog.plays) >= 25
    assert load_catalog(PACKAGED) == catalog
    ids = [p.id for p in catalog.plays]
    assert len(ids) == len(set(ids))
    assert {p.family for p in catalog.plays} == {*FAMILIES, "expansion"}


@pytest.mark.parametrize("band", ["red", "yellow"])
@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("family", FAMILIES)
def test_every_risk_family_tier_and_band_has_a_play(
    catalog: Catalog, family: str, tier: str, band: str
):
    play = catalog.find(family, tier, band)
    assert play is not None, f"no play for ({family}, {tier}, {band})"
    recs = choose_playbooks([_reason(family)], tier, band, catalog)
    assert [r.play_id for r in recs] == [play.id]


@pytest.mark.parametrize("tier", TIERS)
def test_every_tier_has_an_expansion_play(catalog: Catalog, tier: str):
    play = catalog.find("expansion", tier, "green")
    assert play is not None
    assert (
        any("case stud" in t.en.lower() for t in play.tasks)
        or "case stud" in play.action["en"].lower()
    )
    assert "導入事例" in play.action["ja"] + "".join(t.ja for t in play.tasks)


def test_every_play_is_bilingual_and_well_formed(catalog: Catalog):
    for play in catalog.plays:
        texts = [play.title, play.action]
        for text in texts:
            assert set(text) == {"en", "ja"}, play.id
            assert text["en"].strip() and text["ja"].strip(), play.id
            assert not JAPANESE.search(text["en"]), play.id
            assert JAPANESE.search(text["ja"]), play.id
            assert "  " not in text["en"] and " " not in text["ja"], play.id
        assert play.tasks, play.id
        for task in play.tasks:
            assert task.en.strip() and JAPANESE.search(task.ja), play.id
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", play.id)
        assert play.id.startswith(play.family), play.id


def test_touch_tiers_agree_with_the_data_contract():
    assert tuple(TIERS) == tuple(TOUCH_TIERS)
    assert tuple(BANDS) == ("red", "yellow", "green")


def test_tech_touch_plays_are_automated_or_self_service(catalog: Catalog):
    for play in catalog.plays:
        if play.tiers == ("tech",) and play.family not in ("support",):
            assert play.owner == "automation", play.id
            assert play.channel in ("email", "in_app"), play.id


# ---------------------------------------------------------------- broken catalogs


def test_duplicate_id_names_the_play_and_the_field(tmp_path: Path):
    raw = _raw()
    dup = raw["plays"][1]["id"]
    raw["plays"][4]["id"] = dup
    with pytest.raises(PlaybookError) as info:
        load_catalog(_write(tmp_path, raw))
    msg = str(info.value)
    assert f"playbooks.yaml: plays[4] (id '{dup}'): id: duplicate id '{dup}'" in msg
    assert "plays[1]" in msg
    assert isinstance(info.value, ChurnlensError)


def test_bad_urgency_names_the_play_and_the_field(tmp_path: Path):
    raw = _raw()
    raw["plays"][3]["urgency"] = "asap"
    pid = raw["plays"][3]["id"]
    with pytest.raises(
        PlaybookError, match=r"playbooks\.yaml: plays\[3\] \(id '.+'\): urgency: "
    ) as info:
        load_catalog(_write(tmp_path, raw))
    assert f"(id '{pid}')" in str(info.value)
    assert "'high', 'medium' or 'low'" in str(info.value)


def test_missing_japanese_text_names_the_play_and_the_field(tmp_path: Path):
    raw = _raw()
    del raw["plays"][2]["title"]["ja"]
    raw["plays"][5]["tasks"][1]["ja"] = "   "
    raw["plays"][6]["action"]["ja"] = ""
    pid2, pid5, pid6 = (raw["plays"][i]["id"] for i in (2, 5, 6))
    with pytest.raises(PlaybookError) as info:
        load_catalog(_write(tmp_path, raw))
    lines = str(info.value).splitlines()
    assert len(lines) == 3
    assert f"plays[2] (id '{pid2}'): title: " in lines[0] and "'ja'" in lines[0]
    assert f"plays[5] (id '{pid5}'): tasks[1].ja: " in lines[1]
    assert f"plays[6] (id '{pid6}'): action: " in lines[2] and "'ja'" in lines[2]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("family", "happiness", "family: Value error, unknown family 'happiness'"),
        ("tiers", ["high", "mid"], "tiers[1]: Input should be 'high', 'low' or 'tech'"),
        ("tiers", [], "tiers: Tuple should have at least 1 item"),
        ("bands", ["red", "red"], "bands: Value error, lists a value more than once"),
        ("id", "Usage Call", "id: Value error, 'Usage Call' is not kebab-case"),
        ("channel", "pigeon", "channel: Input should be"),
        ("owner", "intern", "owner: Input should be"),
        ("due_days", -1, "due_days: Input should be greater than or equal to 0"),
        ("due_days", "3", "due_days: Input should be a valid integer"),
        ("colour", "red", "colour: Extra inputs are not permitted"),
        ("title", {"en": "x", "ja": "y", "jp": "z"}, "title: Value error, unknown language 'jp'"),
    ],
)
def test_schema_errors_name_the_field(tmp_path: Path, field: str, value: object, expected: str):
    raw = _raw()
    raw["plays"][0][field] = value
    with pytest.raises(PlaybookError) as info:
        load_catalog(_write(tmp_path, raw))
    assert "plays[0] (id '" in str(info.value)
    assert expected in str(info.value)


def test_other_catalog_problems(tmp_path: Path):
    raw = _raw()
    raw["plays"][0]["tasks"] = [{"day": 5, "en": "b", "ja": "b"}, {"day": 1, "en": "a", "ja": "a"}]
    with pytest.raises(PlaybookError, match="tasks: Value error, tasks must be in day order"):
        load_catalog(_write(tmp_path, raw))
    raw = _raw()
    expansion = next(i for i, p in enumerate(raw["plays"]) if p["family"] == "expansion")
    raw["plays"][expansion]["bands"] = ["green", "yellow"]
    with pytest.raises(PlaybookError, match=rf"plays\[{expansion}\].*green band only"):
        load_catalog(_write(tmp_path, raw))
    with pytest.raises(PlaybookError, match="version: Input should be a valid integer"):
        load_catalog(_write(tmp_path, {"version": "one", "plays": _raw()["plays"]}))
    with pytest.raises(PlaybookError, match="expected a mapping"):
        load_catalog(_write(tmp_path, ["a", "b"]))
    bad = tmp_path / "broken.yaml"
    bad.write_text("version: 1\nplays: [\n", encoding="utf-8")
    with pytest.raises(PlaybookError, match=r"broken\.yaml: invalid YAML"):
        load_catalog(bad)
    with pytest.raises(PlaybookError, match=r"missing\.yaml: cannot read"):
        load_catalog(tmp_path / "missing.yaml")


# ---------------------------------------------------------------- tiers and bands


@pytest.mark.parametrize(
    ("tier", "expected"),
    [
        ("high", "high"),
        ("High-touch", "high"),
        ("HIGH_TOUCH", "high"),
        (" low touch ", "low"),
        ("Low-Touch", "low"),
        ("tech touch", "tech"),
        ("Tech", "tech"),
    ],
)
def test_touch_tier_normalises_the_account_tier(tier: str, expected: str):
    # The account's own tier wins over ARR.
    assert touch_tier(tier, 1.0, 100_000, 20_000) == expected
    assert touch_tier(tier, 1e9, 100_000, 20_000) == expected


@pytest.mark.parametrize(
    ("tier", "arr", "expected"),
    [
        (None, 250_000.0, "high"),
        (None, 100_000.0, "high"),
        (None, 99_999.0, "low"),
        ("gold", 20_000.0, "low"),
        ("", 19_999.0, "tech"),
        (None, None, "tech"),
        (None, float("nan"), "tech"),
        (float("nan"), 150_000.0, "high"),  # a NaN tier from a frame is missing
        ("touch", 50_000.0, "low"),
    ],
)
def test_touch_tier_falls_back_to_arr_then_tech(tier: Any, arr: Any, expected: str):
    assert touch_tier(tier, arr, high_min_arr=100_000, low_min_arr=20_000) == expected


def test_touch_tier_thresholds_are_parameters():
    assert touch_tier(None, 50_000, high_min_arr=40_000, low_min_arr=10_000) == "high"
    with pytest.raises(ValueError, match="high_min_arr"):
        touch_tier(None, 50_000, high_min_arr=10_000, low_min_arr=40_000)


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        (0.0, "green"),
        (0.1199, "green"),
        (0.12, "yellow"),
        (0.29, "yellow"),
        (0.30, "red"),
        (1.0, "red"),
    ],
)
def test_risk_band_thresholds(p: float, expected: str):
    assert risk_band(p) == expected


def test_risk_band_custom_thresholds_and_bad_input():
    assert risk_band(0.2, red=0.5, yellow=0.25) == "green"
    assert risk_band(0.3, red=0.5, yellow=0.25) == "yellow"
    assert risk_band(0.5, red=0.5, yellow=0.25) == "red"
    for p in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="probability"):
            risk_band(p)
    with pytest.raises(ValueError, match="yellow <= red"):
        risk_band(0.2, red=0.1, yellow=0.2)


# ---------------------------------------------------------------- choosing plays


def test_high_touch_usage_decline_is_a_csm_call(catalog: Catalog):
    for band in ("red", "yellow"):
        (rec,) = choose_playbooks([_reason("usage")], "high", band, catalog)
        assert rec.family == "usage"
        assert (rec.channel, rec.owner) == ("call", "csm")
    red = choose_playbooks([_reason("usage")], "high", "red", catalog)[0]
    assert red.urgency == "high" and red.due_days <= 3


def test_tech_touch_usage_decline_is_automated(catalog: Catalog):
    for family in ("usage", "silence", "adoption", "lifecycle"):
        (rec,) = choose_playbooks([_reason(family)], "tech", "red", catalog)
        assert rec.owner == "automation", family
        assert rec.channel in ("email", "in_app"), family


def test_low_touch_adoption_is_a_webinar_and_detractors_get_fast_response(catalog: Catalog):
    (rec,) = choose_playbooks([_reason("adoption")], "low", "yellow", catalog)
    assert rec.channel == "webinar"
    (rec,) = choose_playbooks([_reason("voice")], "high", "red", catalog)
    assert rec.owner == "executive_sponsor" and rec.urgency == "high"
    (rec,) = choose_playbooks([_reason("support")], "high", "red", catalog)
    assert rec.owner == "support_engineer"


def test_plays_follow_reason_order_dedupe_and_cap(catalog: Catalog):
    reasons = [_reason("support", 2.0), _reason("usage", 1.0), _reason("support", 0.5)]
    recs = choose_playbooks(reasons, "low", "red", catalog)
    assert [r.family for r in recs] == ["support", "usage"]
    assert len({r.play_id for r in recs}) == len(recs)
    many = [_reason(f) for f in FAMILIES]
    assert [r.family for r in choose_playbooks(many, "high", "red", catalog)] == list(FAMILIES[:3])
    assert len(choose_playbooks(many, "high", "red", catalog, max_plays=8)) == 8
    assert choose_playbooks(many, "high", "red", catalog, max_plays=0) == []
    # A reason that lowers risk gets no play.
    assert choose_playbooks([_reason("usage", -0.4)], "high", "red", catalog) == []


def test_green_band_expansion_for_promoters_only(catalog: Catalog):
    assert choose_playbooks([], "high", "green", catalog) == []
    assert choose_playbooks([], "high", "green", catalog, nps_last=8) == []
    assert choose_playbooks([], "high", "green", catalog, nps_last=float("nan")) == []
    for tier in TIERS:
        (rec,) = choose_playbooks([], tier, "green", catalog, nps_last=9)
        assert rec.family == "expansion"
        assert tier in catalog.get(rec.play_id).tiers
    # Promoters in a risky band get risk plays, not expansion.
    recs = choose_playbooks([_reason("usage")], "high", "red", catalog, nps_last=10)
    assert [r.family for r in recs] == ["usage"]
    # Expansion comes first; a green play for a reason follows.
    recs = choose_playbooks([_reason("adoption")], "tech", "green", catalog, nps_last=10)
    assert [r.family for r in recs] == ["expansion", "adoption"]
    assert [
        r.family for r in choose_playbooks([_reason("adoption")], "tech", "green", catalog)
    ] == ["adoption"]


def test_recommendations_in_japanese(catalog: Catalog):
    en = choose_playbooks([_reason("usage"), _reason("voice")], "high", "red", catalog)
    ja = choose_playbooks([_reason("usage"), _reason("voice")], "high", "red", catalog, lang="ja")
    assert [r.play_id for r in ja] == [r.play_id for r in en]
    play = catalog.get(ja[0].play_id)
    assert ja[0].title == play.title["ja"] and ja[0].action == play.action["ja"]
    assert ja[0].tasks == [{"day": t.day, "task": t.ja} for t in play.tasks]
    assert all(JAPANESE.search(r.title) and JAPANESE.search(r.action) for r in ja)
    assert not any(JAPANESE.search(r.action) for r in en)
    d = ja[0].to_dict()
    assert d["play_id"] == play.id and d["tasks"][0] == {"day": 0, "task": play.tasks[0].ja}
    assert set(d) == {
        "play_id",
        "family",
        "title",
        "action",
        "channel",
        "owner",
        "urgency",
        "due_days",
        "tasks",
    }


def test_choose_playbooks_rejects_unknown_inputs(catalog: Catalog):
    with pytest.raises(ValueError, match="touch tier 'gold'"):
        choose_playbooks([], "gold", "red", catalog)
    with pytest.raises(ValueError, match="risk band 'amber'"):
        choose_playbooks([], "high", "amber", catalog)
    with pytest.raises(ValueError, match="language 'de'"):
        choose_playbooks([], "high", "red", catalog, lang="de")


def test_catalog_order_decides_and_models_are_frozen(catalog: Catalog):
    first = catalog.plays[0]
    broad = first.model_copy(update={"id": "usage-broad", "tiers": ("high", "low", "tech")})
    custom = Catalog(version=2, plays=(broad, *catalog.plays[1:]))
    (rec,) = choose_playbooks([_reason(first.family)], "tech", "red", custom)
    assert rec.play_id == "usage-broad"
    with pytest.raises(ValueError, match="frozen"):
        first.urgency = "low"  # type: ignore[misc]
    with pytest.raises(ValueError, match="duplicate id"):
        Catalog(version=1, plays=(first, first))
    assert isinstance(first, Play)
