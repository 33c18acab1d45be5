"""Model fitting steps: LightGBM with early stopping, and the logistic-regression baseline."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ..config import ModelConfig
from ..features.indicators import describe

_SIGN = {"up": 1, "down": -1, "none": 0}


def monotone_constraints(features: list[str], mode: str) -> list[int]:
    """+1 / -1 per feature from the indicators' risk directions ("none" mode: all 0)."""
    if mode == "none":
        return [0] * len(features)
    return [_SIGN[ind.direction] if (ind := describe(f)) else 0 for f in features]


def lgb_params(cfg: ModelConfig, features: list[str], seed: int) -> dict[str, object]:
    """LightGBM parameters, deterministic for a seed."""
    return {
        "objective": "binary",
        "learning_rate": cfg.learning_rate,
        "num_leaves": cfg.num_leaves,
        "min_data_in_leaf": cfg.min_data_in_leaf,
        "feature_fraction": cfg.feature_fraction,
        "bagging_fraction": cfg.bagging_fraction,
        "bagging_freq": 1,
        "lambda_l2": cfg.lambda_l2,
        "monotone_constraints": monotone_constraints(features, cfg.monotone),
        "monotone_constraints_method": "advanced",
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 2,
        "verbose": -1,
    }


def fit_lightgbm(
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_valid: pd.DataFrame,
    y_valid: np.ndarray,
    cfg: ModelConfig,
    seed: int,
) -> lgb.Booster:
    """Train with early stopping on the validation window; keep the best iteration only."""
    features = list(X_train.columns)
    train = lgb.Dataset(X_train, y_train, free_raw_data=True)
    valid = lgb.Dataset(X_valid, y_valid, reference=train)
    booster = lgb.train(
        lgb_params(cfg, features, seed),
        train,
        num_boost_round=cfg.max_rounds,
        valid_sets=[valid],
        valid_names=["valid"],
        callbacks=[
            lgb.early_stopping(cfg.early_stopping_rounds, verbose=False),
            lgb.log_evaluation(0),
        ],
    )
    # Re-serialise at the best iteration so the package holds exactly the model evaluated.
    best = booster.best_iteration or booster.current_iteration()
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))


def refit_lightgbm(
    X: pd.DataFrame, y: np.ndarray, cfg: ModelConfig, seed: int, rounds: int
) -> lgb.Booster:
    """Train a fixed number of rounds (chosen beforehand by early stopping) on all of ``X``."""
    booster = lgb.train(
        lgb_params(cfg, list(X.columns), seed),
        lgb.Dataset(X, y, free_raw_data=True),
        num_boost_round=max(1, rounds),
    )
    return lgb.Booster(model_str=booster.model_to_string())


def refit_rounds(best: int, n_train: int, n_all: int) -> int:
    """Rounds for a refit on ``n_all`` rows when ``best`` was best on ``n_train`` rows.

    More rows make each round's leaves smaller relative to the data, so the refit needs
    proportionally more rounds to fit as closely.
    """
    return max(1, round(best * n_all / max(n_train, 1)))


def fit_logistic(X_train: pd.DataFrame, y_train: np.ndarray, seed: int) -> Pipeline:
    """Logistic regression on the same indicators (median imputation + missing flags, scaled)."""
    model = make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(C=1.0, max_iter=2000, random_state=seed),
    )
    model.fit(X_train.to_numpy(dtype=float), y_train)
    return model
