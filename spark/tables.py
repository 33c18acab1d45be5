"""The contract tables as Spark DataFrames, with the repairs that change the timeline.

:func:`read_tables` reads ``<data_dir>/<table>.parquet`` (a file, or a directory of Parquet files
such as Hive-style date partitions ``usage_events.parquet/date=2024-01-01/part-0.parquet``),
``<data_dir>/<table>/`` (a directory of Parquet files), ``<table>.csv`` or ``<table>.csv.gz``.

What is replicated from :func:`churnlens.features.contract.tables_from_frames` (the rules that
change values, so valid data gives the same timeline, indicators and scores on both engines):

- column names stripped, the configured renames, required columns (missing: fatal);
- contract types: ids and text stripped (blank is missing), ISO 8601 timestamps to naive UTC,
  numbers (NaN/inf missing), booleans from the same spellings;
- rows dropped: missing id or required timestamp, negative ``quantity``, unknown account, dated
  before the account's ``created_at`` (a contract is moved to ``created_at`` instead), dated in
  the future, dated after ``as_of``;
- values set missing: negative numbers, NPS outside 0-10, ``closed_at`` before ``opened_at``,
  ``responded_at`` before ``sent_at``, unknown ``direction`` / ``touch_tier`` /
  ``billing_period`` (normalised as on pandas), a secondary timestamp after ``as_of``;
- accounts listed twice with identical rows: one kept; with different rows: fatal;
  duplicate ``ticket_id``: the first in file order kept; several churn events: the first used.

Not replicated (run ``churnlens validate`` on a sample, or on the full data where it fits in
memory): the problem report (counts and examples per check), the
``validation.max_invalid_fraction`` gate that turns a mostly-unparseable column into a fatal
error, the checks for two files holding one table beyond the suffixes listed above, unreadable
or non-UTF-8 files (Spark's own reader errors are raised as they are), and duplicate column names.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..config import Config
from ..errors import DataContractError
from ..features.contract import TOUCH_TIERS, cutoff
from ..features.schema import BILLING_PERIODS, TABLE_NAMES, TABLES, TableSpec
from ._session import require_pyspark

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

_ORDER = "__churnlens_row"  # file order, for "first kept" rules
_TRUE = ("true", "t", "yes", "y", "1", "1.0")
_FALSE = ("false", "f", "no", "n", "0", "0.0")


def table_paths(data_dir: Path, table: str) -> list[Path]:
    """Every file or directory in ``data_dir`` that holds ``table``."""
    names = (f"{table}.parquet", f"{table}.csv.gz", f"{table}.csv", table)
    out = []
    for name in names:
        path = data_dir / name
        if path.is_file() or (path.is_dir() and any(path.rglob("*.parquet"))):
            out.append(path)
    return out


def _read(spark: SparkSession, path: Path) -> DataFrame:
    if path.is_dir() or path.name.endswith(".parquet"):
        return spark.read.option("mergeSchema", "true").parquet(str(path))
    # CSV cells are read as text and parsed by the contract types below, as on pandas.
    return (
        spark.read.option("header", "true")
        .option("inferSchema", "false")
        .option("encoding", "UTF-8")
        .option("multiLine", "true")
        .option("escape", '"')
        .csv(str(path))
    )


def _strip(c: Column) -> Column:
    from pyspark.sql import functions as F

    return F.regexp_replace(c, r"^\s+|\s+$", "")


def _text(df: DataFrame, name: str) -> Column:
    """A column as stripped text; blank is missing."""
    from pyspark.sql import functions as F

    text = _strip(F.col(name).cast("string"))
    return F.when(text == "", F.lit(None).cast("string")).otherwise(text)


def _timestamp(df: DataFrame, name: str) -> Column:
    """A column as naive UTC ``timestamp`` (session time zone UTC); unparseable is missing."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    dtype = df.schema[name].dataType
    if isinstance(dtype, StringType):
        return _strip(F.col(name)).try_cast("timestamp")
    return F.col(name).try_cast("timestamp")


def _number(df: DataFrame, name: str) -> Column:
    """A column as double; unparseable, NaN and infinite values are missing."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    c = F.col(name)
    if isinstance(df.schema[name].dataType, StringType):
        c = _strip(c)
    num = c.try_cast("double")
    bad = F.isnan(num) | (F.abs(num) == float("inf"))
    return F.when(bad, F.lit(None).cast("double")).otherwise(num)


def _boolean(df: DataFrame, name: str) -> Column:
    from pyspark.sql import functions as F
    from pyspark.sql.types import BooleanType

    if isinstance(df.schema[name].dataType, BooleanType):
        return F.col(name)
    key = F.lower(_strip(F.col(name).cast("string")))
    return (
        F.when(key.isin(*_TRUE), F.lit(True))
        .when(key.isin(*_FALSE), F.lit(False))
        .otherwise(F.lit(None).cast("boolean"))
    )


def _coerce(df: DataFrame, spec: TableSpec) -> DataFrame:
    """Contract types, and the rows dropped for a missing id / required timestamp / negative
    quantity (as :class:`churnlens.features.contract._TableCleaner`)."""
    from pyspark.sql import functions as F

    for col in spec.columns:
        if col.name not in df.columns:
            continue
        if col.kind == "id":
            df = df.withColumn(col.name, _text(df, col.name)).where(F.col(col.name).isNotNull())
        elif col.kind in ("timestamp", "date"):
            df = df.withColumn(col.name, _timestamp(df, col.name))
            if col.required:
                df = df.where(F.col(col.name).isNotNull())
        elif col.kind in ("number", "count"):
            df = df.withColumn(col.name, _number(df, col.name))
            if col.kind == "count":
                df = df.where(F.col(col.name).isNull() | (F.col(col.name) >= 0))
            else:
                negative = F.col(col.name) < 0
                df = df.withColumn(
                    col.name,
                    F.when(negative, F.lit(None).cast("double")).otherwise(F.col(col.name)),
                )
        elif col.kind == "bool":
            df = df.withColumn(col.name, _boolean(df, col.name))
        else:
            df = df.withColumn(col.name, _text(df, col.name))
    return df


def _normalised(c: Column, mapping: Mapping[str, str]) -> Column:
    from pyspark.sql import functions as F

    m = F.create_map(*[F.lit(x) for kv in mapping.items() for x in kv])
    return m[c]


def _accounts(df: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    if "touch_tier" in df.columns:
        tier = _strip(F.regexp_replace(F.lower(F.col("touch_tier")), r"[\s_-]*touch$", ""))
        df = df.withColumn(
            "touch_tier",
            F.when(tier.isin(*TOUCH_TIERS), tier).otherwise(F.lit(None).cast("string")),
        )
    if "billing_period" in df.columns:
        key = F.regexp_replace(_strip(F.lower(F.col("billing_period"))), r"[\s_-]+", " ")
        df = df.withColumn("billing_period", _normalised(key, BILLING_PERIODS))
    # Identical duplicate rows: one kept. Different rows for one id are fatal (checked below).
    data_cols = [c for c in df.columns if c != _ORDER]
    return df.dropDuplicates(data_cols)


def _check_unique_accounts(accounts: DataFrame) -> None:
    from pyspark.sql import functions as F

    dup = accounts.groupBy("account_id").count().where(F.col("count") > 1).limit(3).collect()
    if dup:
        ids = ", ".join(repr(r["account_id"]) for r in dup)
        raise DataContractError(
            f"accounts: account listed several times with different values (e.g. {ids}); "
            "keep one row per account"
        )


def _unknown_and_early(df: DataFrame, table: str, time_col: str, accounts: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    known = accounts.select("account_id", F.col("created_at").alias("__created_at"))
    df = df.join(known, on="account_id", how="inner")
    early = F.col(time_col) < F.col("__created_at")
    if table == "contracts":
        df = df.withColumn(
            time_col, F.when(early, F.col("__created_at")).otherwise(F.col(time_col))
        )
    else:
        df = df.where(~early)
    return df.drop("__created_at")


def _first_by(df: DataFrame, key: str, order: list[Column]) -> DataFrame:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy(key).orderBy(*order)
    return df.withColumn("__rank", F.row_number().over(w)).where("__rank = 1").drop("__rank")


def _table_specific(table: str, df: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    def null_if(col: str, bad: Column) -> DataFrame:
        return df.withColumn(col, F.when(bad, F.lit(None)).otherwise(F.col(col)))

    if table == "tickets":
        if "ticket_id" in df.columns:
            with_id = _first_by(
                df.where(F.col("ticket_id").isNotNull()), "ticket_id", [F.col(_ORDER)]
            )
            df = with_id.unionByName(df.where(F.col("ticket_id").isNull()))
        if "closed_at" in df.columns:
            df = null_if("closed_at", F.col("closed_at") < F.col("opened_at"))
    elif table == "surveys":
        if "score" in df.columns:
            df = null_if("score", (F.col("score") < 0) | (F.col("score") > 10))
        if "responded_at" in df.columns:
            df = null_if("responded_at", F.col("responded_at") < F.col("sent_at"))
    elif table == "touchpoints" and "direction" in df.columns:
        d = _strip(F.lower(F.col("direction")))
        df = df.withColumn(
            "direction",
            F.when(d.isin("inbound", "outbound"), d).otherwise(F.lit(None).cast("string")),
        )
    elif table == "churn_events":
        df = _first_by(df, "account_id", [F.col("churned_at"), F.col(_ORDER)])
    return df


def utc(ts: pd.Timestamp) -> datetime:
    """A naive UTC timestamp as an aware ``datetime`` (a Spark literal that ignores the local
    time zone of the Python process)."""
    return ts.to_pydatetime().replace(tzinfo=UTC)


def _cut(df: DataFrame, table: str, time_col: str, as_of: date | None, now: datetime) -> DataFrame:
    from pyspark.sql import functions as F

    df = df.where(F.col(time_col) < F.lit(utc(pd.Timestamp(now.replace(tzinfo=None)))))
    if as_of is None:
        return df
    end = F.lit(utc(cutoff(as_of)))
    df = df.where(F.col(time_col) < end)
    # Later facts about an earlier row (a ticket closed after as_of) are not known yet.
    for col in TABLES[table].columns:
        if col.kind == "timestamp" and col.name != time_col and col.name in df.columns:
            df = df.withColumn(
                col.name, F.when(F.col(col.name) >= end, F.lit(None)).otherwise(F.col(col.name))
            )
    return df


def read_tables(
    spark: SparkSession,
    data_dir: Path,
    cfg: Config,
    as_of: date | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, DataFrame]:
    """The contract tables of ``data_dir`` as Spark DataFrames, repaired and cut at ``as_of``.

    See the module docstring for the repairs replicated from the pandas loader. Without
    ``as_of`` only future rows are dropped; :func:`data_as_of` then gives the data's last day.

    Args:
        spark: the session.
        data_dir: directory with the contract tables (files or Parquet directories).
        cfg: configuration (column renames per table).
        as_of: ignore rows dated after this day.
        now: the current time (rows after it are in the future); defaults to the clock.

    Returns:
        Table name -> DataFrame, for the tables present (``accounts`` always).

    Raises:
        DataContractError: no accounts table, a table in several files, a required column
            missing, or conflicting account rows.
    """
    require_pyspark()
    from pyspark.sql import functions as F

    spark.conf.set("spark.sql.session.timeZone", "UTC")
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataContractError(f"{data_dir}: data directory not found")
    now = now or datetime.now(UTC)
    raw: dict[str, DataFrame] = {}
    for table in TABLE_NAMES:
        paths = table_paths(data_dir, table)
        if not paths:
            if table == "accounts":
                raise DataContractError(
                    f"{data_dir}: no accounts file (expected accounts.parquet, accounts.csv, "
                    "accounts.csv.gz or a directory of Parquet files)"
                )
            continue
        if len(paths) > 1:
            raise DataContractError(
                f"{table}: several files hold this table: "
                f"{', '.join(p.name for p in paths)}; keep one"
            )
        df = _read(spark, paths[0])
        df = df.toDF(*[str(c).strip() for c in df.columns])
        renames = cfg.columns.get(table, {})
        for src, dst in renames.items():
            if src in df.columns:
                df = df.withColumnRenamed(src, dst)
        missing = [c for c in TABLES[table].required if c not in df.columns]
        if missing:
            hint = f"; renames in config: {renames}" if renames else ""
            raise DataContractError(
                f"{table}: required column(s) {missing} missing (found: "
                f"{', '.join(df.columns) or 'no columns'}){hint}"
            )
        raw[table] = df.withColumn(_ORDER, F.monotonically_increasing_id())

    spec = TABLES["accounts"]
    accounts = _accounts(_coerce(raw["accounts"], spec))
    accounts = _cut(accounts, "accounts", "created_at", as_of, now)
    _check_unique_accounts(accounts)
    out = {"accounts": accounts.drop(_ORDER)}
    for table, df in raw.items():
        if table == "accounts":
            continue
        spec = TABLES[table]
        assert spec.time_column is not None
        df = _coerce(df, spec)
        df = _unknown_and_early(df, table, spec.time_column, accounts)
        df = _table_specific(table, df)
        df = _cut(df, table, spec.time_column, as_of, now)
        out[table] = df.drop(_ORDER)
    return out


def data_as_of(tables: Mapping[str, DataFrame], now: datetime | None = None) -> date:
    """The last day with data (what the pandas loader uses when no ``as_of`` is given)."""
    from pyspark.sql import functions as F

    latest = []
    for table, df in tables.items():
        col = TABLES[table].time_column
        assert col is not None
        value = df.agg(F.max(col).alias("m")).collect()[0]["m"]
        if value is not None:
            latest.append(pd.Timestamp(value))
    if not latest:
        return (now or datetime.now(UTC)).date()
    return max(latest).date()


def to_pandas(df: DataFrame) -> pd.DataFrame:
    """Collect a DataFrame; timestamps as naive ``datetime64[us]`` (UTC)."""
    out = df.toPandas()
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col].dtype):
            s = out[col]
            if isinstance(s.dtype, pd.DatetimeTZDtype):
                s = s.dt.tz_convert("UTC").dt.tz_localize(None)
            out[col] = s.astype("datetime64[us]")
    return out
