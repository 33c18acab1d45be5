"""The CSM page: a FastAPI app of server-rendered HTML, mounted on the service at ``/ui``.

Routes (relative to ``/ui``):

- ``GET /`` — the portfolio ranked by ARR at risk; ``?csm=&tier=&band=&segment=&lang=&page=``.
- ``GET /export.csv`` — the same filtered view as CSV (every row, not one page).
- ``GET /accounts/{account_id}`` — one account: score, change, history, reasons, plays, weekly
  activity and the silent-customer pattern.
- ``GET|POST /login``, ``POST /logout`` — the session cookie when ``CHURNLENS_API_KEY`` is set
  (see :mod:`churnlens.serving.ui.auth`).
- ``GET /static/{ui.css,ui.js,favicon.svg}`` — the page's own files (no CDN, no build step).

Data comes from the score store (``CHURNLENS_DATABASE_URL``), opened on the first request. The
book (every account's latest score and last points) is read in two queries and kept until a new
scoring run is stored. Templates are Jinja2 with autoescape on: account names are data, not HTML.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ...errors import StoreError
from ...store import RiskPoint, ScoreDetails, ScoreStore, ScoreSummary, StoredScore, open_store
from . import auth
from .i18n import STRINGS, text
from .views import (
    HISTORY_POINTS,
    PAGE_SIZE,
    BadFilter,
    Entry,
    Filters,
    Options,
    account_view,
    filter_options,
    page_of,
    portfolio_csv,
    rank_key,
    ranked_entries,
    row_view,
    totals,
)

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
BULK_READ = 2_000  # above this many accounts, read whole tables rather than chunks of ids
STATIC_FILES = {
    "ui.css": "text/css; charset=utf-8",
    "ui.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


@dataclass(frozen=True)
class Book:
    """Every account's latest score (no reasons), ranked, with the filter menus and newest date."""

    ranked: list[ScoreSummary]
    options: Options
    as_of: date | None


def load_book(store: ScoreStore) -> Book:
    """The portfolio's ranking from one query (reasons and plays are read per page)."""
    ranked = sorted(store.latest_summaries(), key=rank_key)
    newest = max((s["as_of"] for s in ranked), default=None)
    return Book(ranked, filter_options(ranked), newest)


def page_entries(store: ScoreStore, view: list[ScoreSummary]) -> list[Entry]:
    """Full scores, recent points and change of these accounts, in the order given.

    Three queries whatever the number of accounts (chunked by ids for a page, whole-table reads
    for large exports).
    """
    if not view:
        return []
    ids = [s["account_id"] for s in view]
    whole = len(ids) > BULK_READ
    full = store.latest_scores(None if whole else ids)
    points = store.histories(None if whole else ids, limit=HISTORY_POINTS)
    wanted = set(ids)
    entries = ranked_entries((s for s in full if s["account_id"] in wanted), points)
    order = {a: i for i, a in enumerate(ids)}
    return sorted(entries, key=lambda e: order[e.score["account_id"]])


class UiState:
    """The store the UI reads and the cached book (reloaded when a run is stored)."""

    def __init__(self, store: ScoreStore | None = None, *, cache: bool = True) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._cache = cache
        self._book: tuple[tuple[int, int], Book] | None = None

    def store(self) -> ScoreStore:
        """The score store (opened from ``CHURNLENS_DATABASE_URL`` on first use)."""
        with self._lock:
            if self._store is None:
                self._store = open_store()
            return self._store

    def book(self) -> Book:
        """The current book; read again only when the store has a run it had not."""
        store = self.store()
        key = store.last_change()
        cached = self._book
        if self._cache and cached is not None and cached[0] == key:
            return cached[1]
        book = load_book(store)
        self._book = (key, book)
        return book


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=True,  # every {{ value }} is escaped: names and reasons are data
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["q"] = lambda v: quote(str(v), safe="")
    return env


def build_ui_app(store: ScoreStore | None = None, *, cache: bool = True) -> FastAPI:
    """The UI as an ASGI app; ``store`` for tests and benchmarks (default: opened on demand)."""
    app = FastAPI(title="churnlens CSM page", docs_url=None, redoc_url=None, openapi_url=None)
    state = UiState(store, cache=cache)
    app.state.ui = state
    templates = _environment()
    static = {name: (HERE / "static" / name).read_bytes() for name in STATIC_FILES}

    def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        lang = ctx.get("lang", "en")
        base = str(request.scope.get("root_path", ""))
        html = templates.get_template(name).render(
            base=base,
            lang=lang,
            t=lambda key, **kw: text(key, lang, **kw),
            signed_in=auth.api_key() is not None and name != "login.html",
            **{k: v for k, v in ctx.items() if k != "lang"},
        )
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)

    def problem(request: Request, lang: str, status: int, message: str) -> HTMLResponse:
        title = "bad_request" if status < 500 else "store_down"
        return render(request, "error.html", status, lang=lang, title=title, message=message)

    def lang_of(request: Request) -> str:
        value = request.query_params.get("lang")
        return "ja" if value == "ja" else "en"

    def details_for(entries: list[Entry]) -> dict[tuple[int, str], ScoreDetails]:
        keys = [(e.score["run_id"], e.score["account_id"]) for e in entries]
        return state.store().details(keys) if keys else {}

    @app.get("/", response_class=HTMLResponse)
    def portfolio(request: Request) -> Response:
        lang = lang_of(request)
        try:
            f = Filters.parse(request.query_params)
        except BadFilter as err:
            return problem(request, lang, 400, str(err))
        try:
            book = state.book()
            view = [s for s in book.ranked if f.matches(s)] if f.active else book.ranked
            start, stop = page_of(view, f.page)
            shown = page_entries(state.store(), view[start:stop])
            info = details_for(shown)
        except StoreError as err:
            log.error("CSM page: %s", err)
            return problem(request, lang, 503, text("store_down", lang))
        rows = [
            row_view(e, start + i + 1, f.lang, info.get((e.score["run_id"], e.score["account_id"])))
            for i, e in enumerate(shown)
        ]
        page = (start // PAGE_SIZE) + 1
        return render(
            request,
            "portfolio.html",
            lang=f.lang,
            f=f,
            book=book,
            rows=rows,
            totals=totals(view),
            total=len(view),
            first=start + 1 if shown else 0,
            last=stop,
            prev_query=f.query(page=page - 1) if start > 0 else None,
            next_query=f.query(page=page + 1) if stop < len(view) else None,
        )

    @app.get(
        "/export.csv",
        response_class=Response,  # the spec says CSV, not FastAPI's default JSON
        responses={200: {"description": "The filtered book as CSV", "content": {"text/csv": {}}}},
    )
    def export_csv(request: Request) -> Response:
        try:
            f = Filters.parse(request.query_params)
        except BadFilter as err:
            return Response(str(err), status_code=400, media_type="text/plain")
        try:
            book = state.book()
            view = page_entries(state.store(), [s for s in book.ranked if f.matches(s)])
            info = details_for(view) if any(e.score["lang"] != f.lang for e in view) else {}
        except StoreError as err:
            log.error("CSV export: %s", err)
            return Response(text("store_down", f.lang), status_code=503, media_type="text/plain")

        def details_of(s: StoredScore) -> ScoreDetails | None:
            return info.get((s["run_id"], s["account_id"]))

        body = "\ufeff" + portfolio_csv(view, f.lang, details_of)  # BOM: Excel reads UTF-8
        name = "churnlens-" + (book.as_of.isoformat() if book.as_of else "scores") + ".csv"
        return Response(
            body.encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={
                "content-disposition": f'attachment; filename="{name}"',
                "x-content-type-options": "nosniff",
                "cache-control": "no-store",
            },
        )

    @app.get("/accounts/{account_id:path}", response_class=HTMLResponse)
    def account(request: Request, account_id: str) -> Response:
        lang = lang_of(request)
        try:
            store = state.store()
            history = store.history(account_id)
            if not history:
                return render(
                    request,
                    "error.html",
                    404,
                    lang=lang,
                    title="account",
                    message=text("not_found", lang),
                )
            latest = store.latest_scores([account_id])[0]
            info = store.details([(latest["run_id"], account_id)]).get(
                (latest["run_id"], account_id)
            )
        except StoreError as err:
            log.error("CSM page: %s", err)
            return problem(request, lang, 503, text("store_down", lang))
        points = [
            RiskPoint(
                as_of=h["as_of"], churn_probability=h["churn_probability"], risk_band=h["risk_band"]
            )
            for h in history
        ]
        view = account_view(latest, points, info, lang)
        return render(request, "account.html", lang=lang, a=view, langs=STRINGS)

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request) -> Response:
        lang = lang_of(request)
        base = str(request.scope.get("root_path", ""))
        nxt = auth.safe_next(request.query_params.get("next"), base)
        return render(request, "login.html", lang=lang, next=nxt, error=False)

    @app.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        base = str(request.scope.get("root_path", ""))
        form = parse_qs((await request.body())[:4096].decode("utf-8", "replace"))
        lang = "ja" if form.get("lang", [""])[0] == "ja" else "en"
        nxt = auth.safe_next(form.get("next", [""])[0], base)
        key = auth.api_key()
        if key is None:
            return RedirectResponse(nxt, status_code=303)
        if not auth.valid_key(key, form.get("key", [""])[0]):
            log.warning("CSM page: sign-in with a wrong key")
            return render(request, "login.html", 401, lang=lang, next=nxt, error=True)
        resp = RedirectResponse(nxt, status_code=303)
        resp.set_cookie(
            auth.SESSION_COOKIE,
            auth.new_session(key),
            max_age=auth.SESSION_SECONDS,
            path=f"{base}/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return resp

    @app.post("/logout")
    def logout(request: Request) -> Response:
        base = str(request.scope.get("root_path", ""))
        resp = RedirectResponse(f"{base}/login", status_code=303)
        resp.delete_cookie(auth.SESSION_COOKIE, path=f"{base}/", httponly=True, samesite="strict")
        return resp

    @app.get("/static/{name}")
    def static_file(name: str) -> Response:
        if name not in static:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(
            static[name],
            media_type=STATIC_FILES[name],
            headers={"cache-control": "public, max-age=3600", "x-content-type-options": "nosniff"},
        )

    app.add_middleware(auth.UiAuth)
    return app


ui_app = build_ui_app()
