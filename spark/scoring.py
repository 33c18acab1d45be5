"""Batch scoring on Spark with the registered MLflow model (``mlflow.pyfunc.spark_udf``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._session import require_pyspark

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def model_features(model_uri: str) -> list[str]:
    """The model's input columns, from its MLflow signature (the training feature list)."""
    import mlflow

    info = mlflow.models.get_model_info(model_uri)
    if info.signature is not None and info.signature.inputs is not None:
        names = info.signature.inputs.input_names()
        if names:
            return [str(n) for n in names]
    from ..training.pipeline import FEATURES

    return list(FEATURES)


def score_spark(spark: SparkSession, indicators: DataFrame, model_uri: str) -> DataFrame:
    """``indicators`` with ``churn_probability``: the calibrated probability of the model.

    The pyfunc logged by ``churnlens train`` (``mlflow_pyfunc.py``) runs on the executors in
    this Python environment (``env_manager="local"``); a feature missing from ``indicators`` is
    passed as unknown (null), as the pyfunc does for a missing column. Reasons and playbooks are
    not computed here: ``churnlens score --engine spark`` renders them on the driver with
    :func:`churnlens.serving.scoring.score_frame`.

    Args:
        spark: the session.
        indicators: :func:`churnlens.spark.compute_indicators_spark` output.
        model_uri: an MLflow model URI (``models:/churnlens@champion``, ``models:/churnlens/3``,
            ``runs:/<id>/model``); the tracking URI must be set.
    """
    require_pyspark()
    import mlflow.pyfunc
    from pyspark.sql import functions as F

    predict = mlflow.pyfunc.spark_udf(spark, model_uri, env_manager="local", result_type="double")
    cols = [
        (F.col(c) if c in indicators.columns else F.lit(None)).cast("double").alias(c)
        for c in model_features(model_uri)
    ]
    return indicators.withColumn("churn_probability", predict(F.struct(*cols)))
