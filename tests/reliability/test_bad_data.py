"""Bad data in, clean outcome out: the corpus of ``tests/data/bad/generate.py`` through the CLI.

For every case the corpus says what must happen: the run succeeds and reports the repair (check,
table, column, count), or it stops with exit code 2 and a message naming the table, the column and,
for a fault in a value, an example row. Never a traceback, never a partial model or score file.

What runs on which cases (a full ``train`` is ~3 s, so it cannot run ~100 times):

- ``validate --json`` on every case (the report is the reference for the counts);
- ``train`` and ``score`` on every *fatal* case (they stop while loading: cheap), checking that no
  MLflow run, registered version or alias appeared and that no score file or temp file is left;
- ``train`` and ``score`` on one representative *repaired* case per table (:data:`REPRESENTATIVE`),
  checking the repair count the report gives is printed and that a version is registered;
- the CSV-injection case through ``score`` to CSV (neutralised) and Parquet (kept raw).

All commands run in-process through the Typer app; MLflow is a SQLite file in a temp directory;
``score`` uses a model package trained once on the valid base.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest
from click.testing import Result
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from churnlens.cli import app
from churnlens.config import load_config
from churnlens.features.contract import load_tables, validate
from churnlens.features.io import write_frame
from churnlens.training.pipeline import train

runner = CliRunner()
GENERATOR = Path(__file__).parents[1] / "data" / "bad" / "generate.py"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("churnlens_bad_corpus", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gen = _load_generator()
CASES: list[str] = gen.case_names()
# One repaired case per table goes through train and score (a full train each).
REPRESENTATIVE = (
    "accounts__oversized_text",
    "usage_events__absurd",
    "tickets__non_utf8",
    "surveys__mixed_timezone",
    "touchpoints__duplicated_rows",
    "contracts__negative",
    "churn_events__duplicated_ids",
)


@dataclass
class Corpus:
    """The generated corpus, its cases by name and a model package trained on the valid base."""

    root: Path
    cases: dict[str, Any]
    as_of: str
    model: Path

    def dir(self, name: str) -> Path:
        return self.root / name


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    root = tmp_path_factory.mktemp("bad-corpus")
    cases = {c.name: c for c in gen.generate(root, seed=0)}
    base = root / "valid"
    model = root / "model"
    train(base, load_config(None, base), register=False).model.save(model)
    return Corpus(root, cases, str(gen.as_of(root)), model)


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SQLite tracking store and a clean working directory for the whole module."""
    work = tmp_path_factory.mktemp("bad-work")
    uri = f"sqlite:///{work / 'mlflow.db'}"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    mp.delenv("CHURNLENS_DATABASE_URL", raising=False)
    mp.chdir(work)
    yield uri
    mp.undo()


def _clean(res: Result) -> None:
    """No traceback, and the only exception is the CLI's own exit."""
    assert "Traceback" not in res.output, res.output[-3000:]
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code in (0, 2), res.output[-3000:]


def _said(res: Result) -> str:
    return " ".join(res.output.split())


def _problems(report: dict[str, Any], table: str, exp: Any) -> list[dict[str, Any]]:
    return [
        p
        for p in report["problems"]
        if p["table"] == table
        and p["check"] == exp.check
        and p["severity"] == exp.severity
        and (exp.column is None or p["column"] == exp.column)
    ]


def _registry(uri: str) -> tuple[list[tuple[str, str]], list[str], str | None]:
    """(run id, status) of every run, every registered version, the champion version.

    A store file that does not exist holds nothing (and is not created by looking).
    """
    if not Path(uri.removeprefix("sqlite:///")).exists():
        return [], [], None
    client = MlflowClient(uri)
    exps = [e.experiment_id for e in client.search_experiments()]
    runs = sorted((r.info.run_id, r.info.status) for r in client.search_runs(exps)) if exps else []
    versions = sorted(v.version for v in client.search_model_versions("name='churnlens'"))
    try:
        champion: str | None = str(
            client.get_model_version_by_alias("churnlens", "champion").version
        )
    except Exception:  # no model or no alias yet
        champion = None
    return runs, [str(v) for v in versions], champion


def _score(corpus: Corpus, data: str, out: Path, *extra: str) -> Result:
    args = ["--as-of", corpus.as_of, "--model", str(corpus.model), "--out", str(out), *extra]
    return runner.invoke(app, ["score", "--data", data, *args])


def _no_score_file(out: Path) -> None:
    assert not out.exists(), f"{out} written by a failed run"
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")] == []


# --------------------------------------------------------------------------------- the corpus
def test_corpus_has_every_kind_for_every_table_and_a_valid_base(corpus: Corpus):
    assert sorted(corpus.cases) == sorted(CASES)
    tables = {c.table for c in corpus.cases.values()}
    assert tables == set(gen.TABLE_NAMES)
    for kind in gen.KINDS:
        assert any(c.kind == kind for c in corpus.cases.values()), kind
    big = corpus.dir("accounts__oversized_text") / "accounts.csv"
    assert big.stat().st_size > gen.BIG_TEXT
    assert (corpus.dir("accounts__empty_file") / "accounts.csv").stat().st_size == 0
    # the base itself is clean: every problem a case reports comes from its corruption
    report = validate(corpus.root / "valid", load_config(None, corpus.root / "valid"))
    assert report.ok and report.problems == [], [str(p) for p in report.problems]


# --------------------------------------------------------------------------------- validate
@pytest.mark.parametrize("name", CASES)
def test_validate_reports_the_repair_or_stops_naming_table_column_row(corpus: Corpus, name: str):
    case = corpus.cases[name]
    res = runner.invoke(
        app, ["validate", "--data", str(corpus.dir(name)), "--as-of", corpus.as_of, "--json"]
    )
    _clean(res)
    report = json.loads(res.stdout)
    assert res.exit_code == (2 if case.outcome == "fatal" else 0), res.output[-3000:]
    assert report["ok"] is (case.outcome != "fatal")
    for exp in case.expect:
        found = _problems(report, case.table, exp)
        assert found, f"{name}: no {exp}: {[p for p in report['problems']]}"
        assert sum(p["count"] for p in found) >= exp.min_count, found
        if exp.row is not None:
            assert any(e.startswith(f"row {exp.row}") for p in found for e in p["examples"]), found
    if case.outcome == "repaired":
        assert not [p for p in report["problems"] if p["severity"] == "fatal"]


# --------------------------------------------------------------------------------- fatal cases
FATAL_KINDS = {"missing_column", "wrong_types_parquet", "empty_file"}


def _fatal_names() -> list[str]:
    names = [n for n in CASES if n.split("__")[1] in FATAL_KINDS]
    return [*names, "accounts__header_only", "accounts__duplicated_ids"]


def _assert_names_the_fault(res: Result, case: Any) -> None:
    said = _said(res)
    exp = next(e for e in case.expect if e.severity == "fatal")
    assert "error:" in said
    where = f"{case.table}.{exp.column}" if exp.column else case.table
    assert f"[fatal] {where}:" in said, said[-2000:]
    if exp.row is not None:
        assert f"row {exp.row}" in said, said[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("name", _fatal_names())
def test_train_and_score_stop_with_exit_2_and_leave_nothing(
    corpus: Corpus, mlflow_uri: str, tmp_path: Path, name: str
):
    case = corpus.cases[name]
    assert case.outcome == "fatal"
    data = str(corpus.dir(name))
    before = _registry(mlflow_uri)
    res = runner.invoke(app, ["train", "--data", data, "--as-of", corpus.as_of])
    _clean(res)
    assert res.exit_code == 2, res.output[-3000:]
    _assert_names_the_fault(res, case)
    assert _registry(mlflow_uri) == before, "a failed train left a run, a version or an alias"

    # half the cases write CSV, half Parquet: both go through the temp file and rename
    out = tmp_path / ("scores.csv" if _fatal_names().index(name) % 2 else "scores.parquet")
    res = _score(corpus, data, out, "--no-store")
    _clean(res)
    assert res.exit_code == 2, res.output[-3000:]
    _assert_names_the_fault(res, case)
    _no_score_file(out)


def test_every_fatal_case_is_exercised_by_train_and_score(corpus: Corpus):
    fatal = {n for n, c in corpus.cases.items() if c.outcome == "fatal"}
    assert set(_fatal_names()) == fatal


# --------------------------------------------------------------------------------- repaired cases
def _assert_repairs_printed(res: Result, corpus: Corpus, name: str) -> None:
    """Each expected problem is printed with the count the validation report gives."""
    case = corpus.cases[name]
    report = validate(corpus.dir(name), load_config(None, corpus.dir(name)), gen.as_of(corpus.root))
    said = _said(res)
    for exp in case.expect:
        p = next(
            p
            for p in report.problems
            if p.table == case.table
            and p.check == exp.check
            and (exp.column is None or p.column == exp.column)
        )
        where = f"{p.table}.{p.column}" if p.column else p.table
        assert f"[{p.severity}] {where}: {p.message} ({p.count} rows)" in said, said[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_train_and_score_succeed_with_the_repair_count(
    corpus: Corpus, mlflow_uri: str, tmp_path: Path, name: str
):
    assert corpus.cases[name].outcome == "repaired"
    data = str(corpus.dir(name))
    runs_before, versions_before, _ = _registry(mlflow_uri)
    res = runner.invoke(app, ["train", "--data", data, "--as-of", corpus.as_of])
    _clean(res)
    assert res.exit_code == 0, res.output[-3000:]
    _assert_repairs_printed(res, corpus, name)
    runs, versions, champion = _registry(mlflow_uri)
    new = [v for v in versions if v not in versions_before]
    assert len(new) == 1 and f"registered churnlens v{new[0]}" in _said(res)
    assert champion is not None
    assert [s for r, s in runs if (r, s) not in runs_before] == ["FINISHED"]

    out = tmp_path / "scores.csv"
    res = _score(corpus, data, out, "--no-store")
    _clean(res)
    assert res.exit_code == 0, res.output[-3000:]
    _assert_repairs_printed(res, corpus, name)
    scores = pd.read_csv(out)
    assert len(scores) > 100 and scores["churn_probability"].between(0, 1).all()
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]


def test_representatives_cover_every_table(corpus: Corpus):
    assert {corpus.cases[n].table for n in REPRESENTATIVE} == set(gen.TABLE_NAMES)


# --------------------------------------------------------------------------------- specifics
def test_mixed_timezones_parse_to_the_same_instants(corpus: Corpus):
    cfg = load_config(None, corpus.root / "valid")
    as_of = gen.as_of(corpus.root)
    base = load_tables(corpus.root / "valid", cfg, as_of).get("surveys")
    mixed = load_tables(corpus.dir("surveys__mixed_timezone"), cfg, as_of).get("surveys")
    assert base is not None and mixed is not None
    assert len(mixed) == len(base) - 2  # the two rows with zone names are dropped
    merged = base.merge(mixed, on=["account_id", "sent_at"], how="left", indicator=True)
    assert (merged["_merge"] == "both").sum() == len(mixed)


@pytest.mark.slow
def test_oversized_name_is_truncated_and_scores_are_stored(
    corpus: Corpus, mlflow_uri: str, tmp_path: Path
):
    d = corpus.dir("accounts__oversized_text")
    tables = load_tables(d, load_config(None, d), gen.as_of(corpus.root))
    assert tables.accounts["name"].str.len().max() <= 1000
    db = f"sqlite:///{tmp_path / 'scores.db'}"
    out = tmp_path / "scores.parquet"
    res = _score(corpus, str(d), out, "--db", db)
    _clean(res)
    assert res.exit_code == 0, res.output[-3000:]
    assert "stored as run 1" in _said(res)


@pytest.mark.slow
def test_score_csv_neutralises_formula_ids_and_parquet_keeps_them(
    corpus: Corpus, mlflow_uri: str, tmp_path: Path
):
    name = "accounts__csv_injection"
    data = str(corpus.dir(name))
    outs = {s: tmp_path / f"scores{s}" for s in (".csv", ".parquet")}
    for out in outs.values():
        res = _score(corpus, data, out, "--no-store")
        _clean(res)
        assert res.exit_code == 0, res.output[-3000:]
        _assert_repairs_printed(res, corpus, name)
    with open(outs[".csv"], newline="", encoding="utf-8") as f:
        ids = {row["account_id"] for row in csv.DictReader(f)}
    assert {"'" + s for s in gen.INJECTIONS} <= ids
    assert not [i for i in ids if i.startswith(("=", "+", "-", "@"))]
    raw = set(pd.read_parquet(outs[".parquet"])["account_id"])
    assert set(gen.INJECTIONS) <= raw


def test_csv_writer_prefixes_formula_text_and_leaves_numbers_and_parquet(tmp_path: Path):
    df = pd.DataFrame(
        {
            "account_id": ["=1+1", "-x", "@a", "ok", "\tcmd"],
            "delta": [-0.5, 0.1, 0.2, -3.0, 1.0],
            "note": pd.array(["+1", None, "a-b", "", "x"], dtype="string"),
        }
    )
    write_frame(df, tmp_path / "o.csv")
    with open(tmp_path / "o.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["account_id"] for r in rows] == ["'=1+1", "'-x", "'@a", "ok", "'\tcmd"]
    assert [r["delta"] for r in rows] == ["-0.5", "0.1", "0.2", "-3.0", "1.0"]
    assert [r["note"] for r in rows] == ["'+1", "", "a-b", "", "x"]
    write_frame(df, tmp_path / "o.parquet")
    assert (
        pd.read_parquet(tmp_path / "o.parquet")["account_id"].tolist() == df["account_id"].tolist()
    )
