"""The pure helpers of the load/soak benchmark (``bench/load.py``): load plan, phase figures and
the RSS-growth target. The benchmark itself is run with ``make soak``, not here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "load.py"


@pytest.fixture(scope="module")
def load() -> ModuleType:
    """``bench/load.py`` imported as a module (no gevent patching, no Locust import)."""
    spec = importlib.util.spec_from_file_location("bench_load", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is built
    spec.loader.exec_module(mod)
    return mod


def test_plan_offers_the_rate_then_five_times_it(load: ModuleType) -> None:
    plan = load.make_plan(11.18, duration=600, burst=60, cooldown=30)
    assert (plan.users, plan.burst_users) == (12, 60)
    assert plan.rate == pytest.approx(11.18)
    assert plan.offered("burst") == pytest.approx(5 * 11.18)
    assert plan.warmup == 60  # min(60, duration / 5)
    assert [p[0] for p in plan.phases()] == ["warm-up", "steady", "burst", "cool-down"]
    assert plan.phase_at(59.9) == "warm-up"
    assert plan.phase_at(60) == "steady"
    assert plan.phase_at(600) == "burst"
    assert plan.phase_at(660) == "cool-down"
    assert plan.phase_at(690) is None
    short = load.make_plan(0.5, duration=60, burst=20, cooldown=0)
    assert short.users == load.MIN_USERS and short.rate == pytest.approx(0.5)
    assert short.warmup == 12 and "cool-down" not in [p[0] for p in short.phases()]
    with pytest.raises(ValueError, match="rate"):
        load.make_plan(0, duration=60, burst=20, cooldown=0)


def test_window_summary_counts_by_phase_and_kind(load: ModuleType) -> None:
    req = load.Req
    reqs = [req(float(i) / 10, "predict-1", 10.0 + i % 10, True, 200) for i in range(100)]
    reqs += [req(5.0, "over-bytes", 3.0, True, 413), req(6.0, "predict-50", 500.0, False, 0)]
    reqs += [req(20.0, "predict-1", 1.0, False, 500)]  # outside the window
    s = load.window_summary(reqs, 0.0, 10.0)
    assert s["n"] == 102 and s["errors"] == 1
    assert s["rps"] == pytest.approx(10.2)
    assert s["error_rate"] == pytest.approx(1 / 102, abs=1e-5)
    assert s["by_kind"]["predict-1"]["n"] == 100
    assert s["by_kind"]["predict-1"]["p50_ms"] == pytest.approx(14.5)
    assert s["by_kind"]["over-bytes"]["errors"] == 0
    assert s["by_kind"]["predict-50"]["errors"] == 1
    empty = load.window_summary(reqs, 30.0, 40.0)
    assert empty["n"] == 0 and empty["p99_ms"] is None and empty["error_rate"] == 0.0


def test_rss_growth_is_last_minute_of_steady_against_right_after_warmup(
    load: ModuleType,
) -> None:
    times = [float(t) for t in range(0, 400, 2)]

    def rss(t: float) -> float:
        if t < 60:
            return 50.0  # warm-up: ignored
        if t >= 300:
            return 400.0  # burst after the steady phase: ignored
        return 100.0 if t < 200 else 120.0

    g = load.rss_growth(times, [rss(t) for t in times], warmup_end=60, steady_end=300)
    assert g["after_warmup"] == 100.0
    assert g["last_window"] == 120.0
    assert g["growth"] == pytest.approx(0.20)
    flat = load.rss_growth(times, [80.0] * len(times), warmup_end=60, steady_end=300)
    assert flat["growth"] == 0.0
    none = load.rss_growth([0.0, 1.0], [10.0, 10.0], warmup_end=60, steady_end=300)
    assert none["growth"] is None


def test_buckets_give_throughput_and_latency_over_time(load: ModuleType) -> None:
    req = load.Req
    reqs = [req(t / 4, "predict-1", 20.0, t != 5, 200) for t in range(40)]  # 4/s over 10 s
    bk = load.buckets(reqs, 5.0, 10.0)
    assert [b["rps"] for b in bk] == [4.0, 4.0]
    assert [b["errors"] for b in bk] == [1.0, 0.0]
    assert bk[0]["p50_ms"] == 20.0 and bk[1]["t"] == 7.5


def test_paced_wait_keeps_each_users_own_phase_without_catch_up(load: ModuleType) -> None:
    now = [10.0]
    wait = load.paced_wait(2.0, clock=lambda: now[0])  # a task start every 0.5 s
    user = SimpleNamespace(next_at=10.3)  # on_start picked phase 0.3 and slept until then
    now[0] = 10.35  # the first task took 50 ms
    assert wait(user) == pytest.approx(0.45)  # next start 10.8: the phase is kept
    now[0] = 11.5  # the second task took 0.7 s, longer than the period
    assert wait(user) == 0.0  # start again at once ...
    now[0] = 11.6
    assert wait(user) == pytest.approx(0.4)  # ... and pace from there, no burst to catch up
