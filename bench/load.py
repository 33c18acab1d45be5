"""Load and soak benchmark: Locust against a real ``bentoml serve`` on 127.0.0.1, 2 workers.

Run with ``python bench/load.py`` (``make soak``); ``--duration 60 --burst 20`` is a smoke run of
about two minutes. What it does, all in one run:

1. simulates a base, trains a model (no registry) and runs ``churnlens score`` once into a SQLite
   score store, the way ``bench/serving.py`` does (``--work DIR`` keeps them and reuses them);
2. starts the service (``CHURNLENS_WORKERS=2``, ``CHURNLENS_API_KEY`` set, the per-key rate limit
   off with ``CHURNLENS_RATE_LIMIT=0``, ``CHURNLENS_MAX_ACCOUNTS`` and
   ``CHURNLENS_MAX_BODY_BYTES`` explicit);
3. calibrates: saturation throughput of single-account ``POST /predict`` (8 users, no wait) and
   of ``GET /livez`` (the HTTP stack with no work); the steady rate is 15% of the former unless
   ``--rate`` is given, so the 5x burst lands near or over saturation;
4. baselines: ``GET /livez`` at the steady and at the burst concurrency and rate (latency floor);
5. the load, a Locust ``LoadTestShape`` with constant-throughput users (:func:`paced_wait`,
   ``constant_throughput`` at a random phase per user): steady rate for
   ``--duration`` (the first ``--warmup`` seconds are warm-up), then 5x for ``--burst``, then the
   steady rate again for ``--cooldown``. Mix: 90% single-account ``/predict``, 5% 50-account
   ``/predict``, 5% ``/score_accounts`` (20 ids); during the burst a trickle of over-limit
   requests (``CHURNLENS_MAX_ACCOUNTS`` + 1 accounts, and a 20 MB body) which must get 413 with
   a body naming the problem. Any other status, a wrong answer or a connection error is an error;
6. samples the RSS of every process of the server tree every ``--sample`` seconds, and the load
   average (the machine is shared: read the figures beside it).

Report per phase: throughput (beside the offered rate), p50/p99 latency (beside the same-run
``/livez`` floor), error rate (target 0) and RSS over time; RSS growth after warm-up =
(mean RSS over the last minute of the steady phase - median RSS over the 15 s right after
warm-up) / that warm-up RSS, per worker, target <= 10%. Writes ``bench/results/load-<stamp>.json``
and ``.png`` (RSS, latency and throughput over time). Exits 1 when there was any error or a
worker's RSS grew more than 10%.
"""

from __future__ import annotations

# Locust runs on gevent: when run as a script, patch before anything imports ssl or threading.
# Imported as a module (the tests of the pure helpers below), nothing is patched and Locust is
# only imported inside the functions that run it.
if __name__ == "__main__":
    from gevent import monkey

    monkey.patch_all()

import argparse
import importlib.util
import itertools
import json
import math
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

N_ACCOUNTS = 1500  # simulated base, as bench/serving.py
SEED = 11
WORKERS = 2
MAX_ACCOUNTS = 100  # CHURNLENS_MAX_ACCOUNTS for the run: the 50-account batch is well inside
MAX_BODY = 8 * 1024 * 1024  # CHURNLENS_MAX_BODY_BYTES: ample for MAX_ACCOUNTS=100 here
OVERSIZE_BODY = 20 * 1024 * 1024
N_SINGLE_BODIES = 200  # distinct single-account requests, cycled
N_BATCHES = 8
BATCH_SIZE = 50
N_SCORE_IDS = 20
MIX = (("predict-1", 0.90), ("predict-50", 0.05), ("score_accounts-20", 0.05))
BURST_FACTOR = 5
RATE_FRACTION = 0.15  # steady rate = this x saturation of single-account /predict
PROBE_USERS = 8
PER_USER_MAX_RATE = 1.0  # requests/s per Locust user: more users rather than faster ones
MIN_USERS = 4
READY_SECONDS = 120.0
TARGETS = {"error_rate": 0.0, "rss_growth": 0.10}
# Reference only (the serving issue's single-account targets at c=8; not part of the exit code).
SERVING_TARGETS_MS = {"p50": 15.0, "p99": 50.0}


# ------------------------------------------------------------------------------ pure helpers
class Req(NamedTuple):
    """One finished request: seconds since the load started, kind, latency, outcome."""

    t: float
    kind: str
    ms: float
    ok: bool
    status: int


@dataclass(frozen=True)
class Plan:
    """The load shape: phases in seconds since the start, users and their per-user rate."""

    duration: float
    burst: float
    cooldown: float
    warmup: float
    users: int
    burst_users: int
    per_user_rate: float

    @property
    def rate(self) -> float:
        """Offered requests per second in the steady phases."""
        return self.users * self.per_user_rate

    @property
    def total(self) -> float:
        """Seconds from the start to the end of the cool-down."""
        return self.duration + self.burst + self.cooldown

    def phases(self) -> list[tuple[str, float, float]]:
        """``(name, start, end)`` of warm-up, steady, burst, cool-down (empty ones left out)."""
        spans = [
            ("warm-up", 0.0, self.warmup),
            ("steady", self.warmup, self.duration),
            ("burst", self.duration, self.duration + self.burst),
            ("cool-down", self.duration + self.burst, self.total),
        ]
        return [p for p in spans if p[2] > p[1]]

    def phase_at(self, t: float) -> str | None:
        """The phase at ``t`` seconds, None before the start or after the end."""
        return next((name for name, a, b in self.phases() if a <= t < b), None)

    def offered(self, phase: str) -> float:
        """Offered requests per second in ``phase``."""
        users = self.burst_users if phase == "burst" else self.users
        return users * self.per_user_rate


def make_plan(
    rate: float,
    duration: float,
    burst: float,
    cooldown: float,
    warmup: float | None = None,
    factor: int = BURST_FACTOR,
) -> Plan:
    """A plan offering ``rate`` req/s (users of at most :data:`PER_USER_MAX_RATE` each), then
    ``factor`` times the users at the same per-user rate. Warm-up defaults to 60 s, at most a
    fifth of ``duration``."""
    if rate <= 0 or duration <= 0:
        raise ValueError(f"rate and duration must be > 0, got {rate} and {duration}")
    users = max(MIN_USERS, math.ceil(rate / PER_USER_MAX_RATE))
    wu = min(60.0, duration / 5) if warmup is None else min(warmup, duration)
    return Plan(duration, burst, cooldown, wu, users, users * factor, rate / users)


def latency_summary(ms: Sequence[float]) -> dict[str, float | int | None]:
    """Count, p50, p99 and max of latencies in milliseconds (None when there are none)."""
    if len(ms) == 0:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    a = np.asarray(ms, dtype=float)
    return {
        "n": int(a.size),
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
        "max_ms": round(float(a.max()), 2),
    }


def window_summary(reqs: Sequence[Req], start: float, end: float) -> dict[str, Any]:
    """Throughput, latency and errors of the requests finished in ``[start, end)``, overall and
    by kind."""
    span = max(end - start, 1e-9)
    inside = [r for r in reqs if start <= r.t < end]

    def one(rs: list[Req]) -> dict[str, Any]:
        errors = sum(not r.ok for r in rs)
        return {
            "rps": round(len(rs) / span, 2),
            "errors": errors,
            "error_rate": round(errors / len(rs), 5) if rs else 0.0,
            **latency_summary([r.ms for r in rs]),
        }

    kinds = sorted({r.kind for r in inside})
    return {
        "seconds": round(span, 1),
        **one(inside),
        "by_kind": {k: one([r for r in inside if r.kind == k]) for k in kinds},
    }


def rss_growth(
    times: Sequence[float],
    rss: Sequence[float],
    warmup_end: float,
    steady_end: float,
    *,
    window: float = 60.0,
    settle: float = 15.0,
) -> dict[str, float | None]:
    """RSS growth after warm-up of one process.

    ``after_warmup``: median of the samples in ``[warmup_end, warmup_end + settle)``;
    ``last_window``: mean of the samples in ``[steady_end - window, steady_end)`` (the window is
    shortened to half the steady phase when that is shorter, and never starts before the settle
    period ends); ``growth = (last_window - after_warmup) / after_warmup``. None when a window
    has no sample.
    """
    t = np.asarray(times, dtype=float)
    v = np.asarray(rss, dtype=float)
    settle_end = warmup_end + settle
    win = min(window, max((steady_end - warmup_end) / 2, 0.0))
    last_start = max(steady_end - win, settle_end)
    first = v[(t >= warmup_end) & (t < settle_end)]
    last = v[(t >= last_start) & (t < steady_end)]
    base = float(np.median(first)) if first.size else None
    end = float(last.mean()) if last.size else None
    growth = (end - base) / base if base and end is not None else None
    return {"after_warmup": base, "last_window": end, "growth": growth}


def buckets(reqs: Sequence[Req], width: float, end: float) -> list[dict[str, float | None]]:
    """Per ``width``-second bucket from 0 to ``end``: throughput, p50/p99 and errors."""
    out: list[dict[str, float | None]] = []
    n = max(1, math.ceil(end / width))
    grouped: list[list[Req]] = [[] for _ in range(n)]
    for r in reqs:
        i = int(r.t // width)
        if 0 <= i < n:
            grouped[i].append(r)
    for i, rs in enumerate(grouped):
        lat = latency_summary([r.ms for r in rs])
        out.append(
            {
                "t": (i + 0.5) * width,
                "rps": len(rs) / width,
                "p50_ms": lat["p50_ms"],
                "p99_ms": lat["p99_ms"],
                "errors": float(sum(not r.ok for r in rs)),
            }
        )
    return out


def paced_wait(
    rate: float, clock: Callable[[], float] = time.perf_counter
) -> Callable[[Any], float]:
    """A Locust ``wait_time``: ``rate`` task starts per second per user, like
    ``constant_throughput``, but on the user's own schedule ``user.next_at`` (set by its
    ``on_start`` at a random phase). Locust's ``constant_throughput`` anchors every user to the
    instant it was spawned, and Locust spawns a whole step of users at once, so all of them fire
    together every period: the "rate" arrives as one burst a period. A user that falls behind
    (a response slower than the period) starts again at once, with no catch-up debt."""
    period = 1.0 / rate

    def wait(user: Any) -> float:
        now = clock()
        user.next_at = max(user.next_at + period, now)
        return float(user.next_at - now)

    return wait


# ----------------------------------------------------------------------------------- bodies
@dataclass
class Bodies:
    """Request bodies, encoded once before any load."""

    single: list[bytes]
    batches: list[bytes]
    score_ids: list[str]
    over_accounts: bytes
    oversize: bytes
    sizes: dict[str, int] = field(default_factory=dict)


def build_bodies(data: Path) -> tuple[Bodies, str]:
    """Request bodies from the simulated base (``account_items``), and the as-of date."""
    from churnlens.config import load_config
    from churnlens.features.contract import load_tables
    from churnlens.features.snapshots import alive_accounts
    from churnlens.features.timeline import build_timeline
    from churnlens.serving.client import account_items

    cfg = load_config(None, data)
    tables = load_tables(data, cfg)
    as_of = tables.as_of
    timeline = build_timeline(tables)
    alive = alive_accounts(tables)
    ids = sorted(alive["account_id"].astype(str))
    need = N_BATCHES * BATCH_SIZE + MAX_ACCOUNTS + 1
    if len(ids) < need:
        raise RuntimeError(f"only {len(ids)} accounts alive at {as_of}; need {need}")
    items = account_items(timeline, alive, ids)

    def body(accts: list[str]) -> bytes:
        doc = {"as_of": as_of.isoformat(), "accounts": [items[a] for a in accts]}
        return json.dumps(doc).encode()

    rng = random.Random(SEED)
    single = [body([a]) for a in rng.sample(ids, N_SINGLE_BODIES)]
    shuffled = rng.sample(ids, len(ids))
    batches = [body(shuffled[i * BATCH_SIZE : (i + 1) * BATCH_SIZE]) for i in range(N_BATCHES)]
    over_accounts = body(shuffled[: MAX_ACCOUNTS + 1])
    # A valid one-account request padded with JSON whitespace past 20 MB: only its size is wrong.
    oversize = single[0] + b" " * (OVERSIZE_BODY - len(single[0]))
    if len(over_accounts) >= MAX_BODY:
        raise RuntimeError(
            f"the over-accounts body ({len(over_accounts)} B) is over the size limit"
        )
    sizes = {
        "predict-1_max": max(map(len, single)),
        "predict-50_max": max(map(len, batches)),
        "over-accounts": len(over_accounts),
        "over-bytes": len(oversize),
    }
    return Bodies(single, batches, ids, over_accounts, oversize, sizes), as_of.isoformat()


# ------------------------------------------------------------------------------------ setup
def bench_serving() -> ModuleType:
    """``bench/serving.py`` as a module (its helpers; ``bench`` is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_serving", ROOT / "bench" / "serving.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def prepare(work: Path) -> dict[str, Any]:
    """Simulate, train (no registry) and score into a SQLite store; reuse what ``work`` has."""
    from churnlens.config import load_config
    from churnlens.datasets.simulator import SimulatorConfig, simulate, write_base
    from churnlens.training.pipeline import train

    data, model_dir, store = work / "data", work / "model", work / "scores.db"
    info: dict[str, Any] = {"reused": []}
    t0 = time.perf_counter()
    if not any(data.glob("accounts.*")):
        write_base(simulate(SimulatorConfig(n_accounts=N_ACCOUNTS, seed=SEED)), data)
    else:
        info["reused"].append("data")
    if not model_dir.is_dir():
        train(data, load_config(None, data), register=False).model.save(model_dir)
    else:
        info["reused"].append("model")
    info["train_seconds"] = round(time.perf_counter() - t0, 1)
    bodies, as_of = build_bodies(data)
    db_url = f"sqlite:///{store}"
    if not store.exists():
        t1 = time.perf_counter()
        cli = Path(sys.executable).with_name("churnlens")
        cmd = [str(cli), "score", "--data", str(data), "--as-of", as_of, "--out"]
        cmd += [str(work / "scores.csv"), "--model", str(model_dir), "--db", db_url]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"churnlens score exited {done.returncode}:\n{done.stderr[-3000:]}")
        info["score_seconds"] = round(time.perf_counter() - t1, 1)
    else:
        info["reused"].append("score store")
    info |= {"data": data, "model": model_dir, "db_url": db_url, "as_of": as_of}
    info["bodies"] = bodies
    return info


# -------------------------------------------------------------------------------- RSS sampler
def server_tree(port: int) -> list[Any]:
    """The ``bentoml serve`` process listening on ``port`` (a child of ours) and its children."""
    import psutil

    for child in psutil.Process().children(recursive=False):
        try:
            cmd = child.cmdline()
        except psutil.Error:
            continue
        if "serve" in cmd and str(port) in cmd:
            return [child, *child.children(recursive=True)]
    raise RuntimeError(f"no bentoml serve process on port {port} among our children")


def role(proc: Any, root_pid: int) -> str:
    """A short label for a server process (server, worker-N, or its name)."""
    try:
        cmd = proc.cmdline()
    except Exception:
        return f"pid-{proc.pid}"
    if proc.pid == root_pid:
        return "server"
    if "--worker-id" in cmd:
        return f"worker-{cmd[cmd.index('--worker-id') + 1]}"
    return f"{Path(cmd[0]).name if cmd else 'proc'}-{proc.pid}"


class Sampler:
    """Samples RSS (MB) of every server process and the load average every ``every`` seconds."""

    def __init__(self, procs: list[Any], every: float, clock: Callable[[], float]) -> None:
        self.procs = procs
        self.root = procs[0].pid
        self.every = every
        self.clock = clock
        self.samples: list[dict[str, Any]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def sample(self) -> None:
        """One sample of every process still alive."""
        rss: dict[str, float] = {}
        for p in self.procs:
            try:
                rss[role(p, self.root)] = p.memory_info().rss / 2**20
            except Exception:  # gone: a worker that died shows as a gap (and as errors)
                continue
        self.samples.append({"t": self.clock(), "rss_mb": rss, "loadavg": os.getloadavg()})

    def run(self) -> None:
        """Sample until stopped."""
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.every)

    def series(self, name: str) -> tuple[list[float], list[float]]:
        """Times and RSS of one process."""
        pts = [(s["t"], s["rss_mb"][name]) for s in self.samples if name in s["rss_mb"]]
        return [p[0] for p in pts], [p[1] for p in pts]

    def names(self) -> list[str]:
        """Every process label seen."""
        return sorted({k for s in self.samples for k in s["rss_mb"]})


# ------------------------------------------------------------------------------------ Locust
def make_users(
    url: str, key: str, bodies: Bodies, plan: Plan | None, clock: Callable[[], float]
) -> dict[str, type]:
    """The Locust user classes (imported here: importing Locust patches the process)."""
    from locust import FastHttpUser, constant, task

    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    seeds = itertools.count(SEED)
    burst_counter = itertools.count()
    # One over-limit request every ~2 s of burst at the offered burst rate, alternating kinds.
    every = max(10, round(2 * plan.offered("burst"))) if plan else 0
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]

    def expect(resp: Any, kind: str, status: int, check: Callable[[bytes], str | None]) -> None:
        if resp.status_code != status:
            text = (resp.content or b"")[:200].decode(errors="replace")
            err = getattr(resp, "error", None)
            resp.failure(f"{kind}: expected {status}, got {resp.status_code} {err or ''} {text}")
            return
        problem = check(resp.content or b"")
        if problem:
            resp.failure(f"{kind}: {problem}")
        else:
            resp.success()

    def n_results(n: int) -> Callable[[bytes], str | None]:
        def check(body: bytes) -> str | None:
            got = len(json.loads(body)["results"])
            return None if got == n else f"{got} results for {n} accounts"

        return check

    def stored(n: int) -> Callable[[bytes], str | None]:
        def check(body: bytes) -> str | None:
            doc = json.loads(body)
            if len(doc["results"]) != n or doc["missing"]:
                return f"{len(doc['results'])} stored results, missing {doc['missing'][:3]}"
            return None

        return check

    def names_problem(word: bytes) -> Callable[[bytes], str | None]:
        def check(body: bytes) -> str | None:
            ok = body.startswith(b"{") and b'"error"' in body and word in body
            return None if ok else f"413 body does not name the problem: {body[:200]!r}"

        return check

    def one_result(body: bytes) -> str | None:
        return None if b'"churn_probability"' in body else "no churn_probability in the answer"

    class Base(FastHttpUser):
        abstract = True
        host = url
        network_timeout = 120.0
        connection_timeout = 30.0
        default_headers = headers

        # Paced users (paced_wait) start at a random point of their period: Locust spawns a
        # whole step of users at once, and they would otherwise all fire together every period.
        period = 0.0

        def on_start(self) -> None:
            self.rng = random.Random(next(seeds))
            if self.period:
                self.next_at = time.perf_counter() + self.rng.uniform(0.0, self.period)
                time.sleep(self.next_at - time.perf_counter())  # gevent's sleep (patched)

        def post(self, path: str, body: bytes, kind: str, status: int, check: Any) -> None:
            # Locust documents bytes for ``data`` ("String/bytes"); its annotation says str.
            client_post: Any = self.client.post
            with client_post(path, data=body, name=kind, catch_response=True) as resp:
                expect(resp, kind, status, check)

        def send(self, kind: str) -> None:
            rng = self.rng
            if kind == "predict-1":
                self.post("/predict", rng.choice(bodies.single), kind, 200, one_result)
            elif kind == "predict-50":
                body = rng.choice(bodies.batches)
                self.post("/predict", body, kind, 200, n_results(BATCH_SIZE))
            elif kind == "score_accounts-20":
                ids = rng.sample(bodies.score_ids, N_SCORE_IDS)
                body = json.dumps({"account_ids": ids}).encode()
                self.post("/score_accounts", body, kind, 200, stored(N_SCORE_IDS))
            elif kind == "over-accounts":
                body = bodies.over_accounts
                self.post("/predict", body, kind, 413, names_problem(b"limit"))
            elif kind == "over-bytes":
                self.post("/predict", bodies.oversize, kind, 413, names_problem(b"limit"))
            else:
                raise ValueError(kind)

    pace = plan.per_user_rate if plan else 1.0

    class MixUser(Base):
        wait_time = paced_wait(pace)
        period = 1.0 / pace

        @task
        def mixed(self) -> None:
            if plan and plan.phase_at(clock()) == "burst":
                n = next(burst_counter)
                if n % every == every // 2:
                    self.send("over-accounts" if (n // every) % 2 == 0 else "over-bytes")
                    return
            self.send(self.rng.choices(kinds, weights)[0])

    class ProbeUser(Base):
        wait_time = constant(0)

        @task
        def predict(self) -> None:
            self.send("predict-1")

    class LivezUser(Base):
        wait_time = constant(0)

        @task
        def livez(self) -> None:
            with self.client.get("/livez", name="livez", catch_response=True) as resp:
                expect(resp, "livez", 200, lambda _: None)

    class LivezPaced(LivezUser):
        wait_time = paced_wait(pace)
        period = 1.0 / pace

    return {"mix": MixUser, "probe": ProbeUser, "livez": LivezUser, "livez_paced": LivezPaced}


class Recorder:
    """Collects every request Locust reports, timed from ``t0`` (perf_counter)."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.reqs: list[Req] = []
        self.messages: dict[str, int] = {}

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float,
        response_length: int,
        response: Any = None,
        context: Any = None,
        exception: BaseException | None = None,
        **_: Any,
    ) -> None:
        """Locust's ``request`` event."""
        status = int(getattr(response, "status_code", 0) or 0)
        self.reqs.append(
            Req(
                time.perf_counter() - self.t0, name, float(response_time), exception is None, status
            )
        )
        if exception is not None:
            msg = str(exception)[:300]
            self.messages[msg] = self.messages.get(msg, 0) + 1

    def on_user_error(self, user_instance: Any, exception: BaseException, tb: Any) -> None:
        """An exception in our own task code: an error too."""
        self.reqs.append(Req(time.perf_counter() - self.t0, "user-error", 0.0, False, 0))
        msg = f"user error: {exception!r}"[:300]
        self.messages[msg] = self.messages.get(msg, 0) + 1


def run_fixed(user: type, users: int, seconds: float, skip: float) -> dict[str, Any]:
    """``users`` of ``user`` for ``seconds``; the summary of what finished after ``skip``."""
    import gevent
    from locust.env import Environment

    env = Environment(user_classes=[user])
    rec = Recorder()
    env.events.request.add_listener(rec.on_request)
    env.events.user_error.add_listener(rec.on_user_error)
    runner = env.create_local_runner()
    rec.t0 = time.perf_counter()
    runner.start(users, spawn_rate=users)
    gevent.sleep(seconds)
    runner.quit()
    out = window_summary(rec.reqs, skip, seconds)
    out["users"] = users
    out["messages"] = rec.messages
    return out


def run_shape(user: type, plan: Plan, rec: Recorder, progress: Callable[[float], None]) -> None:
    """The steady / burst / cool-down shape until its end."""
    import gevent
    from locust import LoadTestShape
    from locust.env import Environment

    class Shape(LoadTestShape):
        def tick(self) -> tuple[int, float] | None:
            t = self.get_run_time()
            if t < plan.duration:
                return plan.users, float(plan.users)
            if t < plan.duration + plan.burst:
                return plan.burst_users, float(plan.burst_users)
            if t < plan.total:
                return plan.users, float(plan.burst_users)
            return None

    shape = Shape()
    env = Environment(user_classes=[user], shape_class=shape)
    env.events.request.add_listener(rec.on_request)
    env.events.user_error.add_listener(rec.on_user_error)
    runner = env.create_local_runner()
    runner.start_shape()
    rec.t0 = shape.start_time
    greenlet = runner.shape_greenlet
    assert greenlet is not None
    next_report = 30.0
    while not greenlet.dead:
        gevent.sleep(1.0)
        t = time.perf_counter() - rec.t0
        if t >= next_report:
            progress(t)
            next_report += 30.0
    runner.quit()


# ------------------------------------------------------------------------------------ report
def fmt_lat(s: dict[str, Any]) -> str:
    """``p50 x ms  p99 y ms`` (or a dash)."""
    if not s.get("n"):
        return "-"
    return f"p50 {s['p50_ms']:8.1f} ms  p99 {s['p99_ms']:8.1f} ms"


def plot(path: Path, sampler: Sampler, rec: Recorder, plan: Plan, title: str) -> None:
    """RSS per process, latency p50/p99 and throughput over time, phase borders marked."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 10), tight_layout=True)
    ax_rss, ax_lat, ax_rps = fig.subplots(3, 1, sharex=True)
    for name in sampler.names():
        t, v = sampler.series(name)
        ax_rss.plot(t, v, label=name, lw=1)
    ax_rss.set_ylabel("RSS (MB)")
    ax_rss.legend(loc="upper left", fontsize=8)
    width = 10.0
    for kind, style in (("predict-1", "-"), ("predict-50", ":"), ("score_accounts-20", "--")):
        bk = buckets([r for r in rec.reqs if r.kind == kind], width, plan.total)
        ts = [b["t"] for b in bk if b["p50_ms"] is not None]
        ax_lat.plot(ts, [b["p50_ms"] for b in bk if b["p50_ms"] is not None], style, c="C0")
        ax_lat.plot(
            ts, [b["p99_ms"] for b in bk if b["p99_ms"] is not None], style, c="C3", label=kind
        )
    ax_lat.set_yscale("log")
    ax_lat.set_ylabel(f"latency (ms, {width:g} s buckets)\nblue p50, red p99")
    ax_lat.legend(loc="upper left", fontsize=8)
    bk = buckets(rec.reqs, width, plan.total)
    ax_rps.plot([b["t"] for b in bk], [b["rps"] for b in bk], label="completed req/s")
    ax_rps.plot(
        [b["t"] for b in bk],
        [plan.offered(plan.phase_at(b["t"] or 0.0) or "steady") for b in bk],
        "--",
        c="grey",
        label="offered",
    )
    errs = [(b["t"], b["errors"]) for b in bk if b["errors"]]
    if errs:
        ax_rps.scatter([e[0] for e in errs], [e[1] for e in errs], c="C3", label="errors", s=12)
    ax_rps.set_ylabel("requests/s")
    ax_rps.set_xlabel("seconds since the load started (negative: calibration and baselines)")
    ax_rps.legend(loc="upper left", fontsize=8)
    for ax in (ax_rss, ax_lat, ax_rps):
        for _, a, _b in plan.phases()[1:]:
            ax.axvline(a, c="k", lw=0.6, ls=":")
    ax_rss.set_title(title, fontsize=9)
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="steady seconds (600)")
    parser.add_argument("--burst", type=float, default=60.0, help="burst seconds at 5x (60)")
    parser.add_argument("--cooldown", type=float, default=30.0, help="steady seconds after (30)")
    parser.add_argument("--warmup", type=float, default=None, help="warm-up (min(60, dur/5))")
    parser.add_argument("--rate", type=float, default=None, help="steady req/s (calibrated)")
    parser.add_argument("--probe", type=float, default=20.0, help="calibration seconds (20)")
    parser.add_argument("--sample", type=float, default=2.0, help="RSS sample period (2 s)")
    parser.add_argument(
        "--work",
        type=Path,
        default=os.environ.get("CHURNLENS_LOAD_WORK") or None,
        help="keep data, model and score store here and reuse them (env CHURNLENS_LOAD_WORK)",
    )
    args = parser.parse_args()
    serving = bench_serving()
    cpus = serving.pin_cores()
    started = time.perf_counter()
    keep = args.work is not None
    work = Path(args.work) if keep else Path(tempfile.mkdtemp(prefix="churnlens-bench-load-"))
    work.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out_json = RESULTS / f"load-{stamp}.json"
    doc: dict[str, Any] = {"cpus": cpus, "args": {k: str(v) for k, v in vars(args).items()}}
    try:
        print(f"setup in {work} ...", flush=True)
        info = prepare(work)
        bodies: Bodies = info["bodies"]
        doc["setup"] = {
            "reused": info["reused"],
            "train_seconds": info["train_seconds"],
            "score_seconds": info.get("score_seconds"),
            "as_of": info["as_of"],
            "body_bytes": bodies.sizes,
            "accounts_alive": len(bodies.score_ids),
        }
        print(f"setup done: {doc['setup']}", flush=True)
        key = secrets.token_urlsafe(24)
        env = {
            "CHURNLENS_MODEL_URI": str(info["model"]),
            "CHURNLENS_CONFIG": str(info["data"] / "churnlens.yaml"),
            "CHURNLENS_DATABASE_URL": info["db_url"],
            "CHURNLENS_WORKERS": str(WORKERS),
            "CHURNLENS_API_KEY": key,
            "CHURNLENS_RATE_LIMIT": "0",
            "CHURNLENS_MAX_ACCOUNTS": str(MAX_ACCOUNTS),
            "CHURNLENS_MAX_BODY_BYTES": str(MAX_BODY),
            "BENTOML_HOME": str(work / "bentoml"),
            "BENTOML_DO_NOT_TRACK": "True",
        }
        doc["server_env"] = {k: v for k, v in env.items() if k != "CHURNLENS_API_KEY"}
        log_path = work / "serve.log"
        from churnlens.serving.launch import local_server

        with local_server(env, log_path, ready_seconds=READY_SECONDS, cwd=work) as url:
            port = int(url.rsplit(":", 1)[1])
            procs = server_tree(port)
            sampler = Sampler(procs, args.sample, time.perf_counter)  # re-based on the load's t0
            sampler.thread.start()
            print(f"server {url}: {[role(p, procs[0].pid) for p in procs]}", flush=True)

            # ---- calibration and baselines (the server warms up here too)
            users = make_users(url, key, bodies, None, lambda: 0.0)
            skip = min(5.0, args.probe / 4)
            probe = run_fixed(users["probe"], PROBE_USERS, args.probe, skip)
            # one request at a time: the service time with no queueing (the latency floor)
            predict_c1 = run_fixed(users["probe"], 1, min(args.probe, 10.0), 2.0)
            livez_sat = run_fixed(users["livez"], PROBE_USERS, min(args.probe, 10.0), 2.0)
            sat = probe["rps"]
            rate = args.rate if args.rate else round(RATE_FRACTION * sat, 2)
            plan = make_plan(rate, args.duration, args.burst, args.cooldown, args.warmup)
            print(
                f"calibration: /predict saturation {sat:.1f} req/s at {PROBE_USERS} users "
                f"({fmt_lat(probe)}, errors {probe['errors']}); /livez {livez_sat['rps']:.0f} "
                f"req/s ({fmt_lat(livez_sat)})\nplan: steady {plan.rate:.2f} req/s "
                f"({'--rate' if args.rate else f'{RATE_FRACTION:.0%} of saturation'}) = "
                f"{plan.users} users x {plan.per_user_rate:.3f}/s for {plan.duration:g} s "
                f"(warm-up {plan.warmup:g} s), burst {plan.offered('burst'):.2f} req/s "
                f"({plan.burst_users} users) for {plan.burst:g} s, cool-down {plan.cooldown:g} s",
                flush=True,
            )
            rec = Recorder()
            users = make_users(url, key, bodies, plan, lambda: time.perf_counter() - rec.t0)
            base_s = 12.0
            livez_steady = run_fixed(users["livez_paced"], plan.users, base_s, 2.0)
            livez_burst = run_fixed(users["livez_paced"], plan.burst_users, base_s, 2.0)
            doc["calibration"] = {
                "predict_saturation": probe,
                "predict_c1": predict_c1,
                "livez_saturation": livez_sat,
                "rate_fraction": None if args.rate else RATE_FRACTION,
            }
            doc["baselines"] = {"livez_steady": livez_steady, "livez_burst": livez_burst}

            # ---- the load

            def progress(t: float) -> None:
                last = window_summary(rec.reqs, max(0.0, t - 30), t)
                rss = sampler.samples[-1]["rss_mb"] if sampler.samples else {}
                load1 = os.getloadavg()[0]
                print(
                    f"  t={t:5.0f}s last 30 s ({plan.phase_at(t - 15) or 'end':9s}) "
                    f"{last['rps']:6.1f} req/s "
                    f"{fmt_lat(last)} errors {last['errors']:3d}  RSS "
                    + " ".join(f"{k} {v:.0f}" for k, v in sorted(rss.items()))
                    + f" MB  load {load1:.2f}",
                    flush=True,
                )

            t_load = time.perf_counter()
            rec.t0 = t_load + 1e6  # until the shape starts (run_shape sets it): before any phase
            run_shape(users["mix"], plan, rec, progress)
            sampler.stop.set()
            sampler.thread.join(timeout=10)
            doc["load_seconds"] = round(time.perf_counter() - t_load, 1)
        server_log = log_path.read_text(errors="replace") if log_path.exists() else ""
        for smp in sampler.samples:
            smp["t"] -= rec.t0

        # ---- figures
        phases = {name: window_summary(rec.reqs, a, b) for name, a, b in plan.phases()}
        for name, s in phases.items():
            s["offered_rps"] = round(plan.offered(name), 2)
        total = window_summary(rec.reqs, 0.0, plan.total + 60)
        steady_end = plan.duration
        growth = {
            name: rss_growth(*sampler.series(name), plan.warmup, steady_end)
            for name in sampler.names()
        }
        # informational: mean RSS over the cool-down after the burst (not part of the target)
        cool_at = plan.duration + plan.burst
        after_burst: dict[str, float | None] = {}
        for name in sampler.names():
            t_s, v_s = sampler.series(name)
            after = [x for t, x in zip(t_s, v_s, strict=True) if t >= cool_at]
            after_burst[name] = round(float(np.mean(after)), 1) if after else None
        workers = [n for n in growth if n.startswith("worker")] or list(growth)
        worst = max(
            (g["growth"] for n, g in growth.items() if n in workers and g["growth"] is not None),
            default=None,
        )
        over = {
            k: phases.get("burst", {}).get("by_kind", {}).get(k)
            for k in ("over-accounts", "over-bytes")
        }
        loads = {
            name: [s["loadavg"][0] for s in sampler.samples if a <= s["t"] < b]
            for name, a, b in plan.phases()
        }
        errors = total["errors"]
        verdict = {
            "errors": errors == 0,
            "rss_growth": worst is not None and worst <= TARGETS["rss_growth"],
            "limits_hold_under_burst": all(
                bool(v and v["n"] and not v["errors"]) for v in over.values()
            ),
        }
        doc |= {
            "plan": asdict(plan),
            "phases": phases,
            "total": total,
            "error_messages": rec.messages,
            "rss_growth": growth,
            "rss_after_burst_mb": after_burst,
            "rss_growth_worst_worker": worst,
            "loadavg_1min": {
                k: {"mean": round(float(np.mean(v)), 2), "max": round(float(np.max(v)), 2)}
                for k, v in loads.items()
                if v
            },
            "rss_samples": sampler.samples,
            "timeline_10s": buckets(rec.reqs, 10.0, plan.total),
            "server_log": {
                "error_lines": sum("ERROR" in ln for ln in server_log.splitlines()),
                "tracebacks": server_log.count("Traceback"),
                "warning_lines": sum("WARNING" in ln for ln in server_log.splitlines()),
            },
            "targets": TARGETS,
            "targets_met": verdict,
        }
        if server_log.count("Traceback") or errors:
            saved = RESULTS / f"load-{stamp}-server.log"
            saved.write_text(server_log[-2_000_000:])
            doc["server_log"]["saved"] = str(saved.relative_to(ROOT))
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)

    # ---- the table
    print(
        f"\n{'phase':<10} {'kind':<18} {'req/s':>7} {'offered':>8}  {'latency':<31} "
        f"{'errors':>6}  baseline (same run)"
    )
    for name, s in phases.items():
        base = livez_burst if name == "burst" else livez_steady
        base_txt = f"/livez at {base['users']} users: {fmt_lat(base)}"
        print(
            f"{name:<10} {'all':<18} {s['rps']:7.2f} {s['offered_rps']:8.2f}  {fmt_lat(s):<31} "
            f"{s['errors']:6d}  {base_txt}"
        )
        for kind, k in s["by_kind"].items():
            print(f"{'':<10} {kind:<18} {k['rps']:7.2f} {'':8}  {fmt_lat(k):<31} {k['errors']:6d}")
    sat_txt = f"saturation: /predict {sat:.1f} req/s, /livez {livez_sat['rps']:.0f} req/s"
    print(f"\n{sat_txt} ({PROBE_USERS} users, no wait)")
    print(
        f"single-account /predict one at a time (service time, no queueing): {fmt_lat(predict_c1)}"
    )
    steady1 = phases.get("steady", {}).get("by_kind", {}).get("predict-1", {})
    print(
        f"steady single-account /predict: {fmt_lat(steady1)} "
        f"(reference, not gated: p50 <= {SERVING_TARGETS_MS['p50']:g} ms, "
        f"p99 <= {SERVING_TARGETS_MS['p99']:g} ms at c=8)"
    )
    print(
        f"errors: {errors} of {total['n']} (error rate {total['error_rate']:.4%}; target 0)"
        + "".join(f"\n  {n} x {m}" for m, n in list(rec.messages.items())[:10])
    )
    for name, g in growth.items():
        if g["growth"] is None:
            print(f"RSS {name}: not enough samples")
            continue
        print(
            f"RSS {name:<10} after warm-up {g['after_warmup']:7.1f} MB, last minute of steady "
            f"{g['last_window']:7.1f} MB: growth {g['growth']:+.2%} (target <= "
            f"{TARGETS['rss_growth']:.0%}); cool-down after the burst {after_burst[name]} MB"
        )
    print(
        "over-limit during the burst (413 expected): "
        + ", ".join(
            f"{k} {v['n'] if v else 0} sent, {v['errors'] if v else 0} not 413"
            for k, v in over.items()
        )
    )
    print(
        "load average (1 min) mean/max: "
        + ", ".join(f"{k} {v['mean']}/{v['max']}" for k, v in doc["loadavg_1min"].items())
        + f"; server log: {doc['server_log']}"
    )
    print("targets met: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in verdict.items()))
    doc["total_seconds"] = round(time.perf_counter() - started, 1)
    out_json.write_text(json.dumps(doc, indent=1, default=str))
    png = out_json.with_suffix(".png")
    plot(
        png,
        sampler,
        rec,
        plan,
        f"churnlens load {stamp}: steady {plan.rate:.1f} req/s, burst "
        f"{plan.offered('burst'):.1f} req/s, {WORKERS} workers, errors {errors}, worst worker RSS "
        f"growth {worst if worst is None else f'{worst:+.1%}'}",
    )
    print(f"written {out_json.relative_to(ROOT)} and {png.name} ({doc['total_seconds']:.0f} s)")
    return 0 if verdict["errors"] and verdict["rss_growth"] else 1


if __name__ == "__main__":
    sys.exit(main())
