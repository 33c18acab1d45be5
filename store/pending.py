"""Scores that could not be stored: kept in a file beside the score file, imported later.

When ``churnlens score`` cannot reach the score store (after a few retries), everything
``ScoreStore.append_scores`` needs (rows with their translations, account profiles, recent activity,
as-of date, model version, data digest) is written to ``<out>.pending-store.json`` next to the
score file, atomically. ``churnlens store-import --file <that file> [--db URL]`` appends it as one
run (all or nothing) and deletes the file once stored, so importing twice cannot store it twice.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ..errors import StoreError
from .scores import open_store

FORMAT = 1
SUFFIX = ".pending-store.json"


def pending_path(out: Path) -> Path:
    """Where the pending store write of the score file ``out`` is kept."""
    return out.with_name(out.name + SUFFIX)


def _plain(value: Any) -> Any:
    """JSON for numpy scalars, dates and NaN (as null)."""
    if hasattr(value, "item") and not isinstance(value, list | dict | str):
        value = value.item()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return _plain(obj)


def write_pending(path: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (``append_scores`` keyword arguments plus ``rows``) via a renamed temp."""
    doc = {"format": FORMAT, **_clean(payload)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, ensure_ascii=False, allow_nan=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_pending(path: Path) -> dict[str, Any]:
    """The payload of a pending file, checked enough to name what is wrong."""
    try:
        doc = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise StoreError(f"{path}: no such file") from None
    except (OSError, ValueError) as err:
        raise StoreError(f"{path}: not a pending score file ({err})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or "rows" not in doc:
        raise StoreError(
            f"{path}: not a pending score file written by `churnlens score` (format {FORMAT})"
        )
    return doc


def import_pending(path: Path, url: str | None = None) -> tuple[int, int, str]:
    """Append the pending run in ``path`` to the store; delete the file once stored.

    Returns:
        ``(run_id, number of rows, store URL for display)``.
    """
    doc = read_pending(path)
    rows = doc["rows"]
    with open_store(url) as store:
        run_id = store.append_scores(
            rows,
            as_of=doc["as_of"],
            model_version=doc["model_version"],
            source=doc.get("source") or "cli",
            lang=doc.get("lang") or "en",
            accounts=doc.get("accounts"),
            data_digest=doc.get("data_digest"),
            scored_at=datetime.fromisoformat(doc["scored_at"]) if doc.get("scored_at") else None,
            details=doc.get("details"),
        )
        shown = store.url
    path.unlink(missing_ok=True)
    return run_id, len(rows), shown
