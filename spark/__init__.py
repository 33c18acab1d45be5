"""churnlens on Apache Spark: the same pipeline, for bases that outgrow one machine.

Install the optional extra (``pip install 'churnlens[spark]'``, or ``uv sync --extra spark`` in a
checkout); pyspark is imported only when a function here runs.

- :func:`session`: a Spark session with churnlens's defaults (UTC, Arrow, quiet logs).
- :func:`read_tables`: the contract tables as DataFrames (Parquet files or partitioned
  directories, CSV), with the value-changing repairs of the pandas loader.
- :func:`build_timeline_spark`: stage 1 from the same SQL as DuckDB, transpiled with SQLGlot.
- :func:`compute_indicators_spark`: stage 2, the pure indicator functions per account group
  (``applyInPandas``).
- :func:`score_spark`: calibrated probabilities from the registered MLflow model
  (``mlflow.pyfunc.spark_udf``).
"""

from __future__ import annotations

from ._session import (
    DEFAULT_MASTER,
    INSTALL_HINT,
    MASTER_ENV,
    default_master,
    require_pyspark,
    session,
)
from .indicators import compute_indicators_spark, indicator_schema
from .scoring import score_spark
from .tables import data_as_of, read_tables, to_pandas
from .timeline import build_timeline_spark, spark_sql, timeline_to_pandas

__all__ = [
    "DEFAULT_MASTER",
    "INSTALL_HINT",
    "MASTER_ENV",
    "build_timeline_spark",
    "compute_indicators_spark",
    "data_as_of",
    "default_master",
    "indicator_schema",
    "read_tables",
    "require_pyspark",
    "score_spark",
    "session",
    "spark_sql",
    "timeline_to_pandas",
    "to_pandas",
]
