"""Adapter: the RavenStack synthetic multi-table SaaS dataset to contract tables.

Source files (one folder, each named ``ravenstack_<table>.csv`` or ``<table>.csv``): accounts,
subscriptions, feature_usage, support_tickets, churn_events. Dates are naive and taken as UTC.

Mapping (faithful: the known inconsistencies are reported, not fixed):

- ``accounts``: ``account_id``; ``created_at`` = ``signup_date``; ``name`` = ``account_name``;
  ``industry``; ``region`` = ``country``; ``plan`` = ``plan_tier``; ``seats``. ``churn_flag`` is
  not written: ``churn_events`` is the source of churn, and the two disagree (reported).
- ``contracts``: one row per subscription, ordered by account, ``start_date``, ``subscription_id``;
  ``effective_at`` = ``start_date``, ``arr`` = ``arr_amount``, ``seats``, ``plan`` = ``plan_tier``;
  ``change`` = ``new`` for an account's first subscription, else ``upsell`` when ``upgrade_flag``,
  ``downgrade`` when ``downgrade_flag``, missing when both are set, ``renewal`` when neither.
  Trials are written as they are (``arr`` 0). Subscriptions overlap heavily (most have no
  ``end_date``); churnlens reads each contract row as replacing the one before, so the ARR in force
  is the latest subscription's, not the sum of those open (reported).
- ``usage_events``: feature_usage joined to subscriptions for ``account_id``; ``occurred_at`` =
  ``usage_date``, ``event`` = ``feature_name``, ``quantity`` = ``usage_count``. No ``user_id``.
- ``tickets``: ``ticket_id``; ``opened_at`` = ``submitted_at`` (a date); ``closed_at``;
  ``priority`` as given (low / medium / high / urgent); ``csat`` = ``satisfaction_score`` (1-5,
  empty = no response).
- ``churn_events``: every churn event, including reactivated accounts' repeat churns (churnlens
  uses an account's first); ``churned_at`` = ``churn_date``, ``reason`` = ``reason_code``.
  ``avoidable`` is False for reasons in :data:`UNAVOIDABLE_REASONS` and True for the others; the
  column is written only when some reason is clearly unavoidable. RavenStack's codes (pricing,
  support, features, competitor, budget, unknown) are all things a vendor can act on or that say
  nothing (``unknown``); none is clearly unavoidable, so ``avoidable`` is not written (unknown).
- No surveys or touchpoints exist, so none are written.

Repairs (each reported with a count): feature_usage rows whose ``subscription_id`` is unknown are
dropped (no account); rows that repeat another row exactly (same ``usage_id`` and content) are
dropped, the first kept. A ``usage_id`` shared by rows that *differ* is an id collision, not a
duplicate event (RavenStack ids are 6 hex digits; among 25,000 ids about 19 collisions are expected
by chance and 21 are present, each pair differing in subscription, date and feature): both rows are
kept, since ``usage_events`` has no id column for them to clash in.

Config (``churnlens.yaml``): ``events.login`` is empty: feature_usage holds daily per-feature
counts and no login or session event, and any feature as a proxy would also drop out of
``distinct_features``. ``events.core_features`` is empty: the 40 features are opaque
(``feature_1`` .. ``feature_40``), used about equally, and ``is_beta_feature`` is set per row, not
per feature. Fill both in by hand if you know better. ``registry.model_name`` =
``churnlens-ravenstack``, so a model of this public data is never compared with (or replaces) the
champion of the user's own ``churnlens`` model in a shared registry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import ChurnlensError
from .base import ImportReport, as_bool, find_source_file, to_utc, write_tables

log = logging.getLogger(__name__)

UNAVOIDABLE_REASONS: tuple[str, ...] = (
    "acquired",
    "acquisition",
    "merger",
    "bankrupt",
    "bankruptcy",
    "out_of_business",
    "business_closed",
)
"""Reason codes that are clearly not the vendor's to prevent (matched case-insensitively)."""
MODEL_NAME = "churnlens-ravenstack"

SOURCE_TABLES = ("accounts", "subscriptions", "feature_usage", "support_tickets", "churn_events")
REQUIRED: dict[str, tuple[str, ...]] = {
    "accounts": ("account_id", "signup_date"),
    "subscriptions": ("subscription_id", "account_id", "start_date"),
    "feature_usage": ("usage_id", "subscription_id", "usage_date", "feature_name"),
    "support_tickets": ("ticket_id", "account_id", "submitted_at"),
    "churn_events": ("account_id", "churn_date"),
}
TABLE_TIME = {"usage_events": "occurred_at", "tickets": "opened_at"}
DATES: dict[str, tuple[str, ...]] = {
    "accounts": ("signup_date",),
    "subscriptions": ("start_date", "end_date"),
    "feature_usage": ("usage_date",),
    "support_tickets": ("submitted_at", "closed_at"),
    "churn_events": ("churn_date",),
}


@dataclass
class RavenstackSource:
    """The five source tables, every column read as text, dates parsed to UTC."""

    accounts: pd.DataFrame
    subscriptions: pd.DataFrame
    feature_usage: pd.DataFrame
    support_tickets: pd.DataFrame
    churn_events: pd.DataFrame


def read_source(source: Path) -> RavenstackSource:
    """Read the five CSV files of a RavenStack folder."""
    frames: dict[str, pd.DataFrame] = {}
    for name in SOURCE_TABLES:
        path = find_source_file(Path(source), f"ravenstack_{name}.csv", f"{name}.csv")
        df = pd.read_csv(path, dtype=str, keep_default_na=True)
        missing = [c for c in REQUIRED[name] if c not in df.columns]
        if missing:
            raise ChurnlensError(f"{path}: missing column(s) {', '.join(missing)}")
        for col in DATES[name]:
            if col in df:
                df[col] = to_utc(df[col])
        frames[name] = df
    return RavenstackSource(**frames)


def _num(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce").astype("float64")


def build_accounts(accounts: pd.DataFrame) -> pd.DataFrame:
    """Accounts: signup date, name, industry, country, plan tier and seats."""
    out = pd.DataFrame(
        {"account_id": accounts["account_id"], "created_at": accounts["signup_date"]}
    )
    for src, dst in (
        ("account_name", "name"),
        ("plan_tier", "plan"),
        ("industry", "industry"),
        ("country", "region"),
    ):
        if src in accounts:
            out[dst] = accounts[src]
    if "seats" in accounts:
        out["seats"] = _num(accounts["seats"])
    return out.reset_index(drop=True)


def order_subscriptions(subs: pd.DataFrame) -> pd.DataFrame:
    """Subscriptions by account, start date and (to break ties) subscription id."""
    order = ["account_id", "start_date", "subscription_id"]
    return subs.sort_values(order, kind="stable").reset_index(drop=True)


def contract_changes(subs: pd.DataFrame) -> pd.Series:
    """``change`` per ordered subscription: new / upsell / downgrade / renewal (missing if both)."""
    up = as_bool(subs["upgrade_flag"]).fillna(False).astype(bool)
    down = as_bool(subs["downgrade_flag"]).fillna(False).astype(bool)
    change = pd.Series("renewal", index=subs.index, dtype=object)
    change[up] = "upsell"
    change[down] = "downgrade"
    change[up & down] = None
    change[~subs["account_id"].duplicated()] = "new"
    return change


def build_contracts(subs: pd.DataFrame) -> pd.DataFrame:
    """Contract rows from ordered subscriptions."""
    out = pd.DataFrame(
        {
            "account_id": subs["account_id"],
            "effective_at": subs["start_date"],
            "arr": _num(subs["arr_amount"]),
            "seats": _num(subs["seats"]),
            "plan": subs["plan_tier"],
            "change": contract_changes(subs).astype(str),
        }
    )
    return out.reset_index(drop=True)


def dedupe_usage_ids(usage: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    """Drop exact repeats of a usage row (first kept); keep rows that only share a ``usage_id``."""
    exact = usage.duplicated(keep="first")
    report.note(
        "usage_events",
        None,
        "duplicate_usage_row",
        "feature_usage row repeats an earlier row exactly (same usage_id and content); "
        "dropped, first kept",
        int(exact.sum()),
        usage.loc[exact, "usage_id"],
    )
    usage = usage.loc[~exact]
    shared = usage["usage_id"].duplicated(keep=False)
    report.note(
        "usage_events",
        None,
        "duplicate_usage_id",
        f"usage_id shared by rows that differ ({usage.loc[shared, 'usage_id'].nunique()} ids): "
        "an id collision, not a repeated event; all rows kept",
        int(shared.sum()),
        usage.loc[shared, "usage_id"],
    )
    return usage


def attach_accounts(usage: pd.DataFrame, subs: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    """Give each usage row its subscription's account and dates; unknown subscriptions dropped."""
    keys = subs.drop_duplicates("subscription_id").set_index("subscription_id")
    out = usage.assign(
        account_id=usage["subscription_id"].map(keys["account_id"]),
        sub_start=usage["subscription_id"].map(keys["start_date"]),
        sub_end=usage["subscription_id"].map(keys["end_date"]),
    )
    unknown = out["account_id"].isna()
    report.note(
        "usage_events",
        "account_id",
        "unknown_subscription",
        "feature_usage.subscription_id not in subscriptions (no account); dropped",
        int(unknown.sum()),
        out.loc[unknown, "usage_id"],
    )
    return out.loc[~unknown]


def avoidable_from_reasons(reasons: pd.Series) -> pd.Series | None:
    """False for clearly unavoidable reasons, True otherwise; None when no reason is unavoidable."""
    unavoidable = reasons.astype(str).str.strip().str.lower().isin(UNAVOIDABLE_REASONS)
    if not unavoidable.any():
        return None
    return ~unavoidable.astype(bool)


def _first_churn(churn: pd.DataFrame) -> pd.Series:
    return churn.groupby("account_id")["churn_date"].min()


def _check_accounts(src: RavenstackSource, report: ImportReport) -> None:
    acc, churn = src.accounts, src.churn_events
    if "churn_flag" in acc:
        flag = as_bool(acc["churn_flag"]).fillna(False).astype(bool)
        has_event = acc["account_id"].isin(churn["account_id"])
        report.note(
            "accounts",
            "churn_flag",
            "churn_flag_without_event",
            "churn_flag is True but the account has no churn event (churn_events is used)",
            int((flag & ~has_event).sum()),
            acc.loc[flag & ~has_event, "account_id"],
        )
        report.note(
            "accounts",
            "churn_flag",
            "churn_event_without_flag",
            "the account has churn events but churn_flag is False (churn_events is used)",
            int((~flag & has_event).sum()),
            acc.loc[~flag & has_event, "account_id"],
        )
    first_sub = order_subscriptions(src.subscriptions).groupby("account_id").head(1)
    first_sub = first_sub.set_index("account_id")
    for col, dst in (("plan_tier", "plan"), ("seats", "seats")):
        if col not in acc:
            continue
        theirs = acc["account_id"].map(first_sub[col])
        differs = theirs.notna() & (acc[col] != theirs)
        report.note(
            "accounts",
            dst,
            f"{dst}_differs_from_first_subscription",
            f"accounts.{col} (documented as the initial value) differs from the account's first "
            f"subscription's {col}; accounts.{col} is written",
            int(differs.sum()),
            acc.loc[differs, "account_id"],
        )


def _check_subscriptions(subs: pd.DataFrame, churn: pd.DataFrame, report: ImportReport) -> None:
    """Notes on ordered subscriptions."""
    open_end = pd.Timestamp("9999-12-31", tz="UTC").as_unit("us")
    end = subs["end_date"].fillna(open_end)
    covered = end.groupby(subs["account_id"]).cummax().groupby(subs["account_id"]).shift()
    overlap = covered.notna() & (subs["start_date"] < covered)
    report.note(
        "contracts",
        "effective_at",
        "overlapping_subscriptions",
        "subscription starts while an earlier one of the account is still open (no end_date or "
        "a later one); churnlens reads each start as replacing the previous contract, so ARR in "
        "force is the latest subscription's, not the sum",
        int(overlap.sum()),
        subs.loc[overlap, "subscription_id"],
    )
    same_day = subs.duplicated(["account_id", "start_date"])
    report.note(
        "contracts",
        "effective_at",
        "same_day_subscriptions",
        "another subscription of the account starts the same day; ordered by subscription_id",
        int(same_day.sum()),
        subs.loc[same_day, "subscription_id"],
    )
    up = as_bool(subs["upgrade_flag"]).fillna(False).astype(bool)
    down = as_bool(subs["downgrade_flag"]).fillna(False).astype(bool)
    both = up & down & subs["account_id"].duplicated()
    report.note(
        "contracts",
        "change",
        "upgrade_and_downgrade",
        "upgrade_flag and downgrade_flag are both True; change left missing",
        int(both.sum()),
        subs.loc[both, "subscription_id"],
    )
    arr = _num(subs["arr_amount"])
    prev = arr.groupby(subs["account_id"]).shift()
    change = contract_changes(subs)
    disagree = prev.notna() & (
        ((change == "upsell") & (arr < prev))
        | ((change == "downgrade") & (arr > prev))
        | ((change == "renewal") & (arr != prev))
    )
    report.note(
        "contracts",
        "change",
        "change_disagrees_with_arr",
        "change (from upgrade_flag / downgrade_flag) disagrees with the ARR move from the "
        "account's previous subscription; the flags are written as given",
        int(disagree.sum()),
        subs.loc[disagree, "subscription_id"],
    )
    if "is_trial" in subs:
        trial = as_bool(subs["is_trial"]).fillna(False).astype(bool)
        report.note(
            "contracts",
            "arr",
            "trial_subscription",
            "trial subscription written as a contract with its arr_amount (0 for trials)",
            int(trial.sum()),
            subs.loc[trial, "subscription_id"],
        )
    first_churn = subs["account_id"].map(_first_churn(churn))
    still_open = subs["end_date"].isna() & (subs["start_date"] <= first_churn)
    report.note(
        "contracts",
        None,
        "open_after_churn",
        "subscription started before the account's first churn and never ends (no end_date)",
        int(still_open.sum()),
        subs.loc[still_open, "subscription_id"],
    )
    last_churn = subs["account_id"].map(churn.groupby("account_id")["churn_date"].max())
    after = subs["start_date"] > last_churn
    report.note(
        "contracts",
        None,
        "subscription_after_last_churn",
        "subscription starts after the account's last churn event (a reactivation with no "
        "churn recorded after it)",
        int(after.sum()),
        subs.loc[after, "subscription_id"],
    )


def _check_dates(
    table: str,
    df: pd.DataFrame,
    time_col: str,
    id_col: str,
    what: str,
    src: RavenstackSource,
    report: ImportReport,
) -> None:
    """Rows dated before the account's signup or after its first churn."""
    signup = df["account_id"].map(src.accounts.set_index("account_id")["signup_date"])
    early = df[time_col] < signup
    report.note(
        table,
        TABLE_TIME[table],
        "before_signup",
        f"{what} dated before the account's signup_date (the churnlens loader drops these)",
        int(early.sum()),
        df.loc[early, id_col],
    )
    late = df[time_col] > df["account_id"].map(_first_churn(src.churn_events))
    report.note(
        table,
        TABLE_TIME[table],
        "after_first_churn",
        f"{what} dated after the account's first churn event (churnlens ends an account's "
        "timeline at its first churn)",
        int(late.sum()),
        df.loc[late, id_col],
    )


def _check_churn(churn: pd.DataFrame, report: ImportReport) -> None:
    counts = churn["account_id"].map(churn["account_id"].value_counts())
    several = counts > 1
    report.note(
        "churn_events",
        None,
        "several_churns",
        f"account has several churn events ({churn.loc[several, 'account_id'].nunique()} "
        "accounts); all written, churnlens uses the first",
        int(several.sum()),
        churn.loc[several, "account_id"],
    )
    same_day = churn.duplicated(["account_id", "churn_date"])
    report.note(
        "churn_events",
        "churned_at",
        "same_day_churns",
        "another churn event of the account on the same day; both written",
        int(same_day.sum()),
        churn.loc[same_day, "account_id"],
    )
    if "is_reactivation" in churn:
        react = as_bool(churn["is_reactivation"]).fillna(False).astype(bool)
        first = churn["churn_date"].eq(churn["account_id"].map(_first_churn(churn)))
        first &= ~churn.duplicated(["account_id", "churn_date"])
        report.note(
            "churn_events",
            None,
            "reactivation_without_prior_churn",
            "is_reactivation is True on the account's first churn event (no earlier churn)",
            int((react & first).sum()),
            churn.loc[react & first, "account_id"],
        )


def build_usage(src: RavenstackSource, report: ImportReport) -> pd.DataFrame:
    """Usage rows with their account, after the id repairs; notes on their dates."""
    usage = dedupe_usage_ids(src.feature_usage, report)
    usage = attach_accounts(usage, src.subscriptions, report)
    before = usage["usage_date"] < usage["sub_start"]
    after = usage["sub_end"].notna() & (usage["usage_date"] > usage["sub_end"])
    outside = before | after
    share = 1.0 - outside.mean() if len(usage) else 1.0
    report.note(
        "usage_events",
        "occurred_at",
        "outside_subscription",
        f"usage_date outside its subscription's start_date..end_date ({int(before.sum())} "
        f"before start, {int(after.sum())} after end; {share:.0%} of rows inside); kept and "
        "attributed to the subscription's account",
        int(outside.sum()),
        usage.loc[outside, "usage_id"],
    )
    _check_dates("usage_events", usage, "usage_date", "usage_id", "usage", src, report)
    out = pd.DataFrame(
        {
            "account_id": usage["account_id"],
            "occurred_at": usage["usage_date"],
            "event": usage["feature_name"],
            "quantity": _num(usage["usage_count"]) if "usage_count" in usage else 1.0,
        }
    )
    return out.reset_index(drop=True)


def build_tickets(src: RavenstackSource, report: ImportReport) -> pd.DataFrame:
    """Tickets: opened, closed, priority and CSAT."""
    t = src.support_tickets
    _check_dates("tickets", t, "submitted_at", "ticket_id", "ticket", src, report)
    out = pd.DataFrame(
        {"account_id": t["account_id"], "opened_at": t["submitted_at"], "ticket_id": t["ticket_id"]}
    )
    if "closed_at" in t:
        out["closed_at"] = t["closed_at"]
        bad = t["closed_at"] < t["submitted_at"]
        report.note(
            "tickets",
            "closed_at",
            "closed_before_opened",
            "closed_at before submitted_at (the churnlens loader sets these missing)",
            int(bad.sum()),
            t.loc[bad, "ticket_id"],
        )
    if "priority" in t:
        out["priority"] = t["priority"]
    if "satisfaction_score" in t:
        out["csat"] = _num(t["satisfaction_score"])
    return out.reset_index(drop=True)


def build_churn(churn: pd.DataFrame, report: ImportReport) -> pd.DataFrame:
    """Churn events: date, reason and (when some reason is clearly unavoidable) avoidable."""
    out = pd.DataFrame({"account_id": churn["account_id"], "churned_at": churn["churn_date"]})
    if "reason_code" not in churn:
        return out
    out["reason"] = churn["reason_code"]
    avoidable = avoidable_from_reasons(churn["reason_code"])
    if avoidable is not None:
        out["avoidable"] = avoidable.to_numpy()
    else:
        codes = sorted(churn["reason_code"].dropna().astype(str).unique())
        report.note(
            "churn_events",
            "avoidable",
            "avoidable_unknown",
            f"no reason code is clearly unavoidable ({', '.join(codes)}); avoidable not written",
            len(churn),
            codes,
        )
    return out.reset_index(drop=True)


def config_dict() -> dict[str, Any]:
    """The ``churnlens.yaml`` written beside the tables (see the module docstring)."""
    return {
        "events": {"login": [], "core_features": []},
        "registry": {"model_name": MODEL_NAME},
    }


def convert_ravenstack(
    source: Path,
) -> tuple[dict[str, pd.DataFrame], dict[str, Any], ImportReport]:
    """Convert a RavenStack folder to contract tables, a config dict and a report."""
    src = read_source(Path(source))
    report = ImportReport(str(source))
    src.subscriptions = order_subscriptions(src.subscriptions)
    _check_accounts(src, report)
    _check_subscriptions(src.subscriptions, src.churn_events, report)
    _check_churn(src.churn_events, report)
    tables = {
        "accounts": build_accounts(src.accounts),
        "usage_events": build_usage(src, report),
        "tickets": build_tickets(src, report),
        "contracts": build_contracts(src.subscriptions),
        "churn_events": build_churn(src.churn_events, report),
    }
    for name, df in tables.items():
        unknown = ~df["account_id"].isin(tables["accounts"]["account_id"])
        report.note(
            name,
            "account_id",
            "unknown_account",
            "row for an account missing from accounts (the churnlens loader drops these)",
            int(unknown.sum()),
            df.loc[unknown, "account_id"],
        )
    report.rows = {k: len(v) for k, v in tables.items()}
    log.info("ravenstack: %s", ", ".join(f"{k} {v}" for k, v in report.rows.items()))
    return tables, config_dict(), report


def import_ravenstack(source: Path, out: Path) -> ImportReport:
    """Convert a RavenStack folder and write the tables and ``churnlens.yaml`` to ``out``."""
    tables, config, report = convert_ravenstack(source)
    write_tables(tables, Path(out), config)
    return report
