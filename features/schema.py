"""The data contract: canonical input tables, their columns and types, and the weekly timeline.

This module is pure data. It is the one place that says what churnlens reads; loading and validation
live in :mod:`churnlens.features.contract`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

ColumnKind = Literal["id", "timestamp", "date", "number", "count", "text", "bool"]


@dataclass(frozen=True)
class Column:
    """One column of a contract table."""

    name: str
    kind: ColumnKind
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class TableSpec:
    """One contract table: its columns and which timestamp dates a row."""

    name: str
    columns: tuple[Column, ...]
    time_column: str | None
    description: str = ""

    @property
    def required(self) -> tuple[str, ...]:
        """Names of the required columns."""
        return tuple(c.name for c in self.columns if c.required)

    @property
    def names(self) -> tuple[str, ...]:
        """Names of all known columns, required first."""
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        TableSpec(
            "accounts",
            (
                Column("account_id", "id", True, "customer account identifier"),
                Column("created_at", "timestamp", True, "when the account started (UTC)"),
                Column("name", "text"),
                Column("plan", "text"),
                Column("arr", "number", description="current annual recurring revenue"),
                Column("seats", "number", description="current licensed seats"),
                Column("industry", "text"),
                Column("region", "text"),
                Column("csm_id", "text"),
                Column("touch_tier", "text", description="high / low / tech"),
                Column("renewal_date", "date", description="next contract renewal"),
                Column(
                    "billing_period",
                    "text",
                    description="monthly / annual: the contract term (a monthly contract can end"
                    " at any monthly anniversary of created_at)",
                ),
            ),
            time_column="created_at",
            description="one row per customer account (required)",
        ),
        TableSpec(
            "usage_events",
            (
                Column("account_id", "id", True),
                Column("occurred_at", "timestamp", True),
                Column("event", "text", True, "event name; login and core features are config"),
                Column("user_id", "text"),
                Column("quantity", "count", description="times the event happened (default 1)"),
            ),
            time_column="occurred_at",
            description="product usage, one row per event (or per event batch with quantity)",
        ),
        TableSpec(
            "tickets",
            (
                Column("account_id", "id", True),
                Column("opened_at", "timestamp", True),
                Column("ticket_id", "text"),
                Column("closed_at", "timestamp"),
                Column("priority", "text", description="low / normal / high / urgent"),
                Column("category", "text"),
                Column("csat", "number"),
            ),
            time_column="opened_at",
            description="support tickets",
        ),
        TableSpec(
            "surveys",
            (
                Column("account_id", "id", True),
                Column("sent_at", "timestamp", True),
                Column("responded_at", "timestamp"),
                Column("score", "number", description="NPS answer 0-10"),
            ),
            time_column="sent_at",
            description="NPS / satisfaction surveys sent and answered",
        ),
        TableSpec(
            "touchpoints",
            (
                Column("account_id", "id", True),
                Column("occurred_at", "timestamp", True),
                Column("kind", "text", True, "call, email, meeting, qbr, ..."),
                Column("direction", "text", description="inbound / outbound"),
                Column("responded", "bool"),
            ),
            time_column="occurred_at",
            description="CSM contacts with the customer",
        ),
        TableSpec(
            "contracts",
            (
                Column("account_id", "id", True),
                Column("effective_at", "timestamp", True),
                Column("arr", "number"),
                Column("seats", "number"),
                Column("plan", "text"),
                Column("change", "text", description="new / upsell / downgrade / renewal"),
            ),
            time_column="effective_at",
            description="contract changes; each row is in force from effective_at",
        ),
        TableSpec(
            "churn_events",
            (
                Column("account_id", "id", True),
                Column("churned_at", "timestamp", True),
                Column("reason", "text"),
                Column("avoidable", "bool"),
            ),
            time_column="churned_at",
            description="when an account left, and why",
        ),
    )
}

# Spellings of ``accounts.billing_period`` (compared lower-cased, stripped) and what they mean.
BILLING_PERIODS: dict[str, str] = {
    **dict.fromkeys(("monthly", "month", "months", "1 month", "mo", "mon"), "monthly"),
    **dict.fromkeys(
        ("annual", "annually", "yearly", "year", "years", "1 year", "12 months", "yr"), "annual"
    ),
}

TABLE_NAMES: tuple[str, ...] = tuple(TABLES)
OPTIONAL_TABLES: tuple[str, ...] = tuple(t for t in TABLES if t != "accounts")
FILE_SUFFIXES: tuple[str, ...] = (".parquet", ".csv.gz", ".csv")

# The weekly timeline (stage 1 output, and what a client sends to the API): key columns, then these.
TIMELINE_KEY: tuple[str, ...] = ("account_id", "week_start")
TIMELINE_COLUMNS: tuple[str, ...] = (
    "logins",
    "active_users",
    "events",
    "distinct_features",
    "core_feature_events",
    "tickets_opened",
    "tickets_urgent",
    "tickets_open",
    "surveys_sent",
    "surveys_answered",
    "nps_sum",
    "nps_n",
    "touches",
    "touches_inbound",
    "seats",
    "arr",
)
# Key-event groups (``events.tracked``): one more count column per group, ``events__<group>``.
TRACKED_PREFIX = "events__"
TRACKED_GROUP = re.compile(r"[a-z](?:_?[a-z0-9])*")
MAX_GROUP_NAME = 40
MAX_TRACKED_GROUPS = 64
_TRACKED_COLUMN = re.compile(rf"{TRACKED_PREFIX}({TRACKED_GROUP.pattern})")


def tracked_column(group: str) -> str:
    """The timeline column of the tracked event group ``group``."""
    return TRACKED_PREFIX + group


def tracked_groups(columns: Iterable[str]) -> list[str]:
    """The tracked event groups whose columns are among ``columns``, in their order."""
    out = []
    for c in columns:
        m = _TRACKED_COLUMN.fullmatch(str(c))
        if m and len(m.group(1)) <= MAX_GROUP_NAME:
            out.append(m.group(1))
    return out


# Which source table each timeline column comes from (a missing table makes its columns NaN).
TIMELINE_SOURCE: dict[str, str] = {
    **dict.fromkeys(
        ("logins", "active_users", "events", "distinct_features", "core_feature_events"),
        "usage_events",
    ),
    **dict.fromkeys(("tickets_opened", "tickets_urgent", "tickets_open"), "tickets"),
    **dict.fromkeys(("surveys_sent", "surveys_answered", "nps_sum", "nps_n"), "surveys"),
    **dict.fromkeys(("touches", "touches_inbound"), "touchpoints"),
    **dict.fromkeys(("seats", "arr"), "contracts"),
}
