"""Stage 1: the weekly account timeline, built with SQL on an embedded DuckDB.

One row per (account_id, week_start) from the week of ``created_at`` to the last complete week on
or before ``as_of`` (or the week the account churned), zero-activity weeks included, nothing before
``created_at``. Weeks run Monday to Sunday; a week is in the timeline once it has ended.

Every weekly value depends only on rows dated inside that week (or, for the open-ticket backlog and
the contract in force, on rows dated up to the week's end), so the row for a week never changes when
later data arrives: stage 2 may cut one timeline at any date without leakage.

A missing source table makes its columns NaN ("unknown"), never zero. The SQL is ANSI-shaped
(``date_trunc('week', ...)``, window functions, range joins on a calendar table built here) so an
engine such as Spark can run the same statements; every statement lives in :data:`SQL`.
"""

from __future__ import annotations

import logging
from datetime import date

import duckdb
import pandas as pd

from .contract import Tables, cutoff, last_complete_week_start
from .schema import TABLES, TIMELINE_COLUMNS, TIMELINE_KEY, TIMELINE_SOURCE

log = logging.getLogger(__name__)

# Columns kept as integer counts (nullable) in the output; the rest are floats.
COUNT_COLUMNS = tuple(c for c in TIMELINE_COLUMNS if c not in ("nps_sum", "arr", "seats"))

SQL: dict[str, str] = {
    "spine": """
        SELECT a.account_id, c.week_start, c.week_end
        FROM account_span a
        JOIN calendar c ON c.week_start >= a.first_week AND c.week_start <= a.last_week
    """,
    "usage_events": """
        SELECT u.account_id,
               date_trunc('week', u.occurred_at) AS week_start,
               SUM(CASE WHEN k.is_login THEN COALESCE(u.quantity, 1) ELSE 0 END) AS logins,
               COUNT(DISTINCT u.user_id) AS active_users,
               SUM(COALESCE(u.quantity, 1)) AS events,
               COUNT(DISTINCT CASE WHEN NOT k.is_login THEN u.event END) AS distinct_features,
               SUM(CASE WHEN k.is_core THEN COALESCE(u.quantity, 1) ELSE 0 END)
                   AS core_feature_events
        FROM usage_events u JOIN event_kinds k ON u.event = k.event
        GROUP BY u.account_id, date_trunc('week', u.occurred_at)
    """,
    "tickets": """
        SELECT t.account_id,
               date_trunc('week', t.opened_at) AS week_start,
               COUNT(*) AS tickets_opened,
               SUM(CASE WHEN p.priority IS NOT NULL THEN 1 ELSE 0 END) AS tickets_urgent
        FROM tickets t LEFT JOIN urgent_priorities p ON LOWER(t.priority) = p.priority
        GROUP BY t.account_id, date_trunc('week', t.opened_at)
    """,
    "tickets_open": """
        SELECT s.account_id, s.week_start, COUNT(*) AS tickets_open
        FROM spine s
        JOIN tickets t ON t.account_id = s.account_id
         AND t.opened_at < s.week_end
         AND (t.closed_at IS NULL OR t.closed_at >= s.week_end)
        GROUP BY s.account_id, s.week_start
    """,
    "surveys_sent": """
        SELECT account_id, date_trunc('week', sent_at) AS week_start, COUNT(*) AS surveys_sent
        FROM surveys GROUP BY account_id, date_trunc('week', sent_at)
    """,
    "surveys_answered": """
        SELECT account_id, date_trunc('week', responded_at) AS week_start,
               COUNT(*) AS surveys_answered,
               SUM(score) AS nps_sum,
               COUNT(score) AS nps_n
        FROM surveys WHERE responded_at IS NOT NULL
        GROUP BY account_id, date_trunc('week', responded_at)
    """,
    "touchpoints": """
        SELECT account_id, date_trunc('week', occurred_at) AS week_start,
               COUNT(*) AS touches,
               SUM(CASE WHEN direction = 'inbound' THEN 1 ELSE 0 END) AS touches_inbound
        FROM touchpoints GROUP BY account_id, date_trunc('week', occurred_at)
    """,
    "contracts": """
        SELECT s.account_id, s.week_start, c.seats, c.arr
        FROM spine s
        JOIN (
            SELECT account_id, effective_at, seats, arr,
                   LEAD(effective_at) OVER (PARTITION BY account_id
                                            ORDER BY effective_at, seats, arr) AS next_at
            FROM contracts
        ) c ON c.account_id = s.account_id
           AND c.effective_at < s.week_end
           AND (c.next_at IS NULL OR c.next_at >= s.week_end)
    """,
}

_AGGREGATES: dict[str, tuple[str, ...]] = {
    "usage_events": (
        "logins",
        "active_users",
        "events",
        "distinct_features",
        "core_feature_events",
    ),
    "tickets": ("tickets_opened", "tickets_urgent"),
    "tickets_open": ("tickets_open",),
    "surveys_sent": ("surveys_sent",),
    "surveys_answered": ("surveys_answered", "nps_sum", "nps_n"),
    "touchpoints": ("touches", "touches_inbound"),
    "contracts": ("seats", "arr"),
}
_SOURCE_OF_AGG = {
    "usage_events": "usage_events",
    "tickets": "tickets",
    "tickets_open": "tickets",
    "surveys_sent": "surveys",
    "surveys_answered": "surveys",
    "touchpoints": "touchpoints",
    "contracts": "contracts",
}


def account_span(tables: Tables, as_of: date) -> pd.DataFrame:
    """First and last timeline week per account (created week .. min(as_of, churn week))."""
    acc = tables.accounts[["account_id", "created_at"]]
    first = acc["created_at"].dt.normalize()
    first = first - pd.to_timedelta(first.dt.day_of_week, unit="D")
    last_complete = pd.Timestamp(last_complete_week_start(as_of))
    last = pd.Series(last_complete, index=acc.index)
    churn = tables.get("churn_events")
    if churn is not None and len(churn):
        churned = acc["account_id"].map(churn.set_index("account_id")["churned_at"])
        cw = churned.dt.normalize() - pd.to_timedelta(churned.dt.day_of_week, unit="D")
        last = last.where(cw.isna() | (cw > last), cw)
    span = pd.DataFrame({"account_id": acc["account_id"], "first_week": first, "last_week": last})
    return span.loc[span["first_week"] <= span["last_week"]].reset_index(drop=True)


def calendar(span: pd.DataFrame) -> pd.DataFrame:
    """Every Monday from the earliest first week to the latest last week."""
    weeks = pd.DatetimeIndex([], dtype="datetime64[us]")
    if not span.empty:
        weeks = pd.DatetimeIndex(
            pd.date_range(span["first_week"].min(), span["last_week"].max(), freq="7D")
        ).as_unit("us")
    return pd.DataFrame({"week_start": weeks, "week_end": weeks + pd.Timedelta(days=7)})


def _event_kinds(events: pd.DataFrame, tables: Tables) -> pd.DataFrame:
    names = pd.Series(events["event"].dropna().unique(), dtype=object)
    cfg = tables.config.events
    return pd.DataFrame(
        {
            "event": names,
            "is_login": names.isin(cfg.login).astype(bool),
            "is_core": names.isin(cfg.core_features).astype(bool),
        }
    )


def build_timeline(tables: Tables, as_of: date | None = None) -> pd.DataFrame:
    """The weekly timeline for every account, as of ``as_of`` (default: the tables' as_of).

    Returns:
        ``account_id, week_start`` then :data:`TIMELINE_COLUMNS`, sorted by account and week.
    """
    as_of = as_of or tables.as_of
    span = account_span(tables, as_of)
    con = duckdb.connect(config={"threads": 2})
    try:
        con.register("account_span", span)
        con.register("calendar", calendar(span))
        con.execute(f"CREATE TEMP TABLE spine AS {SQL['spine']}")
        out = con.execute("SELECT account_id, week_start FROM spine").df()
        for agg, cols in _AGGREGATES.items():
            source = _SOURCE_OF_AGG[agg]
            df = tables.get(source)
            if df is None:
                continue
            time_col = TABLES[source].time_column
            df = df.loc[df[time_col] < cutoff(as_of)]
            # Whether a column is known depends on the export's columns, never on row values
            # (which would let later rows change earlier weeks).
            has_col = set(df.columns)
            if source == "usage_events":
                if "user_id" not in df.columns:
                    df = df.assign(user_id=None)
                if "quantity" not in df.columns:
                    df = df.assign(quantity=1.0)
                con.register("event_kinds", _event_kinds(df, tables))
            if source == "tickets":
                if "priority" not in df.columns:
                    df = df.assign(priority=None)
                if "closed_at" not in df.columns:
                    if agg == "tickets_open":
                        continue
                    df = df.assign(closed_at=pd.Series(pd.NaT, index=df.index))
                urgent = [p.lower() for p in tables.config.events.urgent_priorities]
                con.register("urgent_priorities", pd.DataFrame({"priority": urgent}, dtype=object))
            if source == "surveys":
                if "score" not in df.columns:
                    df = df.assign(score=float("nan"))
                if "responded_at" not in df.columns:
                    # No response time: an answered survey (score given) counts when sent.
                    df = df.assign(responded_at=df["sent_at"].where(df["score"].notna()))
            if source == "touchpoints" and "direction" not in df.columns:
                df = df.assign(direction=None)
            if source == "contracts":
                for col in ("seats", "arr"):
                    if col not in df.columns:
                        df = df.assign(**{col: float("nan")})
            con.register(source, df)
            part = con.execute(SQL[agg]).df()
            out = out.merge(part, on=["account_id", "week_start"], how="left")
            fill = [c for c in cols if c not in ("seats", "arr", "nps_sum")]
            out[fill] = out[fill].fillna(0)
            if source == "usage_events":
                # No configured login / core events: those counts are unknown, not zero.
                if not tables.config.events.login:
                    out["logins"] = float("nan")
                if not tables.config.events.core_features:
                    out["core_feature_events"] = float("nan")
            if source == "usage_events" and "user_id" not in has_col:
                out["active_users"] = float("nan")
            if source == "touchpoints" and "direction" not in has_col:
                out["touches_inbound"] = float("nan")
            con.unregister(source)
    finally:
        con.close()
    out = _fallback_commercial(out, tables)
    for col in TIMELINE_COLUMNS:
        if col not in out.columns:
            out[col] = float("nan")
        if col in COUNT_COLUMNS:
            out[col] = pd.to_numeric(out[col]).round().astype("Int64")
        else:
            out[col] = pd.to_numeric(out[col]).astype("float64")
    out["week_start"] = pd.to_datetime(out["week_start"]).astype("datetime64[us]")
    out = out.sort_values(list(TIMELINE_KEY), kind="stable").reset_index(drop=True)
    log.info("timeline: %d accounts, %d account-weeks", out["account_id"].nunique(), len(out))
    return out[[*TIMELINE_KEY, *TIMELINE_COLUMNS]]


def _fallback_commercial(out: pd.DataFrame, tables: Tables) -> pd.DataFrame:
    """Without a contract in force, take seats/ARR from the accounts table (a static value)."""
    acc = tables.accounts.set_index("account_id")
    for col in ("seats", "arr"):
        static = out["account_id"].map(acc[col]) if col in acc.columns else None
        if col not in out.columns:
            out[col] = static if static is not None else float("nan")
        elif static is not None:
            out[col] = out[col].fillna(static)
    return out


def timeline_availability(timeline: pd.DataFrame) -> dict[str, bool]:
    """Which source tables a timeline carries data from (a source is unknown if all-NaN)."""
    avail: dict[str, bool] = {}
    for col, src in TIMELINE_SOURCE.items():
        has = col in timeline.columns and bool(timeline[col].notna().any())
        avail[src] = avail.get(src, False) or has
    return avail
