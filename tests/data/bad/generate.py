"""Generate the bad-data corpus: one data directory per case, each a valid base with one corruption.

The base is a small simulated customer base (``churnlens.datasets.simulator``, a couple of hundred
accounts, usage thinned to a tenth) written as CSV with a ``churnlens.yaml`` that shrinks the model,
so ``validate``, ``train`` and ``score`` all run in seconds. Every case directory
``<out>/<table>__<kind>/`` holds the full set of tables: the untouched ones are hard links to the
base files (copies where the file system cannot link), the corrupted one is rewritten. Each
:class:`Case` says what must happen: ``repaired`` (the run succeeds and the validation report has
the listed checks with at least the given counts) or ``fatal`` (exit code 2 and a message naming the
table, the column and, where the fault is in a value, an example row).

Nothing here is committed: the corpus (with its 10 MB account name) is generated at test time into
a temporary directory, or by hand::

    python tests/data/bad/generate.py --out tests/data/bad/out   # git-ignored

Kinds that do not apply to a table are skipped where the table is built (see ``_cases_for``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml

from churnlens.datasets.simulator import SimulatorConfig, churnlens_yaml, simulate
from churnlens.features.schema import TABLE_NAMES, TABLES

N_ACCOUNTS = 200
USAGE_FRACTION = 0.1  # thin the usage log: enough signal to train, a small file to copy and read
BIG_TEXT = 10 * 1024 * 1024  # the oversized account name (bytes of ASCII)
BIG_TEXT_OTHER = 1024 * 1024  # oversized text in the other tables
INJECTIONS = ('=HYPERLINK("http://x","click")', "+cmd", "-1+1", "@SUM(A1:A9)")
# The model settings of the corpus: a few boosting rounds (the data, not the model, is under test).
MODEL = {"max_rounds": 30, "early_stopping_rounds": 5, "min_data_in_leaf": 5}

Outcome = Literal["repaired", "fatal"]
Severity = Literal["repaired", "info", "fatal"]

# Per table: the columns the corruptions aim at (None where the table has no such column).
NUMBER_COLUMN: dict[str, str | None] = {
    "accounts": "arr",
    "usage_events": "quantity",
    "tickets": "csat",
    "surveys": "score",
    "touchpoints": None,
    "contracts": "seats",
    "churn_events": None,
}
BOOL_COLUMN: dict[str, str | None] = {"touchpoints": "responded", "churn_events": "avoidable"}
TEXT_COLUMN: dict[str, str | None] = {
    "accounts": "name",
    "usage_events": "event",
    "tickets": "category",
    "surveys": None,  # no free text: its oversized case is a 1 MB account_id
    "touchpoints": "kind",
    "contracts": "plan",
    "churn_events": "reason",
}


KINDS: tuple[str, ...] = (
    "missing_column",
    "wrong_types",
    "wrong_types_parquet",
    "unparseable_timestamps",
    "mixed_timezone",
    "duplicated_rows",
    "duplicated_ids",
    "before_created_at",
    "after_as_of",
    "negative",
    "absurd",
    "nan_inf",
    "empty_file",
    "header_only",
    "oversized_text",
    "non_utf8",
    "csv_injection",
)


def applies(table: str, kind: str) -> bool:
    """Whether the corpus has a ``kind`` case for ``table`` (why not, where it has none)."""
    if kind == "duplicated_ids":
        # only tables with an id of their own (accounts, tickets) and churn_events (one churn per
        # account); usage_events, surveys, touchpoints and contracts have no row id
        return table in ("accounts", "tickets", "churn_events")
    if kind == "before_created_at":
        return table != "accounts"  # created_at is the reference itself
    if kind in ("negative", "absurd"):
        return NUMBER_COLUMN[table] is not None  # touchpoints, churn_events: no quantity at all
    if kind == "wrong_types":
        return NUMBER_COLUMN[table] is not None or table in BOOL_COLUMN
    if kind == "csv_injection":
        # only account text (ids, names) reaches an export (score CSV, CSM page); other tables'
        # text never leaves churnlens
        return table == "accounts"
    return True


def case_names() -> list[str]:
    """Every case name, ``<table>__<kind>``, without writing anything (for test parameters)."""
    return [f"{t}__{k}" for t in TABLE_NAMES for k in KINDS if applies(t, k)]


@dataclass(frozen=True)
class Expect:
    """A problem the validation report must hold for a case."""

    check: str
    column: str | None
    severity: Severity = "repaired"
    min_count: int = 1
    row: int | None = None  # fatal: the example row (1-based data row) the message must name


@dataclass(frozen=True)
class Case:
    """One corrupted data directory and what churnlens must do with it."""

    name: str
    table: str
    kind: str
    outcome: Outcome
    expect: tuple[Expect, ...]
    note: str = ""
    files: tuple[str, ...] = field(default=())  # the file(s) written for the corrupted table

    def path(self, root: Path) -> Path:
        """The case's data directory under the corpus root."""
        return root / self.name


@dataclass(frozen=True)
class Base:
    """The valid base the cases are derived from."""

    path: Path
    as_of: date
    frames: dict[str, pd.DataFrame]  # as written (CSV text), keyed by table


# --------------------------------------------------------------------------------------- the base
def write_base(out: Path, seed: int = 0) -> Base:
    """Simulate the small valid base and write it as CSV under ``out``."""
    sim = simulate(SimulatorConfig(n_accounts=N_ACCOUNTS, seed=seed + 3))
    out.mkdir(parents=True, exist_ok=True)
    frames: dict[str, pd.DataFrame] = {}
    for name in TABLE_NAMES:
        df = sim.tables[name]
        if name == "usage_events":
            df = df.sample(frac=USAGE_FRACTION, random_state=seed).sort_values("occurred_at")
        df = df.reset_index(drop=True)
        df.to_csv(out / f"{name}.csv", index=False)
        frames[name] = pd.read_csv(out / f"{name}.csv", dtype=str, keep_default_na=False)
    cfg = churnlens_yaml(13) | {"model": MODEL}
    (out / "churnlens.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return Base(out, sim.end, frames)


# --------------------------------------------------------------------------------------- writing
def _case_dir(root: Path, base: Base, name: str, table: str) -> Path:
    """A fresh case directory: every base file linked in except ``table``'s."""
    d = root / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    for src in base.path.iterdir():
        if src.name == f"{table}.csv" or not src.is_file():
            continue
        try:
            os.link(src, d / src.name)
        except OSError:
            shutil.copy2(src, d / src.name)
    return d


def _csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode("utf-8")


def _rows(n: int, k: int, rng: np.random.Generator) -> list[int]:
    """``k`` distinct 0-based row positions, sorted (never the first row: it anchors examples)."""
    return sorted(int(i) for i in rng.choice(np.arange(1, n), size=min(k, n - 1), replace=False))


# --------------------------------------------------------------------------------------- the cases
def _cases_for(table: str, base: Base, rng: np.random.Generator) -> list[tuple[Case, bytes, str]]:
    """Every case of ``table``: (case, file bytes, file name)."""
    spec = TABLES[table]
    time_col = spec.time_column
    assert time_col is not None
    df = base.frames[table]
    n = len(df)
    num = NUMBER_COLUMN.get(table)
    boolean = BOOL_COLUMN.get(table)
    text = TEXT_COLUMN.get(table)
    out: list[tuple[Case, bytes, str]] = []
    csv_name = f"{table}.csv"

    def add(
        kind: str,
        outcome: Outcome,
        data: bytes,
        *expect: Expect,
        note: str = "",
        fname: str = csv_name,
    ) -> None:
        out.append(
            (Case(f"{table}__{kind}", table, kind, outcome, expect, note, (fname,)), data, fname)
        )

    # missing required column: the table's time column is not there
    add(
        "missing_column",
        "fatal",
        _csv(df.drop(columns=[time_col])),
        Expect("missing_column", time_col, "fatal", 0),
    )

    # wrong types, a few cells: text in a number / bool column (repaired to missing)
    rows = _rows(n, 4, rng)
    if applies(table, "wrong_types") and num is not None:
        bad = df.copy()
        bad.loc[rows, num] = ["twelve", "n/a!", "1,2,3", "ten"][: len(rows)]
        add("wrong_types", "repaired", _csv(bad), Expect("not_a_number", num, min_count=len(rows)))
    elif applies(table, "wrong_types") and boolean is not None:
        bad = df.copy()
        bad.loc[rows, boolean] = ["maybe", "sometimes", "2", "yes-ish"][: len(rows)]
        add(
            "wrong_types", "repaired", _csv(bad), Expect("not_a_bool", boolean, min_count=len(rows))
        )

    # wrong types, the whole column: a Parquet export with the time column as epoch seconds
    typed = pd.read_csv(base.path / csv_name, dtype=str, keep_default_na=True)
    epoch = pd.to_datetime(typed[time_col], utc=True, format="ISO8601").astype("int64") // 10**6
    parquet = typed.assign(**{time_col: epoch.astype("int64")})
    buf = _parquet_bytes(parquet)
    add(
        "wrong_types_parquet",
        "fatal",
        buf,
        Expect("unparseable_timestamp", time_col, "fatal", n, row=1),
        note="time column written as integer seconds since 1970 (not ISO 8601)",
        fname=f"{table}.parquet",
    )

    # unparseable timestamps in a few rows (rows dropped)
    rows = _rows(n, 3, rng)
    bad = df.copy()
    bad.loc[rows, time_col] = ["31/12/2024", "yesterday", "2024-13-45T25:61:00"][: len(rows)]
    add(
        "unparseable_timestamps",
        "repaired",
        _csv(bad),
        Expect("unparseable_timestamp", time_col, min_count=len(rows)),
    )

    # mixed time zones: the same instants written with several offsets (converted to UTC), and
    # a few with zone names ISO 8601 does not allow (rows dropped)
    bad = df.copy()
    ts = pd.to_datetime(bad[time_col], utc=True, format="ISO8601")
    tokyo = ts.dt.tz_convert("Asia/Tokyo").dt.strftime("%Y-%m-%dT%H:%M:%S%z")
    ny = ts.dt.tz_convert("America/New_York").dt.strftime("%Y-%m-%dT%H:%M:%S%z")
    zulu = ts.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    naive = ts.dt.strftime("%Y-%m-%d %H:%M:%S")
    pick = np.arange(n) % 4
    bad[time_col] = np.select([pick == 0, pick == 1, pick == 2], [tokyo, ny, zulu], naive)
    named = _rows(n, 2, rng)
    for i, zone in zip(named, ("JST", "EST"), strict=False):
        bad.loc[i, time_col] = f"{naive.iloc[i]} {zone}"
    add(
        "mixed_timezone",
        "repaired",
        _csv(bad),
        Expect("unparseable_timestamp", time_col, min_count=len(named)),
        note="rows at +09:00, -05:00/-04:00, Z and naive (UTC) parse to the same instants",
    )

    # duplicated rows: a few rows exported twice
    rows = _rows(n, 3, rng)
    bad = pd.concat([df, df.iloc[rows]], ignore_index=True)
    if table == "accounts":
        dup = Expect("duplicate_id", "account_id", min_count=len(rows))
    elif table == "usage_events":
        # identical events can be real (two at one instant): kept and reported, not dropped
        dup = Expect("duplicate_row", None, "info", len(rows))
    else:
        dup = Expect("duplicate_row", None, min_count=len(rows))
    add("duplicated_rows", "repaired", _csv(bad), dup)

    # duplicated ids (see applies() for the tables without a row id)
    rows = _rows(n, 2, rng)
    if table == "accounts":
        bad = df.copy()
        bad.loc[rows[1], "account_id"] = bad.loc[rows[0], "account_id"]
        add(
            "duplicated_ids",
            "fatal",
            _csv(bad),
            Expect("duplicate_id", "account_id", "fatal", 2, row=rows[0] + 1),
        )
    elif table == "tickets":
        bad = df.copy()
        bad.loc[rows[1], "ticket_id"] = bad.loc[rows[0], "ticket_id"]
        add("duplicated_ids", "repaired", _csv(bad), Expect("duplicate_id", "ticket_id"))
    elif table == "churn_events":
        bad = pd.concat([df, df.iloc[rows].assign(reason="price")], ignore_index=True)
        later = pd.to_datetime(bad[time_col], utc=True, format="ISO8601")
        later.iloc[n:] += pd.Timedelta(days=7)
        bad.loc[n:, time_col] = later.iloc[n:].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        add(
            "duplicated_ids",
            "repaired",
            _csv(bad),
            Expect("several_churns", "account_id", min_count=len(rows)),
        )

    # events before the account was created (accounts: does not apply)
    if applies(table, "before_created_at"):
        created = base.frames["accounts"].set_index("account_id")["created_at"]
        rows = _rows(n, 3, rng)
        bad = df.copy()
        early = pd.to_datetime(bad.loc[rows, "account_id"].map(created), utc=True, format="ISO8601")
        bad.loc[rows, time_col] = (early - pd.Timedelta(days=30)).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        add(
            "before_created_at",
            "repaired",
            _csv(bad),
            Expect("before_created_at", time_col, min_count=len(rows)),
        )

    # after the as-of date: a few days later (ignored) and in the future (dropped)
    rows = _rows(n, 4, rng)
    bad = df.copy()
    later = pd.Timestamp(base.as_of) + pd.Timedelta(days=3, hours=12)
    bad.loc[rows[:2], time_col] = later.strftime("%Y-%m-%dT%H:%M:%SZ")
    bad.loc[rows[2:], time_col] = "2099-01-01T00:00:00Z"
    add(
        "after_as_of",
        "repaired",
        _csv(bad),
        Expect("after_as_of", time_col, "info", 2),
        Expect("in_future", time_col, min_count=2),
    )

    # negative and absurd quantities (touchpoints and churn_events have no quantity)
    if applies(table, "negative") and num is not None:
        rows = _rows(n, 3, rng)
        bad = df.copy()
        bad.loc[rows, num] = ["-1", "-250", "-0.5"][: len(rows)]
        add("negative", "repaired", _csv(bad), Expect("negative", num, min_count=len(rows)))
        rows = _rows(n, 2, rng)
        bad = df.copy()
        bad.loc[rows, num] = ["1e15", "1e300"]
        add("absurd", "repaired", _csv(bad), Expect("absurd", num, min_count=len(rows)))

    # NaN / inf: NaN in the time column (missing: rows dropped), inf in the number column
    rows = _rows(n, 4, rng)
    bad = df.copy()
    bad.loc[rows[:2], time_col] = "NaN"
    expect = [Expect("missing_timestamp", time_col, min_count=2)]
    if num is not None:
        bad.loc[rows[2:], num] = ["inf", "-inf"]
        expect.append(Expect("infinite", num, min_count=2))
    add("nan_inf", "repaired", _csv(bad), *expect)

    # empty: 0 bytes (the export broke) and a header without rows
    add("empty_file", "fatal", b"", Expect("empty_file", None, "fatal", 0))
    header = _csv(df.head(0))
    if table == "accounts":
        add("header_only", "fatal", header, Expect("empty_table", None, "fatal", 0))
    else:
        add("header_only", "repaired", header, Expect("empty_table", None, "info", 0))

    # an oversized text field: a 10 MB account name (1 MB elsewhere; surveys: its account_id)
    row = _rows(n, 1, rng)[0]
    bad = df.copy()
    if text is not None:
        size = BIG_TEXT if table == "accounts" else BIG_TEXT_OTHER
        bad.loc[row, text] = "A" * size
        add("oversized_text", "repaired", _csv(bad), Expect("too_long", text))
    else:
        bad.loc[row, "account_id"] = "A" * BIG_TEXT_OTHER
        add("oversized_text", "repaired", _csv(bad), Expect("too_long", "account_id"))

    # non-UTF-8 bytes: Windows-1252 text (surveys: a Latin-1 no-break space after a score)
    rows = _rows(n, 2, rng)
    raw = df.copy()
    target = text or num or "account_id"
    marker = "\x00NONUTF8\x00"
    for i in rows:
        raw.loc[i, target] = f"{raw.loc[i, target]}{marker}"
    data = _csv(raw).replace(marker.encode(), b"\xe9\xa0")  # "é" and NBSP in Windows-1252
    expect = [Expect("not_utf8", target, min_count=len(rows))]
    if table == "surveys":
        expect.append(Expect("not_a_number", target, min_count=len(rows)))
    add("non_utf8", "repaired", data, *expect)

    # CSV injection: accounts only (see applies()); built by _injection_case
    return out


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    import io

    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def _injection_case(root: Path, base: Base) -> Case:
    """Account names and ids that a spreadsheet would run as formulas (ids changed everywhere)."""
    name = "accounts__csv_injection"
    d = root / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    for src in base.path.iterdir():
        if src.is_file() and not src.name.endswith(".csv"):
            shutil.copy2(src, d / src.name)
    accounts = base.frames["accounts"]
    # the accounts still alive at the end (no churn event), so each one is scored
    churned = set(base.frames["churn_events"]["account_id"])
    alive = [a for a in accounts["account_id"] if a not in churned][: len(INJECTIONS)]
    new_ids = {old: inj for old, inj in zip(alive, INJECTIONS, strict=True)}
    for table in TABLE_NAMES:
        df = base.frames[table].copy()
        df["account_id"] = df["account_id"].replace(new_ids)
        if table == "accounts":
            df.loc[df["account_id"].isin(INJECTIONS), "name"] = list(INJECTIONS)
        (d / f"{table}.csv").write_bytes(_csv(df))
    return Case(
        name,
        "accounts",
        "csv_injection",
        "repaired",
        (
            Expect("formula_like", "account_id", "info", len(INJECTIONS)),
            Expect("formula_like", "name", "info", len(INJECTIONS)),
        ),
        note="ids and names " + ", ".join(INJECTIONS) + "; CSV exports must neutralise them",
        files=tuple(f"{t}.csv" for t in TABLE_NAMES),
    )


def generate(out_dir: Path, seed: int = 0) -> list[Case]:
    """Write the valid base to ``out_dir/valid`` and every case beside it; return the cases.

    Also writes ``out_dir/cases.json`` (the cases and the as-of date to run them at).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base = write_base(out_dir / "valid", seed)
    rng = np.random.default_rng(seed)
    cases: list[Case] = []
    for table in TABLE_NAMES:
        for case, data, fname in _cases_for(table, base, rng):
            d = _case_dir(out_dir, base, case.name, table)
            (d / fname).write_bytes(data)
            cases.append(case)
    cases.append(_injection_case(out_dir, base))
    assert sorted(c.name for c in cases) == sorted(case_names()), (
        "applies() and the builders differ"
    )
    manifest = {"as_of": str(base.as_of), "seed": seed, "cases": [asdict(c) for c in cases]}
    (out_dir / "cases.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return cases


def as_of(out_dir: Path) -> date:
    """The as-of date the corpus under ``out_dir`` is meant to be run at."""
    manifest = json.loads((Path(out_dir) / "cases.json").read_text(encoding="utf-8"))
    return date.fromisoformat(manifest["as_of"])


def main(argv: list[str] | None = None) -> int:
    """``python tests/data/bad/generate.py --out DIR [--seed N]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    cases = generate(args.out, args.seed)
    fatal = sum(c.outcome == "fatal" for c in cases)
    sys.stdout.write(
        f"{len(cases)} cases ({fatal} fatal, {len(cases) - fatal} repaired) in {args.out}; "
        f"run them with --as-of {as_of(args.out)}\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
