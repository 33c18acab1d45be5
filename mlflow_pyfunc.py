"""MLflow "models from code" entry: a pyfunc that returns calibrated churn probabilities.

MLflow's LightGBM flavour returns labels, not probabilities, and knows nothing of the calibrator,
so the model is logged with this file as its code. Input: an indicator frame (the model's
features; unknown columns are ignored, missing ones are NaN). Output: ``churn_probability``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext


class ChurnPyfunc(PythonModel):
    """Loads the churnlens model package once; predicts calibrated probabilities."""

    def load_context(self, context: PythonModelContext) -> None:
        """Read the package from the model's artifacts."""
        from churnlens.model import ARTIFACT_KEY, ChurnModel

        self.model = ChurnModel.load(Path(context.artifacts[ARTIFACT_KEY]))

    def predict(
        self,
        context: PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Calibrated churn probability per input row."""
        return pd.DataFrame({"churn_probability": self.model.predict_proba(model_input)})


mlflow.models.set_model(ChurnPyfunc())
