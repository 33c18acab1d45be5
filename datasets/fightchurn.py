"""Adapter: the *Fighting Churn with Data* simulator output (``socialnet7``) to contract tables.

Source files (one folder): ``account.csv`` (account_id, channel, date_of_birth, country),
``subscription.csv`` (account_id, product, start_date, end_date, mrr, quantity, units,
bill_period_months, discount), ``event.csv.gz`` or ``event.csv`` (account_id, event_time,
event_type_id, user_id, event_value; not sorted) and ``event_type.csv`` (event_type_id,
event_type_name).

Mapping:

- ``accounts``: ``created_at`` = the account's first subscription start; ``plan`` = ``product`` and
  ``arr`` = 12 x ``mrr`` of its latest subscription; ``seats`` = that subscription's ``quantity``
  (written only when the source has any quantity); ``region`` = ``country``. No ``renewal_date``:
  periods are monthly and the latest end date is a fact from the end of the data (for a churner it
  *is* the churn date), so it would leak into earlier snapshots.
- ``usage_events``: ``occurred_at`` = ``event_time`` (naive, taken as UTC); ``event`` = the event
  type *name* from ``event_type.csv``; ``user_id``; ``quantity`` = ``event_value`` where numeric,
  else 1. socialnet7 has one user per account (``user_id`` 0), so ``active_users`` is always 1.
- ``contracts``: one row per subscription period, ``effective_at`` = ``start_date``, ``arr`` = 12 x
  ``mrr``, ``plan`` = ``product``; ``change`` = ``new`` for an account's first period and for the
  first period after a lapse longer than the gap tolerance (a reactivation), ``upsell`` /
  ``downgrade`` when ``mrr`` rises / falls against the previous period, else ``renewal``.
- ``churn_events``: periods whose gap to the coverage before them is at most
  :data:`GAP_TOLERANCE_DAYS` join one coverage *spell* (a renewal, not a churn). An account has
  churned when its last spell ends on or before the data end and nothing resumes it; ``churned_at``
  = the end of that final coverage (``end_date`` is exclusive: the next period starts on it). A
  longer lapse followed by resumption is *not* a churn (the account came back); it is reported.
  No reason, no ``avoidable``: the simulator records neither.
- No tickets, surveys or touchpoints exist, so none are written (unknown, not zero).

The data end is the last subscription ``start_date`` (2020-06-01 for socialnet7): the last day on
which the simulator recorded renewal decisions. Event and end dates are *not* used: the simulator
writes the events of every period that started before the end, through that period's end (events
run to 2020-06-30, ends to 2020-07-01) without deciding any of those renewals. A coverage that ends
on the data end without a renewal starting that day is a churn; one that ends later is not.

Repairs (each reported as an :class:`~churnlens.datasets.base.ImportNote` with a count):

- events dated after the data end are dropped: they belong to periods whose renewal was never
  simulated, and keeping them would make churnlens read June as a month in which nobody could
  churn (its default ``as_of`` is the last date in the data);
- subscriptions or events of accounts missing from ``account.csv``, and accounts with no
  subscription (no ``created_at``), are dropped;
- an ``event_type_id`` missing from ``event_type.csv`` becomes ``event_type_<id>``.

Config written with the tables (``churnlens.yaml``): ``events.login`` = ``[adview]``. The app has no
login event, and ChurnSim has no sessions. An ad impression is the one event the user does not
choose: it is served whenever the user has the app open, so it is the closest honest proxy for "was
in the app" (a session). Counting *every* event as a login would also be defensible, but churnlens
leaves login events out of ``distinct_features``, which would then always be 0. Caveat: in
socialnet7 ad views lower satisfaction (utility -1.5), so this "login" count is a presence signal,
not a pure health signal. ``events.core_features`` = the events with positive utility in the
socialnet7 configuration (post, newfriend, like, message, reply): the value moments of a social app.
``events.tracked`` = every event type (up to 64), each a group of its own: an app's event types
*are* its vocabulary of value and friction (likes and posts, dislikes and unfriends), and ChurnSim's
churn follows the mix of them, which the generic usage columns fold into counts and breadth
(``bench/quality.py`` measures both). ``labels.horizon_weeks`` = 4: the data spans five months and
the README benchmark uses a 30-day horizon. Five months hold about 16 weeks of observation dates
with a complete horizon, too few for the default 13-week test and validation windows, so
``labels.step_weeks`` = 1 and ``split`` = 4 weeks each (train on the first ~4 weeks of dates, then a
purge gap, validation, a gap, test): ``churnlens train`` runs on the imported data as it is.
``registry.model_name`` = ``churnlens-fightchurn``, so a model of this public data is never compared
with (or replaces) the champion of the user's own ``churnlens`` model in a shared registry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from ..errors import ChurnlensError
from ..features.schema import MAX_TRACKED_GROUPS
from .base import ImportReport, as_id, find_source_file, to_utc, write_tables

log = logging.getLogger(__name__)

GAP_TOLERANCE_DAYS = 7
"""A gap of at most this many days between two subscription periods is a renewal, not a churn."""
LOGIN_EVENTS: tuple[str, ...] = ("adview",)
CORE_FEATURES: tuple[str, ...] = ("post", "newfriend", "like", "message", "reply")
HORIZON_WEEKS = 4
SPLIT_WEEKS = 4
"""Test and validation windows (weeks of weekly snapshots) that fit the five months of data."""
MODEL_NAME = "churnlens-fightchurn"


@dataclass
class FightchurnSource:
    """The four source files, read with ids as strings and dates parsed to UTC."""

    accounts: pd.DataFrame
    subscriptions: pd.DataFrame
    events: pd.DataFrame
    event_types: pd.DataFrame


def _require(df: pd.DataFrame, cols: tuple[str, ...], path: Path) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ChurnlensError(f"{path}: missing column(s) {', '.join(missing)}")


def read_events(path: Path) -> pd.DataFrame:
    """Read the (large, unsorted) event file fast with pyarrow; ``event_time`` parsed to UTC."""
    text = {c: pa.string() for c in ("account_id", "event_time", "user_id", "event_value")}
    opts = pacsv.ConvertOptions(column_types=text, strings_can_be_null=True)
    try:
        df = pacsv.read_csv(path, convert_options=opts).to_pandas()
    except pa.ArrowInvalid as err:
        raise ChurnlensError(f"{path}: cannot read as CSV: {err}") from None
    _require(df, ("account_id", "event_time", "event_type_id"), path)
    df["event_time"] = to_utc(df["event_time"])
    return df


def read_source(source: Path) -> FightchurnSource:
    """Read ``account.csv``, ``subscription.csv``, ``event.csv[.gz]`` and ``event_type.csv``."""
    source = Path(source)
    paths = {
        "account": find_source_file(source, "account.csv"),
        "subscription": find_source_file(source, "subscription.csv"),
        "event": find_source_file(source, "event.csv.gz", "event.csv"),
        "event_type": find_source_file(source, "event_type.csv"),
    }
    accounts = pd.read_csv(paths["account"], dtype=str)
    _require(accounts, ("account_id",), paths["account"])
    subs = pd.read_csv(paths["subscription"], dtype={"account_id": str, "product": str})
    _require(subs, ("account_id", "start_date", "end_date", "mrr"), paths["subscription"])
    for col in ("start_date", "end_date"):
        subs[col] = to_utc(subs[col])
    types = pd.read_csv(paths["event_type"], dtype=str)
    _require(types, ("event_type_id", "event_type_name"), paths["event_type"])
    return FightchurnSource(accounts, subs, read_events(paths["event"]), types)


def find_data_end(subscriptions: pd.DataFrame) -> pd.Timestamp:
    """The last subscription start: the last day on which renewals were recorded."""
    end = subscriptions["start_date"].max()
    if pd.isna(end):
        raise ChurnlensError("subscription.csv: no subscription with a start_date")
    return pd.Timestamp(end)


def assign_spells(subs: pd.DataFrame, tolerance_days: int = GAP_TOLERANCE_DAYS) -> pd.DataFrame:
    """Sort periods and number each account's coverage spells.

    Adds ``gap_days`` (days from the coverage so far to this start; NaN for an account's first
    period, negative for an overlap) and ``spell`` (0, 1, ...: a gap longer than
    ``tolerance_days`` starts a new spell).
    """
    df = subs.sort_values(["account_id", "start_date", "end_date"], kind="stable")
    df = df.reset_index(drop=True)
    covered_to = df.groupby("account_id", sort=False)["end_date"].cummax()
    prev_cover = covered_to.groupby(df["account_id"], sort=False).shift()
    gap = (df["start_date"] - prev_cover).dt.total_seconds() / 86400.0
    new_spell = gap.isna() | (gap > tolerance_days)
    spell = new_spell.astype(int).groupby(df["account_id"], sort=False).cumsum() - 1
    return df.assign(gap_days=gap, spell=spell)


def churn_from_spells(spells: pd.DataFrame, data_end: pd.Timestamp) -> pd.DataFrame:
    """One churn per account whose coverage ends on or before ``data_end`` and never resumes."""
    last = spells.groupby("account_id", sort=True)["end_date"].max()
    churned = last[last <= data_end]
    return pd.DataFrame(
        {"account_id": churned.index.astype(str), "churned_at": churned.to_numpy()}
    ).astype({"churned_at": "datetime64[us, UTC]"})


def first_of_spell(spells: pd.DataFrame) -> pd.Series:
    """True for the first period of each coverage spell (an account's first period included)."""
    return spells["spell"].ne(spells.groupby("account_id", sort=False)["spell"].shift())


def contract_rows(spells: pd.DataFrame) -> pd.DataFrame:
    """Contract rows from spell-numbered periods (see the module docstring for ``change``)."""
    mrr = pd.to_numeric(spells["mrr"], errors="coerce")
    prev = mrr.groupby(spells["account_id"], sort=False).shift()
    change = pd.Series("renewal", index=spells.index, dtype=object)
    change[mrr > prev] = "upsell"
    change[mrr < prev] = "downgrade"
    change[mrr.isna() | prev.isna()] = None
    change[first_of_spell(spells)] = "new"
    out = pd.DataFrame(
        {
            "account_id": spells["account_id"].astype(str),
            "effective_at": spells["start_date"],
            "arr": 12.0 * mrr,
            "change": change,
        }
    )
    if "product" in spells:
        out.insert(3, "plan", spells["product"].astype(str))
    if "quantity" in spells and spells["quantity"].notna().any():
        out.insert(3, "seats", pd.to_numeric(spells["quantity"], errors="coerce"))
    return out.reset_index(drop=True)


def build_accounts(accounts: pd.DataFrame, spells: pd.DataFrame) -> pd.DataFrame:
    """Accounts dated by their first subscription, with the latest subscription's plan and ARR."""
    first = spells.groupby("account_id")["start_date"].min()
    latest = spells.sort_values(["account_id", "start_date"], kind="stable").groupby("account_id")
    latest_row = latest.tail(1).set_index("account_id")
    ids = accounts["account_id"].astype(str)
    out = pd.DataFrame(
        {
            "account_id": ids,
            "created_at": ids.map(first).astype("datetime64[us, UTC]"),
            "arr": ids.map(12.0 * pd.to_numeric(latest_row["mrr"], errors="coerce")),
        }
    )
    if "product" in latest_row:
        out.insert(2, "plan", ids.map(latest_row["product"]))
    if "quantity" in latest_row and latest_row["quantity"].notna().any():
        out["seats"] = ids.map(pd.to_numeric(latest_row["quantity"], errors="coerce"))
    if "country" in accounts:
        out["region"] = accounts["country"].astype(str).to_numpy()
    return out.reset_index(drop=True)


def event_quantity(values: pd.Series) -> pd.Series:
    """``event_value`` where it is a number, else 1."""
    q = pd.to_numeric(values, errors="coerce")
    return q.fillna(1.0).astype("float64")


def build_usage(
    events: pd.DataFrame, event_types: pd.DataFrame, report: ImportReport
) -> pd.DataFrame:
    """Usage rows: event names from ``event_type.csv``, quantity from numeric ``event_value``."""
    names = pd.Series(
        event_types["event_type_name"].astype(str).to_numpy(),
        index=pd.to_numeric(event_types["event_type_id"], errors="coerce"),
    )
    type_id = pd.to_numeric(events["event_type_id"], errors="coerce")
    event = type_id.map(names)
    unknown = event.isna()
    if unknown.any():
        label = "event_type_" + type_id[unknown].astype("Int64").astype(str)
        event = event.where(~unknown, label)
        report.note(
            "usage_events",
            "event",
            "unknown_event_type",
            "event_type_id not in event_type.csv; named event_type_<id>",
            int(unknown.sum()),
            events.loc[unknown, "event_type_id"],
        )
    out = pd.DataFrame(
        {
            "account_id": events["account_id"].astype(str),
            "occurred_at": events["event_time"],
            "event": event.astype(str),
        }
    )
    if "user_id" in events:
        out["user_id"] = events["user_id"].astype(str)
    if "event_value" in events:
        raw = events["event_value"]
        numeric = pd.to_numeric(raw, errors="coerce")
        bad = raw.notna() & numeric.isna()
        report.note(
            "usage_events",
            "quantity",
            "non_numeric_event_value",
            "event_value is not a number; quantity set to 1",
            int(bad.sum()),
            raw[bad],
        )
        out["quantity"] = event_quantity(raw)
    else:
        out["quantity"] = 1.0
    return out


def config_dict(event_names: Sequence[str] = ()) -> dict[str, Any]:
    """The ``churnlens.yaml`` written beside the tables (see the module docstring);
    ``event_names``, the app's event types, become the tracked event groups."""
    names = sorted(set(event_names))
    events: dict[str, Any] = {"login": list(LOGIN_EVENTS), "core_features": list(CORE_FEATURES)}
    if 0 < len(names) <= MAX_TRACKED_GROUPS:
        events["tracked"] = names
    return {
        "events": events,
        "labels": {"horizon_weeks": HORIZON_WEEKS, "step_weeks": 1},
        "split": {"test_weeks": SPLIT_WEEKS, "valid_weeks": SPLIT_WEEKS},
        "registry": {"model_name": MODEL_NAME},
    }


def _drop_unknown_accounts(
    df: pd.DataFrame, known: pd.Index, table: str, what: str, report: ImportReport
) -> pd.DataFrame:
    unknown = ~df["account_id"].isin(known)
    report.note(
        table,
        "account_id",
        "unknown_account",
        f"{what} of an account missing from account.csv; dropped",
        int(unknown.sum()),
        df.loc[unknown, "account_id"],
    )
    return df.loc[~unknown]


def convert_fightchurn(
    source: Path, *, gap_tolerance_days: int = GAP_TOLERANCE_DAYS
) -> tuple[dict[str, pd.DataFrame], dict[str, Any], ImportReport]:
    """Convert a fightchurn simulator folder to contract tables, a config dict and a report."""
    t0 = time.perf_counter()
    src = read_source(Path(source))
    report = ImportReport(str(source))
    log.info("read %s in %.1f s (%d events)", source, time.perf_counter() - t0, len(src.events))

    accounts_raw = src.accounts.assign(account_id=as_id(src.accounts["account_id"]))
    known = pd.Index(accounts_raw["account_id"])
    subs = src.subscriptions.assign(account_id=as_id(src.subscriptions["account_id"]))
    subs = _drop_unknown_accounts(subs, known, "contracts", "subscription", report)
    no_start = subs["start_date"].isna() | subs["end_date"].isna()
    report.note(
        "contracts",
        "effective_at",
        "missing_dates",
        "subscription without a readable start_date or end_date; dropped",
        int(no_start.sum()),
        subs.loc[no_start, "account_id"],
    )
    subs = subs.loc[~no_start]
    data_end = find_data_end(subs)
    spells = assign_spells(subs, gap_tolerance_days)

    accounts = build_accounts(accounts_raw, spells)
    undated = accounts["created_at"].isna()
    report.note(
        "accounts",
        "created_at",
        "no_subscription",
        "account with no subscription (no created_at); dropped",
        int(undated.sum()),
        accounts.loc[undated, "account_id"],
    )
    accounts = accounts.loc[~undated].reset_index(drop=True)
    if "region" in accounts:
        missing = accounts["region"].isna()
        report.note(
            "accounts",
            "region",
            "missing_country",
            "country is empty; region left missing",
            int(missing.sum()),
            accounts.loc[missing, "account_id"],
        )

    lapses = first_of_spell(spells) & spells["spell"].gt(0)
    report.note(
        "contracts",
        "change",
        "lapse_resumed",
        f"coverage lapsed more than {gap_tolerance_days} days and resumed: not a churn; "
        "the resuming period is change=new",
        int(lapses.sum()),
        spells.loc[lapses, "account_id"],
    )
    contracts = contract_rows(spells)
    churn = churn_from_spells(spells, data_end)
    near_end = churn["churned_at"] > data_end - pd.Timedelta(days=gap_tolerance_days)
    report.note(
        "churn_events",
        "churned_at",
        "churn_near_data_end",
        f"coverage ended within {gap_tolerance_days} days of the data end "
        f"({data_end.date()}); counted as churn, though a renewal after the data end would "
        "have made it a gap",
        int(near_end.sum()),
        churn.loc[near_end, "account_id"],
    )

    events = src.events.assign(account_id=as_id(src.events["account_id"]))
    events = _drop_unknown_accounts(events, known, "usage_events", "event", report)
    late = events["event_time"] >= data_end + pd.Timedelta(days=1)
    report.note(
        "usage_events",
        "occurred_at",
        "after_data_end",
        f"event dated after the data end ({data_end.date()}, the last subscription start): "
        "its period's renewal was never simulated; dropped",
        int(late.sum()),
        events.loc[late, "account_id"],
    )
    events = events.loc[~late]
    usage = build_usage(events, src.event_types, report)
    usage = usage.sort_values(["account_id", "occurred_at"], kind="stable").reset_index(drop=True)
    created = usage["account_id"].map(accounts.set_index("account_id")["created_at"])
    early = usage["occurred_at"] < created
    report.note(
        "usage_events",
        "occurred_at",
        "before_created",
        "event dated before the account's first subscription (the loader drops these)",
        int(early.sum()),
        usage.loc[early, "account_id"],
    )

    tables = {
        "accounts": accounts,
        "usage_events": usage,
        "contracts": contracts,
        "churn_events": churn,
    }
    report.rows = {k: len(v) for k, v in tables.items()}
    log.info(
        "fightchurn: %d accounts, %d churned by %s (%.1f s)",
        len(accounts),
        len(churn),
        data_end.date(),
        time.perf_counter() - t0,
    )
    return tables, config_dict(usage["event"].dropna().unique().tolist()), report


def import_fightchurn(source: Path, out: Path) -> ImportReport:
    """Convert a fightchurn folder and write the tables and ``churnlens.yaml`` to ``out``."""
    tables, config, report = convert_fightchurn(source)
    write_tables(tables, Path(out), config)
    return report
