"""Request and response models of the prediction API (Pydantic v2).

A request carries, per account, the ``accounts`` table row (``profile``) and that account's rows of
``churnlens timeline`` output (``weeks``), so any client can build one from the batch pipeline's own
files. Validation names the field path and the problem (``accounts[2].weeks[5].logins: must be >=
0``); cross-field rules (duplicated weeks, weeks after ``as_of``) are checked here too, so the
endpoint only ever sees a request it can score. Weeks out of order are sorted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, NotRequired

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

MAX_WEEKS = 104
DEFAULT_MAX_ACCOUNTS = 1000


# A count or amount: null (unknown) or a finite number >= 0. The checks run in pydantic-core (no
# Python call per field: a 1,000-account request has over a million of them); describe_errors
# words their errors.
Amount = Annotated[float | None, Field(ge=0, allow_inf_nan=False)]


class WeekIn(TypedDict):
    """One row of ``churnlens timeline`` output: a Monday and that week's activity counts.

    A column left out, or null, is unknown (NaN), never zero. The fields are the timeline columns
    of ``features/schema.py`` (a test keeps the two equal). Other keys are kept unvalidated: the
    service reads the served model's tracked event groups (``events__<group>``, checked there, as
    the groups depend on the model) and ignores the rest (``account_id``).
    A ``TypedDict``, not a model: a 1,000-account request has 100,000 weeks, and validating them
    into plain dicts takes half the time of building model instances.
    """

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]

    week_start: date
    logins: NotRequired[Amount]
    active_users: NotRequired[Amount]
    events: NotRequired[Amount]
    distinct_features: NotRequired[Amount]
    core_feature_events: NotRequired[Amount]
    tickets_opened: NotRequired[Amount]
    tickets_urgent: NotRequired[Amount]
    tickets_open: NotRequired[Amount]
    surveys_sent: NotRequired[Amount]
    surveys_answered: NotRequired[Amount]
    nps_sum: NotRequired[Amount]
    nps_n: NotRequired[Amount]
    touches: NotRequired[Amount]
    touches_inbound: NotRequired[Amount]
    seats: NotRequired[Amount]
    arr: NotRequired[Amount]


class ProfileIn(BaseModel):
    """The account's row of the ``accounts`` table; unknown keys are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    created_at: datetime
    arr: Amount = None
    seats: Amount = None
    plan: str | None = None
    touch_tier: str | None = None
    renewal_date: date | None = None
    billing_period: str | None = None  # monthly / annual (any case)

    @field_validator("created_at")
    @classmethod
    def _utc_naive(cls, v: datetime) -> datetime:
        """Timestamps are UTC: an aware one is converted, a naive one is taken as UTC."""
        return v.astimezone(UTC).replace(tzinfo=None) if v.tzinfo is not None else v


class AccountIn(BaseModel):
    """One account to score: its id, profile and up to 104 weeks of timeline."""

    model_config = ConfigDict(frozen=True)

    account_id: str = Field(min_length=1, max_length=256)
    profile: ProfileIn
    weeks: list[WeekIn] = Field(default_factory=list, max_length=MAX_WEEKS)

    @field_validator("weeks")
    @classmethod
    def _unique(cls, v: list[WeekIn]) -> list[WeekIn]:
        """A week sent twice is an error naming both rows (any order is fine: scoring sorts)."""
        seen: dict[date, int] = {}
        for i, week in enumerate(v):
            if week["week_start"] in seen:
                raise PydanticCustomError(
                    "duplicate_week",
                    "week_start {day} appears twice (weeks[{first}] and weeks[{second}])",
                    {
                        "day": week["week_start"].isoformat(),
                        "first": seen[week["week_start"]],
                        "second": i,
                    },
                )
            seen[week["week_start"]] = i
        return v


class PredictRequest(BaseModel):
    """``POST /predict`` body: accounts to score as of one date."""

    model_config = ConfigDict(frozen=True)

    as_of: date
    accounts: list[AccountIn] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> PredictRequest:
        """Account ids unique; no account created, and no week starting, after ``as_of``."""
        problems: list[str] = []
        first: dict[str, int] = {}
        for i, acc in enumerate(self.accounts):
            if acc.account_id in first:
                problems.append(
                    f"accounts[{i}].account_id: {acc.account_id!r} is also "
                    f"accounts[{first[acc.account_id]}]"
                )
            first.setdefault(acc.account_id, i)
            if acc.profile.created_at.date() > self.as_of:
                problems.append(
                    f"accounts[{i}].profile.created_at: {acc.profile.created_at.date()} is after "
                    f"as_of {self.as_of}"
                )
            for j, week in enumerate(acc.weeks):  # here, not per week: one call, not 100,000
                day = week["week_start"]
                if day.weekday() != 0:
                    problems.append(
                        f"accounts[{i}].weeks[{j}].week_start: must be a Monday (weeks run "
                        f"Monday-Sunday), got {day} ({day:%A})"
                    )
                    break
            late = [w["week_start"] for w in acc.weeks if w["week_start"] > self.as_of]
            if late:
                problems.append(
                    f"accounts[{i}].weeks: week_start {min(late)} is after as_of "
                    f"{self.as_of} ({len(late)} week(s) after as_of)"
                )
        if problems:
            raise PydanticCustomError(
                "inconsistent", "{problems}", {"problems": "; ".join(problems)}
            )
        return self


class ReasonOut(BaseModel):
    """A reason family raising the risk, its log-odds impact and the evidence sentences."""

    family: str
    label: str
    impact: float
    evidence: list[str]


class TaskOut(BaseModel):
    """One scheduled step of a play."""

    day: int
    task: str


class PlaybookOut(BaseModel):
    """A recommended play for the account's touch tier and risk band."""

    play_id: str
    family: str
    title: str
    action: str
    channel: str
    owner: str
    urgency: str
    due_days: int
    tasks: list[TaskOut]


class ResultOut(BaseModel):
    """Scores for one account, as ``churnlens score`` writes them."""

    account_id: str
    as_of: date
    churn_probability: float
    risk_band: str
    health_score: int
    touch_tier: str
    arr: float | None
    arr_at_risk: float | None
    reasons: list[ReasonOut]
    playbooks: list[PlaybookOut]


class PredictResponse(BaseModel):
    """``POST /predict`` answer: the model version and one result per account, in request order."""

    model_version: str
    results: list[ResultOut]


class ScoreAccountsRequest(BaseModel):
    """``POST /score_accounts`` body: the accounts whose latest stored scores you want."""

    model_config = ConfigDict(frozen=True)

    account_ids: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(min_length=1)


class StoredResultOut(ResultOut):
    """An account's latest stored score: a ``churnlens score`` row and which run made it."""

    model_version: str
    scored_at: datetime
    run_id: int
    lang: str


class ScoreAccountsResponse(BaseModel):
    """``POST /score_accounts`` answer: latest stored score per known account, in request order.

    ``missing`` lists the requested ids the store has no score for (never scored, or unknown).
    """

    results: list[StoredResultOut]
    missing: list[str]


class ModelInfo(BaseModel):
    """``GET /model``: what is being served."""

    version: str
    trained_at: str | None
    training_window: dict[str, str]
    metrics: dict[str, dict[str, float | None]]
    features: list[str]
    horizon_weeks: int | None
    calibration: str | None
    # The tracked event groups (group -> events): the ``events__<group>`` keys weeks should carry.
    tracked_events: dict[str, list[str]] = Field(default_factory=dict)


def field_path(loc: Iterable[int | str]) -> str:
    """``("accounts", 2, "weeks", 5, "logins")`` -> ``accounts[2].weeks[5].logins``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


# Errors of the whole body whose message names its own field paths (see PredictRequest).
PATHS_IN_MESSAGE = frozenset({"inconsistent", "value_error", "assertion_error"})


def describe_errors(errors: Sequence[Mapping[str, Any]]) -> list[str]:
    """One ``path: problem`` line per Pydantic error (``exc.errors()`` or BentoML's ``detail``).

    An error of the whole body (invalid JSON, not an object) is named ``body``.
    """
    lines = []
    for e in errors:
        kind = e.get("type")
        path = field_path(e.get("loc", ())) or ("" if kind in PATHS_IN_MESSAGE else "body")
        msg = str(e.get("msg", "invalid"))
        msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        ctx = e.get("ctx") or {}
        if kind == "missing":
            msg = "required field is missing"
        elif kind == "greater_than_equal":
            # BentoML's error detail leaves out the input and the context: the bound is then
            # read from the message, and the value is named only where it is given.
            bound = ctx.get("ge", msg.rsplit(" ", 1)[-1])
            got = e.get("input")
            msg = f"must be >= {bound}" + ("" if got is None else f", got {got}")
        elif kind == "finite_number":
            # JSON has no NaN/Infinity: BentoML's error detail shows such an input as null.
            got = e.get("input")
            msg = (
                "must be a finite number (send null for unknown), got "
                f"{'NaN or Infinity' if got is None else got}"
            )
        lines.append(f"{path}: {msg}" if path else msg)
    return lines
