"""The prediction API: a new-style BentoML service over the batch pipeline's own functions.

``POST /predict`` turns each account's ``profile`` and ``weeks`` into the frames ``churnlens score``
builds from files, computes the indicators with the training code (``compute_indicators``) and
scores them with :func:`churnlens.serving.scoring.score_frame`, so the API and the batch scorer
agree for the same account and date. ``GET /model`` says what is served. BentoML's ``/healthz``,
``/livez`` and ``/readyz`` are kept; ``/readyz`` is false until the model is loaded.

Model: a bento built by ``churnlens bento`` serves the model packed in it (from the BentoML model
store, no MLflow needed). From source: ``CHURNLENS_MODEL_URI`` (``models:/churnlens@champion`` by
default, ``models:/name/N`` or a package directory) and ``MLFLOW_TRACKING_URI``.

Environment: ``CHURNLENS_CONFIG`` (config YAML), ``CHURNLENS_PLAYBOOKS`` (your playbook catalog),
``CHURNLENS_MAX_ACCOUNTS`` (per request; 413 above it), ``CHURNLENS_WORKERS`` (worker
processes, each with its own copy of the model: an integer or ``cpu_count``; default 1),
``CHURNLENS_DATABASE_URL`` (the score store read by ``/score_accounts`` and the CSM page),
``CHURNLENS_API_KEY`` (when set, every route but health needs ``Authorization: Bearer <key>``; the
CSM page at ``/ui`` also accepts the session cookie of its login form, see
:mod:`churnlens.serving.ui.auth`), ``CHURNLENS_RATE_LIMIT`` (requests per client, default
``100/s``) and ``CHURNLENS_MAX_BODY_BYTES`` (default 64 MiB; 413 above it), see
:mod:`churnlens.serving.limits`.

``/ui`` is the CSM page (:mod:`churnlens.serving.ui`): the book of accounts ranked by ARR at risk,
read from the score store.

Client mistakes get a 4xx with ``{"error": ..., "problems": ["accounts[2].weeks[5].logins: must be
>= 0", ...]}`` and one log line without a traceback; anything else is a 5xx.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import os
import threading
from collections.abc import Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any, cast

import bentoml
import numpy as np
import pandas as pd
from bentoml.exceptions import BentoMLException, InvalidArgument
from fastapi import FastAPI
from pydantic import ValidationError

from ..config import Config, load_config
from ..errors import ChurnlensError, StoreError, mask_passwords
from ..features.indicators import compute_indicators
from ..features.schema import TIMELINE_COLUMNS, tracked_column
from ..model import ChurnModel
from ..store import ScoreStore, open_store
from .asgi import ASGIApp, Message, Receive, Scope, Send, send_problem, send_unauthorised
from .bento import packed_model
from .explain import LANGS
from .limits import BodySizeLimit, RateLimit
from .playbooks import Catalog, load_catalog
from .redact import redact_access_log
from .schemas import (
    DEFAULT_MAX_ACCOUNTS,
    ModelInfo,
    PredictRequest,
    PredictResponse,
    ResultOut,
    ScoreAccountsRequest,
    ScoreAccountsResponse,
    StoredResultOut,
    describe_errors,
)
from .scoring import score_frame
from .ui import ui_app

log = logging.getLogger(__name__)

MODEL_URI_ENV = "CHURNLENS_MODEL_URI"
CONFIG_ENV = "CHURNLENS_CONFIG"
PLAYBOOKS_ENV = "CHURNLENS_PLAYBOOKS"
MAX_ACCOUNTS_ENV = "CHURNLENS_MAX_ACCOUNTS"
# BentoML logs every failed request here, as an ERROR with a traceback.
BENTOML_REQUEST_LOGGER = "bentoml._internal.server.http_app"


class BadRequest(ChurnlensError, InvalidArgument):
    """A request the service understood but cannot score (4xx; 400 unless told)."""

    def __init__(self, message: str, *, status: HTTPStatus = HTTPStatus.BAD_REQUEST) -> None:
        InvalidArgument.__init__(self, message, error_code=status)


# ------------------------------------------------------------------------------ pure functions
def _tracked_values(req: PredictRequest, column: str) -> np.ndarray:
    """The weeks' values of tracked-group column ``column`` (absent or null: NaN); a value that
    is not a finite number >= 0 is a 400 naming the account and week."""
    out = []
    for i, acc in enumerate(req.accounts):
        for j, week in enumerate(acc.weeks):
            v = week.get(column)
            if v is None:
                out.append(np.nan)
                continue
            if (
                not isinstance(v, int | float)
                or isinstance(v, bool)
                or not math.isfinite(v)
                or v < 0
            ):
                raise BadRequest(
                    f"accounts[{i}].weeks[{j}].{column}: must be a number >= 0 or null, got {v!r}"
                )
            out.append(float(v))
    return np.array(out, dtype=np.float64)


def request_frames(
    req: PredictRequest, tracked: Sequence[str] = ()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The timeline and accounts frames ``churnlens score`` would build for these accounts,
    with the columns of the ``tracked`` event groups (the served model's)."""
    weeks = [w for acc in req.accounts for w in acc.weeks]
    ids = [acc.account_id for acc in req.accounts for _ in acc.weeks]
    # One row per week in TIMELINE_COLUMNS order; a missing or null count becomes NaN.
    values = (
        np.array([tuple(map(w.get, TIMELINE_COLUMNS)) for w in weeks], dtype=np.float64)
        if weeks
        else np.empty((0, len(TIMELINE_COLUMNS)))
    )
    timeline = pd.DataFrame(
        {
            "account_id": pd.Series(ids, dtype=str),
            "week_start": np.array([w["week_start"] for w in weeks], dtype="datetime64[us]"),
            **{col: values[:, j] for j, col in enumerate(TIMELINE_COLUMNS)},
            **{tracked_column(g): _tracked_values(req, tracked_column(g)) for g in tracked},
        }
    )
    accounts = req.accounts
    profiles = pd.DataFrame(
        {
            "account_id": pd.Series([a.account_id for a in accounts], dtype=str),
            "created_at": np.array(
                [a.profile.created_at for a in accounts], dtype="datetime64[us]"
            ),
            "plan": pd.Series([a.profile.plan for a in accounts], dtype=object),
            "arr": np.array([a.profile.arr for a in accounts], dtype=np.float64),
            "seats": np.array([a.profile.seats for a in accounts], dtype=np.float64),
            "touch_tier": pd.Series([a.profile.touch_tier for a in accounts], dtype=object),
            "renewal_date": np.array(
                [a.profile.renewal_date for a in accounts], dtype="datetime64[us]"
            ),
            "billing_period": pd.Series([a.profile.billing_period for a in accounts], dtype=object),
        }
    )
    return timeline, profiles


def predict_rows(
    model: ChurnModel,
    req: PredictRequest,
    cfg: Config,
    catalog: Catalog,
    lang: str = "en",
) -> list[dict[str, Any]]:
    """``score_frame`` rows for a request, in request order (as ``churnlens score`` makes them)."""
    groups = list(model.tracked_events())
    timeline, profiles = request_frames(req, groups)
    indicators = compute_indicators(timeline, profiles, as_of=req.as_of, tracked=groups)
    return score_frame(model, indicators, profiles, cfg, catalog, lang=lang)


def to_response(rows: list[dict[str, Any]], model_version: str) -> PredictResponse:
    """The API answer for ``score_frame`` rows (``top_reasons`` is called ``reasons`` here)."""
    results = [
        ResultOut.model_validate(
            {**{k: v for k, v in r.items() if k != "top_reasons"}, "reasons": r["top_reasons"]}
        )
        for r in rows
    ]
    return PredictResponse(model_version=model_version, results=results)


def stored_results(store: ScoreStore, account_ids: list[str]) -> ScoreAccountsResponse:
    """The latest stored score of each requested account, in request order (repeats once)."""
    wanted = list(dict.fromkeys(account_ids))
    found = {row["account_id"]: row for row in store.latest_scores(wanted)}
    results = [
        StoredResultOut.model_validate(
            {
                **{k: v for k, v in found[a].items() if k != "top_reasons"},
                "reasons": found[a]["top_reasons"],
            }
        )
        for a in wanted
        if a in found
    ]
    return ScoreAccountsResponse(results=results, missing=[a for a in wanted if a not in found])


def model_info(model: ChurnModel, version: str) -> ModelInfo:
    """Version, training window, test metrics and feature list of a model package."""
    meta = model.meta
    metrics = {
        str(who): {
            str(k): (float(v) if isinstance(v, int | float) and np.isfinite(v) else None)
            for k, v in m.items()
        }
        for who, m in (meta.get("metrics") or {}).items()
        if isinstance(m, dict)
    }
    calibration = meta.get("calibration")
    return ModelInfo(
        version=version,
        trained_at=meta.get("trained_at"),
        training_window={str(k): str(v) for k, v in (meta.get("windows") or {}).items()},
        metrics=metrics,
        features=list(model.features),
        horizon_weeks=meta.get("horizon_weeks"),
        calibration=calibration.get("chosen") if isinstance(calibration, dict) else None,
        tracked_events=model.tracked_events(),
    )


def check_lang(value: str | None) -> str:
    """The ``lang`` query parameter, or a 400 naming it."""
    lang = value or "en"
    if lang not in LANGS:
        raise BadRequest(f"lang: expected one of {', '.join(LANGS)}, got {lang!r}")
    return lang


def load_served_model(uri: str | None, name: str) -> tuple[ChurnModel, str]:
    """The model to serve (``models:/...`` through the MLflow tracking URI, or a directory)."""
    import mlflow

    from ..training.pipeline import tracking_uri
    from ..training.registry import load_model

    if uri is None or uri.startswith("models:/"):
        mlflow.set_tracking_uri(tracking_uri())
    return load_model(uri, name)


# --------------------------------------------------------------------------- client errors
def is_client_error(exc: BaseException | None) -> bool:
    """Whether BentoML is about to log a client's mistake (not a server bug)."""
    if isinstance(exc, ValidationError):
        return True
    return isinstance(exc, BentoMLException) and 400 <= int(exc.error_code) < 500


def client_error_lines(exc: BaseException) -> list[str]:
    """What was wrong with the request, one ``path: problem`` per line."""
    if isinstance(exc, ValidationError):
        return describe_errors(exc.errors(include_url=False))
    return [str(exc)]


class QuietClientErrors(logging.Filter):
    """Turn BentoML's ERROR-with-traceback for a client error into one WARNING line."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record when it carries a client error; keep every record."""
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and is_client_error(exc):
            where = " ".join(str(a) for a in record.args) if isinstance(record.args, tuple) else ""
            problems = "; ".join(client_error_lines(exc))
            if len(problems) > 500:
                problems = problems[:500] + "..."
            record.msg = "client error %s: %s"
            record.args = (where, problems)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


def quiet_client_errors() -> None:
    """Install :class:`QuietClientErrors` on BentoML's request logger (once)."""
    logger = logging.getLogger(BENTOML_REQUEST_LOGGER)
    if not any(isinstance(f, QuietClientErrors) for f in logger.filters):
        logger.addFilter(QuietClientErrors())


def client_error_body(
    status: int, body: bytes, where: str = "", *, plain: bool = False
) -> bytes | None:
    """BentoML's 4xx body rewritten as ``{"error", "problems"}``; None to leave it alone.

    ``where`` (``"PUT /model"``) names the route in a problem that has no field (an unknown
    route, a method not allowed); ``plain``: the body is text (Starlette's ``Not Found``).
    """
    route = where[:200] + ": " if where else ""
    problems: list[str] = []
    if plain:
        text = body[:500].decode("utf-8", "replace").strip()
        problems = [route + (text or HTTPStatus(status).phrase)]
        doc: Any = None
    else:
        try:
            doc = json.loads(body)
        except ValueError:
            return None
    if isinstance(doc, dict) and isinstance(doc.get("detail"), list):
        problems = describe_errors([d for d in doc["detail"] if isinstance(d, dict)])
    elif isinstance(doc, dict) and isinstance(doc.get("detail"), str):  # FastAPI's 404/405
        problems = [route + doc["detail"]]
    elif isinstance(doc, list):  # BentoMLException: [{"error": "..."}]
        problems = [str(d["error"]) for d in doc if isinstance(d, dict) and "error" in d]
    elif isinstance(doc, dict) and isinstance(doc.get("error"), str) and "problems" not in doc:
        problems = [doc["error"]]
    if not problems:
        return None
    return json.dumps(
        {"error": "; ".join(problems), "problems": problems, "status": status}
    ).encode()


class ClientErrorBodies:
    """ASGI middleware: every 4xx JSON answer names the field and the problem the same way.

    A 4xx in plain text outside the CSM page (BentoML's ``Not Found``, ``Method Not Allowed``)
    becomes the same JSON, naming the method and path.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass through, buffering and rewriting 4xx JSON bodies only."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        plain = False
        chunks: list[bytes] = []
        path = str(scope.get("path", ""))
        where = f"{scope.get('method', '')} {path}"

        async def wrapped(message: Message) -> None:
            nonlocal start, plain
            if message["type"] == "http.response.start":
                ctype = dict(message.get("headers") or []).get(b"content-type", b"")
                plain = ctype.startswith(b"text/plain") and not is_ui_path(path)
                if 400 <= message["status"] < 500 and (
                    ctype.startswith(b"application/json") or plain
                ):
                    start = message
                    return
                await send(message)
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            new = client_error_body(start["status"], body, where, plain=plain)
            rewritten = {b"content-length"} | ({b"content-type"} if new is not None else set())
            headers = [(k, v) for k, v in start.get("headers") or [] if k.lower() not in rewritten]
            if new is not None:
                body = new
                headers.append((b"content-type", b"application/json"))
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, wrapped)


API_KEY_ENV = "CHURNLENS_API_KEY"
OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
UI_PATH = "/ui"  # the CSM page checks the key itself (header or its session cookie)


def is_ui_path(path: str) -> bool:
    """Whether ``path`` belongs to the CSM page mounted at :data:`UI_PATH`."""
    return path == UI_PATH or path.startswith(UI_PATH + "/")


class ApiKeyAuth:
    """ASGI middleware: with ``CHURNLENS_API_KEY`` set, every route but health needs the key.

    Clients send ``Authorization: Bearer <key>``. The comparison is constant-time and the key is
    never logged; a missing or wrong key gets 401 with a ``WWW-Authenticate`` header. Requests to
    the CSM page (``/ui``) are passed to it: its own middleware
    (:class:`churnlens.serving.ui.auth.UiAuth`) takes the same header or its session cookie.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        key = os.environ.get(API_KEY_ENV, "")
        self.key: bytes | None = key.encode() if key else None

    def allowed(self, headers: list[tuple[bytes, bytes]]) -> bool:
        """Whether the request carries the configured key."""
        assert self.key is not None
        value = dict(headers).get(b"authorization", b"")
        scheme, _, token = value.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 401 before the app when the key is required and absent or wrong."""
        if (
            self.key is None
            or scope["type"] != "http"
            or scope.get("path", "") in OPEN_PATHS
            or is_ui_path(scope.get("path", ""))
            or self.allowed(list(scope.get("headers") or []))
        ):
            await self.app(scope, receive, send)
            return
        problem = "Authorization: expected 'Bearer <CHURNLENS_API_KEY>'"
        log.warning("unauthorised request to %s", scope.get("path", ""))
        await send_unauthorised(send, problem)


# --------------------------------------------------------------------------------- service
info_app = FastAPI(title="churnlens model info")


WORKERS_ENV = "CHURNLENS_WORKERS"
MODEL_RETRY_ENV = "CHURNLENS_MODEL_RETRY_MAX_S"
DEFAULT_MODEL_RETRY_MAX_S = 60.0


def worker_count(value: str | None) -> int | str:
    """Worker processes (``CHURNLENS_WORKERS``): a positive integer or ``cpu_count``; default 1."""
    raw = (value or "1").strip()
    if raw == "cpu_count":
        return raw
    if raw.isdecimal() and int(raw) > 0:  # not isdigit: int("²") raises
        return int(raw)
    raise ChurnlensError(f"{WORKERS_ENV}: expected a positive integer or cpu_count, got {raw!r}")


def model_load_problem(uri: str | None, name: str, err: BaseException) -> str:
    """One line: which model could not be loaded and why."""
    shown = uri or f"models:/{name}@champion"
    cause = " ".join(str(err).split())[:500] or type(err).__name__
    text = f"{MODEL_URI_ENV}={shown}: cannot load the model ({type(err).__name__}: {cause})"
    return mask_passwords(text)  # no database password


def retry_max_seconds(value: str | None) -> float:
    """The longest wait between two attempts to load the model (``CHURNLENS_MODEL_RETRY_MAX_S``)."""
    try:
        return max(0.1, float(value)) if value else DEFAULT_MODEL_RETRY_MAX_S
    except ValueError:
        raise ChurnlensError(f"{MODEL_RETRY_ENV}: expected seconds, got {value!r}") from None


class ModelState:
    """Why this worker has no model (None once loaded), for :class:`ModelUnavailable`."""

    problem: str | None = None


MODEL_STATE = ModelState()
MODEL_PATHS = frozenset({"/predict", "/model"})


class ModelUnavailable:
    """ASGI middleware: 503 naming the problem on model routes while the model is not loaded.

    BentoML replaces the body of every 5xx raised by an API with a generic sentence; this answers
    before it, as ``{"error", "problems", "status"}`` with ``Retry-After``. Added innermost, so the
    API key is checked first.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass through unless a model route is asked for while the model is missing."""
        problem = MODEL_STATE.problem
        if problem is None or scope["type"] != "http" or scope.get("path") not in MODEL_PATHS:
            await self.app(scope, receive, send)
            return
        await send_problem(send, 503, f"model not loaded: {problem}", [(b"retry-after", b"5")])


def retry_model_load(
    service: Any, uri: str | None, name: str, max_delay: float, stop: threading.Event
) -> threading.Thread:
    """Load the model in a daemon thread, with backoff (1 s doubling up to ``max_delay``).

    Sets ``service.model_version`` and then ``service.churn_model`` (readiness) once it loads;
    logs a line when the cause of the failure changes, not at every attempt.
    """

    def run() -> None:
        delay = min(1.0, max_delay)
        last = service.model_problem
        while not stop.wait(delay):
            try:
                model, version = load_served_model(uri, name)
            except Exception as err:  # any failure: keep serving /livez, try again later
                problem = model_load_problem(uri, name, err)
                if problem != last:
                    log.error("%s; retrying every %.0f s at most", problem, max_delay)
                    last = problem
                service.model_problem = MODEL_STATE.problem = problem
                delay = min(delay * 2, max_delay)
                continue
            service.model_version = version
            service.model_problem = MODEL_STATE.problem = None
            service.churn_model = model
            log.info("serving %s (%d features); ready", version, len(model.features))
            return

    thread = threading.Thread(target=run, name="churnlens-model-loader", daemon=True)
    thread.start()
    return thread


@bentoml.service(
    name="churnlens",
    traffic={"timeout": 60},
    workers=worker_count(os.environ.get(WORKERS_ENV)),
)
@bentoml.asgi_app(info_app, path="/")
# Mounted before "/" (decorators apply bottom-up, and "/" would catch /ui/... first).
@bentoml.asgi_app(ui_app, path=UI_PATH)
class ChurnService:
    """Churn risk, reasons and playbooks for B2B SaaS accounts."""

    def __init__(self) -> None:
        quiet_client_errors()
        config_path = os.environ.get(CONFIG_ENV)
        self.cfg: Config = load_config(Path(config_path) if config_path else None)
        playbooks = os.environ.get(PLAYBOOKS_ENV)
        self.catalog: Catalog = load_catalog(Path(playbooks) if playbooks else None)
        raw_max = os.environ.get(MAX_ACCOUNTS_ENV, str(DEFAULT_MAX_ACCOUNTS))
        try:
            self.max_accounts = int(raw_max)
        except ValueError:
            raise ChurnlensError(
                f"{MAX_ACCOUNTS_ENV}: expected an integer, got {raw_max!r}"
            ) from None
        self.churn_model: ChurnModel | None = None
        self.store: ScoreStore | None = None  # opened on the first /score_accounts call
        self.store_lock = threading.Lock()
        # Once per worker: the model packed in the bento when serving one (no MLflow needed),
        # else CHURNLENS_MODEL_URI / the MLflow champion (serving from source).
        # A model that cannot be loaded does not stop the worker (a crash loop would take /livez
        # and the logs down with it): /readyz stays false, /predict answers 503 naming the
        # problem, and loading is retried in the background until the model appears.
        self.model_version = ""
        self.model_problem: str | None = None
        self.loader_stop = threading.Event()
        packed = packed_model(cast(Any, ChurnService).bento)
        if packed is not None:
            if os.environ.get(MODEL_URI_ENV):
                log.warning("%s ignored: serving the model packed in the bento", MODEL_URI_ENV)
            self.churn_model, self.model_version = packed
        else:
            uri, name = os.environ.get(MODEL_URI_ENV), self.cfg.registry.model_name
            max_delay = retry_max_seconds(os.environ.get(MODEL_RETRY_ENV))
            try:
                model, self.model_version = load_served_model(uri, name)
                self.churn_model = model
            except Exception as err:  # logged on one line; the service stays up, not ready
                self.model_problem = MODEL_STATE.problem = model_load_problem(uri, name, err)
                log.error(
                    "%s; /readyz stays 503 and loading is retried in the background",
                    self.model_problem,
                )
                retry_model_load(self, uri, name, max_delay, self.loader_stop)
                return
        log.info("serving %s (%d features)", self.model_version, len(self.churn_model.features))

    def __is_ready__(self) -> bool:
        """Ready once the model is loaded."""
        return self.churn_model is not None

    def _model(self) -> ChurnModel:
        model = self.churn_model
        if model is None:
            raise BentoMLException(
                f"model not loaded: {self.model_problem or 'loading'}",
                error_code=HTTPStatus.SERVICE_UNAVAILABLE,
            )
        return model

    @bentoml.api(route="/predict")
    def predict(self, request: PredictRequest, /, ctx: bentoml.Context) -> PredictResponse:
        """Churn probability, risk band, reasons and playbooks per account as of a date.

        Query parameter ``lang``: ``en`` (default) or ``ja`` for the sentences and playbook text.
        """
        lang = check_lang(ctx.request.query_params.get("lang"))
        if len(request.accounts) > self.max_accounts:
            raise BadRequest(
                f"accounts: {len(request.accounts)} accounts in one request; the limit is "
                f"{self.max_accounts}",
                status=HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            )
        rows = predict_rows(self._model(), request, self.cfg, self.catalog, lang)
        try:
            return to_response(rows, self.model_version)
        except ValidationError as err:  # our output, not the client's input: a 500
            raise RuntimeError(f"response does not match PredictResponse: {err}") from err

    @bentoml.api(route="/score_accounts")
    def score_accounts(self, request: ScoreAccountsRequest, /) -> ScoreAccountsResponse:
        """The latest stored scores (``churnlens score`` runs) of these accounts.

        Reads the score store (``CHURNLENS_DATABASE_URL``, default ``churnlens.db`` in the
        working directory); ids without a stored score are listed in ``missing``. 503 when the
        store cannot be read.
        """
        if len(request.account_ids) > self.max_accounts:
            raise BadRequest(
                f"account_ids: {len(request.account_ids)} ids in one request; the limit is "
                f"{self.max_accounts}",
                status=HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            )
        try:
            with self.store_lock:
                if self.store is None:
                    self.store = open_store()
            return stored_results(self.store, list(request.account_ids))
        except StoreError as err:  # BentoML logs it; the client gets a generic 503 body
            raise BentoMLException(
                f"score store unavailable: {err}", error_code=HTTPStatus.SERVICE_UNAVAILABLE
            ) from None

    @info_app.get("/model", response_model=ModelInfo)
    def model_card(self) -> ModelInfo:
        """Version, training window, test metrics and feature list of the served model."""
        return model_info(self._model(), self.model_version)


# mypy sees the decorated class, not the bentoml.Service object the decorator returns.
# The first added is the outermost: size and rate limits answer before anything else runs.
redact_access_log()  # in every worker: it imports this module
cast(Any, ChurnService).add_asgi_middleware(BodySizeLimit)
cast(Any, ChurnService).add_asgi_middleware(RateLimit)
cast(Any, ChurnService).add_asgi_middleware(ClientErrorBodies)
cast(Any, ChurnService).add_asgi_middleware(ApiKeyAuth)
cast(Any, ChurnService).add_asgi_middleware(ModelUnavailable)  # innermost: after the API key
