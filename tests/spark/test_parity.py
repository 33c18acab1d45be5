"""Spark (``local[2]``) and DuckDB give the same timeline, indicators and scores.

Skipped, with the reason, only when pyspark (the ``spark`` extra, installed by ``make test``) or a
Java runtime is missing. One Spark session for the module (it takes ~10 s to start).
"""

from __future__ import annotations

import importlib.util
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churnlens.config import load_config
from churnlens.datasets.simulator import SimulatorConfig, simulate, write_base
from churnlens.features.contract import load_tables
from churnlens.features.indicators import compute_indicators
from churnlens.features.snapshots import build_snapshots
from churnlens.features.timeline import SQL, build_timeline, event_kinds

if importlib.util.find_spec("pyspark") is None or importlib.util.find_spec("sqlglot") is None:
    pytest.skip(
        "pyspark / sqlglot not installed (the `spark` extra: uv sync --extra spark)",
        allow_module_level=True,
    )

from churnlens import spark as cs
from churnlens.spark._session import java_home

if java_home() is None:
    pytest.skip(
        "no Java runtime for Spark (install Java 17 or set JAVA_HOME)", allow_module_level=True
    )

# One xdist worker runs the module (make test: --dist loadgroup): one Spark session, one JVM.
pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.xdist_group("spark")]
ATOL = 1e-9
MID = date(2025, 3, 5)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("spark") / "base"
    write_base(simulate(SimulatorConfig(n_accounts=300, seed=11)), d)
    return d


@pytest.fixture(scope="module")
def partitioned(base: Path, tmp_path_factory) -> Path:
    """The same base with usage_events as Hive-style date partitions (one directory a month)."""
    d = tmp_path_factory.mktemp("spark") / "partitioned"
    d.mkdir()
    for f in base.glob("*"):
        if f.name != "usage_events.parquet":
            (d / f.name).symlink_to(f)
    events = pd.read_parquet(base / "usage_events.parquet")
    month = events["occurred_at"].dt.tz_localize(None).dt.to_period("M").dt.start_time
    events["occurred_date"] = month.dt.strftime("%Y-%m-%d")
    pq.write_to_dataset(
        pa.Table.from_pandas(events, preserve_index=False),
        d / "usage_events.parquet",
        partition_cols=["occurred_date"],
    )
    return d


@pytest.fixture(scope="module")
def spark():
    # C1 only: these jobs are short, JIT warm-up dominates them.
    s = cs.session(
        "local[2]",
        "churnlens-tests",
        {"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"},
    )
    yield s
    s.stop()


@pytest.fixture(scope="module")
def spark_tables(spark, base: Path):
    cfg = load_config(None, base)
    tables = cs.read_tables(spark, base, cfg)
    return cfg, tables, cs.data_as_of(tables)


@pytest.fixture(scope="module")
def spark_timeline(spark, spark_tables):
    cfg, tables, as_of = spark_tables
    return cs.build_timeline_spark(spark, tables, cfg, as_of).cache()


def _assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same rows and columns; counts exact, floats to 1e-9, NaN in the same places."""
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for col in want.columns:
        g, w = got[col], want[col]
        if pd.api.types.is_float_dtype(w.dtype):
            gv, wv = g.to_numpy(dtype=float), w.to_numpy(dtype=float)
            assert np.array_equal(np.isnan(gv), np.isnan(wv)), col
            np.testing.assert_allclose(gv, wv, rtol=0, atol=ATOL, equal_nan=True, err_msg=col)
        else:
            pd.testing.assert_series_equal(g, w, check_names=True, obj=col)


def test_every_statement_transpiles_from_the_duckdb_definition():
    import sqlglot

    for name, sql in SQL.items():
        assert cs.spark_sql(name) == sqlglot.transpile(sql, read="duckdb", write="spark")[0]


def test_timeline_matches_duckdb_past_the_bitmasks_of_event_names_and_users(
    spark, base: Path, tmp_path: Path
):
    """150 feature names need three ``feature_bits`` words, and three accounts with up to 150
    users a week have users past the bitmask of users: both engines still count exactly. Three
    tracked event groups (one overlapping another, one of logins) are summed alike."""
    d = tmp_path / "many"
    d.mkdir()
    for f in base.glob("*"):
        if f.name != "usage_events.parquet":
            (d / f.name).symlink_to(f)
    events = pd.read_parquet(base / "usage_events.parquet")
    rename = events["event"] != "login"
    rng = np.random.default_rng(5)
    names = np.array([f"feature_{i:03d}" for i in range(150)])
    events.loc[rename, "event"] = names[rng.integers(0, 150, int(rename.sum()))]
    busy = events["account_id"].isin(events["account_id"].value_counts().index[:3])
    crowd = rng.integers(0, 150, int(busy.sum())).astype(str)
    events.loc[busy, "user_id"] = events.loc[busy, "account_id"].astype(str) + "-u" + crowd
    events.to_parquet(d / "usage_events.parquet", index=False)
    cfg = load_config(None, d)
    tracked = {
        "low": tuple(names[:10]),
        "odd": tuple(names[1::2]),
        "logins": ("login",),
    }
    cfg = cfg.model_copy(update={"events": cfg.events.model_copy(update={"tracked": tracked})})
    tables = load_tables(d, cfg, MID)
    kinds = event_kinds(tables.frames["usage_events"]["event"], cfg)
    assert kinds.columns[-1] == "feature_bits_2"
    want = build_timeline(tables)
    assert want["distinct_features"].max() > 40
    assert want["active_users"].max() > 100
    assert list(want.columns[-3:]) == ["events__low", "events__odd", "events__logins"]
    assert (want["events__low"] > 0).any() and (want["events__odd"] > want["events__low"]).any()
    assert (want["events__logins"] == want["logins"]).all()
    spark_tables = cs.read_tables(spark, d, cfg, MID)
    spark_tl = cs.build_timeline_spark(spark, spark_tables, cfg, MID)
    got = cs.timeline_to_pandas(spark_tl)
    _assert_same(got, want)
    # The tracked groups' indicators too (the Spark schema follows the timeline's groups).
    requests = pd.DataFrame({"account_id": want["account_id"].unique(), "as_of": pd.Timestamp(MID)})
    want_ind = compute_indicators(want, tables.accounts, requests)
    got_ind = cs.to_pandas(
        cs.compute_indicators_spark(
            spark_tl, spark_tables["accounts"], spark.createDataFrame(requests)
        )
    )
    assert "events__odd__pace_4w_12w" in got_ind.columns
    assert want_ind["events__low__share_12w"].notna().any()
    got_ind = got_ind.sort_values("account_id", ignore_index=True)
    want_ind = want_ind.sort_values("account_id", ignore_index=True)
    _assert_same(got_ind, want_ind[got_ind.columns])


def test_partitioned_parquet_reads_the_same_rows(spark, base: Path, partitioned: Path):
    cfg = load_config(None, base)
    cols = ["account_id", "occurred_at", "event", "user_id", "quantity"]
    flat = cs.read_tables(spark, base, cfg, MID)["usage_events"].select(*cols)
    parts = cs.read_tables(spark, partitioned, cfg, MID)
    assert "occurred_date" in parts["usage_events"].columns  # the partition column is read
    got = cs.to_pandas(parts["usage_events"].select(*cols)).sort_values(cols, ignore_index=True)
    want = cs.to_pandas(flat).sort_values(cols, ignore_index=True)
    pd.testing.assert_frame_equal(got, want)
    pandas_rows = load_tables(base, cfg, MID).frames["usage_events"]
    assert len(got) == len(pandas_rows)


def test_timeline_matches_duckdb(spark, base: Path, spark_tables, spark_timeline):
    cfg, _, as_of = spark_tables
    tables = load_tables(base, cfg)
    assert as_of == tables.as_of
    t0 = time.perf_counter()
    got = cs.timeline_to_pandas(spark_timeline)
    print(f"spark timeline: {len(got):,} rows in {time.perf_counter() - t0:.1f}s")
    _assert_same(got, build_timeline(tables))


def test_timeline_from_partitioned_parquet_at_an_earlier_as_of(spark, base, partitioned):
    cfg = load_config(None, base)
    got = cs.timeline_to_pandas(
        cs.build_timeline_spark(spark, cs.read_tables(spark, partitioned, cfg, MID), cfg, MID)
    )
    _assert_same(got, build_timeline(load_tables(base, cfg, MID)))


@pytest.fixture(scope="module")
def snapshot_requests(base: Path, spark_tables) -> tuple[pd.DataFrame, pd.DataFrame]:
    cfg = spark_tables[0]
    tables = load_tables(base, cfg)
    snaps = build_snapshots(tables)
    dates = sorted(snaps["as_of"].unique())
    picked = [dates[i] for i in np.linspace(0, len(dates) - 1, 5).round().astype(int)]
    snaps = snaps[snaps["as_of"].isin(picked)]
    want = compute_indicators(build_timeline(tables), tables.accounts, snaps)
    return snaps[["account_id", "as_of"]].reset_index(drop=True), want


def _by_request(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["as_of", "account_id"], ignore_index=True)


def test_indicators_match_pandas_at_several_dates(
    spark, spark_tables, spark_timeline, snapshot_requests
):
    _, tables, _ = spark_tables
    requests, want = snapshot_requests
    assert want["as_of"].nunique() == 5
    req = spark.createDataFrame(requests)
    got = cs.to_pandas(cs.compute_indicators_spark(spark_timeline, tables["accounts"], req))
    got, want = _by_request(got), _by_request(want)
    assert got.dtypes.drop(["account_id", "as_of"]).eq("float64").all()
    _assert_same(got, want[got.columns])
    # One group per account (the literal groupBy("account_id")) gives the same frame.
    one = cs.compute_indicators_spark(spark_timeline, tables["accounts"], req, buckets=0)
    _assert_same(_by_request(cs.to_pandas(one)), got)


@pytest.fixture(scope="module")
def registered(base: Path, tmp_path_factory):
    """A model trained on the base and registered as models:/churnlens/1 in a temp SQLite."""
    import mlflow

    from churnlens.training.pipeline import train

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    mp.chdir(root)
    cfg = load_config(None, base)
    result = train(base, cfg)
    mlflow.set_tracking_uri(uri)
    assert result.version == "1"
    yield cfg, result.model, "models:/churnlens/1"
    mp.undo()


def test_scores_match_the_model(spark, spark_tables, spark_timeline, registered):
    _, model, uri = registered
    _, tables, as_of = spark_tables
    acc = cs.to_pandas(tables["accounts"].select("account_id"))
    req = spark.createDataFrame(acc.assign(as_of=pd.Timestamp(as_of)))
    ind = cs.compute_indicators_spark(spark_timeline, tables["accounts"], req)
    scored = _by_request(cs.to_pandas(cs.score_spark(spark, ind, uri)))
    want = model.predict_proba(scored.drop(columns=["churn_probability"]))
    np.testing.assert_allclose(scored["churn_probability"], want, rtol=0, atol=ATOL)
    assert scored["churn_probability"].between(0, 1).all()


def test_cli_timeline_engine_spark_equals_duckdb(spark, base: Path, tmp_path: Path):
    from typer.testing import CliRunner

    from churnlens.cli import app

    runner = CliRunner()
    outs = {}
    for engine in ("duckdb", "spark"):
        outs[engine] = tmp_path / f"timeline-{engine}.parquet"
        args = ["timeline", "--data", str(base), "--out", str(outs[engine]), "--as-of", str(MID)]
        res = runner.invoke(app, [*args, "--engine", engine])
        assert res.exit_code == 0, res.output
    _assert_same(pd.read_parquet(outs["spark"]), pd.read_parquet(outs["duckdb"]))


def test_train_frame_engine_spark_equals_duckdb(spark, base: Path):
    from churnlens.training.pipeline import prepare

    cfg = load_config(None, base)
    want = prepare(base, cfg, None, lambda _: None)
    got = prepare(base, cfg, None, lambda _: None, engine="spark")
    assert got.windows == want.windows
    cols = list(want.frame.columns)
    _assert_same(_by_request(got.frame[cols]), _by_request(want.frame))


def test_cli_score_engine_spark_equals_duckdb(spark, base: Path, tmp_path: Path, registered):
    from typer.testing import CliRunner

    from churnlens.cli import app

    _, _, uri = registered
    runner = CliRunner()
    outs = {}
    for engine in ("duckdb", "spark"):
        outs[engine] = tmp_path / f"scores-{engine}.csv"
        args = ["score", "--data", str(base), "--out", str(outs[engine]), "--model", uri]
        res = runner.invoke(app, [*args, "--no-store", "--engine", engine])
        assert res.exit_code == 0, res.output
    got, want = pd.read_csv(outs["spark"]), pd.read_csv(outs["duckdb"])
    _assert_same(got, want)
