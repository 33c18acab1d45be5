"""The score history: every scoring run's rows, appended in one transaction, and the queries on it.

``churnlens score`` appends each run (see :meth:`ScoreStore.append_scores`); the API and the CSM
page read it back: each account's latest score (:meth:`ScoreStore.latest_scores`), the one before
it (:meth:`ScoreStore.previous_scores`, for "change since the last scoring") and an account's
history over dates (:meth:`ScoreStore.history`, for a sparkline; :meth:`ScoreStore.histories` for
many accounts in one query). Rows keep the model version and the as-of date, so history can be
compared across models. Beside a score, a run may store its details (:meth:`ScoreStore.details`):
the account's recent weekly activity, the silent-customer flag and the reasons and plays in other
languages, for the CSM page.

Order of "latest": the latest ``as_of``; among runs of the same date, the latest ``scored_at``,
then the highest ``run_id`` (run ids only grow). Re-scoring an old date later therefore does not
replace a newer date's score.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any, TypedDict

from sqlalchemy import Engine, Select, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from ..errors import StoreError
from .db import (
    absolute_url,
    create_store_engine,
    database_url,
    display_url,
    error_text,
    store_error,
    upgrade_schema,
)
from .schema import details as details_table
from .schema import runs, scores

BATCH_ROWS = 1000  # rows per INSERT round trip
IN_CHUNK = 500  # account ids per IN (...) list
PROFILE_COLUMNS: tuple[str, ...] = ("csm_id", "name", "plan")


class StoredScore(TypedDict):
    """One account's stored score (reasons and plays decoded from JSON)."""

    run_id: int
    account_id: str
    as_of: date
    scored_at: datetime  # UTC
    model_version: str
    source: str
    churn_probability: float
    risk_band: str
    health_score: int
    touch_tier: str
    arr: float | None
    arr_at_risk: float | None
    top_reasons: list[dict[str, Any]]
    playbooks: list[dict[str, Any]]
    lang: str
    csm_id: str | None
    name: str | None
    plan: str | None


class ScoreSummary(TypedDict):
    """An account's latest score without its reasons and plays (ranking a whole book)."""

    run_id: int
    account_id: str
    as_of: date
    model_version: str
    churn_probability: float
    risk_band: str
    health_score: int
    touch_tier: str
    arr: float | None
    arr_at_risk: float | None
    lang: str
    csm_id: str | None
    name: str | None
    plan: str | None


SUMMARY_COLUMNS: tuple[str, ...] = tuple(ScoreSummary.__annotations__)


class RiskPoint(TypedDict):
    """One point of an account's risk history (its latest scoring of one as-of date)."""

    as_of: date
    churn_probability: float
    risk_band: str


class ScoreDetails(TypedDict):
    """What a run stored beside one account's score (for the CSM page)."""

    run_id: int
    account_id: str
    silent_decline: int | None  # 1 when the silent-customer pattern applies, None when unknown
    activity: dict[str, list[Any]] | None  # {"week_start": [iso...], "<column>": [value...]}
    translations: dict[str, dict[str, list[dict[str, Any]]]]  # lang -> top_reasons, playbooks


class ScoreRun(TypedDict):
    """One scoring run."""

    run_id: int
    scored_at: datetime  # UTC
    as_of: date
    model_version: str
    n_accounts: int
    data_digest: str | None
    source: str


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _to_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    if hasattr(value, "date"):  # pandas.Timestamp, numpy datetime wrappers
        return _to_date(value.date())
    raise TypeError(f"expected a date, got {value!r}")


def _opt_float(value: Any) -> float | None:
    if value is None:
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def _opt_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):  # not a scalar pandas understands
        pass
    text = str(value)
    return text or None


def _json_list(value: Any, field: str) -> str:
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, list):
        raise TypeError(f"{field}: expected a list, got {type(value).__name__}")
    return json.dumps(value, ensure_ascii=False)


def account_details(accounts: Any) -> dict[str, dict[str, str | None]]:
    """``account_id -> {csm_id, name, plan}`` from an accounts frame (absent columns -> None).

    Args:
        accounts: a pandas DataFrame with ``account_id`` and any of ``csm_id``, ``name``,
            ``plan`` (the contract's accounts table, e.g. the accounts alive at a date).
    """
    cols = [c for c in PROFILE_COLUMNS if c in accounts.columns]
    frame = accounts.drop_duplicates("account_id", keep="last")
    out: dict[str, dict[str, str | None]] = {}
    for rec in frame[["account_id", *cols]].to_dict("records"):
        out[str(rec["account_id"])] = {c: _opt_str(rec.get(c)) for c in PROFILE_COLUMNS}
    return out


def _score_values(
    row: Mapping[str, Any],
    *,
    run_id: int,
    as_of: date,
    model_version: str,
    lang: str,
    accounts: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    account_id = _opt_str(row["account_id"])
    if account_id is None:
        raise ValueError("account_id is empty")
    prob = float(row["churn_probability"])
    if not (math.isfinite(prob) and 0.0 <= prob <= 1.0):
        raise ValueError(f"churn_probability must be within [0, 1], got {prob!r}")
    health = row["health_score"]
    if float(health) != int(health):
        raise ValueError(f"health_score must be a whole number, got {health!r}")
    profile = accounts.get(account_id, {})
    values: dict[str, Any] = {
        "run_id": run_id,
        "account_id": account_id,
        "as_of": _to_date(row.get("as_of") or as_of),
        "model_version": str(row.get("model_version") or model_version),
        "churn_probability": prob,
        "risk_band": str(row["risk_band"]),
        "health_score": int(health),
        "touch_tier": str(row["touch_tier"]),
        "arr": _opt_float(row.get("arr")),
        "arr_at_risk": _opt_float(row.get("arr_at_risk")),
        "top_reasons": _json_list(row.get("top_reasons", []), "top_reasons"),
        "playbooks": _json_list(row.get("playbooks", []), "playbooks"),
        "lang": str(row.get("lang") or lang),
    }
    for col in PROFILE_COLUMNS:
        values[col] = _opt_str(row[col] if col in row else profile.get(col))
    return values


def _details_values(
    row: Mapping[str, Any], run_id: int, account_id: str, extra: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The ``churnlens_score_details`` row for one score, or none when there is nothing to keep."""
    info = extra.get(account_id) or {}
    translations = row.get("translations")
    activity = info.get("activity")
    silent = info.get("silent_decline")
    if not translations and activity is None and silent is None:
        return []
    if translations is not None and not isinstance(translations, Mapping):
        raise TypeError(f"translations: expected a mapping, got {type(translations).__name__}")
    if activity is not None and not isinstance(activity, Mapping):
        raise TypeError(f"activity: expected a mapping, got {type(activity).__name__}")
    flag = None if silent is None or _opt_float(silent) is None else int(bool(float(silent)))
    return [
        {
            "run_id": run_id,
            "account_id": account_id,
            "silent_decline": flag,
            "activity": None if activity is None else json.dumps(activity, ensure_ascii=False),
            "translations": json.dumps(translations, ensure_ascii=False) if translations else None,
        }
    ]


def _score_from_row(m: Mapping[Any, Any]) -> StoredScore:
    return StoredScore(
        run_id=int(m["run_id"]),
        account_id=str(m["account_id"]),
        as_of=_to_date(m["as_of"]),
        scored_at=_utc(m["scored_at"]),
        model_version=str(m["model_version"]),
        source=str(m["source"]),
        churn_probability=float(m["churn_probability"]),
        risk_band=str(m["risk_band"]),
        health_score=int(m["health_score"]),
        touch_tier=str(m["touch_tier"]),
        arr=_opt_float(m["arr"]),
        arr_at_risk=_opt_float(m["arr_at_risk"]),
        top_reasons=json.loads(m["top_reasons"]),
        playbooks=json.loads(m["playbooks"]),
        lang=str(m["lang"]),
        csm_id=m["csm_id"],
        name=m["name"],
        plan=m["plan"],
    )


def _run_from_row(m: Mapping[Any, Any]) -> ScoreRun:
    return ScoreRun(
        run_id=int(m["run_id"]),
        scored_at=_utc(m["scored_at"]),
        as_of=_to_date(m["as_of"]),
        model_version=str(m["model_version"]),
        n_accounts=int(m["n_accounts"]),
        data_digest=m["data_digest"],
        source=str(m["source"]),
    )


def _chunks(ids: Sequence[str], size: int = IN_CHUNK) -> Iterator[list[str]]:
    unique = sorted({str(i) for i in ids})
    for start in range(0, len(unique), size):
        yield unique[start : start + size]


class ScoreStore:
    """The score history in a database (open it with :func:`open_store`).

    Safe to share between threads (SQLAlchemy's engine pools connections). Usable as a context
    manager; :meth:`close` releases the connections.
    """

    def __init__(self, engine: Engine, url: str, revision: str) -> None:
        """Wrap an engine whose schema is already at ``revision`` (use :func:`open_store`)."""
        self.engine = engine
        self.url = display_url(url)
        self.revision = revision

    def __enter__(self) -> ScoreStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ScoreStore({self.url!r}, revision={self.revision!r})"

    def close(self) -> None:
        """Close the pooled connections (the store can still be used; it reconnects)."""
        self.engine.dispose()

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as err:
            msg = f"score store {self.url}: {action} failed: {error_text(err)}"
            raise store_error(msg, err) from None

    # -- writing ------------------------------------------------------------------------------

    def append_scores(
        self,
        rows: Iterable[Mapping[str, Any]],
        *,
        as_of: date | str,
        model_version: str,
        source: str = "cli",
        lang: str = "en",
        accounts: Mapping[str, Mapping[str, Any]] | None = None,
        data_digest: str | None = None,
        scored_at: datetime | None = None,
        details: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> int:
        """Append one scoring run, all or nothing (one transaction).

        If anything fails (a bad row, a duplicate account, the database, an exception raised by
        ``rows`` itself), nothing of this run is stored and the history is as before.

        Args:
            rows: score rows as ``score_frame`` returns them (``account_id, as_of,
                churn_probability, risk_band, health_score, touch_tier, arr, arr_at_risk,
                top_reasons, playbooks``; reasons and plays as lists or JSON text). Optional keys
                ``lang``, ``csm_id``, ``name``, ``plan`` override the run-level values. Any
                iterable, consumed once.
            as_of: the run's as-of date (also each row's when the row has none).
            model_version: label of the model that scored (e.g. ``churnlens v3``).
            source: where the run came from (``cli``, ``api``, ...).
            lang: language of the reasons and plays.
            accounts: ``account_id -> {csm_id, name, plan}`` (see :func:`account_details`).
            data_digest: digest of the input data, when known.
            scored_at: when the run happened (default now; naive means UTC).
            details: ``account_id -> {"activity": {...}, "silent_decline": 0/1/None}`` (see
                :func:`churnlens.serving.scoring.recent_activity`), stored beside the scores of
                the accounts in ``rows``. A row's own ``translations`` key (``lang ->
                {top_reasons, playbooks}``) is stored there too.

        Returns:
            The new run's id.

        Raises:
            StoreError: a row is invalid (naming it) or the database refused the write.
        """
        run_as_of = _to_date(as_of)
        when = _utc(scored_at) if scored_at is not None else datetime.now(UTC)
        profiles = accounts or {}
        extra = details or {}
        with self._errors("storing the scores"), self.engine.begin() as conn:
            key = conn.execute(
                insert(runs).values(
                    scored_at=when,
                    as_of=run_as_of,
                    model_version=model_version,
                    n_accounts=0,
                    data_digest=data_digest,
                    source=source,
                )
            ).inserted_primary_key
            if key is None:  # pragma: no cover - every supported dialect reports the new key
                raise StoreError(f"score store {self.url}: the new run got no run_id")
            run_id = int(key[0])
            n = 0
            batch: list[dict[str, Any]] = []
            more: list[dict[str, Any]] = []
            for i, row in enumerate(rows):
                try:
                    values = _score_values(
                        row,
                        run_id=run_id,
                        as_of=run_as_of,
                        model_version=model_version,
                        lang=lang,
                        accounts=profiles,
                    )
                except (KeyError, TypeError, ValueError) as err:
                    what = f"missing {err}" if isinstance(err, KeyError) else str(err)
                    raise StoreError(
                        f"score store {self.url}: row {i} (account "
                        f"{row.get('account_id', '?')!s}): {what}; nothing of this run was stored"
                    ) from None
                batch.append(values)
                try:
                    more.extend(_details_values(row, run_id, values["account_id"], extra))
                except (TypeError, ValueError) as err:
                    raise StoreError(
                        f"score store {self.url}: row {i} (account {values['account_id']}) "
                        f"details: {err}; nothing of this run was stored"
                    ) from None
                if len(batch) >= BATCH_ROWS:
                    conn.execute(insert(scores), batch)
                    n += len(batch)
                    batch = []
            if batch:
                conn.execute(insert(scores), batch)
                n += len(batch)
            for start in range(0, len(more), BATCH_ROWS):  # after the scores they refer to
                conn.execute(insert(details_table), more[start : start + BATCH_ROWS])
            conn.execute(update(runs).where(runs.c.run_id == run_id).values(n_accounts=n))
        return run_id

    # -- reading ------------------------------------------------------------------------------

    def _ranked(self, account_ids: list[str] | None) -> Any:
        """Every stored row with ``rn`` = 1 for the account's latest, 2 for the one before..."""
        order = (scores.c.as_of.desc(), runs.c.scored_at.desc(), scores.c.run_id.desc())
        q = select(
            scores,
            runs.c.scored_at,
            runs.c.source,
            func.row_number().over(partition_by=scores.c.account_id, order_by=order).label("rn"),
            func.max(scores.c.as_of).over(partition_by=scores.c.account_id).label("last_as_of"),
        ).join_from(scores, runs, scores.c.run_id == runs.c.run_id)
        if account_ids is not None:
            q = q.where(scores.c.account_id.in_(account_ids))
        return q.subquery("ranked")

    def _fetch(self, queries: Iterable[Select[Any]], action: str) -> list[StoredScore]:
        out: list[StoredScore] = []
        with self._errors(action), self.engine.connect() as conn:
            for q in queries:
                out.extend(_score_from_row(m) for m in conn.execute(q).mappings())
        return out

    def _per_account(
        self,
        account_ids: Sequence[str] | None,
        build: Callable[[list[str] | None], Select[Any]],
        action: str,
    ) -> list[StoredScore]:
        if account_ids is None:
            queries = [build(None)]
        else:
            queries = [build(chunk) for chunk in _chunks(account_ids)]
        rows = self._fetch(queries, action)
        return sorted(rows, key=lambda r: r["account_id"])

    def latest_scores(
        self,
        account_ids: Sequence[str] | None = None,
        *,
        csm_id: str | None = None,
        plan: str | None = None,
    ) -> list[StoredScore]:
        """Each account's most recent stored score, ordered by account id.

        Args:
            account_ids: accounts to return (unknown ones are left out); None for all.
            csm_id: only accounts whose latest row has this CSM.
            plan: only accounts whose latest row has this plan (segment).
        """

        def build(ids: list[str] | None) -> Select[Any]:
            ranked = self._ranked(ids)
            q = select(ranked).where(ranked.c.rn == 1)
            if csm_id is not None:
                q = q.where(ranked.c.csm_id == csm_id)
            if plan is not None:
                q = q.where(ranked.c.plan == plan)
            return q

        return self._per_account(account_ids, build, "reading the latest scores")

    def latest_summaries(self) -> list[ScoreSummary]:
        """Every account's latest score without reasons and plays, in one query (any order).

        The same rows as :meth:`latest_scores` minus the JSON columns, so a book of tens of
        thousands of accounts can be ranked, filtered and totalled without decoding them.
        """
        order = (scores.c.as_of.desc(), runs.c.scored_at.desc(), scores.c.run_id.desc())
        cols = [scores.c[c] for c in SUMMARY_COLUMNS]
        ranked = (
            select(
                *cols,
                func.row_number()
                .over(partition_by=scores.c.account_id, order_by=order)
                .label("rn"),
            )
            .join_from(scores, runs, scores.c.run_id == runs.c.run_id)
            .subquery("ranked")
        )
        q = select(*(ranked.c[c] for c in SUMMARY_COLUMNS)).where(ranked.c.rn == 1)
        with self._errors("reading the latest scores"), self.engine.connect() as conn:
            return [
                ScoreSummary(
                    run_id=int(m[0]),
                    account_id=str(m[1]),
                    as_of=_to_date(m[2]),
                    model_version=str(m[3]),
                    churn_probability=float(m[4]),
                    risk_band=str(m[5]),
                    health_score=int(m[6]),
                    touch_tier=str(m[7]),
                    arr=_opt_float(m[8]),
                    arr_at_risk=_opt_float(m[9]),
                    lang=str(m[10]),
                    csm_id=m[11],
                    name=m[12],
                    plan=m[13],
                )
                for m in conn.execute(q)
            ]

    def previous_scores(self, account_ids: Sequence[str] | None = None) -> list[StoredScore]:
        """Each account's score from the scoring date before its latest one.

        For "change since the previous scoring": the most recent row whose ``as_of`` is earlier
        than the account's latest ``as_of`` (re-runs of the latest date are not "previous").
        Accounts scored on one date only are left out. Ordered by account id.
        """

        def build(ids: list[str] | None) -> Select[Any]:
            ranked = self._ranked(ids)
            older = select(
                ranked,
                func.row_number()
                .over(
                    partition_by=ranked.c.account_id,
                    order_by=(
                        ranked.c.as_of.desc(),
                        ranked.c.scored_at.desc(),
                        ranked.c.run_id.desc(),
                    ),
                )
                .label("prev_rn"),
            ).where(ranked.c.as_of < ranked.c.last_as_of)
            sub = older.subquery("older")
            return select(sub).where(sub.c.prev_rn == 1)

        return self._per_account(account_ids, build, "reading the previous scores")

    def history(
        self,
        account_id: str,
        *,
        model_version: str | None = None,
        all_runs: bool = False,
    ) -> list[StoredScore]:
        """One account's scores over time, oldest ``as_of`` first (for a sparkline).

        Args:
            account_id: the account.
            model_version: only rows scored by this model (to compare models).
            all_runs: every stored row; default one per ``as_of`` (its latest scoring).
        """
        order = (scores.c.as_of.desc(), runs.c.scored_at.desc(), scores.c.run_id.desc())
        q = (
            select(
                scores,
                runs.c.scored_at,
                runs.c.source,
                func.row_number().over(partition_by=scores.c.as_of, order_by=order).label("rn"),
            )
            .join_from(scores, runs, scores.c.run_id == runs.c.run_id)
            .where(scores.c.account_id == str(account_id))
        )
        if model_version is not None:
            q = q.where(scores.c.model_version == model_version)
        sub = q.subquery("h")
        final = select(sub)
        if not all_runs:
            final = final.where(sub.c.rn == 1)
        final = final.order_by(sub.c.as_of, sub.c.scored_at, sub.c.run_id)
        return self._fetch([final], "reading the history")

    def histories(
        self, account_ids: Sequence[str] | None = None, *, limit: int = 12
    ) -> dict[str, list[RiskPoint]]:
        """The last ``limit`` points of each account's risk history, in one query (per id chunk).

        Same points as :meth:`history` (one per ``as_of``, its latest scoring), oldest first;
        for the sparklines of a whole portfolio without a query per account.

        Args:
            account_ids: accounts to return (unknown ones are left out); None for all.
            limit: at most this many most recent dates per account.
        """
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")

        def build(ids: list[str] | None) -> Select[Any]:
            order = (runs.c.scored_at.desc(), scores.c.run_id.desc())
            per_date = select(
                scores.c.account_id,
                scores.c.as_of,
                scores.c.churn_probability,
                scores.c.risk_band,
                func.row_number()
                .over(partition_by=(scores.c.account_id, scores.c.as_of), order_by=order)
                .label("rn"),
            ).join_from(scores, runs, scores.c.run_id == runs.c.run_id)
            if ids is not None:
                per_date = per_date.where(scores.c.account_id.in_(ids))
            d = per_date.subquery("d")
            dated = (
                select(
                    d.c.account_id,
                    d.c.as_of,
                    d.c.churn_probability,
                    d.c.risk_band,
                    func.row_number()
                    .over(partition_by=d.c.account_id, order_by=d.c.as_of.desc())
                    .label("k"),
                )
                .where(d.c.rn == 1)
                .subquery("k")
            )
            return (
                select(
                    dated.c.account_id, dated.c.as_of, dated.c.churn_probability, dated.c.risk_band
                )
                .where(dated.c.k <= limit)
                .order_by(dated.c.account_id, dated.c.as_of)
            )

        queries = [build(None)] if account_ids is None else [build(c) for c in _chunks(account_ids)]
        out: dict[str, list[RiskPoint]] = {}
        with self._errors("reading the histories"), self.engine.connect() as conn:
            for q in queries:
                for aid, as_of, prob, band in conn.execute(q):
                    out.setdefault(str(aid), []).append(
                        RiskPoint(
                            as_of=_to_date(as_of),
                            churn_probability=float(prob),
                            risk_band=str(band),
                        )
                    )
        return out

    def details(self, keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], ScoreDetails]:
        """The stored details of these ``(run_id, account_id)`` scores (absent ones left out)."""
        by_run: dict[int, list[str]] = {}
        for run_id, account_id in keys:
            by_run.setdefault(int(run_id), []).append(str(account_id))
        out: dict[tuple[int, str], ScoreDetails] = {}
        d = details_table
        with self._errors("reading the score details"), self.engine.connect() as conn:
            for run_id, ids in sorted(by_run.items()):
                for chunk in _chunks(ids):
                    q = select(d).where(d.c.run_id == run_id, d.c.account_id.in_(chunk))
                    for m in conn.execute(q).mappings():
                        out[(int(m["run_id"]), str(m["account_id"]))] = ScoreDetails(
                            run_id=int(m["run_id"]),
                            account_id=str(m["account_id"]),
                            silent_decline=(
                                None if m["silent_decline"] is None else int(m["silent_decline"])
                            ),
                            activity=json.loads(m["activity"]) if m["activity"] else None,
                            translations=(
                                json.loads(m["translations"]) if m["translations"] else {}
                            ),
                        )
        return out

    def run_scores(self, run_id: int) -> list[StoredScore]:
        """Every row of one run, ordered by account id."""
        q = (
            select(scores, runs.c.scored_at, runs.c.source)
            .join_from(scores, runs, scores.c.run_id == runs.c.run_id)
            .where(scores.c.run_id == run_id)
            .order_by(scores.c.account_id)
        )
        return self._fetch([q], f"reading run {run_id}")

    def last_change(self) -> tuple[int, int]:
        """``(newest run_id, number of runs)``: changes whenever a run is stored or deleted."""
        q = select(func.coalesce(func.max(runs.c.run_id), 0), func.count())
        with self._errors("reading the runs"), self.engine.connect() as conn:
            newest, n = conn.execute(q.select_from(runs)).one()
        return int(newest), int(n)

    def runs(self, limit: int | None = None) -> list[ScoreRun]:
        """Scoring runs, newest first (by ``scored_at``, then ``run_id``)."""
        q = select(runs).order_by(runs.c.scored_at.desc(), runs.c.run_id.desc()).limit(limit)
        with self._errors("reading the runs"), self.engine.connect() as conn:
            return [_run_from_row(m) for m in conn.execute(q).mappings()]


def open_store(url: str | None = None) -> ScoreStore:
    """Open the score store, creating or upgrading its schema (Alembic ``upgrade head``).

    Safe when several processes open a new database at once (the migration runs under a lock).

    Args:
        url: a SQLAlchemy URL; default ``$CHURNLENS_DATABASE_URL``, else ``sqlite:///churnlens.db``
            (in the working directory; a relative SQLite path is resolved now).

    Raises:
        StoreError: the database cannot be opened or migrated (the message names the URL, with
            the password masked).
    """
    resolved = absolute_url(database_url(url))
    engine = create_store_engine(resolved)
    try:
        revision = upgrade_schema(engine, resolved)
    except BaseException:
        engine.dispose()
        raise
    return ScoreStore(engine, resolved, revision)
