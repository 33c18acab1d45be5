"""Stage 1 on Spark: the statements of :data:`churnlens.features.timeline.SQL`, transpiled.

The DuckDB build and this one share everything but the plumbing: the SQL (written once in
DuckDB's dialect, transpiled to Spark SQL with SQLGlot), which aggregates exist and which
columns they fill (``AGGREGATES``, ``NOT_FILLED``), what stands in for a missing optional column
(``OPTIONAL_DEFAULTS``), which columns are unknown for an export (``unknown_columns``), the
calendar, event kinds and urgent priorities (built by the same functions, on the driver: they
have one row per week or per distinct event name), and the final types (``finalise_timeline``).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING

import pandas as pd

from ..config import Config
from ..features import timeline as tl
from ..features.contract import cutoff
from ..features.schema import TABLES, TIMELINE_COLUMNS, TIMELINE_KEY, tracked_column
from ._session import require_pyspark
from .tables import to_pandas, utc

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

_NULL_TYPES = {"closed_at": "timestamp", "score": "double", "seats": "double", "arr": "double"}


@functools.cache
def spark_sql(name: str, words: int = 1, tracked: int = 0) -> str:
    """Statement ``name`` of :func:`churnlens.features.timeline.statements` in Spark's dialect."""
    import sqlglot

    (sql,) = sqlglot.transpile(tl.statements(words, tracked)[name], read="duckdb", write="spark")
    return sql


def _renamed(sql: str, views: Mapping[str, str]) -> str:
    """``sql`` (Spark dialect) reading each table ``t`` from the temp view ``views[t]``."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="spark")
    for table in tree.find_all(exp.Table):
        if table.name in views:
            table.set("this", exp.to_identifier(views[table.name]))
    return tree.sql(dialect="spark")


class _Views:
    """Temp views private to one build (their names cannot clash with the caller's)."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self.prefix = f"churnlens_{uuid.uuid4().hex[:12]}_"
        self.names: dict[str, str] = {}

    def register(self, name: str, df: DataFrame) -> None:
        view = self.prefix + name
        df.createOrReplaceTempView(view)
        self.names[name] = view

    def run(self, statement: str, words: int = 1, tracked: int = 0) -> DataFrame:
        return self.spark.sql(_renamed(spark_sql(statement, words, tracked), self.names))

    def drop(self) -> None:
        for view in self.names.values():
            self.spark.catalog.dropTempView(view)


@contextmanager
def _views(spark: SparkSession) -> Iterator[_Views]:
    v = _Views(spark)
    try:
        yield v
    finally:
        v.drop()


def _frame(spark: SparkSession, pdf: pd.DataFrame, schema: str) -> DataFrame:
    """A small driver-side frame as a Spark DataFrame (timestamps as UTC, whatever the local
    time zone of the Python process)."""
    rows = [
        tuple(utc(v) if isinstance(v, pd.Timestamp) else v for v in row)
        for row in pdf.itertuples(index=False, name=None)
    ]
    return spark.createDataFrame(rows, schema)


def _with_defaults(df: DataFrame, source: str) -> DataFrame:
    """The Spark side of :data:`churnlens.features.timeline.OPTIONAL_DEFAULTS`."""
    from pyspark.sql import functions as F

    for col, default in tl.OPTIONAL_DEFAULTS.get(source, {}).items():
        if col in df.columns:
            continue
        value: Column
        if default == "one":
            value = F.lit(1.0)
        elif default == "when_scored":
            value = F.when(F.col("score").isNotNull(), F.col("sent_at"))
        else:
            value = F.lit(None).cast(_NULL_TYPES.get(col, "string"))
        df = df.withColumn(col, value)
    return df


def build_timeline_spark(
    spark: SparkSession, tables: Mapping[str, DataFrame], cfg: Config, as_of: date
) -> DataFrame:
    """The weekly timeline of every account as of ``as_of``, on Spark.

    Same rows and values as :func:`churnlens.features.timeline.build_timeline` on the same
    (valid) data: ``account_id, week_start`` then :data:`TIMELINE_COLUMNS`; counts are
    ``bigint``, values ``double``, unknown values null. Not sorted (a DataFrame has no order);
    :func:`timeline_to_pandas` sorts and types it like the DuckDB build.

    Args:
        spark: the session.
        tables: contract tables from :func:`churnlens.spark.read_tables`.
        cfg: configuration (event kinds, urgent priorities).
        as_of: the timeline ends with the last complete week on or before this day.
    """
    require_pyspark()
    from pyspark.sql import functions as F

    spark.conf.set("spark.sql.session.timeZone", "UTC")
    end = F.lit(utc(cutoff(as_of)))
    accounts = tables["accounts"]
    with _views(spark) as v:
        v.register("accounts", accounts.select("account_id", "created_at"))
        churn = tables.get("churn_events")
        if churn is None:
            churn = spark.createDataFrame([], "account_id string, churned_at timestamp")
        v.register("churn_events", churn.select("account_id", "churned_at"))
        v.register(
            "params", _frame(spark, tl.last_complete_week(as_of), "last_complete_week timestamp")
        )
        span = v.run("account_span").cache()
        bounds = span.agg(
            F.min("first_week").alias("first_week"), F.max("last_week").alias("last_week")
        ).collect()[0]
        limits = pd.DataFrame(
            {"first_week": [bounds["first_week"]], "last_week": [bounds["last_week"]]}
        ).dropna()
        cal = tl.calendar(limits)
        v.register("account_span", span)
        v.register("calendar", _frame(spark, cal, "week_start timestamp, week_end timestamp"))
        spine = v.run("spine").cache()
        v.register("spine", spine)
        out = spine.select(*TIMELINE_KEY)
        words = 1
        groups = list(cfg.events.tracked)
        for agg, cols in tl.AGGREGATES.items():
            source = tl.SOURCE_OF_AGG[agg]
            df = tables.get(source)
            if df is None:
                continue
            time_col = TABLES[source].time_column
            assert time_col is not None
            df = df.where(F.col(time_col) < end)
            has_col = set(df.columns)
            if agg in tl.NEEDS_COLUMN and tl.NEEDS_COLUMN[agg] not in has_col:
                continue
            df = _with_defaults(df, source)
            if source == "usage_events":
                names = pd.Series([r["event"] for r in df.select("event").distinct().collect()])
                kinds = tl.event_kinds(names, cfg)
                bits = [c for c in kinds.columns if c.startswith("feature_bits_")]
                words = len(bits)
                schema = ", ".join(
                    [
                        "event string, is_login boolean, is_core boolean",
                        *(f"track_{i} boolean" for i in range(len(groups))),
                        *(f"{b} bigint" for b in bits),
                    ]
                )
                v.register("event_kinds", _frame(spark, kinds, schema))
            if source == "tickets":
                v.register(
                    "urgent_priorities", _frame(spark, tl.urgent_priorities(cfg), "priority string")
                )
            v.register(source, df)
            if agg == "usage_events":  # read twice by the statement: computed once
                v.register("user_bits", v.run("user_bits").cache())
            part = v.run(agg, words, len(groups) if agg == "usage_events" else 0)
            if agg == "usage_events":
                for i, group in enumerate(groups):
                    part = part.withColumnRenamed(f"tracked_{i}", tracked_column(group))
                cols = (*cols, *map(tracked_column, groups))
            out = out.join(part, on=list(TIMELINE_KEY), how="left")
            for col in cols:
                if col not in tl.NOT_FILLED:
                    out = out.withColumn(col, F.coalesce(F.col(col), F.lit(0)))
            for col in tl.unknown_columns(source, has_col, cfg):
                out = out.withColumn(col, F.lit(None).cast("double"))
        out = _fallback_commercial(out, accounts)
        result = out.select(
            *TIMELINE_KEY,
            *[
                (
                    F.bround(F.col(c).cast("double")).cast("bigint")
                    if c in tl.COUNT_COLUMNS
                    else F.col(c).cast("double")
                ).alias(c)
                if c in out.columns
                else F.lit(None).cast("bigint" if c in tl.COUNT_COLUMNS else "double").alias(c)
                for c in TIMELINE_COLUMNS
            ],
            *[
                F.bround(F.col(c).cast("double")).cast("bigint").alias(c)
                if c in out.columns
                else F.lit(None).cast("bigint").alias(c)
                for c in map(tracked_column, groups)
            ],
        )
    return result


def _fallback_commercial(out: DataFrame, accounts: DataFrame) -> DataFrame:
    """Without a contract in force, seats/ARR from the accounts table (a static value)."""
    from pyspark.sql import functions as F

    static = [c for c in ("seats", "arr") if c in accounts.columns]
    if static:
        out = out.join(
            accounts.select("account_id", *[F.col(c).alias(f"__static_{c}") for c in static]),
            on="account_id",
            how="left",
        )
    for col in ("seats", "arr"):
        if col in static:
            value = F.col(f"__static_{col}")
            if col in out.columns:
                value = F.coalesce(F.col(col), value)
            out = out.withColumn(col, value)
    return out.drop(*[f"__static_{c}" for c in static])


def timeline_to_pandas(timeline: DataFrame) -> pd.DataFrame:
    """Collect a Spark timeline as the DuckDB build returns it (types, order)."""
    return tl.finalise_timeline(to_pandas(timeline))
