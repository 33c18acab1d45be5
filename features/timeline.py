"""Stage 1: the weekly account timeline, built with SQL on an embedded DuckDB.

One row per (account_id, week_start) from the week of ``created_at`` to the last complete week on
or before ``as_of`` (or the week the account churned), zero-activity weeks included, nothing before
``created_at``. Weeks run Monday to Sunday; a week is in the timeline once it has ended.

Every weekly value depends only on rows dated inside that week (or, for the open-ticket backlog and
the contract in force, on rows dated up to the week's end), so the row for a week never changes when
later data arrives: stage 2 may cut one timeline at any date without leakage.

A missing source table makes its columns NaN ("unknown"), never zero. The SQL is ANSI-shaped
(``date_trunc('week', ...)``, window functions, range joins on a calendar table built here) so an
engine such as Spark can run the same statements; every statement lives in :data:`SQL`, written
in DuckDB's dialect. :mod:`churnlens.spark` runs these very statements on Spark after transpiling
them with SQLGlot, and shares the rules below (:data:`OPTIONAL_DEFAULTS`, :func:`unknown_columns`,
:func:`finalise_timeline`): there is no second copy of the logic.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import date

import duckdb
import pandas as pd

from ..config import Config
from .contract import Tables, cutoff, last_complete_week_start
from .schema import TABLES, TIMELINE_COLUMNS, TIMELINE_KEY, TIMELINE_SOURCE

log = logging.getLogger(__name__)

# Columns kept as integer counts (nullable) in the output; the rest are floats.
COUNT_COLUMNS = tuple(c for c in TIMELINE_COLUMNS if c not in ("nps_sum", "arr", "seats"))

SQL: dict[str, str] = {
    # First and last timeline week per account: the week of created_at .. the last complete week
    # on or before as_of (``params``), or the churn week when that is earlier.
    "account_span": """
        SELECT account_id, first_week, last_week
        FROM (
            SELECT a.account_id,
                   date_trunc('week', a.created_at) AS first_week,
                   CASE WHEN ch.churned_at IS NOT NULL
                         AND date_trunc('week', ch.churned_at) <= p.last_complete_week
                        THEN date_trunc('week', ch.churned_at)
                        ELSE p.last_complete_week END AS last_week
            FROM accounts a
            CROSS JOIN params p
            LEFT JOIN churn_events ch ON ch.account_id = a.account_id
        ) span
        WHERE first_week <= last_week
    """,
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

AGGREGATES: dict[str, tuple[str, ...]] = {
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
SOURCE_OF_AGG = {
    "usage_events": "usage_events",
    "tickets": "tickets",
    "tickets_open": "tickets",
    "surveys_sent": "surveys",
    "surveys_answered": "surveys",
    "touchpoints": "touchpoints",
    "contracts": "contracts",
}
# Aggregates that stay unknown (not zero) for a week without rows: values, not counts.
NOT_FILLED: frozenset[str] = frozenset({"seats", "arr", "nps_sum"})
# Optional source columns the SQL reads, and what stands in when an export lacks one:
# "null" a missing value, "one" 1.0, "when_scored" (surveys.responded_at) sent_at where a score
# is given (an answered survey without a response time counts when sent).
OPTIONAL_DEFAULTS: dict[str, dict[str, str]] = {
    "usage_events": {"user_id": "null", "quantity": "one"},
    "tickets": {"priority": "null", "closed_at": "null"},
    "surveys": {"score": "null", "responded_at": "when_scored"},
    "touchpoints": {"direction": "null"},
    "contracts": {"seats": "null", "arr": "null"},
}
# An aggregate that cannot be computed at all without a column (its values stay unknown).
NEEDS_COLUMN: dict[str, str] = {"tickets_open": "closed_at"}


def unknown_columns(source: str, columns: Collection[str], config: Config) -> list[str]:
    """Timeline columns that are unknown (NaN) although ``source`` was provided.

    Whether a column is known depends on the export's columns and the configuration, never on
    row values (which would let later rows change earlier weeks).
    """
    out: list[str] = []
    if source == "usage_events":
        # No configured login / core events: those counts are unknown, not zero.
        if not config.events.login:
            out.append("logins")
        if not config.events.core_features:
            out.append("core_feature_events")
        if "user_id" not in columns:
            out.append("active_users")
    if source == "touchpoints" and "direction" not in columns:
        out.append("touches_inbound")
    return out


def last_complete_week(as_of: date) -> pd.DataFrame:
    """The one-row ``params`` table of :data:`SQL`'s ``account_span``."""
    week = pd.Timestamp(last_complete_week_start(as_of))
    return pd.DataFrame({"last_complete_week": pd.Series([week], dtype="datetime64[us]")})


def calendar(span: pd.DataFrame) -> pd.DataFrame:
    """Every Monday from the earliest first week to the latest last week."""
    weeks = pd.DatetimeIndex([], dtype="datetime64[us]")
    if not span.empty:
        weeks = pd.DatetimeIndex(
            pd.date_range(span["first_week"].min(), span["last_week"].max(), freq="7D")
        ).as_unit("us")
    return pd.DataFrame({"week_start": weeks, "week_end": weeks + pd.Timedelta(days=7)})


def event_kinds(events: pd.Series, config: Config) -> pd.DataFrame:
    """One row per distinct event name: whether it is a login, whether a core feature."""
    names = pd.Series(events.dropna().unique(), dtype=object)
    return pd.DataFrame(
        {
            "event": names,
            "is_login": names.isin(config.events.login).astype(bool),
            "is_core": names.isin(config.events.core_features).astype(bool),
        }
    )


def urgent_priorities(config: Config) -> pd.DataFrame:
    """The configured urgent ticket priorities, lower-cased (the SQL compares ``LOWER``)."""
    urgent = [p.lower() for p in config.events.urgent_priorities]
    return pd.DataFrame({"priority": urgent}, dtype=object)


def _with_defaults(df: pd.DataFrame, source: str) -> pd.DataFrame:
    for col, default in OPTIONAL_DEFAULTS.get(source, {}).items():
        if col in df.columns:
            continue
        if default == "one":
            df = df.assign(**{col: 1.0})
        elif default == "when_scored":
            df = df.assign(**{col: df["sent_at"].where(df["score"].notna())})
        elif source == "tickets" and col == "closed_at":
            df = df.assign(**{col: pd.Series(pd.NaT, index=df.index)})
        elif col in ("score", "seats", "arr"):
            df = df.assign(**{col: float("nan")})
        else:
            df = df.assign(**{col: None})
    return df


def build_timeline(tables: Tables, as_of: date | None = None) -> pd.DataFrame:
    """The weekly timeline for every account, as of ``as_of`` (default: the tables' as_of).

    Returns:
        ``account_id, week_start`` then :data:`TIMELINE_COLUMNS`, sorted by account and week.
    """
    as_of = as_of or tables.as_of
    con = duckdb.connect(config={"threads": 2})
    try:
        con.register("accounts", tables.accounts[["account_id", "created_at"]])
        churn = tables.get("churn_events")
        if churn is None:
            churn = pd.DataFrame(
                {
                    "account_id": pd.Series(dtype=str),
                    "churned_at": pd.Series(dtype="datetime64[us]"),
                }
            )
        con.register("churn_events", churn[["account_id", "churned_at"]])
        con.register("params", last_complete_week(as_of))
        span = con.execute(SQL["account_span"]).df()
        con.unregister("accounts")
        con.unregister("churn_events")
        con.register("account_span", span)
        con.register("calendar", calendar(span))
        con.execute(f"CREATE TEMP TABLE spine AS {SQL['spine']}")
        out = con.execute("SELECT account_id, week_start FROM spine").df()
        for agg, cols in AGGREGATES.items():
            source = SOURCE_OF_AGG[agg]
            df = tables.get(source)
            if df is None:
                continue
            time_col = TABLES[source].time_column
            df = df.loc[df[time_col] < cutoff(as_of)]
            has_col = set(df.columns)
            if agg in NEEDS_COLUMN and NEEDS_COLUMN[agg] not in has_col:
                continue
            df = _with_defaults(df, source)
            if source == "usage_events":
                con.register("event_kinds", event_kinds(df["event"], tables.config))
            if source == "tickets":
                con.register("urgent_priorities", urgent_priorities(tables.config))
            con.register(source, df)
            part = con.execute(SQL[agg]).df()
            out = out.merge(part, on=["account_id", "week_start"], how="left")
            fill = [c for c in cols if c not in NOT_FILLED]
            out[fill] = out[fill].fillna(0)
            for col in unknown_columns(source, has_col, tables.config):
                out[col] = float("nan")
            con.unregister(source)
    finally:
        con.close()
    out = _fallback_commercial(out, tables)
    out = finalise_timeline(out)
    log.info("timeline: %d accounts, %d account-weeks", out["account_id"].nunique(), len(out))
    return out


def finalise_timeline(out: pd.DataFrame) -> pd.DataFrame:
    """Every timeline column with its type (nullable ``Int64`` counts, floats), sorted by key.

    Missing columns are added as unknown. Shared by every engine so their outputs compare equal.
    """
    out = out.copy()
    for col in TIMELINE_COLUMNS:
        if col not in out.columns:
            out[col] = float("nan")
        if col in COUNT_COLUMNS:
            out[col] = pd.to_numeric(out[col]).round().astype("Int64")
        else:
            out[col] = pd.to_numeric(out[col]).astype("float64")
    out["week_start"] = pd.to_datetime(out["week_start"]).astype("datetime64[us]")
    out = out.sort_values(list(TIMELINE_KEY), kind="stable").reset_index(drop=True)
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
