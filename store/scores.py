"""The score history: every scoring run's rows, appended in one transaction, and the queries on it.

``churnlens score`` appends each run (see :meth:`ScoreStore.append_scores`); the API and the CSM
page read it back: each account's latest score (:meth:`ScoreStore.latest_scores`), the one before
it (:meth:`ScoreStore.previous_scores`, for "change since the last scoring") and an account's
history over dates (:meth:`ScoreStore.history`, for a sparkline). Rows keep the model version and
the as-of date, so history can be compared across models.

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
    upgrade_schema,
)
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
            raise StoreError(msg) from None

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

        Returns:
            The new run's id.

        Raises:
            StoreError: a row is invalid (naming it) or the database refused the write.
        """
        run_as_of = _to_date(as_of)
        when = _utc(scored_at) if scored_at is not None else datetime.now(UTC)
        profiles = accounts or {}
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
                if len(batch) >= BATCH_ROWS:
                    conn.execute(insert(scores), batch)
                    n += len(batch)
                    batch = []
            if batch:
                conn.execute(insert(scores), batch)
                n += len(batch)
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

    def run_scores(self, run_id: int) -> list[StoredScore]:
        """Every row of one run, ordered by account id."""
        q = (
            select(scores, runs.c.scored_at, runs.c.source)
            .join_from(scores, runs, scores.c.run_id == runs.c.run_id)
            .where(scores.c.run_id == run_id)
            .order_by(scores.c.account_id)
        )
        return self._fetch([q], f"reading run {run_id}")

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
