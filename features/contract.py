"""Read a data directory, check it against the data contract, repair what can be repaired.

Every problem found becomes a :class:`Problem` with the table, the column, how many rows, and
examples (``row`` is the 1-based data row in the file, header not counted). Nothing is dropped
without a count. What happens to each kind of problem:

Fatal (stop, exit code 2): ``accounts`` missing, unreadable or empty; two files for one table
(``x.csv`` and ``x.parquet``); a required column missing; account rows that share an id but differ;
any repairable problem that hits more than ``validation.max_invalid_fraction`` of a table.

Repaired (reported with a count, then handled):

- missing id, unparseable or missing required timestamp: row dropped;
- unparseable optional timestamp or number, NaN/inf, negative number, NPS outside 0-10: set missing;
- negative ``quantity``: row dropped;
- absurd number (above a plausibility limit, e.g. ``quantity`` > 1e9, ``arr`` > 1e12): set
  missing (``quantity``: row dropped);
- text longer than 1,000 characters: truncated; an id longer than 256 characters: row dropped;
- bytes that are not UTF-8 in a CSV file: replaced with U+FFFD (re-export as UTF-8);
- a row repeated exactly: one kept (``usage_events``: kept and reported, two identical events
  can be real);
- duplicate ``account_id`` with identical rows: one kept; duplicate ``ticket_id``: first kept;
- row for an unknown account, row dated before the account's ``created_at``: dropped
  (a contract dated before ``created_at`` is moved to ``created_at`` instead);
- row dated in the future (after now, UTC): dropped;
- ``closed_at`` before ``opened_at``, ``responded_at`` before ``sent_at``: set missing;
- several churn events for one account: the first one is used;
- unknown ``touch_tier`` / ``billing_period`` / ``direction`` value: set missing.

Info: rows dated after ``--as-of`` are ignored (the same directory serves history and today);
an optional table with a header and no rows means "none" for every account; account ids and text
starting with ``= + - @`` are reported (CSV exports neutralise them, see :mod:`.io`).

A 0-byte file and an ``accounts`` table without usable rows are fatal.

Timestamps are parsed as ISO 8601 (offsets are converted) and kept as naive UTC. ``as_of`` is a
date: data up to the end of that day is seen, anything later is ignored.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..config import Config
from ..errors import DataContractError
from .io import FORMULA_START
from .schema import BILLING_PERIODS, FILE_SUFFIXES, TABLE_NAMES, TABLES, TableSpec

log = logging.getLogger(__name__)

Severity = Literal["fatal", "repaired", "info"]
TOUCH_TIERS = ("high", "low", "tech")
_MAX_EXAMPLES = 3
# Checks that, when they hit most of a table, mean the export format is wrong (fatal).
_FORMAT_CHECKS = frozenset(
    {"unparseable_timestamp", "missing_timestamp", "missing_id", "not_a_number", "not_a_bool"}
)
MAX_TEXT = 1_000  # characters kept of a text value
MAX_ID = 256  # characters of an id; longer ones are not ids
# Above these a value is an export error, not a fact (a row holding a billion events, ...).
ABSURD_ABOVE: dict[str, float] = {"quantity": 1e9, "seats": 1e8, "arr": 1e12}
ABSURD_DEFAULT = 1e12


@dataclass
class Problem:
    """One kind of problem in one table column, with a count and examples."""

    table: str
    column: str | None
    check: str
    severity: Severity
    count: int
    message: str
    examples: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        ex = f" e.g. {'; '.join(self.examples)}" if self.examples else ""
        return f"[{self.severity}] {where}: {self.message} ({self.count} rows){ex}"


@dataclass
class ValidationReport:
    """Everything found while loading a data directory."""

    source: str
    problems: list[Problem] = field(default_factory=list)
    rows_read: dict[str, int] = field(default_factory=dict)
    rows_kept: dict[str, int] = field(default_factory=dict)
    tables_missing: list[str] = field(default_factory=list)

    @property
    def fatal(self) -> list[Problem]:
        """Problems that stop the pipeline."""
        return [p for p in self.problems if p.severity == "fatal"]

    @property
    def ok(self) -> bool:
        """True when nothing is fatal."""
        return not self.fatal

    def add(self, problem: Problem) -> None:
        """Record a problem (and log it)."""
        self.problems.append(problem)
        log.debug("%s", problem)

    def raise_if_fatal(self) -> None:
        """Raise :class:`DataContractError` listing every fatal problem."""
        if self.fatal:
            lines = [f"{self.source}: the data breaks the contract"]
            lines += [f"  {p}" for p in self.fatal]
            raise DataContractError("\n".join(lines))

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "source": self.source,
            "ok": self.ok,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "tables_missing": self.tables_missing,
            "problems": [asdict(p) for p in self.problems],
        }


@dataclass
class Tables:
    """Contract tables after validation and repair, cut at ``as_of``.

    Text is ``str``, except the ids and event names of ``usage_events`` (:data:`KEPT_AS_CODES`),
    which stay categoricals of ``str``: the table with millions of rows repeats a few thousand
    values, and the timeline groups by their integer codes.
    """

    frames: dict[str, pd.DataFrame]
    as_of: date
    config: Config
    report: ValidationReport

    def get(self, name: str) -> pd.DataFrame | None:
        """The table, or None when the source is unavailable."""
        return self.frames.get(name)

    @property
    def accounts(self) -> pd.DataFrame:
        """The accounts table (always present)."""
        return self.frames["accounts"]

    def available(self, name: str) -> bool:
        """Whether the source table was provided."""
        return name in self.frames


def cutoff(as_of: date) -> pd.Timestamp:
    """The first instant *after* ``as_of`` (data strictly before it is seen)."""
    return pd.Timestamp(as_of) + pd.Timedelta(days=1)


# --------------------------------------------------------------------------------------- reading
def find_table_file(data_dir: Path, table: str) -> list[Path]:
    """All files in ``data_dir`` that hold ``table``."""
    return [data_dir / f"{table}{s}" for s in FILE_SUFFIXES if (data_dir / f"{table}{s}").exists()]


def read_table_file(path: Path) -> pd.DataFrame:
    """Read one table file as it is (CSV cells as strings; Parquet with its own types).

    Parquet text columns are read as categoricals (Parquet stores them dictionary-encoded), which
    skips building a string per row; :func:`tables_from_frames` returns them as text.
    """
    if path.name.endswith(".parquet"):
        text = [
            f.name
            for f in pq.read_schema(path)
            if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
        ]
        return pq.read_table(path, read_dictionary=text).to_pandas()
    return pd.read_csv(path, dtype=str, keep_default_na=True, na_values=[""], encoding="utf-8")


def _unreadable(table: str, path: Path, err: Exception) -> Problem:
    """The fatal problem for a table file no reader could read."""
    return Problem(
        table,
        None,
        "unreadable",
        "fatal",
        0,
        f"could not read {path.name}: {type(err).__name__}: {err}",
    )


def read_data_dir(data_dir: Path, report: ValidationReport) -> dict[str, pd.DataFrame]:
    """Read every contract table present in ``data_dir``; unreadable files are fatal problems."""
    if not data_dir.is_dir():
        raise DataContractError(f"{data_dir}: data directory not found")
    frames: dict[str, pd.DataFrame] = {}
    for table in TABLE_NAMES:
        files = find_table_file(data_dir, table)
        if not files:
            report.tables_missing.append(table)
            if table == "accounts":
                report.add(
                    Problem(
                        "accounts",
                        None,
                        "missing_table",
                        "fatal",
                        0,
                        f"no accounts file in {data_dir} (expected accounts.csv, "
                        "accounts.csv.gz or accounts.parquet)",
                    )
                )
            continue
        if len(files) > 1:
            report.add(
                Problem(
                    table,
                    None,
                    "ambiguous_table",
                    "fatal",
                    0,
                    f"several files hold this table: {', '.join(f.name for f in files)}; keep one",
                )
            )
            continue
        try:
            frames[table] = read_table_file(files[0])
        except pd.errors.EmptyDataError:
            report.add(
                Problem(
                    table,
                    None,
                    "empty_file",
                    "fatal",
                    0,
                    f"{files[0].name} is empty (0 bytes, not even a header row): re-export it"
                    + (
                        ""
                        if table == "accounts"
                        else "; write just the header if there are none, or remove the file if "
                        "the source is unknown"
                    ),
                )
            )
        except UnicodeDecodeError:
            try:
                frames[table] = _read_replacing_bad_bytes(files[0], table, report)
            except Exception as err:  # any reader failure is reported, not raised
                report.add(_unreadable(table, files[0], err))
        except Exception as err:  # any reader failure is reported, not raised
            report.add(_unreadable(table, files[0], err))
    return frames


def _read_replacing_bad_bytes(path: Path, table: str, report: ValidationReport) -> pd.DataFrame:
    """Read a CSV that is not valid UTF-8, bad bytes as U+FFFD, reporting them by column and row."""
    df = pd.read_csv(
        path,
        dtype=str,
        keep_default_na=True,
        na_values=[""],
        encoding="utf-8",
        encoding_errors="replace",
    )
    for col in df.columns:
        s = df[col]
        bad = s.notna() & s.astype(str).str.contains("\ufffd", regex=False)
        if bad.any():
            report.add(
                Problem(
                    table,
                    str(col),
                    "not_utf8",
                    "repaired",
                    int(bad.sum()),
                    f"{path.name} is not UTF-8 here (Windows-1252 / Latin-1?): bad bytes replaced "
                    "with U+FFFD; re-export the file as UTF-8",
                    _examples(bad[bad].index, s),
                )
            )
    return df


# --------------------------------------------------------------------------------------- coercion
def _examples(rows: pd.Index, values: pd.Series | None = None) -> list[str]:
    out = []
    for i in list(rows[:_MAX_EXAMPLES]):
        pos = int(i) + 1 if isinstance(i, int | np.integer) else i
        if values is not None:
            out.append(f"row {pos}: {str(values.loc[i])[:60]!r}")
        else:
            out.append(f"row {pos}")
    return out


def parse_timestamps(s: pd.Series) -> pd.Series:
    """Parse to naive UTC ``datetime64[us]``; unparseable values become NaT."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        out = s.dt.tz_convert("UTC").dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(s.dtype):
        out = s
    else:
        text = s.astype("string").str.strip()
        out = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
        out = out.dt.tz_localize(None)
    return out.astype("datetime64[us]")


def _parse_bool(s: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("boolean")
    mapping = {
        "true": True,
        "t": True,
        "yes": True,
        "y": True,
        "1": True,
        "1.0": True,
        "false": False,
        "f": False,
        "no": False,
        "n": False,
        "0": False,
        "0.0": False,
    }
    return s.astype("string").str.strip().str.lower().map(mapping).astype("boolean")


def _is_text(s: pd.Series) -> bool:
    return pd.api.types.is_object_dtype(s.dtype) or pd.api.types.is_string_dtype(s.dtype)


def _stripped(s: pd.Series) -> pd.Series:
    """Values as text without surrounding blanks (typed columns are only converted)."""
    text = s.astype(str).where(s.notna())
    return text.str.strip() if _is_text(s) else text


_Rows = TypeVar("_Rows", pd.DataFrame, pd.Series)


def _without(data: _Rows, mask: pd.Series) -> _Rows:
    """``data`` without the rows where ``mask`` is True (no copy when there are none)."""
    return data.loc[~mask] if mask.any() else data


def _is_categorical(s: pd.Series) -> bool:
    return isinstance(s.dtype, pd.CategoricalDtype)


def as_distinct(s: pd.Series) -> pd.Series:
    """Text as a categorical: a code per row, each distinct value stored once.

    Event tables repeat a few thousand ids and names millions of times: stripping, measuring and
    looking up each distinct value once, and carrying integer codes through the row checks, is
    several times faster than string work per row. :func:`decoded` makes it text again.
    """
    if _is_categorical(s):
        return s
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    return pd.Series(pd.Categorical.from_codes(codes, uniques), index=s.index, name=s.name)


def codes_and_values(s: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes (-1 where missing) and the distinct values they stand for: a categorical's
    own, or text factorised once."""
    if _is_categorical(s):
        return s.cat.codes.to_numpy(), s.cat.categories
    codes, values = pd.factorize(s, use_na_sentinel=True)
    return codes, pd.Index(values)


def decoded(s: pd.Series) -> pd.Series:
    """A categorical column as plain values again (text as ``str``, missing where no code)."""
    if not _is_categorical(s):
        return s
    cats = s.cat.categories
    if cats.inferred_type not in ("string", "empty"):  # e.g. numbers, or a mix
        return s.astype(object)
    codes = s.cat.codes.to_numpy()
    values = pa.array(np.asarray(cats, dtype=object), type=pa.large_string())  # > 2 GiB of text
    taken = values.take(pa.array(codes, mask=codes < 0))
    return pd.Series(pd.array(taken, dtype="str"), index=s.index, name=s.name)


def _as_codes(spec: TableSpec) -> frozenset[str]:
    """The text columns checked as categoricals (:func:`as_distinct`): ids and text of the event
    tables. ``accounts`` (one row per account) stays text, for its own text checks."""
    if spec.name == "accounts":
        return frozenset()
    return frozenset(c.name for c in spec.columns if c.kind in ("id", "text"))


KEPT_AS_CODES: dict[str, frozenset[str]] = {
    "usage_events": frozenset({"account_id", "user_id", "event"}),
}
"""Text columns that stay categoricals in :class:`Tables` (decoding 50M ids to ``str`` costs
more than every check on them; see ``docs/scaling.md``)."""


def _decoded_frame(df: pd.DataFrame, keep: Collection[str] = ()) -> pd.DataFrame:
    """``df`` with every categorical column but those in ``keep`` :func:`decoded`."""
    cols = {c: decoded(df[c]) for c in df.columns if c not in keep and _is_categorical(df[c])}
    return df.assign(**cols) if cols else df


def _per_row(per_value: np.ndarray, codes: np.ndarray, missing: bool | int) -> np.ndarray:
    """``per_value[code]`` for each row; ``missing`` where the code is -1 (no value)."""
    if not per_value.size:
        return np.full(len(codes), missing, dtype=per_value.dtype)
    return np.where(codes >= 0, per_value[codes], missing).astype(per_value.dtype, copy=False)


def _flags(per_value: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """:func:`_per_row` of booleans (False where no value), cheap when all agree."""
    if not per_value.any():
        return np.zeros(len(codes), dtype=bool)
    return codes >= 0 if per_value.all() else _per_row(per_value, codes, False)


def _stripped_and_present(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """:func:`_stripped` values, and True where a value is given (not null, not blank text).

    A categorical stays one, both computed once per distinct value.
    """
    if _is_categorical(s):
        text, given = _stripped_and_present(pd.Series(s.cat.categories))
        remap, uniques = pd.factorize(text)  # stripping can make two values equal
        old = s.cat.codes.to_numpy()
        same = np.array_equal(remap, np.arange(len(remap)))
        codes = old if same else _per_row(remap, old, -1)
        cat = pd.Categorical.from_codes(codes, uniques, validate=False)
        present = _flags(given.to_numpy(dtype=bool), old)
        return pd.Series(cat, index=s.index, name=s.name), pd.Series(present, index=s.index)
    val = _stripped(s)
    return val, s.notna() & (val != "") if _is_text(s) else s.notna()


def _present(s: pd.Series) -> pd.Series:
    """True where a value is given (not null, not blank text)."""
    return _stripped_and_present(s)[1] if _is_text(s) else s.notna()


def _longer_than(text: pd.Series, limit: int) -> pd.Series:
    """True where the text has more than ``limit`` characters (False for missing values).

    A string needs at least as many bytes as characters, so only columns holding a value of more
    than ``limit`` bytes (a cheap check on Arrow-backed text) are measured in characters.
    """
    if _is_categorical(text):
        longer = _longer_than(pd.Series(text.cat.categories), limit).to_numpy(dtype=bool)
        return pd.Series(_flags(longer, text.cat.codes.to_numpy()), index=text.index)
    arr = text.array
    if hasattr(arr, "__arrow_array__"):
        longest = pc.max(pc.binary_length(arr.__arrow_array__())).as_py()
        if longest is None or longest <= limit:
            return pd.Series(False, index=text.index)
    return (text.str.len() > limit).fillna(False).astype(bool)


class _TableCleaner:
    """Coerces one table to contract types, recording each repair in the report."""

    def __init__(
        self, spec: TableSpec, df: pd.DataFrame, report: ValidationReport, max_invalid: float
    ) -> None:
        self.spec = spec
        self.df = df
        self.report = report
        self.max_invalid = max_invalid
        self.n_read = len(df)

    def problem(
        self,
        column: str | None,
        check: str,
        severity: Severity,
        mask: pd.Series,
        message: str,
        values: pd.Series | None = None,
    ) -> None:
        n = int(mask.sum())
        if n == 0:
            return
        if (
            severity == "repaired"
            and check in _FORMAT_CHECKS
            and self.n_read
            and n / self.n_read > self.max_invalid
        ):
            severity = "fatal"
            message += (
                f" — {n / self.n_read:.0%} of the table, above validation.max_invalid_fraction; "
                "check the export format"
            )
        rows = mask[mask].index
        self.report.add(
            Problem(self.spec.name, column, check, severity, n, message, _examples(rows, values))
        )

    def drop(self, mask: pd.Series) -> None:
        self.df = _without(self.df, mask)

    def coerce(self) -> pd.DataFrame:
        for col in self.spec.columns:
            if col.name not in self.df.columns:
                continue
            raw = self.df[col.name]
            if col.kind in ("id", "text"):
                if col.name in _as_codes(self.spec) and (_is_text(raw) or _is_categorical(raw)):
                    raw = as_distinct(raw)  # decoded after the id lookup (tables_from_frames)
                val, present = _stripped_and_present(raw)
            else:
                present = _present(raw)
            if col.kind == "id":
                missing = ~present
                self.problem(
                    col.name, "missing_id", "repaired", missing, f"missing {col.name}; rows dropped"
                )
                long = present & _longer_than(val, MAX_ID)
                self.problem(
                    col.name,
                    "too_long",
                    "repaired",
                    long,
                    f"longer than {MAX_ID} characters, not an id; rows dropped",
                    val,
                )
                self.formula_like(col.name, val.where(present & ~long))
                self.df = self.df.assign(
                    **{col.name: val if _is_categorical(val) else val.astype(str)}
                )
                self.drop(missing | long)
            elif col.kind in ("timestamp", "date"):
                val = parse_timestamps(raw)
                bad = present & val.isna()
                if col.required:
                    self.problem(
                        col.name,
                        "unparseable_timestamp",
                        "repaired",
                        bad,
                        "timestamp not understood (expected ISO 8601); rows dropped",
                        raw,
                    )
                    self.problem(
                        col.name,
                        "missing_timestamp",
                        "repaired",
                        ~present,
                        "timestamp missing; rows dropped",
                    )
                    self.df = self.df.assign(**{col.name: val})
                    self.drop(val.isna())
                else:
                    self.problem(
                        col.name,
                        "unparseable_timestamp",
                        "repaired",
                        bad,
                        "timestamp not understood (expected ISO 8601); set to missing",
                        raw,
                    )
                    self.df = self.df.assign(**{col.name: val})
            elif col.kind in ("number", "count"):
                num: pd.Series = pd.to_numeric(raw, errors="coerce").astype("float64")
                bad = present & num.isna()
                self.problem(
                    col.name, "not_a_number", "repaired", bad, "not a number; set to missing", raw
                )
                inf = pd.Series(np.isinf(num.to_numpy()), index=num.index)
                self.problem(col.name, "infinite", "repaired", inf, "infinite; set to missing", raw)
                num = num.mask(inf)
                neg = num < 0
                if col.kind == "count":
                    self.problem(
                        col.name,
                        "negative",
                        "repaired",
                        neg,
                        "negative quantity; rows dropped",
                        raw,
                    )
                    self.df = self.df.assign(**{col.name: num})
                    self.drop(neg)
                else:
                    self.problem(
                        col.name, "negative", "repaired", neg, "negative value; set to missing", raw
                    )
                    num = num.mask(neg)
                    self.df = self.df.assign(**{col.name: num})
                limit = ABSURD_ABOVE.get(col.name, ABSURD_DEFAULT)
                big = num.loc[self.df.index] > limit
                gone = "rows dropped" if col.kind == "count" else "set to missing"
                self.problem(
                    col.name,
                    "absurd",
                    "repaired",
                    big,
                    f"above {limit:g}, not plausible; {gone}",
                    raw,
                )
                if col.kind == "count":
                    self.drop(big)
                else:
                    self.df = self.df.assign(**{col.name: num.mask(num > limit)})
            elif col.kind == "bool":
                val = _parse_bool(raw)
                bad = present & val.isna()
                self.problem(
                    col.name, "not_a_bool", "repaired", bad, "not true/false; set to missing", raw
                )
                self.df = self.df.assign(**{col.name: val})
            else:
                val = val.where(present)
                long = _longer_than(val, MAX_TEXT)
                self.problem(
                    col.name,
                    "too_long",
                    "repaired",
                    long,
                    f"text longer than {MAX_TEXT:,} characters; truncated",
                    val,
                )
                self.formula_like(col.name, val)
                if long.any():
                    val = decoded(val)
                    val = val.where(~long, val.str.slice(0, MAX_TEXT))
                self.df = self.df.assign(**{col.name: val})
        return self.df

    def formula_like(self, column: str, values: pd.Series) -> None:
        """Report account text a spreadsheet would run as a formula (kept; exports neutralise)."""
        if self.spec.name != "accounts":
            return
        hit = values.str.startswith(FORMULA_START).fillna(False).astype(bool)
        self.problem(
            column,
            "formula_like",
            "info",
            hit,
            "starts with = + - or @ like a spreadsheet formula; kept as text, CSV exports "
            "prefix it with ' so a spreadsheet does not run it",
            values,
        )


def _normalise_tier(s: pd.Series) -> pd.Series:
    t = s.astype("string").str.lower().str.replace(r"[\s_-]*touch$", "", regex=True).str.strip()
    return t.where(t.isin(TOUCH_TIERS))


def _check_accounts(df: pd.DataFrame, c: _TableCleaner) -> pd.DataFrame:
    dup = df.duplicated("account_id", keep=False)
    if dup.any():
        exact = df.duplicated(keep="first")
        c.df = df
        c.problem(
            "account_id",
            "duplicate_id",
            "repaired",
            exact & dup,
            "account listed twice with identical rows; one kept",
            df["account_id"],
        )
        df = _without(df, exact)
        conflict = df.duplicated("account_id", keep=False)
        c.problem(
            "account_id",
            "duplicate_id",
            "fatal",
            conflict,
            "account listed several times with different values; keep one row per account",
            df["account_id"],
        )
    # Closed vocabularies: known spellings normalised, anything else repaired to missing.
    for col, normalise, rule in (
        (
            "touch_tier",
            _normalise_tier,
            "touch_tier must be high / low / tech; set to missing (ARR thresholds decide)",
        ),
        (
            "billing_period",
            normalise_billing_period,
            "billing_period must be monthly / annual; set to missing (annual renewals assumed)",
        ),
    ):
        if col not in df.columns:
            continue
        value = normalise(df[col])
        c.problem(col, "unknown_value", "repaired", df[col].notna() & value.isna(), rule, df[col])
        df = df.assign(**{col: value.astype(object).where(value.notna())})
    return df


def normalise_billing_period(s: pd.Series) -> pd.Series:
    """``monthly`` / ``annual`` from any known spelling (case-insensitive), else missing."""
    key = s.astype("string").str.lower().str.strip().str.replace(r"[\s_-]+", " ", regex=True)
    return key.map(BILLING_PERIODS).astype("string")


def _unknown_and_early(
    df: pd.DataFrame, table: str, time_col: str, accounts: pd.DataFrame, c: _TableCleaner
) -> pd.DataFrame:
    # Look up each distinct id once (an event table repeats a few thousand ids millions of times).
    codes, ids = codes_and_values(df["account_id"])
    per_id = pd.Series(ids).map(accounts.set_index("account_id")["created_at"])
    if len(per_id):
        created = per_id.take(np.maximum(codes, 0)).set_axis(df.index).where(codes >= 0)
    else:  # no id present at all
        created = pd.Series(pd.NaT, index=df.index, dtype=accounts["created_at"].dtype)
    unknown = created.isna()
    c.df = df
    c.problem(
        "account_id",
        "unknown_account",
        "repaired",
        unknown,
        "account_id not in accounts; rows dropped",
        df["account_id"],
    )
    df = _without(df, unknown)
    created = _without(created, unknown)
    early = df[time_col] < created
    if table == "contracts":
        c.problem(
            time_col,
            "before_created_at",
            "repaired",
            early,
            "dated before the account's created_at; moved to created_at",
            df[time_col],
        )
        df = df.assign(effective_at=df[time_col].where(~early, created))
    else:
        c.problem(
            time_col,
            "before_created_at",
            "repaired",
            early,
            "dated before the account's created_at; rows dropped",
            df[time_col],
        )
        df = _without(df, early)
    return df


_MIX = np.uint64(0x9E3779B97F4A7C15)


def _column_key(s: pd.Series) -> np.ndarray:
    """One uint64 per row, equal for equal values (nulls equal to nulls, as ``duplicated``)."""
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return np.asarray(s.array.asi8).view(np.uint64)
    if _is_categorical(s):  # categories are distinct: equal codes, equal values
        return s.cat.codes.to_numpy().astype(np.uint64)  # -1 (missing) wraps to the top value
    kind = s.dtype.kind if isinstance(s.dtype, np.dtype) else ""  # numpy-backed numbers only
    if kind in ("i", "u", "b"):
        return s.to_numpy().astype(np.uint64)
    if kind == "f":
        a = s.to_numpy(dtype="float64") + 0.0  # -0.0 -> 0.0
        return np.where(np.isnan(a), np.nan, a).view(np.uint64)  # one NaN pattern
    codes, _ = pd.factorize(s, use_na_sentinel=True)
    return codes.astype(np.uint64)


def _repeated(key: np.ndarray, split_from: int = 2_000_000) -> np.ndarray:
    """The values that occur more than once in ``key`` (uint64), each once.

    A sort finds them; from ``split_from`` values on, the keys are split by their top bit and the
    two halves sorted at once on two threads (numpy's sort releases the GIL): 1.76 -> 1.10 s on
    20M keys on 2 cores.
    """

    def repeated(part: np.ndarray) -> np.ndarray:
        part.sort()  # a copy made by the caller
        return np.unique(part[1:][part[1:] == part[:-1]])

    if len(key) < split_from:
        return repeated(key.copy())
    high = key >= np.uint64(1 << 63)
    with ThreadPoolExecutor(max_workers=2) as pool:
        return np.concatenate(list(pool.map(repeated, (key[~high], key[high]))))


def exact_duplicates(df: pd.DataFrame, min_rows: int = 100_000) -> pd.Series:
    """``df.duplicated(keep="first")``, fast on event tables (from ``min_rows`` rows on).

    Every row gets a 64-bit key mixed from its columns; rows whose key is unique cannot repeat
    another row, so the exact comparison only runs on rows sharing a key (the real duplicates and
    rare key collisions). Finding shared keys is a sort, several times faster on millions of rows
    than pandas' hash table over every column.
    """
    if len(df) < max(min_rows, 2) or df.shape[1] == 0:
        return df.duplicated(keep="first")
    key = np.zeros(len(df), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for col in df.columns:  # in place: no temporary arrays of every row
            key ^= _column_key(df[col])
            key *= _MIX
            key ^= key >> np.uint64(29)
    shared = _repeated(key)
    dup = np.zeros(len(df), dtype=bool)
    if shared.size:
        maybe = pd.Series(key).isin(shared).to_numpy()  # a hash lookup: faster than bisecting
        dup[maybe] = df.loc[maybe].duplicated(keep="first").to_numpy()
    return pd.Series(dup, index=df.index)


def _duplicate_rows(table: str, df: pd.DataFrame, c: _TableCleaner) -> pd.DataFrame:
    c.df = df
    dup = exact_duplicates(df)
    if table == "usage_events":  # two identical events can both have happened
        c.problem(
            None,
            "duplicate_row",
            "info",
            dup,
            "row repeats another row exactly; kept (counted twice): de-duplicate the export if "
            "these are copies, or add a quantity column",
        )
        return df
    c.problem(None, "duplicate_row", "repaired", dup, "row repeats another row exactly; one kept")
    return df.loc[~dup]


def _table_specific(table: str, df: pd.DataFrame, c: _TableCleaner) -> pd.DataFrame:
    c.df = df
    if table == "tickets":
        if "ticket_id" in df.columns:
            dup = df["ticket_id"].notna() & df.duplicated("ticket_id", keep="first")
            c.problem(
                "ticket_id",
                "duplicate_id",
                "repaired",
                dup,
                "duplicate ticket_id; first kept",
                df["ticket_id"],
            )
            df = _without(df, dup)
        if "closed_at" in df.columns:
            bad = df["closed_at"] < df["opened_at"]
            c.df = df
            c.problem(
                "closed_at",
                "before_opened_at",
                "repaired",
                bad,
                "closed before opened; set to missing",
                df["closed_at"],
            )
            df = df.assign(closed_at=df["closed_at"].mask(bad))
    elif table == "surveys":
        if "score" in df.columns:
            bad = (df["score"] < 0) | (df["score"] > 10)
            c.problem(
                "score",
                "out_of_range",
                "repaired",
                bad,
                "NPS score outside 0-10; set to missing",
                df["score"],
            )
            df = df.assign(score=df["score"].mask(bad))
        if "responded_at" in df.columns:
            bad = df["responded_at"] < df["sent_at"]
            c.problem(
                "responded_at",
                "before_sent_at",
                "repaired",
                bad,
                "answered before sent; set to missing",
                df["responded_at"],
            )
            df = df.assign(responded_at=df["responded_at"].mask(bad))
    elif table == "touchpoints" and "direction" in df.columns:
        d = df["direction"].astype("string").str.lower().str.strip()
        bad = d.notna() & ~d.isin(["inbound", "outbound"])
        c.problem(
            "direction",
            "unknown_value",
            "repaired",
            bad,
            "direction must be inbound / outbound; set to missing",
            df["direction"],
        )
        df = df.assign(direction=d.astype(object).where(~bad & d.notna()))
    elif table == "churn_events":
        df = df.sort_values(["account_id", "churned_at"], kind="stable")
        again = df.duplicated("account_id", keep="first")
        c.df = df
        c.problem(
            "account_id",
            "several_churns",
            "repaired",
            again,
            "account has several churn events; the first one is used",
            df["account_id"],
        )
        df = _without(df, again)
    return df


def _cut(
    df: pd.DataFrame, table: str, time_col: str, as_of: date | None, now: datetime, c: _TableCleaner
) -> pd.DataFrame:
    c.df = df
    future = df[time_col] >= pd.Timestamp(now.replace(tzinfo=None))
    c.problem(
        time_col,
        "in_future",
        "repaired",
        future,
        f"dated in the future (after {now:%Y-%m-%d %H:%M} UTC); rows dropped",
        df[time_col],
    )
    df = _without(df, future)
    if as_of is not None:
        late = df[time_col] >= cutoff(as_of)
        n = int(late.sum())
        if n:
            c.report.add(
                Problem(
                    table,
                    time_col,
                    "after_as_of",
                    "info",
                    n,
                    f"dated after --as-of {as_of}; ignored",
                )
            )
        df = _without(df, late)
        # Later facts about an earlier row (a ticket closed after as_of) are not known yet.
        for col in TABLES[table].columns:
            if col.kind == "timestamp" and col.name != time_col and col.name in df.columns:
                df = df.assign(**{col.name: df[col.name].mask(df[col.name] >= cutoff(as_of))})
    return df


# --------------------------------------------------------------------------------------- entry
def tables_from_frames(
    frames: Mapping[str, pd.DataFrame],
    config: Config | None = None,
    as_of: date | None = None,
    *,
    source: str = "frames",
    now: datetime | None = None,
    report: ValidationReport | None = None,
    strict: bool = True,
) -> Tables:
    """Validate and repair in-memory contract tables (the path every loader goes through).

    Args:
        frames: table name -> raw frame (any column types; CSV-like strings are parsed).
        config: run configuration (column renames, thresholds).
        as_of: ignore rows dated after this day; defaults to the last day with data.
        source: name used in messages (e.g. the data directory).
        now: the current time (rows after it are in the future); defaults to the clock.
        report: a report to add to (e.g. one with file-reading problems).
        strict: raise :class:`DataContractError` on fatal problems.

    Returns:
        Cleaned tables with their validation report.
    """
    config = config or Config()
    report = report or ValidationReport(source)
    now = now or datetime.now(UTC)
    out: dict[str, pd.DataFrame] = {}
    for table in TABLE_NAMES:
        if table not in frames:
            if table not in report.tables_missing:
                report.tables_missing.append(table)
            continue
        spec = TABLES[table]
        df = frames[table].copy(deep=False)  # copy-on-write: the caller's frame is never changed
        df.columns = [str(col).strip() for col in df.columns]
        df = df.rename(columns=config.columns.get(table, {}))
        # Categoricals (Parquet text) stay so only where the checks use their codes (as_distinct).
        df = _decoded_frame(df, _as_codes(spec))
        df = df.reset_index(drop=True)
        report.rows_read[table] = len(df)
        missing = [col for col in spec.required if col not in df.columns]
        for col in missing:
            renames = config.columns.get(table, {})
            hint = (
                f"; renames in config: {renames}"
                if renames
                else (f"; rename it in churnlens.yaml under columns: {table}:")
            )
            report.add(
                Problem(
                    table,
                    col,
                    "missing_column",
                    "fatal",
                    len(df),
                    f"required column {col!r} is missing (found: "
                    f"{', '.join(map(str, df.columns)) or 'no columns'}){hint}",
                )
            )
        if missing:
            continue
        dupcols = df.columns[df.columns.duplicated()].tolist()
        if dupcols:
            report.add(
                Problem(
                    table,
                    dupcols[0],
                    "duplicate_column",
                    "fatal",
                    len(df),
                    f"column(s) {dupcols} appear more than once",
                )
            )
            continue
        if df.empty:
            report.add(
                Problem(
                    table,
                    None,
                    "empty_table",
                    "fatal" if table == "accounts" else "info",
                    0,
                    "no accounts: the file has a header but no rows"
                    if table == "accounts"
                    else "a header but no rows: every account has none (remove the file if the "
                    "source is unknown rather than empty)",
                )
            )
        cleaner = _TableCleaner(spec, df, report, config.validation.max_invalid_fraction)
        df = cleaner.coerce()
        if table != "accounts":
            df = _duplicate_rows(table, df, cleaner)
        if table == "accounts":
            # Conflicting duplicates are reported as fatal; keep the first so the rest of the
            # data can still be checked (validate reports everything at once).
            df = _check_accounts(df, cleaner).drop_duplicates("account_id")
        out[table] = df

    if "accounts" not in out:
        report.raise_if_fatal()
        raise DataContractError(f"{source}: no usable accounts table")

    accounts = out["accounts"]
    c = _TableCleaner(TABLES["accounts"], accounts, report, config.validation.max_invalid_fraction)
    accounts = _cut(accounts, "accounts", "created_at", as_of, now, c)
    out["accounts"] = accounts
    if accounts.empty:
        if not report.fatal:
            report.add(
                Problem(
                    "accounts",
                    "created_at",
                    "empty_table",
                    "fatal",
                    0,
                    f"none of the {report.rows_read['accounts']:,} account rows is usable"
                    + (f" at --as-of {as_of}" if as_of is not None else "")
                    + " (see the problems above)",
                )
            )
        report.raise_if_fatal()  # nothing can be checked against no accounts
    for table in TABLE_NAMES[1:]:
        if table not in out:
            continue
        spec = TABLES[table]
        assert spec.time_column is not None
        c = _TableCleaner(spec, out[table], report, config.validation.max_invalid_fraction)
        c.n_read = report.rows_read[table]
        df = _unknown_and_early(out[table], table, spec.time_column, accounts, c)
        df = _decoded_frame(df, KEPT_AS_CODES.get(table, ()))
        df = _table_specific(table, df, c)
        df = _cut(df, table, spec.time_column, as_of, now, c)
        out[table] = df

    if as_of is None:
        last = max(
            (out[t][TABLES[t].time_column].max() for t in out if len(out[t])),
            default=pd.Timestamp(now.replace(tzinfo=None)),
        )
        as_of = (last if not pd.isna(last) else pd.Timestamp(now.replace(tzinfo=None))).date()
    for table, df in out.items():
        if len(df) < report.rows_read[table]:  # no category without a row (value_counts)
            kept = KEPT_AS_CODES.get(table, ())
            cats = [c for c in df.columns if c in kept and _is_categorical(df[c])]
            df = df.assign(**{c: df[c].cat.remove_unused_categories() for c in cats})
        out[table] = df.reset_index(drop=True)
        report.rows_kept[table] = len(df)
    if strict:
        report.raise_if_fatal()
    return Tables(out, as_of, config, report)


def load_tables(
    data_dir: Path | str,
    config: Config | None = None,
    as_of: date | None = None,
    *,
    now: datetime | None = None,
    strict: bool = True,
) -> Tables:
    """Read, validate and repair a data directory (raises on fatal problems when ``strict``)."""
    data_dir = Path(data_dir)
    report = ValidationReport(str(data_dir))
    frames = read_data_dir(data_dir, report)
    if "accounts" not in frames:
        report.raise_if_fatal()
    if strict:
        report.raise_if_fatal()
    return tables_from_frames(
        frames, config, as_of, source=str(data_dir), now=now, report=report, strict=strict
    )


def validate(
    data_dir: Path | str,
    config: Config | None = None,
    as_of: date | None = None,
    *,
    now: datetime | None = None,
) -> ValidationReport:
    """Check a data directory and return every problem found (never raises on bad data)."""
    data_dir = Path(data_dir)
    report = ValidationReport(str(data_dir))
    frames = read_data_dir(data_dir, report)
    if "accounts" in frames:
        with contextlib.suppress(DataContractError):
            tables_from_frames(
                frames, config, as_of, source=str(data_dir), now=now, report=report, strict=False
            )
    return report


def data_digest(data_dir: Path | str) -> str:
    """SHA-256 over the contract files in ``data_dir`` (names and bytes), for run records."""
    import hashlib

    h = hashlib.sha256()
    data_dir = Path(data_dir)
    for table in TABLE_NAMES:
        for path in find_table_file(data_dir, table):
            h.update(path.name.encode())
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    cfg = data_dir / "churnlens.yaml"
    if cfg.exists():
        h.update(cfg.read_bytes())
    return h.hexdigest()


def week_floor(ts: pd.Series) -> pd.Series:
    """Monday 00:00 of the ISO week holding each timestamp."""
    d = ts.dt.normalize()
    return d - pd.to_timedelta(d.dt.day_of_week, unit="D")


def last_complete_week_start(as_of: date) -> date:
    """Monday of the last week that ended on or before ``as_of`` (weeks run Monday-Sunday)."""
    return as_of - timedelta(days=(as_of.weekday() + 1) % 7 + 6)
