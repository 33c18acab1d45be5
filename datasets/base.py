"""Shared pieces of the dataset adapters: the import report, type helpers, atomic writing.

An adapter turns a public dataset into contract tables (:mod:`churnlens.features.schema`) and
returns an :class:`ImportReport` that lists, with a count and a few example ids, everything it
noticed in the source and every repair it made. Output conventions: ids are strings, timestamps are
tz-aware UTC (``datetime64[us, UTC]``), booleans are ``bool``. A table with no source data is not
written at all (a missing table means "unknown" to churnlens, never zero).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import pandas as pd
import yaml

from ..config import CONFIG_FILE
from ..errors import ChurnlensError
from ..features.schema import FILE_SUFFIXES, TABLE_NAMES, TABLES

log = logging.getLogger(__name__)

MAX_EXAMPLES = 3
UTC_DTYPE: Final = "datetime64[us, UTC]"


@dataclass
class ImportNote:
    """One thing the adapter noticed in the source, with a count and examples."""

    table: str
    column: str | None
    message: str
    count: int
    examples: list[str] = field(default_factory=list)
    check: str = ""

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        ex = f" e.g. {', '.join(self.examples)}" if self.examples else ""
        return f"{where}: {self.message} ({self.count} rows){ex}"


@dataclass
class ImportReport:
    """What an import wrote, and everything it noticed on the way."""

    source: str
    rows: dict[str, int] = field(default_factory=dict)
    notes: list[ImportNote] = field(default_factory=list)

    def note(
        self,
        table: str,
        column: str | None,
        check: str,
        message: str,
        count: int,
        examples: Iterable[object] = (),
    ) -> None:
        """Record a note when ``count`` is positive (and log it); zero counts are not notes."""
        if count <= 0:
            return
        n = ImportNote(table, column, message, int(count), example_ids(examples), check)
        self.notes.append(n)
        log.info("%s", n)

    def get(self, check: str, table: str | None = None) -> ImportNote | None:
        """The note with this ``check`` code (in ``table``, when given), if any."""
        found = (n for n in self.notes if n.check == check and table in (None, n.table))
        return next(found, None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"source": self.source, "rows": self.rows, "notes": [asdict(n) for n in self.notes]}


def example_ids(values: Iterable[object], limit: int = MAX_EXAMPLES) -> list[str]:
    """The first ``limit`` distinct non-missing values, as strings, in their order."""
    out: list[str] = []
    for v in values:
        if v is None or (not isinstance(v, str) and pd.isna(v)):  # type: ignore[call-overload]
            continue
        s = str(v)
        if s not in out:
            out.append(s)
            if len(out) >= limit:
                break
    return out


def to_utc(values: pd.Series) -> pd.Series:
    """Parse dates or timestamps (naive ones are taken as UTC) to ``datetime64[us, UTC]``."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype(UTC_DTYPE)
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.tz_localize("UTC").astype(UTC_DTYPE)
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
    return parsed.astype(UTC_DTYPE)


def as_id(values: pd.Series) -> pd.Series:
    """Ids as strings (missing stays missing; integral floats lose their ``.0``)."""
    if pd.api.types.is_float_dtype(values.dtype):
        present = values.dropna()
        if (present == present.round()).all():
            values = values.astype("Int64")
    return values.astype(str)


def as_bool(values: pd.Series) -> pd.Series:
    """``True``/``False`` text or bools as nullable booleans (anything else becomes missing)."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype("boolean")
    mapping = {"true": True, "1": True, "false": False, "0": False}
    return values.astype("string").str.strip().str.lower().map(mapping).astype("boolean")


def find_source_file(source: Path, *names: str) -> Path:
    """The first of ``names`` that exists in ``source``."""
    for name in names:
        if (source / name).is_file():
            return source / name
    raise ChurnlensError(f"{source}: none of {', '.join(names)} found")


def _atomic_write(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _stale_files(out: Path, tables: dict[str, pd.DataFrame]) -> list[Path]:
    """Contract files in ``out`` that this write would not replace (they would mix datasets)."""
    stale = []
    for table in TABLE_NAMES:
        for suffix in FILE_SUFFIXES:
            path = out / f"{table}{suffix}"
            if path.exists() and not (table in tables and suffix == ".parquet"):
                stale.append(path)
    return stale


def write_tables(tables: dict[str, pd.DataFrame], out: Path, config: dict | None) -> None:
    """Write ``out/<table>.parquet`` (and ``out/churnlens.yaml``), each file atomically.

    Refuses, before writing anything, when ``out`` already holds contract files this write would
    not replace (e.g. ``tickets.parquet`` from another dataset): they would be read as part of
    this import.
    """
    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        raise ChurnlensError(f"not contract tables: {', '.join(unknown)}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ChurnlensError(f"--out {out}: not a directory")
    out.mkdir(parents=True, exist_ok=True)
    stale = _stale_files(out, tables)
    if stale:
        names = ", ".join(p.name for p in stale)
        raise ChurnlensError(
            f"--out {out} already holds {names}, which this import would not replace; "
            "use an empty directory"
        )
    for name, df in tables.items():
        path = out / f"{name}.parquet"
        _atomic_write(path, lambda tmp, df=df: df.to_parquet(tmp, index=False))
        log.info("wrote %s (%d rows)", path, len(df))
    if config is not None:
        text = yaml.safe_dump(config, sort_keys=False, default_flow_style=None)
        path = out / CONFIG_FILE
        _atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        log.info("wrote %s", path)
