"""What the CSM page shows, as pure functions of stored scores (no HTTP, no database).

The portfolio is every account's latest score ranked by ARR at risk (highest first; accounts
without ARR last, then by id), filtered by CSM, touch tier, risk band and segment (the ``plan``
column), with totals over the whole filtered view and one page of rows. Each row carries the change
since the previous scoring date ("new in red", "risk up 12 pts"), a sparkline of its last points
and its reasons and plays in the page's language.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from ...features.io import FORMULA_START
from ...store import RiskPoint, ScoreDetails, ScoreSummary, StoredScore
from .charts import bar_chart, sparkline
from .i18n import UI_LANGS, Lang, text

BANDS: tuple[str, ...] = ("red", "yellow", "green")
TIERS: tuple[str, ...] = ("high", "low", "tech")
PAGE_SIZE = 100
HISTORY_POINTS = 12
MAX_QUERY_VALUE = 255
# Charts of the account page: (timeline column, label key); the activity behind each reason family.
ACTIVITY_CHARTS: tuple[tuple[str, str], ...] = (
    ("logins", "m_logins"),
    ("active_users", "m_active_users"),
    ("distinct_features", "m_distinct_features"),
    ("tickets_opened", "m_tickets_opened"),
    ("surveys_answered", "m_surveys_answered"),
    ("touches", "m_touches"),
)
CSV_COLUMNS: tuple[str, ...] = (
    "rank",
    "account_id",
    "name",
    "csm_id",
    "segment",
    "touch_tier",
    "risk_band",
    "churn_probability",
    "health_score",
    "change",
    "arr",
    "arr_at_risk",
    "as_of",
    "model_version",
    "reasons",
    "next_play",
    "play_owner",
    "play_due",
)


class BadFilter(ValueError):
    """A query parameter of the page that is not one of its allowed values (a 400)."""


# ------------------------------------------------------------------------------------ filters
@dataclass(frozen=True)
class Filters:
    """The page's query parameters: ``?csm=&tier=&band=&segment=&lang=&page=``."""

    csm: str | None = None
    tier: str | None = None
    band: str | None = None
    segment: str | None = None
    lang: Lang = "en"
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> Filters:
        """Filters from query parameters (empty means "all"); :class:`BadFilter` names a bad one."""

        def opt(name: str) -> str | None:
            value = (params.get(name) or "").strip()
            if len(value) > MAX_QUERY_VALUE:
                raise BadFilter(f"{name}: at most {MAX_QUERY_VALUE} characters")
            return value or None

        tier, band = opt("tier"), opt("band")
        if tier is not None and tier not in TIERS:
            raise BadFilter(f"tier: expected one of {', '.join(TIERS)}, got {tier!r}")
        if band is not None and band not in BANDS:
            raise BadFilter(f"band: expected one of {', '.join(BANDS)}, got {band!r}")
        lang = opt("lang") or "en"
        if lang not in UI_LANGS:
            raise BadFilter(f"lang: expected one of {', '.join(UI_LANGS)}, got {lang!r}")
        raw_page = opt("page") or "1"
        if not raw_page.isdecimal() or int(raw_page) < 1:  # not isdigit: int("²") raises
            raise BadFilter(f"page: expected a positive whole number, got {raw_page!r}")
        return cls(
            csm=opt("csm"),
            tier=tier,
            band=band,
            segment=opt("segment"),
            lang="ja" if lang == "ja" else "en",
            page=min(int(raw_page), 1_000_000),
        )

    def matches(self, s: ScoreSummary | StoredScore) -> bool:
        """Whether an account's latest score is in the filtered view."""
        return (
            (self.csm is None or s["csm_id"] == self.csm)
            and (self.tier is None or s["touch_tier"] == self.tier)
            and (self.band is None or s["risk_band"] == self.band)
            and (self.segment is None or s["plan"] == self.segment)
        )

    def query(self, **changes: Any) -> str:
        """The query string of these filters with ``changes`` (page 1 and "en" left out)."""
        f = replace(self, **changes)
        pairs = [
            (k, v)
            for k, v in (
                ("csm", f.csm),
                ("tier", f.tier),
                ("band", f.band),
                ("segment", f.segment),
                ("lang", None if f.lang == "en" else f.lang),
                ("page", None if f.page == 1 else str(f.page)),
            )
            if v is not None
        ]
        return urlencode(pairs)

    @property
    def active(self) -> bool:
        """Whether any filter (not language or page) is set."""
        return any(v is not None for v in (self.csm, self.tier, self.band, self.segment))


# ------------------------------------------------------------------------------------- change
@dataclass(frozen=True)
class Change:
    """The change since the previous scoring date: ``first``, ``new_red``, ``up``, ``down``,
    ``steady``; ``pts`` is the probability difference in percentage points (rounded)."""

    kind: str
    pts: int = 0

    def label(self, lang: str) -> str:
        """What the CSM reads ("new in red", "risk up 12 pts")."""
        if self.kind in ("up", "down"):
            return text(f"change_{self.kind}", lang, pts=abs(self.pts))
        return text(f"change_{self.kind}", lang)


def change_since(probability: float, band: str, previous: RiskPoint | None) -> Change:
    """The change from the previous scoring date's point to this score.

    "new in red" when the account was not red before and is now; else "risk up/down N pts" when
    the probability moved by at least one point; else "no change". No previous point: "first".
    """
    if previous is None:
        return Change("first")
    pts = round((probability - previous["churn_probability"]) * 100)
    if band == "red" and previous["risk_band"] != "red":
        return Change("new_red", pts)
    if pts >= 1:
        return Change("up", pts)
    if pts <= -1:
        return Change("down", pts)
    return Change("steady", pts)


# ---------------------------------------------------------------------------------- portfolio
@dataclass(frozen=True)
class Entry:
    """One account of the portfolio: its latest score, recent risk points and change."""

    score: StoredScore
    history: list[RiskPoint]
    change: Change


def rank_key(s: ScoreSummary | StoredScore) -> tuple[bool, float, str]:
    """Sort key: ARR at risk, highest first; unknown ARR last; then account id."""
    risk = s["arr_at_risk"]
    return (risk is None, -(risk or 0.0), s["account_id"])


def ranked_entries(
    latest: Iterable[StoredScore], histories: Mapping[str, Sequence[RiskPoint]]
) -> list[Entry]:
    """Every account ranked by ARR at risk, with its change since the previous scoring date.

    Args:
        latest: each account's latest score (:meth:`ScoreStore.latest_scores`).
        histories: each account's last points, oldest first (:meth:`ScoreStore.histories`);
            the previous scoring date is the point before the latest score's ``as_of``.
    """
    out = []
    for s in sorted(latest, key=rank_key):
        points = list(histories.get(s["account_id"], ()))
        earlier = [p for p in points if p["as_of"] < s["as_of"]]
        prev = earlier[-1] if earlier else None
        out.append(Entry(s, points, change_since(s["churn_probability"], s["risk_band"], prev)))
    return out


@dataclass
class BandTotal:
    """Accounts, ARR and ARR at risk of one band (or of the whole view)."""

    accounts: int = 0
    arr: float = 0.0
    arr_at_risk: float = 0.0


@dataclass
class Totals:
    """Totals of a filtered view: overall and by band."""

    all: BandTotal = field(default_factory=BandTotal)
    by_band: dict[str, BandTotal] = field(default_factory=lambda: {b: BandTotal() for b in BANDS})


def totals(view: Iterable[ScoreSummary | StoredScore]) -> Totals:
    """Accounts, ARR and ARR at risk of the view, overall and per band (unknown ARR counts 0)."""
    t = Totals()
    for s in view:
        for bucket in (t.all, t.by_band.setdefault(s["risk_band"], BandTotal())):
            bucket.accounts += 1
            bucket.arr += s["arr"] or 0.0
            bucket.arr_at_risk += s["arr_at_risk"] or 0.0
    return t


@dataclass(frozen=True)
class Options:
    """The values the filter menus offer (what the latest scores contain)."""

    csms: list[str]
    tiers: list[str]
    bands: list[str]
    segments: list[str]


def filter_options(scores: Iterable[ScoreSummary | StoredScore]) -> Options:
    """Distinct CSMs, tiers, bands and segments of the latest scores (sorted; bands by risk)."""
    csms, tiers, bands, segments = set(), set(), set(), set()
    for s in scores:
        if s["csm_id"]:
            csms.add(s["csm_id"])
        if s["plan"]:
            segments.add(s["plan"])
        tiers.add(s["touch_tier"])
        bands.add(s["risk_band"])
    return Options(
        sorted(csms),
        [t for t in TIERS if t in tiers] + sorted(tiers - set(TIERS)),
        [b for b in BANDS if b in bands] + sorted(bands - set(BANDS)),
        sorted(segments),
    )


def page_of(items: Sequence[Any], page: int, size: int = PAGE_SIZE) -> tuple[int, int]:
    """``(start, stop)`` indexes of ``page`` (1-based), clamped to the last page."""
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    pages = max(1, math.ceil(len(items) / size))
    p = min(max(page, 1), pages)
    start = (p - 1) * size
    return start, min(start + size, len(items))


# --------------------------------------------------------------------------------- language
def localized(
    s: StoredScore, details: ScoreDetails | None, lang: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    """Reasons and plays in ``lang`` when stored in it, else as scored; plus the language shown.

    ``churnlens score`` stores every language (``translations``); a score stored in one language
    only (older runs, other writers) is shown as it was scored, and the page says so.
    """
    if s["lang"] == lang:
        return s["top_reasons"], s["playbooks"], lang
    other = (details or {}).get("translations", {}).get(lang) if details else None
    if other:
        return list(other.get("top_reasons", [])), list(other.get("playbooks", [])), lang
    return s["top_reasons"], s["playbooks"], s["lang"]


def due_date(as_of: date, play: Mapping[str, Any]) -> date:
    """When the play's main action is due: the scoring date plus its ``due_days``."""
    return as_of + timedelta(days=int(play.get("due_days") or 0))


def label_of(prefix: str, code: str | None, lang: str) -> str:
    """A translated code (``owner_csm`` ...) or the code itself when unknown."""
    from .i18n import STRINGS

    key = f"{prefix}_{code}"
    return text(key, lang) if key in STRINGS else str(code or "")


def money(v: float | None) -> str:
    """ARR as a whole number with thousands separators ("-" when unknown)."""
    return "-" if v is None else f"{v:,.0f}"


def reason_line(r: Mapping[str, Any]) -> str:
    """A reason in one line: its label and first evidence sentence."""
    ev = r.get("evidence") or []
    return f"{r.get('label', '')}: {ev[0]}" if ev else str(r.get("label", ""))


def row_view(e: Entry, rank: int, lang: str, details: ScoreDetails | None) -> dict[str, Any]:
    """One row of the portfolio table, every string ready (escaped later by the template)."""
    s = e.score
    reasons, plays, _ = localized(s, details, lang)
    play = plays[0] if plays else None
    points = [p["churn_probability"] for p in e.history[-HISTORY_POINTS:]]
    trend = " → ".join(f"{round(p * 100)}%" for p in points)
    return {
        "rank": rank,
        "account_id": s["account_id"],
        "name": s["name"] or s["account_id"],
        "csm": s["csm_id"] or "",
        "segment": s["plan"] or "",
        "tier": label_of("tier", s["touch_tier"], lang),
        "probability": f"{s['churn_probability'] * 100:.0f}%",
        "band": s["risk_band"],
        "band_label": label_of("band", s["risk_band"], lang),
        "health": s["health_score"],
        "change": e.change.label(lang),
        "change_kind": e.change.kind,
        "spark": sparkline(
            points, band=s["risk_band"], label=f"{text('risk_history', lang)}: {trend}"
        ),
        "arr": money(s["arr"]),
        "arr_at_risk": money(s["arr_at_risk"]),
        "reasons": [reason_line(r) for r in reasons[:2]],
        "silent": bool(details and details["silent_decline"] == 1),
        "play": None
        if play is None
        else {
            "title": play.get("title", ""),
            "owner_due": text(
                "owner_due",
                lang,
                owner=label_of("owner", play.get("owner"), lang),
                date=due_date(s["as_of"], play).isoformat(),
            ),
        },
    }


# ----------------------------------------------------------------------------------- account
def account_view(
    s: StoredScore,
    history: Sequence[RiskPoint],
    details: ScoreDetails | None,
    lang: str,
) -> dict[str, Any]:
    """The account page: score, change, history, reasons with evidence, plays, weekly activity."""
    earlier = [p for p in history if p["as_of"] < s["as_of"]]
    change = change_since(s["churn_probability"], s["risk_band"], earlier[-1] if earlier else None)
    reasons, plays, shown = localized(s, details, lang)
    top_impact = max((float(r.get("impact") or 0.0) for r in reasons), default=0.0) or 1.0
    # The stored flag (silent_decline == 1); without one, a "silence" reason says the same.
    flag = details["silent_decline"] if details else None
    silent = flag == 1 or (flag is None and any(r.get("family") == "silence" for r in reasons))
    probs = [p["churn_probability"] for p in history]
    trend = " → ".join(
        f"{p['as_of'].isoformat()} {round(p['churn_probability'] * 100)}%" for p in history
    )
    return {
        "account_id": s["account_id"],
        "name": s["name"] or s["account_id"],
        "csm": s["csm_id"] or "",
        "segment": s["plan"] or "",
        "tier": label_of("tier", s["touch_tier"], lang),
        "as_of": s["as_of"].isoformat(),
        "model_version": s["model_version"],
        "probability": f"{s['churn_probability'] * 100:.0f}%",
        "band": s["risk_band"],
        "band_label": label_of("band", s["risk_band"], lang),
        "health": s["health_score"],
        "arr": money(s["arr"]),
        "arr_at_risk": money(s["arr_at_risk"]),
        "change": change.label(lang),
        "change_kind": change.kind,
        "history": sparkline(
            probs,
            band=s["risk_band"],
            width=280,
            height=64,
            label=f"{text('risk_history', lang)}: {trend}",
        ),
        "history_range": (
            f"{history[0]['as_of'].isoformat()} – {history[-1]['as_of'].isoformat()}"
            if history
            else ""
        ),
        "silent": silent,
        "shown_lang": shown,
        "reasons": [
            {
                "family": r.get("family", ""),
                "label": r.get("label", ""),
                "impact": float(r.get("impact") or 0.0),
                "width": max(4, round(100 * float(r.get("impact") or 0.0) / top_impact)),
                "evidence": list(r.get("evidence") or []),
            }
            for r in reasons
        ],
        "plays": [
            {
                "play_id": p.get("play_id", ""),
                "title": p.get("title", ""),
                "action": p.get("action", ""),
                "channel": label_of("channel", p.get("channel"), lang),
                "owner": label_of("owner", p.get("owner"), lang),
                "urgency": label_of("urgency", p.get("urgency"), lang),
                "urgency_code": p.get("urgency", ""),
                "due": due_date(s["as_of"], p).isoformat(),
                "tasks": [
                    {
                        "day": text("day_n", lang, n=t.get("day", 0)),
                        "date": (s["as_of"] + timedelta(days=int(t.get("day") or 0))).isoformat(),
                        "task": t.get("task", ""),
                    }
                    for t in p.get("tasks") or []
                ],
            }
            for p in plays
        ],
        "activity": activity_charts(details["activity"] if details else None, lang),
    }


def activity_charts(activity: Mapping[str, list[Any]] | None, lang: str) -> dict[str, Any] | None:
    """Small weekly charts of the activity behind the reasons (None when none was stored)."""
    if not activity or not activity.get("week_start"):
        return None
    weeks = [str(w) for w in activity["week_start"]]
    charts = []
    for col, key in ACTIVITY_CHARTS:
        values = activity.get(col)
        label = text(key, lang)
        known = [float(v) for v in values or [] if v is not None]
        if values is None or not known:
            charts.append(
                {"key": col, "label": label, "svg": None, "note": text("m_unknown", lang)}
            )
            continue
        total = sum(known)
        charts.append(
            {
                "key": col,
                "label": label,
                "svg": bar_chart(weeks, values, label=label),
                "note": text("m_total", lang, n=f"{total:,.0f}"),
            }
        )
    return {"weeks": len(weeks), "first": weeks[0], "last": weeks[-1], "charts": charts}


# ---------------------------------------------------------------------------------------- CSV
def csv_cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run: text starting with = + - @ (or tab/CR) gets a '."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else repr(round(value, 6))
    s = str(value)
    return "'" + s if s.startswith(FORMULA_START) else s


def portfolio_csv(
    entries: Iterable[Entry],
    lang: str,
    details_of: Callable[[StoredScore], ScoreDetails | None],
) -> str:
    """The filtered view as CSV (every row, not one page), reasons and plays in ``lang``."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for rank, e in enumerate(entries, start=1):
        s = e.score
        reasons, plays, _ = localized(s, details_of(s), lang)
        play = plays[0] if plays else None
        row: list[object] = [
            rank,
            s["account_id"],
            s["name"],
            s["csm_id"],
            s["plan"],
            s["touch_tier"],
            s["risk_band"],
            s["churn_probability"],
            s["health_score"],
            e.change.label(lang),
            s["arr"],
            s["arr_at_risk"],
            s["as_of"].isoformat(),
            s["model_version"],
            " | ".join(reason_line(r) for r in reasons),
            None if play is None else play.get("title"),
            None if play is None else label_of("owner", play.get("owner"), lang),
            None if play is None else due_date(s["as_of"], play).isoformat(),
        ]
        w.writerow([csv_cell(v) for v in row])
    return buf.getvalue()


__all__ = [
    "BANDS",
    "PAGE_SIZE",
    "TIERS",
    "BadFilter",
    "Change",
    "Entry",
    "Filters",
    "Totals",
    "account_view",
    "change_since",
    "csv_cell",
    "filter_options",
    "page_of",
    "portfolio_csv",
    "ranked_entries",
    "row_view",
    "totals",
]
