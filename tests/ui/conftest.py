"""CSM page fixtures: a synthetic book in a SQLite store, and a really scored small base.

``book`` is fast (rows written directly, no model): hostile names, two scoring dates, details for
some accounts. ``scored`` is the real path: a simulated base, a model trained without the
registry, and ``churnlens score`` run twice (two as-of dates) into a SQLite store, as a CS team's
weekly job would.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from churnlens.store import ScoreStore, open_store

AS_OF_1 = date(2025, 6, 8)
AS_OF_2 = date(2025, 6, 15)
HOSTILE = "<script>alert(1)</script>"
FORMULA = '=HYPERLINK("http://evil.example","x")'
N_BOOK = 240
SERVER_KEY = "server-key-456"  # CHURNLENS_API_KEY of the real server


def band_of(p: float) -> str:
    """The default bands (red >= 0.30, yellow >= 0.12)."""
    return "red" if p >= 0.30 else "yellow" if p >= 0.12 else "green"


def reason(lang: str, family: str = "usage") -> dict[str, Any]:
    """A stored reason in ``lang``."""
    if lang == "ja":
        return {
            "family": family,
            "label": "利用の減少",
            "impact": 0.6,
            "evidence": ["ログイン -45%"],
        }
    return {
        "family": family,
        "label": "Usage decline",
        "impact": 0.6,
        "evidence": ["Logins down 45% vs the prior 8 weeks"],
    }


def play(lang: str) -> dict[str, Any]:
    """A stored play in ``lang``."""
    return {
        "play_id": "usage-recovery-call",
        "family": "usage",
        "title": "利用回復の電話" if lang == "ja" else "CSM call to re-engage",
        "action": "電話する" if lang == "ja" else "Call the main contact",
        "channel": "call",
        "owner": "csm",
        "urgency": "high",
        "due_days": 3,
        "tasks": [{"day": 0, "task": "準備" if lang == "ja" else "Review the usage report"}],
    }


def book_rows(as_of: date, seed: int, n: int = N_BOOK) -> list[dict[str, Any]]:
    """``n`` score rows for one date (deterministic), some with hostile names."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        p = round(rng.random() ** 2, 4)
        arr = None if i % 37 == 5 else float(rng.randrange(5, 300) * 1000)
        name = HOSTILE if i == 3 else FORMULA if i == 4 else f"Account {i:03d}"
        rows.append(
            {
                "account_id": f"acc-{i:03d}",
                "as_of": as_of.isoformat(),
                "churn_probability": p,
                "risk_band": band_of(p),
                "health_score": round(100 * (1 - p)),
                "touch_tier": ("high", "low", "tech")[i % 3],
                "arr": arr,
                "arr_at_risk": None if arr is None else p * arr,
                "top_reasons": [reason("en", "silence" if i % 11 == 0 else "usage")],
                "playbooks": [play("en")],
                "translations": {"ja": {"top_reasons": [reason("ja")], "playbooks": [play("ja")]}},
                "name": name,
                "csm_id": f"csm-{i % 4}",
                "plan": ("starter", "growth", "enterprise")[i % 3],
            }
        )
    return rows


def activity(weeks: int = 26) -> dict[str, list[Any]]:
    """A weekly activity block with declining logins and no survey source."""
    starts = pd.date_range("2024-12-16", periods=weeks, freq="7D").strftime("%Y-%m-%d").tolist()
    return {
        "week_start": starts,
        "logins": [max(0, 40 - w) for w in range(weeks)],
        "active_users": [5] * weeks,
        "distinct_features": [3] * weeks,
        "tickets_opened": [0] * weeks,
        "surveys_answered": [None] * weeks,
        "touches": [1 if w % 4 == 0 else 0 for w in range(weeks)],
    }


@dataclass
class Book:
    """The synthetic book's store and its URL."""

    url: str
    store: ScoreStore


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Book:
    """Two runs of :data:`N_BOOK` accounts; details (activity, silent flag) for acc-000..009."""
    url = f"sqlite:///{tmp_path_factory.mktemp('ui-book') / 'scores.db'}"
    store = open_store(url)
    store.append_scores(book_rows(AS_OF_1, 1), as_of=AS_OF_1, model_version="m v1")
    details = {
        f"acc-{i:03d}": {"activity": activity(), "silent_decline": 1 if i == 0 else 0}
        for i in range(10)
    }
    store.append_scores(book_rows(AS_OF_2, 2), as_of=AS_OF_2, model_version="m v2", details=details)
    return Book(url, store)


# ------------------------------------------------------------------------- a real scored base
@dataclass
class Scored:
    """A simulated base, its model, and the store two ``churnlens score`` runs filled."""

    root: Path
    data: Path
    model_dir: Path
    db_url: str
    timeline: pd.DataFrame
    accounts: pd.DataFrame


@pytest.fixture(scope="session")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Scored:
    """300 simulated accounts, a model trained without the registry, two scoring runs stored."""
    from churnlens.cli import app
    from churnlens.config import load_config
    from churnlens.datasets.simulator import SimulatorConfig, simulate, write_base
    from churnlens.features.contract import load_tables
    from churnlens.features.snapshots import alive_accounts
    from churnlens.features.timeline import build_timeline
    from churnlens.training.pipeline import train

    root = tmp_path_factory.mktemp("ui-scored")
    data = root / "data"
    write_base(simulate(SimulatorConfig(n_accounts=300, seed=5)), data)
    cfg = load_config(None, data)
    model_dir = root / "model"
    train(data, cfg, register=False).model.save(model_dir)
    db_url = f"sqlite:///{root / 'churnlens.db'}"
    runner = CliRunner()
    for as_of in (AS_OF_1, AS_OF_2):
        result = runner.invoke(
            app,
            [
                "score",
                "--data",
                str(data),
                "--model",
                str(model_dir),
                "--out",
                str(root / f"scores-{as_of}.csv"),
                "--as-of",
                as_of.isoformat(),
                "--db",
                db_url,
            ],
            env={"MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"},
        )
        assert result.exit_code == 0, result.output
    tables = load_tables(data, cfg, AS_OF_2)
    return Scored(root, data, model_dir, db_url, build_timeline(tables), alive_accounts(tables))


@pytest.fixture(scope="session")
def server(scored: Scored) -> Iterator[str]:
    """A real ``bentoml serve`` of the service (``local_server``) on the scored store, key set.

    Over HTTP rather than ``ChurnService.to_asgi()``: a second in-process service in the same
    process would register BentoML's Prometheus metrics twice (tests/serving has one).
    """
    from churnlens.serving.launch import local_server

    env = {
        "CHURNLENS_MODEL_URI": str(scored.model_dir),
        "CHURNLENS_CONFIG": str(scored.data / "churnlens.yaml"),
        "CHURNLENS_DATABASE_URL": scored.db_url,
        "CHURNLENS_API_KEY": SERVER_KEY,
        "BENTOML_HOME": str(scored.root / "bentoml"),
    }
    with local_server(env, scored.root / "server.log") as url:
        yield url
