"""The CLI and training glue for ``--engine spark``: Spark does the per-row work (tables,
timeline, indicators, probabilities); the driver gets per-account frames.

Accounts and churn events (one row per account) are collected to the driver: snapshots, the
alive set and the profiles are built there by the same pandas functions as on DuckDB.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..config import Config
from ..features.contract import Tables, ValidationReport
from ..features.schema import TABLES
from ._session import default_master, session
from .indicators import compute_indicators_spark
from .tables import data_as_of, read_tables, to_pandas
from .timeline import build_timeline_spark, timeline_to_pandas

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

Progress = Callable[[str], None]


@dataclass
class SparkData:
    """The contract tables on Spark, their as_of, and the per-account tables on the driver."""

    spark: SparkSession
    tables: dict[str, DataFrame]
    as_of: date
    driver: Tables  # accounts and churn_events as pandas (as the pandas loader returns them)


def load(data_dir: Path, cfg: Config, as_of: date | None, master: str | None = None) -> SparkData:
    """Start (or reuse) a session, read the tables, fix as_of, collect the per-account tables."""
    spark = session(master or default_master())
    tables = read_tables(spark, data_dir, cfg, as_of)
    if as_of is None:  # as on pandas: the last day with data, nothing cut but the future
        as_of = data_as_of(tables)
    frames: dict[str, pd.DataFrame] = {
        name: _typed(name, to_pandas(tables[name]))
        for name in ("accounts", "churn_events")
        if name in tables
    }
    driver = Tables(frames, as_of, cfg, ValidationReport(str(data_dir)))
    return SparkData(spark, tables, as_of, driver)


def _typed(table: str, df: pd.DataFrame) -> pd.DataFrame:
    """Contract dtypes for a collected per-account table (object text, float numbers)."""
    for col in TABLES[table].columns:
        if col.name not in df.columns:
            continue
        if col.kind in ("number", "count"):
            df[col.name] = df[col.name].astype("float64")
        elif col.kind == "bool":
            df[col.name] = df[col.name].astype("boolean")
    return df


def timeline(data: SparkData) -> pd.DataFrame:
    """Stage 1 on Spark, collected as the DuckDB build returns it."""
    return timeline_to_pandas(
        build_timeline_spark(data.spark, data.tables, data.driver.config, data.as_of)
    )


def indicators(
    data: SparkData, requests: pd.DataFrame, *, cache_timeline: bool = True
) -> tuple[DataFrame, DataFrame]:
    """Stage 1 and 2 on Spark for ``requests`` (``account_id, as_of``): (timeline, indicators)."""
    tl = build_timeline_spark(data.spark, data.tables, data.driver.config, data.as_of)
    if cache_timeline:
        tl = tl.cache()
    req = data.spark.createDataFrame(
        [
            (str(a), pd.Timestamp(t).to_pydatetime())
            for a, t in zip(requests["account_id"], requests["as_of"], strict=True)
        ],
        "account_id string, as_of timestamp",
    )
    return tl, compute_indicators_spark(tl, data.tables["accounts"], req)


def collect_indicators(df: DataFrame) -> pd.DataFrame:
    """An indicator DataFrame on the driver, sorted by date and account."""
    out = to_pandas(df)
    return out.sort_values(["as_of", "account_id"], kind="stable").reset_index(drop=True)


def snapshot_frame(
    data_dir: Path, cfg: Config, as_of: date | None, progress: Progress, master: str | None = None
) -> tuple[Tables, pd.DataFrame]:
    """Labelled snapshots with their indicators, computed on Spark (for ``train --engine spark``).

    Returns the driver-side tables (accounts, churn events) and the frame
    :func:`churnlens.training.pipeline.prepare` builds on DuckDB.
    """
    from ..features.snapshots import build_snapshots

    progress(f"spark ({master or default_master()}): read contract tables")
    data = load(data_dir, cfg, as_of, master)
    progress("snapshots (driver) + stage 1 timeline and stage 2 indicators on Spark")
    snaps = build_snapshots(data.driver)
    _, ind = indicators(data, snaps[["account_id", "as_of"]])
    got = collect_indicators(ind)
    frame = snaps.merge(got, on=["account_id", "as_of"], how="left", validate="one_to_one")
    return data.driver, frame


def score_inputs(
    data_dir: Path,
    cfg: Config,
    as_of: date | None,
    model: str | None,
    master: str | None = None,
    *,
    activity: bool = True,
) -> tuple[Tables, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """What ``churnlens score --engine spark`` needs on the driver, computed on Spark.

    Stage 1 and 2 for every account alive at ``as_of``, and each account's calibrated
    probability through ``mlflow.pyfunc.spark_udf`` when ``model`` is an MLflow model
    (``models:/...``, ``runs:/...`` or a directory with an ``MLmodel`` file; default
    ``models:/<registry.model_name>@champion``), in a ``spark_churn_probability`` column.

    Returns:
        ``(tables, alive, timeline, indicators)``: the driver-side tables, the alive accounts,
        the timeline's last weeks (for the score store's activity charts; empty unless
        ``activity``) and the indicator frame.
    """
    from ..features.contract import last_complete_week_start
    from ..features.snapshots import alive_accounts
    from ..serving.scoring import ACTIVITY_WEEKS
    from .scoring import score_spark

    data = load(data_dir, cfg, as_of, master)
    alive = alive_accounts(data.driver)
    requests = pd.DataFrame({"account_id": alive["account_id"], "as_of": pd.Timestamp(data.as_of)})
    tl, ind = indicators(data, requests)
    uri = model or f"models:/{cfg.registry.model_name}@champion"
    if uri.startswith(("models:/", "runs:/")) or (Path(uri) / "MLmodel").exists():
        ind = score_spark(data.spark, ind, uri).withColumnRenamed(
            "churn_probability", "spark_churn_probability"
        )
    weekly = pd.DataFrame()
    if activity:
        from pyspark.sql import functions as F

        from .tables import utc

        first = pd.Timestamp(last_complete_week_start(data.as_of)) - pd.Timedelta(
            weeks=ACTIVITY_WEEKS
        )
        weekly = timeline_to_pandas(tl.where(F.col("week_start") > F.lit(utc(first))))
    return data.driver, alive, weekly, collect_indicators(ind)


def check_probabilities(indicators: pd.DataFrame, rows: list[dict[str, object]]) -> None:
    """Spark's probabilities (``spark_churn_probability``) equal the driver's, to 1e-9.

    Reasons and plays are rendered on the driver by the model package, which recomputes each
    probability; a difference means the two engines disagree, and is an error.
    """
    import numpy as np

    from ..errors import ChurnlensError

    if "spark_churn_probability" not in indicators.columns:
        return
    spark_p = indicators.set_index("account_id")["spark_churn_probability"]
    ids = [str(r["account_id"]) for r in rows]
    driver_p = np.array([float(r["churn_probability"]) for r in rows])  # type: ignore[arg-type]
    diff = np.abs(spark_p.reindex(ids).to_numpy(dtype=float) - driver_p)
    if len(diff) and not np.nanmax(diff) <= 1e-9:
        raise ChurnlensError(
            f"Spark and driver probabilities differ by up to {np.nanmax(diff):.3g}: "
            "the model or its environment differs between the executors and the driver"
        )
