"""The ``churnlens`` command line: a thin layer over the package's functions.

Every command exits 0 on success and 2 on bad input (data, config or options), printing what is
wrong and where; no traceback for a user's mistake.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import ChurnlensError

app = typer.Typer(
    name="churnlens",
    help="Churn prediction for B2B SaaS customer success.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Tables stay readable when piped to a file or a CI log (rich would wrap at 80 columns).
console = Console(stderr=True, width=max(120, shutil.get_terminal_size().columns))
out_console = Console(width=max(120, shutil.get_terminal_size().columns))
T = TypeVar("T")

DataOpt = Annotated[Path, typer.Option("--data", help="Data directory with the contract tables.")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="Config YAML (default: DATA/churnlens.yaml).")
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Score store URL (default: $CHURNLENS_DATABASE_URL, else "
        "sqlite:///churnlens.db in the working directory).",
    ),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="YYYY-MM-DD: ignore every row dated after this day."),
]


class Engine(str, Enum):
    """Where stages 1 and 2 (and batch probabilities) run."""

    duckdb = "duckdb"
    spark = "spark"


EngineOpt = Annotated[
    Engine,
    typer.Option(
        "--engine",
        help="duckdb (this machine) or spark (needs the optional spark extra of churnlens).",
    ),
]
SparkMasterOpt = Annotated[
    str | None,
    typer.Option(
        "--spark-master",
        envvar="CHURNLENS_SPARK_MASTER",
        help="Spark master URL for --engine spark (default local[2]).",
    ),
]


def _run(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except ChurnlensError as err:
        console.print(
            f"[bold red]error:[/] {escape(str(err))}", markup=True, highlight=False, soft_wrap=True
        )
        raise typer.Exit(err.exit_code) from None


def _parse_date(value: str | None, option: str = "--as-of") -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ChurnlensError(f"{option}: expected a date as YYYY-MM-DD, got {value!r}") from None


THIRD_PARTY_LOGGERS = ("mlflow", "sqlalchemy", "alembic", "urllib3")


def _short_library_tracebacks() -> None:
    """Without ``--verbose``, a traceback a library logs becomes one line.

    MLflow logs a database error with its traceback before raising it; churnlens then reports
    the same error as one paragraph saying what to do, so the traceback is noise to a user.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "churnlens_short", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.exc_info and record.name.split(".")[0] in THIRD_PARTY_LOGGERS:
            exc = record.exc_info[1]
            cause = " ".join(str(exc).split())[:300]
            record.msg = f"{record.getMessage()} ({type(exc).__name__}: {cause}; -v for details)"
            record.args, record.exc_info, record.exc_text = None, None, None
        return record

    factory.churnlens_short = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not verbose:  # MLflow's own INFO lines and progress bars drown the step lines
        _short_library_tracebacks()
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when mlflow is imported


def _load(data: Path, config: Path | None, as_of: str | None) -> Any:
    from .config import load_config
    from .features.contract import load_tables

    cfg = load_config(config, data)
    tables = load_tables(data, cfg, _parse_date(as_of))
    _print_repairs(tables.report)
    return tables


def _check_data(data: Path, cfg: Any, day: date | None, engine: Engine) -> Any:
    """Before a long run: stop on fatal data problems (exit 2), list what will be repaired.

    Returns the loaded tables for the DuckDB pipeline to use (the Spark one reads the files).
    """
    from .features.contract import load_tables
    from .features.contract import validate as run_validate

    if engine is Engine.spark:
        report = run_validate(data, cfg, day)
        report.raise_if_fatal()
        _print_repairs(report)
        return None
    tables = load_tables(data, cfg, day)
    _print_repairs(tables.report)
    return tables


def _print_repairs(report: Any) -> None:
    repaired = [p for p in report.problems if p.severity != "fatal"]
    if repaired:
        console.print(
            f"[yellow]{len(repaired)} data problem(s) repaired or ignored[/] "
            "(run `churnlens validate` for details):"
        )
        for p in repaired[:8]:
            console.print(f"  {p}", highlight=False, markup=False, soft_wrap=True)
        if len(repaired) > 8:
            console.print(f"  ... and {len(repaired) - 8} more")


@app.command()
def validate(
    data: DataOpt,
    config: ConfigOpt = None,
    as_of: AsOfOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check a data directory against the data contract and report every problem."""

    def go() -> None:
        from .config import load_config
        from .features.contract import validate as run_validate

        cfg = load_config(config, data)
        report = run_validate(data, cfg, _parse_date(as_of))
        if as_json:
            out_console.print_json(json.dumps(report.to_dict(), default=str))
        else:
            _print_report(report)
        if not report.ok:
            raise typer.Exit(2)

    _run(go)


def _print_report(report: Any) -> None:
    t = Table(title=f"churnlens validate {report.source}", show_lines=False)
    for col in ("table", "rows read", "rows kept"):
        t.add_column(col, justify="right" if col != "table" else "left")
    for name, n in report.rows_read.items():
        t.add_row(name, str(n), str(report.rows_kept.get(name, "-")))
    for name in report.tables_missing:
        t.add_row(name, "-", "missing: unknown (not zero)")
    out_console.print(t)
    if not report.problems:
        out_console.print("[green]No problems found.[/]")
        return
    p_table = Table(show_lines=False)
    for col in ("severity", "table", "column", "rows", "problem", "examples"):
        p_table.add_column(col, overflow="fold")
    colour = {"fatal": "red", "repaired": "yellow", "info": "cyan"}
    for p in report.problems:
        p_table.add_row(
            f"[{colour[p.severity]}]{p.severity}[/]",
            p.table,
            p.column or "",
            str(p.count),
            p.message,
            "; ".join(p.examples),
        )
    out_console.print(p_table)
    n_fatal = len(report.fatal)
    if n_fatal:
        out_console.print(f"[bold red]{n_fatal} fatal problem(s): the pipeline would stop.[/]")
    else:
        out_console.print("[green]Usable:[/] repairable problems are handled as listed.")


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the tables into.")],
    accounts: Annotated[int, typer.Option("--accounts", min=1, help="Number of accounts.")] = 5000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 42,
    weeks: Annotated[int, typer.Option("--weeks", min=20, help="Weeks simulated.")] = 104,
) -> None:
    """Simulate a B2B SaaS customer base with ground-truth churn probabilities."""

    def go() -> None:
        from .datasets.simulator import SimulatorConfig, write_base
        from .datasets.simulator import simulate as run_sim

        t0 = time.perf_counter()
        base = run_sim(SimulatorConfig(n_accounts=accounts, seed=seed, weeks=weeks))
        write_base(base, out)
        rows = ", ".join(f"{k} {len(v):,}" for k, v in base.tables.items())
        console.print(
            f"simulated {accounts:,} accounts to {out} in "
            f"{time.perf_counter() - t0:.1f}s (data ends {base.end}): {rows}"
        )

    _run(go)


class Source(str, Enum):
    """Public datasets with an adapter."""

    fightchurn = "fightchurn"
    ravenstack = "ravenstack"


@app.command("import")
def import_(
    source_kind: Annotated[Source, typer.Argument(help="Which dataset format.")],
    source: Annotated[Path, typer.Option("--source", help="Folder with the original files.")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write contract tables into.")],
) -> None:
    """Convert a public dataset into contract tables."""

    def go() -> None:
        if not source.is_dir():
            raise ChurnlensError(f"--source {source}: not a directory")
        if source_kind is Source.fightchurn:
            from .datasets.fightchurn import import_fightchurn as run
        else:
            from .datasets.ravenstack import import_ravenstack as run
        report = run(source, out)
        console.print(f"wrote {out}: " + ", ".join(f"{k} {v:,}" for k, v in report.rows.items()))
        for note in report.notes:
            ex = f" e.g. {', '.join(note.examples)}" if note.examples else ""
            where = f"{note.table}.{note.column}" if note.column else note.table
            console.print(
                f"  [yellow]{where}[/]: {note.message} ({note.count} rows){ex}", highlight=False
            )

    _run(go)


@app.command()
def timeline(
    data: DataOpt,
    out: Annotated[Path, typer.Option("--out", help="Output .csv, .csv.gz or .parquet file.")],
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
    engine: EngineOpt = Engine.duckdb,
    spark_master: SparkMasterOpt = None,
) -> None:
    """Write the weekly account timeline (stage 1), as of a date."""

    def go() -> None:
        from .features.io import check_output_path, write_frame
        from .features.timeline import build_timeline

        check_output_path(out)
        if engine is Engine.spark:
            from .config import load_config
            from .spark.pipeline import load
            from .spark.pipeline import timeline as spark_timeline

            sd = load(data, load_config(config, data), _parse_date(as_of), spark_master)
            tl, end = spark_timeline(sd), sd.as_of
        else:
            tables = _load(data, config, as_of)
            tl, end = build_timeline(tables), tables.as_of
        write_frame(tl, out)
        console.print(
            f"timeline as of {end}: {tl['account_id'].nunique():,} accounts, "
            f"{len(tl):,} account-weeks -> {out}"
        )

    _run(go)


@app.command()
def indicators(
    data: DataOpt,
    as_of: AsOfOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write every account's indicators here.")
    ] = None,
    top: Annotated[int, typer.Option("--top", min=0, help="Riskiest accounts to show.")] = 10,
    config: ConfigOpt = None,
    lang: Annotated[str, typer.Option("--lang", help="en or ja.")] = "en",
) -> None:
    """Leading indicators for every account alive at a date, riskiest-looking first."""

    def go() -> None:
        from .features.indicators import compute_indicators
        from .features.io import check_output_path, write_frame
        from .features.snapshots import alive_accounts
        from .features.timeline import build_timeline
        from .training.baselines import health_score

        if lang not in ("en", "ja"):
            raise ChurnlensError(f"--lang: expected en or ja, got {lang!r}")
        if out is not None:
            check_output_path(out)
        tables = _load(data, config, as_of)
        tl = build_timeline(tables)
        alive = alive_accounts(tables)
        ind = compute_indicators(tl, alive, as_of=tables.as_of)
        ind.insert(2, "health_score", health_score(ind))
        if out is not None:
            write_frame(ind, out)
            console.print(f"indicators for {len(ind):,} accounts -> {out}")
        _print_riskiest(ind, alive, top, lang)

    _run(go)


def _print_riskiest(ind: Any, accounts: Any, top: int, lang: str) -> None:
    from .features.indicators import render
    from .training.baselines import HEALTH_RULES

    if top == 0 or ind.empty:
        return
    worst = ind.sort_values(["health_score", "account_id"]).head(top)
    names = accounts.set_index("account_id")["name"] if "name" in accounts else None
    t = Table(
        title=f"{top} riskiest-looking accounts by rule-based health "
        f"(as of {ind['as_of'].iloc[0]:%Y-%m-%d}; no model trained yet)"
    )
    t.add_column("account")
    t.add_column("health", justify="right")
    t.add_column("ARR", justify="right")
    t.add_column("warning signs", overflow="fold")
    for _, row in worst.iterrows():
        signs: list[str] = []
        for name, cond, _points in HEALTH_RULES:
            op, thr = cond.split()
            v = row[name]
            if v != v:  # NaN
                continue
            hit = {
                "<=": v <= float(thr),
                "<": v < float(thr),
                ">=": v >= float(thr),
                ">": v > float(thr),
            }[op]
            sentence = render(name, float(v), lang)  # type: ignore[arg-type]
            if hit and sentence not in signs:
                signs.append(sentence)
        label = str(row["account_id"])
        if names is not None and isinstance(names.get(row["account_id"]), str):
            label += f"\n{names[row['account_id']]}"
        arr = row["arr"]
        t.add_row(
            label,
            f"{row['health_score']:.0f}",
            "-" if arr != arr else f"{arr:,.0f}",
            "\n".join(signs[:4]) or "-",
        )
    out_console.print(t)


@app.command()
def snapshots(
    data: DataOpt,
    out: Annotated[Path, typer.Option("--out", help="Output .csv or .parquet file.")],
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write labelled training snapshots with their indicators."""

    def go() -> None:
        from .features.indicators import compute_indicators
        from .features.io import check_output_path, write_frame
        from .features.snapshots import build_snapshots
        from .features.timeline import build_timeline

        check_output_path(out)
        tables = _load(data, config, as_of)
        snaps = build_snapshots(tables)
        ind = compute_indicators(build_timeline(tables), tables.accounts, snaps)
        table = snaps.merge(ind, on=["account_id", "as_of"], how="left")
        write_frame(table, out)
        console.print(
            f"{len(table):,} snapshots over {table['as_of'].nunique()} dates, "
            f"{int(table['label'].sum()):,} positive -> {out}"
        )

    _run(go)


@app.command()
def train(
    data: DataOpt,
    config: ConfigOpt = None,
    as_of: AsOfOpt = None,
    engine: EngineOpt = Engine.duckdb,
    spark_master: SparkMasterOpt = None,
) -> None:
    """Train, calibrate, compare with baselines, log to MLflow and apply the champion gate.

    With --engine spark, the timeline and indicators run on Spark; the model trains here.
    """

    def go() -> None:
        from .config import load_config
        from .training.pipeline import baselines_ahead
        from .training.pipeline import train as run_train

        cfg = load_config(config, data)
        t0 = time.perf_counter()
        day = _parse_date(as_of)
        tables = _check_data(data, cfg, day, engine)

        def progress(msg: str) -> None:
            console.print(f"[dim]{time.perf_counter() - t0:6.1f}s[/] {msg}", highlight=False)

        result = run_train(
            data,
            cfg,
            day,
            progress=progress,
            engine="spark" if engine is Engine.spark else "duckdb",
            spark_master=spark_master,
            tables=tables,
        )
        _print_metrics(result.metrics, result.windows)
        for name in baselines_ahead(result.metrics):
            console.print(
                f"[yellow]warning:[/] the model does not beat the {name} baseline on this test "
                f"window (ROC-AUC {result.metrics['model']['roc_auc']:.4f} vs "
                f"{result.metrics[name]['roc_auc']:.4f}): too little signal or history for "
                "LightGBM to add anything; check the data before acting on its scores",
                highlight=False,
            )
        console.print(
            f"run {result.run_id}: registered {cfg.registry.model_name} v{result.version} as "
            f"@{result.alias} ({result.decision}) in {time.perf_counter() - t0:.0f}s",
            highlight=False,
        )

    _run(go)


def _print_metrics(metrics: dict[str, dict[str, float]], windows: Any) -> None:
    w = windows.to_dict()
    t = Table(
        title=f"test window {w['test_start']} .. {w['test_end']} "
        f"(trained on {w['train_start']} .. {w['train_end']})"
    )
    cols = (
        "roc_auc",
        "pr_auc",
        "brier",
        "ece",
        "lift_top_decile",
        "recall_top_decile",
        "arr_captured_top10",
    )
    heads = ("ROC-AUC", "PR-AUC", "Brier", "ECE", "lift@10%", "recall@10%", "ARR@10%")
    t.add_column("scorer", no_wrap=True)
    for h in heads:
        t.add_column(h, justify="right", no_wrap=True)
    for who, m in metrics.items():
        t.add_row(who, *(f"{m.get(c, float('nan')):.4f}" for c in cols))
    out_console.print(t)
    out_console.print(
        "health_score Brier/ECE use (100 - health) / 100 as a probability; "
        "ground_truth is the simulator's true probability (the ceiling)."
    )


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="Registered model version to promote.")],
    force: Annotated[bool, typer.Option("--force", help="Override the gate.")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")] = "manual",
    config: ConfigOpt = None,
) -> None:
    """Move @champion to a version; only with --force (the gate runs during train)."""

    def go() -> None:
        import mlflow
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        from .config import load_config
        from .training.pipeline import tracking_uri
        from .training.registry import promote as run_promote

        if not force:
            raise ChurnlensError("promote moves @champion past the gate: add --force to confirm")
        cfg = load_config(config, None)
        mlflow.set_tracking_uri(tracking_uri())
        try:
            run_promote(MlflowClient(), cfg.registry.model_name, version, f"forced: {reason}")
        except MlflowException as err:
            raise ChurnlensError(f"{cfg.registry.model_name} v{version}: {err.message}") from None
        console.print(f"{cfg.registry.model_name} v{version} is now @champion (forced: {reason})")

    _run(go)


@app.command()
def score(
    data: DataOpt,
    out: Annotated[Path, typer.Option("--out", help="Output .csv, .csv.gz or .parquet file.")],
    as_of: AsOfOpt = None,
    model: Annotated[
        str | None, typer.Option("--model", help="models:/churnlens@champion (default) or a dir.")
    ] = None,
    config: ConfigOpt = None,
    lang: Annotated[str, typer.Option("--lang", help="en or ja.")] = "en",
    playbooks: Annotated[
        Path | None, typer.Option("--playbooks", help="Your own playbook catalog (YAML).")
    ] = None,
    top: Annotated[int, typer.Option("--top", min=0, help="Accounts to show.")] = 0,
    db: DbOpt = None,
    no_store: Annotated[
        bool, typer.Option("--no-store", help="Write the file only; do not append to the store.")
    ] = False,
    engine: EngineOpt = Engine.duckdb,
    spark_master: SparkMasterOpt = None,
) -> None:
    """Score every account alive at a date: probability, band, reasons and plays.

    The scores go to --out and are appended to the score store (one transaction per run).
    """

    def go() -> None:
        import mlflow

        from .config import load_config, with_tracked_events
        from .features.contract import data_digest, load_tables
        from .features.indicators import compute_indicators
        from .features.io import check_output_path, write_frame
        from .features.snapshots import alive_accounts
        from .features.timeline import build_timeline
        from .serving.explain import LANGS
        from .serving.playbooks import load_catalog
        from .serving.scoring import recent_activity, score_frame, to_table
        from .training.pipeline import tracking_uri
        from .training.registry import load_model

        if lang not in ("en", "ja"):
            raise ChurnlensError(f"--lang: expected en or ja, got {lang!r}")
        if db is not None and no_store:
            raise ChurnlensError("--db and --no-store exclude each other")
        check_output_path(out)
        cfg = load_config(config, data)
        catalog = load_catalog(playbooks)
        mlflow.set_tracking_uri(tracking_uri())
        churn_model, label = load_model(model, cfg.registry.model_name)
        cfg = with_tracked_events(cfg, churn_model.tracked_events())
        if engine is Engine.spark:
            from .spark.pipeline import score_inputs

            tables, alive, weekly, ind = score_inputs(
                data, cfg, _parse_date(as_of), model, spark_master, activity=not no_store
            )
        else:
            tables = load_tables(data, cfg, _parse_date(as_of))
            _print_repairs(tables.report)
            alive = alive_accounts(tables)
            weekly = build_timeline(tables)
            ind = compute_indicators(weekly, alive, as_of=tables.as_of)
        # The store keeps the reasons and plays in every language, for the CSM page's toggle.
        also = () if no_store else LANGS
        rows = score_frame(churn_model, ind, alive, cfg, catalog, lang=lang, also_langs=also)
        if engine is Engine.spark:
            from .spark.pipeline import check_probabilities

            check_probabilities(ind, rows)
        table = to_table(rows, label)
        write_frame(table, out)
        bands = table["risk_band"].value_counts()
        console.print(
            f"scored {len(table):,} accounts as of {tables.as_of} with {label}: "
            + ", ".join(f"{b} {bands.get(b, 0):,}" for b in ("red", "yellow", "green"))
            + f"; ARR at risk {table['arr_at_risk'].sum():,.0f} -> {out}",
            highlight=False,
        )
        if not no_store:
            _store_scores(
                rows,
                db,
                as_of=tables.as_of,
                model_version=label,
                lang=lang,
                alive=alive,
                digest=data_digest(data),
                out=out,
                details=recent_activity(weekly, ind),
            )
        if top:
            _print_scores(rows, top)

    _run(go)


def _store_scores(
    rows: list[dict[str, Any]],
    db: str | None,
    *,
    as_of: date,
    model_version: str,
    lang: str,
    alive: Any,
    digest: str,
    out: Path,
    details: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Append a run to the score store, retrying while the database does not answer.

    When it still fails, everything needed to store the run later is kept beside ``out``
    (:func:`churnlens.store.pending.write_pending`) and the error says how to import it; exit 2.
    """
    from datetime import UTC, datetime

    from .errors import StoreError
    from .store import account_details, display_url, open_store
    from .store.db import StoreUnavailable, database_url
    from .store.pending import pending_path, write_pending

    accounts = account_details(alive)
    scored_at = datetime.now(UTC)
    tries = _store_retries()
    for attempt in range(tries + 1):
        try:
            with open_store(db) as store:
                run_id = store.append_scores(
                    rows,
                    as_of=as_of,
                    model_version=model_version,
                    source="cli",
                    lang=lang,
                    accounts=accounts,
                    data_digest=digest,
                    scored_at=scored_at,
                    details=details,
                )
                url = store.url
            break
        except StoreUnavailable as err:
            if attempt < tries:
                wait = STORE_BACKOFF_S * 2**attempt
                console.print(
                    f"[yellow]score store unavailable[/] ({escape(str(err))}); "
                    f"retry {attempt + 1}/{tries} in {wait:.1f}s",
                    highlight=False,
                    soft_wrap=True,
                )
                time.sleep(wait)
                continue
            pending = write_pending(
                pending_path(out),
                {
                    "rows": rows,
                    "as_of": as_of,
                    "model_version": model_version,
                    "source": "cli",
                    "lang": lang,
                    "accounts": accounts,
                    "data_digest": digest,
                    "scored_at": scored_at,
                    "details": details,
                },
            )
            shown = display_url(database_url(db))
            raise StoreError(
                f"{err} (gave up after {tries + 1} attempts). The scores were written to {out} "
                f"but not stored; the run is kept in {pending}: once the database answers, store "
                f"it with `churnlens store-import --file {pending} --db {shown}` (or pass "
                "--no-store)"
            ) from None
        except StoreError as err:
            raise StoreError(
                f"{err}. The scores were written to {out} but not stored "
                "(fix the store or pass --no-store)"
            ) from None
    console.print(
        f"stored as run {run_id} ({len(rows):,} accounts) in {url}", highlight=False, soft_wrap=True
    )


STORE_RETRIES_ENV = "CHURNLENS_STORE_RETRIES"
STORE_BACKOFF_S = 0.5


def _store_retries() -> int:
    raw = os.environ.get(STORE_RETRIES_ENV, "3").strip()
    if not raw.isdigit():
        raise ChurnlensError(f"{STORE_RETRIES_ENV}: expected a whole number, got {raw!r}")
    return int(raw)


@app.command("store-import")
def store_import(
    file: Annotated[
        Path,
        typer.Option("--file", help="A <scores>.pending-store.json left by `churnlens score`."),
    ],
    db: DbOpt = None,
) -> None:
    """Store a scoring run that `churnlens score` could not store (the file is then deleted)."""

    def go() -> None:
        from .store.pending import import_pending

        run_id, n, url = import_pending(file, db)
        console.print(
            f"stored as run {run_id} ({n:,} accounts) in {url}; removed {file}",
            highlight=False,
            soft_wrap=True,
        )

    _run(go)


def _print_scores(rows: list[dict[str, Any]], top: int) -> None:
    ranked = sorted(rows, key=lambda r: -(r["arr_at_risk"] or 0.0))[:top]
    t = Table(title=f"{top} accounts with the most ARR at risk")
    for c in ("account", "risk", "band", "tier", "ARR at risk", "why", "next play"):
        t.add_column(
            c, overflow="fold", justify="right" if c in ("risk", "ARR at risk") else "left"
        )
    colour = {"red": "red", "yellow": "yellow", "green": "green"}
    for r in ranked:
        why = "\n".join(
            f"{x['label']}: {x['evidence'][0]}" if x["evidence"] else x["label"]
            for x in r["top_reasons"][:2]
        )
        play = r["playbooks"][0] if r["playbooks"] else None
        t.add_row(
            r["account_id"],
            f"{r['churn_probability']:.0%}",
            f"[{colour[r['risk_band']]}]{r['risk_band']}[/]",
            r["touch_tier"],
            f"{r['arr_at_risk'] or 0:,.0f}",
            why or "-",
            f"{play['title']} ({play['owner']}, {play['due_days']}d)" if play else "-",
        )
    out_console.print(t)


@app.command()
def drift(
    data: DataOpt,
    as_of: AsOfOpt = None,
    model: Annotated[
        str | None, typer.Option("--model", help="models:/churnlens@champion (default) or a dir.")
    ] = None,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Compare today's indicator distributions with the model's training window (PSI)."""

    def go() -> None:
        import mlflow

        from .config import load_config
        from .training.drift_cmd import check_drift
        from .training.pipeline import tracking_uri
        from .training.registry import load_model

        cfg = load_config(config, data)
        mlflow.set_tracking_uri(tracking_uri())
        churn_model, label = load_model(model, cfg.registry.model_name)
        res = check_drift(data, cfg, _parse_date(as_of), churn_model)
        if as_json:
            doc = {
                "model": label,
                "as_of": str(res.as_of),
                "retrain_advised": res.retrain,
                "shifted": res.shifted,
                "trained_until": str(res.trained_until) if res.trained_until else None,
                "labelled_until": str(res.labelled_until) if res.labelled_until else None,
                "new_outcome_weeks": res.new_outcome_weeks,
                "reasons": res.reasons,
                "indicators": res.report.to_dict("records"),
                "sources": res.sources.to_dict("records"),
            }
            out_console.print_json(json.dumps(doc, default=str))
            return
        t = Table(title=f"drift of {label} as of {res.as_of} (PSI vs the training window)")
        for c in ("indicator", "PSI", "status", "missing (train)", "missing (now)"):
            t.add_column(c, justify="left" if c == "indicator" else "right")
        for r in res.report.head(15).to_dict("records"):
            t.add_row(
                str(r["feature"]),
                f"{float(r['psi']):.3f}",
                str(r["status"]),
                f"{float(r['missing_train']):.0%}",
                f"{float(r['missing_now']):.0%}",
            )
        out_console.print(t)
        for src in res.sources.to_dict("records"):
            out_console.print(
                f"  {src['source']}: known for {float(src['available_now']):.0%} "
                f"of accounts (training {float(src['available_train']):.0%})"
            )
        if res.retrain:
            out_console.print("[bold yellow]Retraining advised:[/] " + "; ".join(res.reasons))
            if res.new_outcome_weeks:
                out_console.print(
                    f"Outcomes are known up to {res.labelled_until}, {res.new_outcome_weeks} "
                    f"week{'s' if res.new_outcome_weeks > 1 else ''} past the model's test window "
                    f"(ends {res.trained_until})."
                )
        elif res.shifted:
            out_console.print(
                "[bold yellow]Shifted since the training window:[/] " + "; ".join(res.reasons)
            )
            out_console.print(
                f"Retraining now would not help: a model trained now would use the same "
                f"windows, as no date after the model's test window (ends {res.trained_until}) "
                f"has a known outcome yet (an outcome takes {cfg.labels.horizon_weeks} weeks). "
                "Retrain once later outcomes are in; until then, read the scores with these "
                "shifts in mind."
            )
        else:
            out_console.print(
                "[green]No retraining needed:[/] every PSI < 0.25 and sources "
                "are as available as in training."
            )

    _run(go)


@app.command()
def serve(
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")
    ] = 3000,
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "0.0.0.0",
    model: Annotated[
        str | None, typer.Option("--model", help="models:/churnlens@champion (default) or a dir.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Config YAML (bands, tiers; default: built-in).")
    ] = None,
    playbooks: Annotated[
        Path | None, typer.Option("--playbooks", help="Your own playbook catalog (YAML).")
    ] = None,
    workers: Annotated[
        str | None,
        typer.Option(
            "--workers", help="Worker processes, each with the model: N or cpu_count (default 1)."
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Score store URL for /score_accounts (default ./churnlens.db)."),
    ] = None,
) -> None:
    """Start the prediction API (BentoML) until interrupted."""

    def go() -> None:
        import signal
        import subprocess

        from .serving.limits import MAX_BODY_ENV, RATE_LIMIT_ENV, max_body_bytes, parse_rate
        from .serving.service import (
            CONFIG_ENV,
            MODEL_URI_ENV,
            PLAYBOOKS_ENV,
            WORKERS_ENV,
            worker_count,
        )
        from .store import ENV_VAR as DATABASE_ENV

        if workers is not None:
            worker_count(workers)  # a clear error now, not from the server
        parse_rate(os.environ.get(RATE_LIMIT_ENV))  # likewise for the request limits
        max_body_bytes(os.environ.get(MAX_BODY_ENV))

        env = dict(os.environ)
        # churnlens often runs in closed networks: no BentoML usage statistics unless asked for.
        env.setdefault("BENTOML_DO_NOT_TRACK", "true")
        for name, value in (
            (MODEL_URI_ENV, model),
            (CONFIG_ENV, config),
            (PLAYBOOKS_ENV, playbooks),
            (WORKERS_ENV, workers),
            (DATABASE_ENV, db),
        ):
            if value is not None:
                env[name] = str(value)
        for option, path in (("--config", config), ("--playbooks", playbooks)):
            if path is not None and not path.is_file():
                raise ChurnlensError(f"{option} {path}: file not found")
        cmd = [
            sys.executable,
            "-m",
            "bentoml",
            "serve",
            "churnlens.serving.service:ChurnService",
            "--host",
            host,
            "--port",
            str(port),
        ]
        console.print(f"serving churnlens on http://{host}:{port} (Ctrl-C to stop)")
        proc = subprocess.Popen(cmd, env=env)
        # SIGTERM (a supervisor stopping us) is passed on, so BentoML shuts its workers down.
        signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
        try:
            code = proc.wait()
        except KeyboardInterrupt:  # the terminal sent SIGINT to BentoML too; let it finish
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
        if code not in (0, -signal.SIGTERM, -signal.SIGINT):
            raise typer.Exit(code)

    _run(go)


@app.command()
def bento(
    model: Annotated[
        str | None, typer.Option("--model", help="models:/churnlens@champion (default) or a dir.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Config YAML (registry model name).")
    ] = None,
    project: Annotated[
        Path | None,
        typer.Option("--project", help="Repository root to build from (default: this checkout)."),
    ] = None,
    uv: Annotated[
        str | None, typer.Option("--uv", help="uv executable (default: PATH, .tools/bin/uv).")
    ] = None,
) -> None:
    """Build the API as a bento with the model inside (BentoML stores under BENTOML_HOME).

    Copies the model into the BentoML model store as churnlens-model, builds the churnlens wheel
    and the locked requirements into dist/, then runs the bento build of bentofile.yaml. Prints
    the bento tag; `bentoml serve TAG` then needs no MLflow server.
    """

    def go() -> None:
        from .config import load_config
        from .serving.bento import build_bento

        os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
        cfg = load_config(config, None)
        t0 = time.perf_counter()

        def progress(msg: str) -> None:
            console.print(f"[dim]{time.perf_counter() - t0:6.1f}s[/] {msg}", highlight=False)

        built = build_bento(
            model, cfg.registry.model_name, project=project, uv=uv, progress=progress
        )
        console.print(
            f"bento {built.bento_tag} with {built.model_version} ({built.model_tag}"
            f"{', newly imported' if built.model_imported else ', already in the store'}) "
            f"in {time.perf_counter() - t0:.0f}s; run it with `bentoml serve {built.bento_tag}`",
            highlight=False,
        )
        typer.echo(built.bento_tag)

    _run(go)


if __name__ == "__main__":
    app()
