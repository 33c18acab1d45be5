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
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from ..config import Config
from .contract import Tables, codes_and_values, cutoff, last_complete_week_start
from .schema import (
    TABLES,
    TIMELINE_COLUMNS,
    TIMELINE_KEY,
    TIMELINE_SOURCE,
    TRACKED_PREFIX,
    tracked_column,
    tracked_groups,
)

log = logging.getLogger(__name__)

# Columns kept as integer counts (nullable) in the output; the rest are floats.
COUNT_COLUMNS = tuple(c for c in TIMELINE_COLUMNS if c not in ("nps_sum", "arr", "seats"))

_TEMPLATES: dict[str, str] = {
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
    # Active users are counted exactly without a DISTINCT over every event where that can be
    # avoided: each account's first USER_BITS users (by user_id) get a bit of their own
    # (``user_bits``) and the sums' aggregate ORs them and counts the bits, as distinct_features
    # does with event names; only the events of further users of large accounts go through a
    # DISTINCT of (account, week, user) keys. On 51M simulated events that DISTINCT grouped 51M
    # rows into 17M keys and was the largest cost of the build; with the bits it sees 0.13M
    # events (1,308 of 344,558 users are beyond the first USER_BITS of their account).
    "user_bits": """
        SELECT account_id, user_id,
               CASE WHEN n < {user_bits} THEN CAST(POWER(2, n) AS BIGINT) ELSE 0 END AS user_bit
        FROM (
            SELECT account_id, user_id,
                   DENSE_RANK() OVER (PARTITION BY account_id ORDER BY user_id) - 1 AS n
            FROM (
                SELECT DISTINCT account_id, user_id FROM usage_events
                WHERE event IS NOT NULL AND user_id IS NOT NULL
            ) pairs
        ) ranked
    """,
    # The sums per account-week and the active users (see user_bits). An event without a name
    # counts nowhere, as the join to event_kinds (every name) leaves it out of the sums.
    "usage_events": """
        SELECT w.account_id, w.week_start, w.logins,
               w.first_users + COALESCE(d.more_users, 0) AS active_users,
               w.events, w.distinct_features, w.core_feature_events{tracked_columns}
        FROM (
            SELECT u.account_id,
                   date_trunc('week', u.occurred_at) AS week_start,
                   SUM(CASE WHEN k.is_login THEN COALESCE(u.quantity, 1) ELSE 0 END) AS logins,
                   SUM(COALESCE(u.quantity, 1)) AS events,
                   {distinct_features} AS distinct_features,
                   SUM(CASE WHEN k.is_core THEN COALESCE(u.quantity, 1) ELSE 0 END)
                       AS core_feature_events,{tracked_sums}
                   CAST(bit_count(COALESCE(bit_or(b.user_bit), 0)) AS INTEGER) AS first_users
            FROM usage_events u JOIN event_kinds k ON u.event = k.event
            LEFT JOIN user_bits b ON b.account_id = u.account_id AND b.user_id = u.user_id
            GROUP BY u.account_id, date_trunc('week', u.occurred_at)
        ) w
        LEFT JOIN (
            SELECT account_id, week_start, COUNT(user_id) AS more_users
            FROM (
                SELECT DISTINCT u.account_id,
                       date_trunc('week', u.occurred_at) AS week_start,
                       u.user_id
                FROM usage_events u
                JOIN user_bits b ON b.account_id = u.account_id AND b.user_id = u.user_id
                WHERE u.event IS NOT NULL AND b.user_bit = 0
            ) per_user
            GROUP BY account_id, week_start
        ) d ON d.account_id = w.account_id AND d.week_start = w.week_start
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


USER_BITS = 63
"""Users per account counted by bitmask in ``usage_events`` (the rest through a DISTINCT)."""

FEATURE_BITS = 63
"""Event names per bitmask word of ``event_kinds``. ``distinct_features`` ORs one bit per non-login
event name and counts the bits set: exact, and a plain aggregate where ``COUNT(DISTINCT event)``
would group the events once more (the sign bit stays clear in both engines)."""


def feature_words(n_features: int) -> int:
    """How many BIGINT bitmask words ``n_features`` non-login event names need (at least one)."""
    return max(1, -(-n_features // FEATURE_BITS))


def statements(words: int = 1, tracked: int = 0) -> dict[str, str]:
    """Every statement, with ``distinct_features`` counted over ``words`` bitmask words and the
    events of ``tracked`` key-event groups summed as ``tracked_<i>`` (``event_kinds.track_<i>``
    says which names are in group ``i``)."""
    distinct = " + ".join(
        f"CAST(bit_count(bit_or(k.feature_bits_{i})) AS INTEGER)" for i in range(words)
    )
    sums = "".join(
        f"\n                   SUM(CASE WHEN k.track_{i} THEN COALESCE(u.quantity, 1) ELSE 0 END)"
        f" AS tracked_{i},"
        for i in range(tracked)
    )
    columns = "".join(f", w.tracked_{i}" for i in range(tracked))
    return {
        name: sql.replace("{distinct_features}", distinct)
        .replace("{user_bits}", str(USER_BITS))
        .replace("{tracked_sums}", sums)
        .replace("{tracked_columns}", columns)
        for name, sql in _TEMPLATES.items()
    }


SQL: dict[str, str] = statements(1)
"""The statements for up to :data:`FEATURE_BITS` non-login event names (see :func:`statements`)."""

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
    """One row per distinct event name: whether it is a login, whether a core feature, whether in
    each tracked group (``track_<i>``, in config order), and its bit.

    Non-login names, in sorted order, get one bit each in the ``feature_bits_<w>`` words (0 for
    logins); :func:`feature_words` says how many words there are.
    """
    names = pd.Series(sorted(pd.Series(events.unique()).dropna()), dtype=object)
    is_login = names.isin(config.events.login).to_numpy(dtype=bool)
    out = pd.DataFrame(
        {
            "event": names,
            "is_login": is_login,
            "is_core": names.isin(config.events.core_features).to_numpy(dtype=bool),
        }
    )
    for i, members in enumerate(config.events.tracked.values()):
        out[f"track_{i}"] = names.isin(members).to_numpy(dtype=bool)
    number = np.cumsum(~is_login) - 1  # the feature's number among non-login names
    for w in range(feature_words(int((~is_login).sum()))):
        mine = ~is_login & (number // FEATURE_BITS == w)
        bit = np.left_shift(np.int64(1), (number % FEATURE_BITS).astype(np.int64))
        out[f"feature_bits_{w}"] = np.where(mine, bit, 0).astype(np.int64)
    return out


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


def _numbered(tables: Tables) -> tuple[dict[str, pd.DataFrame], np.ndarray, pd.Index]:
    """The sources with integer keys, the account ids the account numbers stand for, and the
    event names the ``usage_events.event`` numbers stand for.

    Accounts are numbered in the order of their ids (so sorting numbers sorts ids), users and
    event names by their codes: the SQL groups and joins on integers, and nothing else changes
    (a missing user or event stays missing). Categorical columns (:class:`Tables` keeps the
    ``usage_events`` ids as codes) cost a lookup per distinct value, text a hash per row.
    """
    ids = np.sort(tables.accounts["account_id"].to_numpy(dtype=object))
    index = pd.Index(ids)
    out: dict[str, pd.DataFrame] = {}
    names: pd.Index = pd.Index(np.array([], dtype=object))
    for name, df in tables.frames.items():
        if "account_id" not in df.columns:
            out[name] = df
            continue
        codes, values = codes_and_values(df["account_id"])
        # -1 (a missing or unknown id, which the contract drops) stays -1: no account's week.
        number = np.append(index.get_indexer(values), -1).astype(np.int32)
        cols: dict[str, Any] = {"account_id": number[codes]}
        if name == "usage_events":
            if "user_id" in df.columns:
                users, _ = codes_and_values(df["user_id"])
                cols["user_id"] = _nullable(users)
            events, names = codes_and_values(df["event"])
            cols["event"] = _nullable(events)
        # Without the copies DataFrame.assign makes (one per column, 10M rows each).
        out[name] = pd.DataFrame({c: cols.get(c, df[c]) for c in df.columns}, copy=False)
    return out, ids, names


def _nullable(codes: np.ndarray) -> Any:
    """Codes as integers DuckDB reads, -1 as NULL (plain integers when none is missing)."""
    codes = codes.astype(np.int32, copy=False)
    missing = codes < 0
    return pd.arrays.IntegerArray(codes, missing) if missing.any() else codes


def build_timeline(tables: Tables, as_of: date | None = None) -> pd.DataFrame:
    """The weekly timeline for every account, as of ``as_of`` (default: the tables' as_of).

    Two DuckDB queries: the account span (the calendar needs its bounds), then one statement that
    reads each source up to the cutoff, runs every aggregate of :data:`SQL` and left-joins them to
    the spine with the fill rules, so DuckDB plans the whole build and the rows cross into pandas
    once. Ids and event names go in as integers (:func:`_numbered`).

    Returns:
        ``account_id, week_start`` then :data:`TIMELINE_COLUMNS`, sorted by account and week.
    """
    as_of = as_of or tables.as_of
    static = [c for c in ("seats", "arr") if c in tables.accounts.columns]
    frames, ids, names = _numbered(tables)
    con = duckdb.connect(config={"threads": 2})
    try:
        when = pd.Series([cutoff(as_of)], dtype="datetime64[us]")
        con.register("params", last_complete_week(as_of).assign(cutoff=when))
        con.register("accounts", frames["accounts"][["account_id", "created_at", *static]])
        churn = frames.get("churn_events")
        if churn is None:
            churn = pd.DataFrame(
                {
                    "account_id": pd.Series(dtype=np.int32),
                    "churned_at": pd.Series(dtype="datetime64[us]"),
                }
            )
        con.register("churn_events", churn[["account_id", "churned_at"]])
        span = con.execute(SQL["account_span"]).df()
        con.register("account_span", span)
        con.register("calendar", calendar(span))
        statement = _one_statement(con, tables.config, frames, names, static)
        out = con.execute(statement).df()
    finally:
        con.close()
    out["account_id"] = pd.array(ids[out["account_id"].to_numpy()], dtype="str")
    for group in tables.config.events.tracked:  # no usage_events: the groups are unknown
        if tracked_column(group) not in out.columns:
            out[tracked_column(group)] = np.nan
    out = finalise_timeline(out)
    log.info("timeline: %d accounts, %d account-weeks", out["account_id"].nunique(), len(out))
    return out


def _one_statement(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    frames: dict[str, pd.DataFrame],
    names: pd.Index,
    static: list[str],
) -> str:
    """Register the sources on ``con``; the statement that builds the timeline from them.

    ``frames`` are the sources keyed by :func:`_numbered`, ``names`` the event names its event
    numbers stand for.

    Each source becomes a view of its rows before ``params.cutoff``; each aggregate a CTE joined to
    the spine; a count without rows is 0, a value (:data:`NOT_FILLED`) stays unknown, a column in
    :func:`unknown_columns` is left out (unknown), and seats / ARR without a contract in force
    come from the accounts table.
    """
    ctes = [f"spine AS ({SQL['spine']})"]
    columns: dict[str, set[str]] = {}
    words = 1
    for source in dict.fromkeys(SOURCE_OF_AGG.values()):
        df = frames.get(source)
        if df is None:
            continue
        columns[source] = set(df.columns)
        df = _with_defaults(df, source)
        if source == "usage_events":
            kinds = event_kinds(pd.Series(names, dtype=object), config)
            kinds["event"] = names.get_indexer(pd.Index(kinds["event"])).astype(np.int32)
            words = sum(c.startswith("feature_bits_") for c in kinds.columns)
            con.register("event_kinds", kinds)
        if source == "tickets":
            con.register("urgent_priorities", urgent_priorities(config))
        con.register(f"all_{source}", df)
        when = TABLES[source].time_column
        # A view, not a CTE: DuckDB materialises a CTE read more than once (usage_events is read
        # by user_bits, the sums and the remaining users' DISTINCT), a copy of every event; a
        # view is read where it is used.
        con.execute(
            f"CREATE TEMP VIEW {source} AS"
            f" SELECT * FROM all_{source} WHERE {when} < (SELECT cutoff FROM params)"
        )
    groups = list(config.events.tracked)
    sql = statements(words, len(groups))
    if "usage_events" in columns:
        ctes.append(f"user_bits AS ({sql['user_bits']})")  # read twice: materialised once
    joins: list[str] = []
    values: dict[str, str] = {}
    for agg, cols in AGGREGATES.items():
        source = SOURCE_OF_AGG[agg]
        if source not in columns:
            continue
        if agg in NEEDS_COLUMN and NEEDS_COLUMN[agg] not in columns[source]:
            continue
        ctes.append(f"agg_{agg} AS ({sql[agg]})")
        joins.append(
            f"LEFT JOIN agg_{agg} ON agg_{agg}.account_id = s.account_id"
            f" AND agg_{agg}.week_start = s.week_start"
        )
        unknown = unknown_columns(source, columns[source], config)
        for col in cols:
            if col not in unknown:
                ref = f"agg_{agg}.{col}"
                values[col] = ref if col in NOT_FILLED else f"COALESCE({ref}, 0)"
        if agg == "usage_events":
            for i, group in enumerate(groups):
                values[tracked_column(group)] = f"COALESCE(agg_{agg}.tracked_{i}, 0)"
    if static:
        joins.append("LEFT JOIN accounts a ON a.account_id = s.account_id")
        for col in static:
            values[col] = f"COALESCE({values[col]}, a.{col})" if col in values else f"a.{col}"
    select = ", ".join(
        ["s.account_id", "s.week_start", *(f"{v} AS {c}" for c, v in values.items())]
    )
    return f"WITH {', '.join(ctes)} SELECT {select} FROM spine s {' '.join(joins)}"


def finalise_timeline(out: pd.DataFrame) -> pd.DataFrame:
    """Every timeline column with its type (nullable ``Int64`` counts, floats), sorted by key.

    Missing columns are added as unknown; tracked event-group columns (``events__<group>``)
    follow, as counts. Shared by every engine so their outputs compare equal.
    """
    columns: dict[str, object] = {
        "account_id": out["account_id"],
        "week_start": pd.to_datetime(out["week_start"]).astype("datetime64[us]"),
    }
    for col in (*TIMELINE_COLUMNS, *map(tracked_column, tracked_groups(out.columns))):
        if col not in out.columns:
            values = pd.Series(np.nan, index=out.index)
        else:
            values = pd.to_numeric(out[col])
        if col in COUNT_COLUMNS or col.startswith(TRACKED_PREFIX):
            if pd.api.types.is_float_dtype(values.dtype):
                values = values.round()
            columns[col] = values.astype("Int64")
        else:
            columns[col] = values.astype("float64")
    frame = pd.DataFrame(columns).sort_values(list(TIMELINE_KEY), kind="stable")
    return frame.reset_index(drop=True)


def timeline_availability(timeline: pd.DataFrame) -> dict[str, bool]:
    """Which source tables a timeline carries data from (a source is unknown if all-NaN)."""
    avail: dict[str, bool] = {}
    sources = TIMELINE_SOURCE | dict.fromkeys(
        map(tracked_column, tracked_groups(timeline.columns)), "usage_events"
    )
    for col, src in sources.items():
        has = col in timeline.columns and bool(timeline[col].notna().any())
        avail[src] = avail.get(src, False) or has
    return avail
