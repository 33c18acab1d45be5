"""Stage 2 on Spark: the pure indicator functions, per group of accounts (``applyInPandas``).

Every indicator of a request depends only on its account's timeline and profile, so the timeline
and the requests (with the profile joined on) are cogrouped by account: each group holds whole
accounts and runs :func:`churnlens.features.indicators.compute_indicators` unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..features.indicators import compute_indicators, indicator_columns
from ..features.schema import TIMELINE_COLUMNS, TIMELINE_KEY, tracked_column, tracked_groups
from ._session import require_pyspark

if TYPE_CHECKING:
    from pyspark.sql import DataFrame
    from pyspark.sql.types import StructType

# The profile columns the indicators read (see ``features.indicators.inputs``).
PROFILE_COLUMNS: tuple[str, ...] = (
    "created_at",
    "renewal_date",
    "billing_period",
    "arr",
    "seats",
)
_BUCKET = "__churnlens_bucket"


def indicator_schema(tracked: Sequence[str] = ()) -> StructType:
    """``account_id, as_of`` then every indicator (those of the ``tracked`` event groups after
    the registered ones) and ``has_<source>`` flag, as doubles."""
    require_pyspark()
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType, TimestampType

    return StructType(
        [
            StructField("account_id", StringType(), False),
            StructField("as_of", TimestampType(), True),
            *[StructField(c, DoubleType(), True) for c in indicator_columns(tracked)],
        ]
    )


def _empty_timeline(tracked: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": pd.Series(dtype=object),
            "week_start": pd.Series(dtype="datetime64[us]"),
            **{
                c: pd.Series(dtype="float64")
                for c in (*TIMELINE_COLUMNS, *map(tracked_column, tracked))
            },
        }
    )


def _group_function(
    profile_cols: list[str], tracked: list[str]
) -> Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]:
    """The per-group function: one pandas timeline and the group's requests (profile joined)."""
    indicators = indicator_columns(tracked)

    def run(timeline: pd.DataFrame, requests: pd.DataFrame) -> pd.DataFrame:
        from ._session import quiet_pandas_warning

        quiet_pandas_warning()
        columns = ["account_id", "as_of", *indicators]
        if requests.empty:
            return pd.DataFrame(
                {
                    "account_id": pd.Series(dtype=object),
                    "as_of": pd.Series(dtype="datetime64[us]"),
                    **{c: pd.Series(dtype="float64") for c in indicators},
                }
            )
        if timeline.empty or "account_id" not in timeline.columns:
            timeline = _empty_timeline(tracked)
        timeline = timeline.drop(columns=[_BUCKET], errors="ignore")
        profiles = requests[["account_id", *profile_cols]].drop_duplicates("account_id")
        req = requests[["account_id", "as_of"]]
        out = compute_indicators(timeline, profiles, req, tracked=tracked)
        for c in indicators:
            out[c] = out[c].astype(np.float64)
        return out[columns]

    return run


def compute_indicators_spark(
    timeline: DataFrame,
    profiles: DataFrame,
    requests: DataFrame,
    *,
    buckets: int | None = None,
) -> DataFrame:
    """Every indicator for each ``(account_id, as_of)`` request, computed on the executors.

    Args:
        timeline: stage 1 output (:func:`churnlens.spark.build_timeline_spark`, or any DataFrame
            with ``account_id, week_start`` and timeline columns).
        profiles: one row per account: ``account_id, created_at`` and optionally
            ``renewal_date, billing_period, arr, seats`` (e.g. the ``accounts`` table).
        requests: ``account_id, as_of`` (a date or timestamp; midnight of that day is used).
        buckets: accounts are hashed into this many groups, each processed by one pandas call
            (default: 4 per shuffle partition); ``0`` makes one group per account.

    Returns:
        ``account_id, as_of`` (timestamp) then one double column per indicator (with those of
        the tracked event groups whose ``events__<group>`` columns the timeline has) and
        ``has_<source>`` flag: the frame of
        :func:`churnlens.features.indicators.compute_indicators`, row for row.
    """
    require_pyspark()
    from pyspark.sql import functions as F

    spark = timeline.sparkSession
    profile_cols = [c for c in PROFILE_COLUMNS if c in profiles.columns]
    prof = profiles.select("account_id", *profile_cols).dropDuplicates(["account_id"])
    req = requests.select(
        F.col("account_id").cast("string").alias("account_id"),
        F.col("as_of").cast("timestamp").alias("as_of"),
    ).join(prof, on="account_id", how="left")
    tracked = tracked_groups(timeline.columns)
    keep = [c for c in (*TIMELINE_KEY, *TIMELINE_COLUMNS) if c in timeline.columns]
    keep += [tracked_column(g) for g in tracked]
    tl = timeline.select(*keep)
    if buckets is None:
        buckets = 4 * int(spark.conf.get("spark.sql.shuffle.partitions") or "200")
    if buckets > 0:
        key = F.pmod(F.xxhash64("account_id"), F.lit(buckets))
        tl = tl.withColumn(_BUCKET, key)
        req = req.withColumn(_BUCKET, key)
        group = _BUCKET
    else:
        group = "account_id"
    fn = _group_function(profile_cols, tracked)
    run = (lambda t, r: fn(t, r.drop(columns=[_BUCKET]))) if buckets > 0 else fn
    return (
        tl.groupBy(group)
        .cogroup(req.groupBy(group))
        .applyInPandas(run, schema=indicator_schema(tracked))
    )
