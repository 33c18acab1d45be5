"""A simulated B2B SaaS customer base with ground-truth churn probabilities.

The simulator writes the seven contract tables of :mod:`churnlens.features.schema` for a customer
base observed week by week, plus the *true* probability that each live account churns within the
next ``horizon_weeks`` weeks. A model trained on the tables can be compared with that ceiling.

The world
=========
Time runs in weeks (Monday to Sunday) from ``start`` for ``weeks`` weeks; ``end`` is the last
Sunday. Everything is drawn with ``np.random.default_rng`` from the config seed, so one config
gives identical tables.

**Accounts.** A segment is drawn first (SMB most often, enterprise least). ARR is log-normal inside
the segment's band: SMB < 20k (touch tier ``tech``), mid-market 20k-100k (``low``), enterprise
>= 100k (``high``); upsells and downgrades stay inside the band, so tier and ARR always agree.
Seats are ARR / a per-seat price, and the account has somewhat fewer named users than seats (users
are invited over the first weeks). Accounts are created across the period, front-loaded
(exponential decay, ``creation_decay_weeks``), none in the last ``horizon_weeks`` weeks. Most SMB
accounts (and a fifth of mid-market ones) pay monthly and may leave at any monthly anniversary of
``created_at``; the others sign annual contracts, which can only end at an anniversary or at an
early opt-out ``opt_out_months`` after signing. ``accounts.renewal_date`` is the next anniversary
after ``end`` for every account, churned or not, so it carries the renewal calendar and no label;
``accounts.billing_period`` says which accounts pay ``monthly`` and which are ``annual``.
Each account has two static latent traits: an engagement level ``e0`` (log-normal, mean ~1) and a
satisfaction ``sat`` (standard normal, correlated with ``e0``).

**Latent phase (a Markov chain, one step per week).** Each live account is in one of 27 states:

- ``onboarding`` (O): no value yet. Each week value is reached with probability ``c_onb`` (faster
  for engaged accounts); that week is the *time to value* (TTV) and shows as the account's first
  core-feature event. TTV > ``slow_ttv_weeks`` marks the account *slow* (a flag kept for life).
- then, for fast and slow accounts alike, a phase: ``healthy`` (H); ``incident`` (I, a loud
  episode: product trouble, a burst of urgent tickets, low NPS, escalation calls; ends with
  probability ``incident_end`` a week); ``decline`` level 1..10 (D1..D10, a *silent* decline);
  ``bottom`` (B, disengaged).
- From H a silent decline starts with weekly probability ``lam_d`` (segment rate, higher for
  low-engagement, dissatisfied accounts) and an incident with probability ``lam_i``. A decline moves
  one level a week with probability ``p_adv`` (per account, 0.6-0.95), so it takes about 8-20 weeks
  from D1 to B; it recovers to H with probability ``decline_recovery`` a week (``bottom_recovery``
  from B).

**Observables.** Weekly engagement ``E = e0 * exp(z) * holiday`` where ``z`` is an AR(1) noise
(``engagement_ar``, ``engagement_noise``) and the Christmas/new-year weeks dip. Each user logs in
Poisson(``logins_per_user_week * E * m_login(state) * user propensity``) times (one
``usage_events`` row per login) and uses each adopted feature Poisson(rate * E * m(state) * ...)
times (one row per user, feature and week with ``quantity``). In decline, logins fall linearly to
~35% of normal by D10 and core-feature use falls faster (power 2.5); in onboarding logins are at 60%
and core features are unused. Features are adopted over the account's tenure (core ones after
value), so breadth grows with tenure. Silence: in decline and bottom the account opens almost no
tickets, answers few NPS surveys, rarely replies to the CSM and rarely writes in. Loudness: in an
incident tickets jump ~7x (mostly high/urgent, long to close, low CSAT), NPS drops ~3.5 points, the
account replies and writes in more, and high/low-touch CSMs place escalation calls. NPS surveys go
out every ``survey_every_weeks`` weeks from the account's 6th-12th week; the score is driven by
``sat`` and the phase. CSM touchpoints follow the tier: ``high`` monthly meetings and QBRs,
``low`` check-in emails and webinar invitations, ``tech`` automated emails (weekly while
onboarding); ``responded`` is set on outbound touches (missing on inbound). Contracts: ``new`` at
creation; at annual anniversaries ``renewal``, ``upsell`` (healthy accounts) or ``downgrade``
(accounts at decline level >= 3 or bottom); monthly accounts change seats at monthly anniversaries
and annual accounts may also expand mid-term. The contraction that precedes some churn is thus
observable.

**Churn.** Two independent mechanisms, applied in this order in each week ``s`` after the creation
week, once the week's phase transition has happened:

1. *Unavoidable* churn (reasons ``acquired``, ``bankrupt``; ``avoidable=False``) with a constant
   weekly probability ``h_u`` per segment, independent of engagement, dated at a random instant of
   the week.
2. *Avoidable* churn only in weeks that hold a decision date (a monthly anniversary for monthly
   accounts; for annual ones the opt-out date and each anniversary). The account does not renew
   with probability ``q = sigmoid(offset(kind) + static_risk + phase_risk(state) + life_risk)``:
   ``static_risk`` comes from the segment, ``e0`` and ``sat``; ``phase_risk`` is 0 for H, small for
   I, ``decline_risk_per_level * level`` for D, large for B; ``life_risk`` is large while still
   onboarding (growing with tenure), plus an early-life term (tenure <= 13 weeks) and a slow-TTV
   term (tenure < 26 weeks). The churn is dated at 00:00 UTC of the decision date and the reason
   follows the phase ("no longer needed", "low adoption", "switched to competitor", "price").

An incident raises the odds of not renewing only a little while it lasts, a decline a lot, so
accounts that only ever had incidents churn far less than silent decliners. There is no churn in
the creation week, and no activity is recorded after ``churned_at`` (the churn week is partial).

Magnitudes at the defaults (5,000 accounts, 104 weeks): about 14% of accounts churn per year
(SMB ~17%, mid-market ~10-12%, enterprise ~6-8%), ~13% of churn is unavoidable; the first 13 weeks
carry about twice the later hazard; about 60-70% of avoidable churners went through a silent
decline, which began a median of ~16 weeks (interquartile ~11-25) before the churn date (annual
accounts wait for their anniversary, hence the long tail); ~25% of those downgraded first.

The ground truth
================
``truth`` has one row per Sunday ``t`` of the period and account alive at the end of ``t``
(created on or before ``t``, not churned by then): ``p_churn`` is the probability that the account
churns in ``(t, t + horizon_weeks weeks]`` — exactly the window the snapshot labels use — given the
simulator's full state at the end of ``t``; ``p_churn_avoidable`` the same for avoidable churn only.

It is computed *exactly* (up to floating point), not by Monte Carlo and not by a heuristic. Given
the state at ``t`` (the 27-state phase, the static traits, the calendar) the future is a
time-inhomogeneous Markov chain: transition probabilities depend only on static traits and on
tenure, decision dates are known in advance, and the AR(1) noise, the users' Poisson draws and the
contract changes do not feed back into churn. The simulator therefore propagates the distribution
over the 27 states forward for ``horizon_weeks`` weeks (:meth:`_Dynamics.churn_within`, with the
same ``_Dynamics.step`` the simulation samples from), and in each week ``s`` adds
``h_u * mass + (1 - h_u) * sum_state P(state) * q(state, s)`` (``mass`` = probability of being
alive at the start of week ``s``) to the churn probability before removing the churned mass. The
simulation draws each week's state from the same transition rows and churns with the same ``q``,
so realised churn is calibrated against ``p_churn`` by construction; the tests check it against
realised churn, by decile, on the full simulation and on a 60,000-account latent-only world.
At the defaults the AUC of ``p_churn`` against realised 13-week churn is ~0.88 (the ceiling).

What the truth conditions on that a model cannot see: the exact decline level, ``e0``, ``sat`` and
the onboarding speed. They are largely *recoverable* — the decline level from the trend of logins
and core-feature use against the account's own history, ``e0`` from logins per user, ``sat`` from
NPS answers, onboarding from the first core-feature event — which is why users log in often enough
that Poisson noise does not swamp the weekly engagement. *Largely* is measured by
``bench/quality.py``: a decline's first levels are not recoverable from a few weeks of usage (on
5,000 accounts, test rows at levels 1-3 have a true probability of 0.18 on average and the model
says 0.02; from level 7 the two are close), which is most of the model's gap to the ceiling.

Outputs
=======
:func:`simulate` returns a :class:`SimulatedBase`; :func:`write_base` writes
``<out>/<table>.parquet``, ``<out>/churnlens.yaml`` (login and core-feature event names, the label
horizon and unavoidable reasons) and ``<out>/truth/``: ``true_churn_probability.parquet`` (the
truth), ``accounts_truth.parquet`` (segment, contract, latent traits, TTV, ``silent``/``loud``
flags, first decline and incident dates, churn facts) and ``latent_states.parquet`` (phase,
decline level and engagement of every live account-week). Ids are strings, timestamps
``datetime64[us, UTC]``, ``truth.as_of`` and ``renewal_date`` naive ``datetime64[us]`` dates.
These truth files are for evaluation and analysis only: never features.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import yaml

from ..features.io import write_frame
from ..features.schema import TABLE_NAMES

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------ constants
SEGMENTS: tuple[str, ...] = ("smb", "mid_market", "enterprise")
TIERS: tuple[str, ...] = ("tech", "low", "high")
LOGIN_EVENT = "login"
CORE_FEATURES: tuple[str, ...] = ("report_create", "dashboard_share", "workflow_run")
OTHER_FEATURES: tuple[str, ...] = (
    "search",
    "export_csv",
    "comment",
    "integration_sync",
    "template_use",
)
FEATURES: tuple[str, ...] = CORE_FEATURES + OTHER_FEATURES
UNAVOIDABLE_REASONS: tuple[str, ...] = ("acquired", "bankrupt")
AVOIDABLE_REASONS: tuple[str, ...] = (
    "no longer needed",
    "low adoption",
    "switched to competitor",
    "price",
)
PHASE_NAMES: tuple[str, ...] = ("onboarding", "healthy", "incident", "decline", "bottom")

_DAY_US = 86_400_000_000
_HOUR_US = 3_600_000_000
_WEEK_US = 7 * _DAY_US
_EPOCH = date(1970, 1, 1)

# ARR bands per segment (inclusive) and price per seat ranges.
_ARR_BAND = np.array([[2_400.0, 19_999.0], [20_000.0, 99_999.0], [100_000.0, 900_000.0]])
_ARR_MEDIAN = np.array([7_000.0, 38_000.0, 170_000.0])
_ARR_SIGMA = np.array([0.55, 0.45, 0.5])
_SEAT_PRICE = np.array([[600.0, 1_500.0], [1_800.0, 3_600.0], [4_000.0, 8_000.0]])

# The latent state space: 0 = onboarding, then two blocks (fast, slow TTV) of N_PHASE phases.
N_DECLINE = 10
N_PHASE = N_DECLINE + 3  # healthy, incident, D1..D10, bottom
P_H, P_I, P_B = 0, 1, N_PHASE - 1
N_STATES = 1 + 2 * N_PHASE
_STATE_PHASE = np.concatenate([[-1], np.arange(N_PHASE), np.arange(N_PHASE)])
_STATE_SLOW = np.concatenate([[False], np.zeros(N_PHASE, bool), np.ones(N_PHASE, bool)])
_STATE_LEVEL = np.where(
    (_STATE_PHASE >= 2) & (_STATE_PHASE < P_B),
    _STATE_PHASE - 1,
    np.where(_STATE_PHASE == P_B, N_DECLINE + 1, 0),
)  # 0 = not declining, 1..10 = decline level, 11 = bottom
_STATE_KIND = np.select(
    [_STATE_PHASE == -1, _STATE_PHASE == P_H, _STATE_PHASE == P_I, _STATE_PHASE == P_B],
    [0, 1, 2, 4],
    3,
)  # index into PHASE_NAMES

# Decision kinds in the renewal calendar.
_NO_DECISION, _MONTHLY, _ANNUAL, _OPT_OUT = 0, 1, 2, 3


def _per_phase(
    onboarding: float, healthy: float, incident: float, decline: np.ndarray, bottom: float
) -> np.ndarray:
    """A value per latent state from per-phase values (decline: one per level)."""
    phase = np.concatenate([[healthy, incident], decline, [bottom]])
    return np.concatenate([[onboarding], phase, phase]).astype(float)


_LEVELS = np.arange(1, N_DECLINE + 1, dtype=float)
# Multipliers of the observables by latent state.
_M_LOGIN = _per_phase(0.6, 1.0, 0.95, 1.0 - 0.065 * _LEVELS, 0.3)
_M_CORE = _per_phase(0.0, 1.0, 0.9, (1.0 - 0.065 * _LEVELS) ** 2.5, 0.3**2.5)
_M_TICKETS = _per_phase(2.0, 1.0, 7.0, 1.0 - 0.085 * _LEVELS, 0.08)
_M_SURVEY = _per_phase(1.0, 1.0, 1.3, 1.0 - 0.085 * _LEVELS, 0.1)
_M_REPLY = _per_phase(1.0, 1.0, 1.05, 1.0 - 0.08 * _LEVELS, 0.12)
_M_INBOUND = _per_phase(2.0, 1.0, 4.0, 1.0 - 0.085 * _LEVELS, 0.08)
_NPS_SHIFT = _per_phase(-0.3, 0.0, -3.5, -0.12 * _LEVELS, -1.2)

# Features: weekly rate per user at E = 1, share of users who use it, mean adoption delay (weeks
# after creation, or after value for core features), probability the account never adopts it.
_FEATURE_RATE = np.array([0.9, 0.5, 1.2, 0.8, 0.35, 0.6, 0.8, 0.3])
_FEATURE_USERS = np.array([0.75, 0.45, 0.3, 0.55, 0.3, 0.4, 0.15, 0.25])
_FEATURE_DELAY = np.array([0.0, 6.0, 10.0, 0.0, 3.0, 2.0, 8.0, 5.0])
_FEATURE_NEVER = np.array([0.0, 0.25, 0.4, 0.0, 0.2, 0.15, 0.5, 0.35])
_IS_CORE = np.array([f in CORE_FEATURES for f in FEATURES])

_INDUSTRIES = (
    "software",
    "fintech",
    "healthcare",
    "retail",
    "manufacturing",
    "education",
    "logistics",
    "media",
)
_REGIONS = ("NA", "EMEA", "APAC", "LATAM")
_NAME_A = ("Blue", "North", "Bright", "Silver", "Green", "Rapid", "Clear", "Summit", "Iron", "Nova")
_NAME_B = ("Harbor", "Pine", "Ridge", "Field", "Stone", "Wave", "Peak", "Bridge", "Forge", "Lake")
_NAME_C = ("Labs", "Systems", "Group", "Partners", "Health", "Logistics", "Retail", "Analytics")


@dataclass(frozen=True)
class SimulatorConfig:
    """Every knob of the simulated world; per-segment tuples are (smb, mid_market, enterprise)."""

    n_accounts: int = 1000
    seed: int = 42
    start: date = date(2024, 1, 1)  # a Monday
    weeks: int = 104
    horizon_weeks: int = 13
    # population
    segment_mix: tuple[float, float, float] = (0.6, 0.28, 0.12)
    monthly_share: tuple[float, float, float] = (0.85, 0.2, 0.0)
    creation_decay_weeks: float = 40.0
    # latent dynamics (weekly probabilities)
    onboarding_speed: tuple[float, float, float] = (0.4, 0.35, 0.3)
    slow_ttv_weeks: int = 6
    decline_rate: tuple[float, float, float] = (0.005, 0.004, 0.0033)
    incident_rate: tuple[float, float, float] = (0.005, 0.007, 0.009)
    incident_end: float = 0.2
    decline_speed: tuple[float, float] = (0.6, 0.95)
    decline_recovery: float = 0.015
    bottom_recovery: float = 0.035
    unavoidable_rate: tuple[float, float, float] = (0.0004, 0.0003, 0.0002)
    # non-renewal logit = offset(kind) + static + phase + life
    monthly_logit: float = -7.7
    annual_logit: float = -4.8
    opt_out_logit: float = -6.0
    opt_out_months: int = 3
    segment_risk: tuple[float, float, float] = (0.4, 0.0, -0.3)
    engagement_risk: float = -1.0  # per unit of log(e0)
    satisfaction_risk: float = -0.4  # per sd of satisfaction
    incident_risk: float = 0.5
    decline_risk_per_level: float = 0.6
    bottom_risk: float = 6.0
    onboarding_risk: float = 4.5
    onboarding_risk_per_week: float = 0.15
    early_risk: float = 1.6  # tenure <= 13 weeks
    slow_ttv_risk: float = 1.8  # tenure < 26 weeks
    # observables
    logins_per_user_week: float = 1.4
    feature_rate_scale: float = 0.85
    engagement_noise: float = 0.12
    engagement_ar: float = 0.6
    tickets_per_week: tuple[float, float, float] = (0.07, 0.18, 0.35)
    survey_every_weeks: int = 13
    survey_response: tuple[float, float, float] = (0.3, 0.4, 0.5)


@dataclass
class SimulatedBase:
    """The simulated tables, the true churn probabilities and the latent facts behind them."""

    tables: dict[str, pd.DataFrame]  # the seven contract tables, keyed by schema.TABLE_NAMES
    truth: pd.DataFrame  # account_id, as_of, horizon_weeks, p_churn, p_churn_avoidable
    accounts_truth: pd.DataFrame  # one row per account: segment, latent traits, episodes, churn
    end: date  # the last day of data (a Sunday)
    states: pd.DataFrame = field(default_factory=pd.DataFrame)  # latent phase per account-week


# ------------------------------------------------------------------------------------ helpers
def _rng(cfg: SimulatorConfig, stream: int) -> np.random.Generator:
    """An independent generator for one part of the simulation, derived from the config seed."""
    return np.random.default_rng([cfg.seed, stream])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


def _str_take(labels: np.ndarray | list[str] | tuple[str, ...], idx: np.ndarray) -> pd.Series:
    """A ``str`` Series of ``labels[idx]`` built in Arrow (fast for millions of rows)."""
    arr = pa.array(list(labels), type=pa.string()).take(pa.array(np.asarray(idx, dtype=np.int64)))
    return pd.Series(pd.array(arr, dtype="str"))


def _utc(us: np.ndarray) -> pd.Series:
    """Microseconds since the epoch (NaT for int64 min) as ``datetime64[us, UTC]``."""
    return pd.Series(
        pd.DatetimeIndex(np.asarray(us, np.int64).view("datetime64[us]")).tz_localize("UTC")
    )


def _naive(us: np.ndarray) -> pd.Series:
    """Microseconds since the epoch as naive ``datetime64[us]`` (for dates)."""
    return pd.Series(np.asarray(us, np.int64).view("datetime64[us]"))


def _add_months(days: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Day numbers (since the epoch) plus whole months, clipping to the month's last day."""
    d = np.asarray(days, np.int64).astype("datetime64[D]")
    month0 = d.astype("datetime64[M]")
    dom = (d - month0.astype("datetime64[D]")).astype(np.int64)
    target = month0 + np.asarray(months, np.int64)
    first = target.astype("datetime64[D]")
    length = ((target + 1).astype("datetime64[D]") - first).astype(np.int64)
    return (first + np.minimum(dom, length - 1)).astype(np.int64)


@functools.cache
def _week_profile() -> np.ndarray:
    """Cumulative distribution over the 168 hours of a week (office hours busiest)."""
    w = np.full(168, 0.06)
    for day in range(5):
        hours = np.arange(24)
        day_w = np.where((hours >= 7) & (hours < 19), 1.0, np.where(hours >= 19, 0.25, 0.08))
        w[day * 24 : day * 24 + 24] = day_w
    c = np.cumsum(w)
    return c / c[-1]


def _draw_times(
    rng: np.random.Generator, week0: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """Whole-second instants in ``[lo, hi)``, office-hours shaped (uniform if the window is cut)."""
    n = len(lo)
    hour = np.searchsorted(_week_profile(), rng.random(n), side="right")
    t = week0 + hour * _HOUR_US + (rng.random(n) * _HOUR_US).astype(np.int64)
    bad = (t < lo) | (t >= hi)
    nb = int(bad.sum())
    if nb:
        t[bad] = lo[bad] + (rng.random(nb) * (hi[bad] - lo[bad])).astype(np.int64)
    t = (t // 1_000_000) * 1_000_000
    return np.maximum(t, lo)


def _week_factor(cfg: SimulatorConfig, n_weeks: int) -> np.ndarray:
    """Seasonal engagement factor per week (holiday dips)."""
    out = np.ones(n_weeks)
    for w in range(n_weeks):
        days = [cfg.start + timedelta(days=7 * w + i) for i in range(7)]
        if any(d.month == 12 and d.day == 25 for d in days):
            out[w] = 0.45
        elif any(d.month == 1 and d.day == 1 for d in days):
            out[w] = 0.75
        elif days[3].month == 8:
            out[w] = 0.9
    return out


# ------------------------------------------------------------------------------------ the world
@dataclass
class _Accounts:
    """Static account attributes (one array entry per account)."""

    n: int
    seg: np.ndarray
    monthly: np.ndarray
    created_week: np.ndarray
    created_us: np.ndarray
    price: np.ndarray
    seats0: np.ndarray
    seats_min: np.ndarray
    seats_max: np.ndarray
    n_users: np.ndarray
    e0: np.ndarray
    sat: np.ndarray
    lam_d: np.ndarray
    lam_i: np.ndarray
    p_adv: np.ndarray
    c_onb: np.ndarray
    h_u: np.ndarray
    static_risk: np.ndarray
    survey_offset: np.ndarray
    industry: np.ndarray
    region: np.ndarray
    name: np.ndarray
    csm: np.ndarray


def _draw_accounts(cfg: SimulatorConfig) -> _Accounts:
    """Draw every static account attribute."""
    rng = _rng(cfg, 1)
    n = cfg.n_accounts
    seg = rng.choice(3, size=n, p=np.asarray(cfg.segment_mix) / sum(cfg.segment_mix))
    monthly = rng.random(n) < np.asarray(cfg.monthly_share)[seg]
    n_create = max(1, cfg.weeks - cfg.horizon_weeks)
    tau = cfg.creation_decay_weeks
    u = rng.random(n)
    cw = np.floor(-tau * np.log1p(-u * (1.0 - np.exp(-n_create / tau)))).astype(np.int64)
    cw = np.minimum(cw, n_create - 1)
    day = rng.choice(7, size=n, p=[0.22, 0.22, 0.22, 0.2, 0.1, 0.02, 0.02])
    sec = rng.integers(8 * 3600, 18 * 3600, size=n)
    start_us = (cfg.start - _EPOCH).days * _DAY_US
    created_us = start_us + (7 * cw + day) * _DAY_US + sec * 1_000_000

    band = _ARR_BAND[seg]
    price = np.round(rng.uniform(_SEAT_PRICE[seg, 0], _SEAT_PRICE[seg, 1]), -1)
    arr_raw = np.clip(_ARR_MEDIAN[seg] * np.exp(_ARR_SIGMA[seg] * rng.standard_normal(n)), *band.T)
    seats_min = np.ceil(band[:, 0] / price).astype(np.int64)
    seats_max = np.floor(band[:, 1] / price).astype(np.int64)
    seats0 = np.clip(np.round(arr_raw / price).astype(np.int64), seats_min, seats_max)
    n_users = np.clip(np.round(seats0 * rng.uniform(0.55, 0.95, n)), 1, 80).astype(np.int64)

    z_e = rng.standard_normal(n)
    e0 = np.exp(0.4 * z_e - 0.08)
    sat = 0.4 * z_e + np.sqrt(1 - 0.16) * rng.standard_normal(n)
    lam_d = np.clip(
        np.asarray(cfg.decline_rate)[seg] * np.exp(-0.5 * np.log(e0) - 0.25 * sat), 0.0, 0.05
    )
    lam_i = np.asarray(cfg.incident_rate)[seg] * rng.uniform(0.5, 1.5, n)
    p_adv = rng.uniform(*cfg.decline_speed, n)
    c_onb = np.clip(
        np.asarray(cfg.onboarding_speed)[seg] * e0**0.8 * np.exp(0.4 * rng.standard_normal(n)),
        0.04,
        0.9,
    )
    h_u = np.asarray(cfg.unavoidable_rate)[seg]
    static_risk = (
        np.asarray(cfg.segment_risk)[seg]
        + cfg.engagement_risk * np.log(e0)
        + cfg.satisfaction_risk * sat
    )
    survey_offset = rng.integers(6, 13, size=n)
    industry = rng.integers(0, len(_INDUSTRIES), size=n)
    region = rng.choice(len(_REGIONS), size=n, p=[0.45, 0.3, 0.17, 0.08])
    name = np.array(
        [
            f"{_NAME_A[a]} {_NAME_B[b]} {_NAME_C[c]}"
            for a, b, c in zip(
                rng.integers(0, len(_NAME_A), n),
                rng.integers(0, len(_NAME_B), n),
                rng.integers(0, len(_NAME_C), n),
                strict=True,
            )
        ],
        dtype=object,
    )
    # CSMs: one per ~15 enterprise accounts, one per ~60 mid-market accounts, none for tech touch.
    csm = np.full(n, -1, dtype=np.int64)
    n_high = max(1, int(np.ceil((seg == 2).sum() / 15)))
    n_low = max(1, int(np.ceil((seg == 1).sum() / 60)))
    csm[seg == 2] = rng.integers(0, n_high, size=int((seg == 2).sum()))
    csm[seg == 1] = n_high + rng.integers(0, n_low, size=int((seg == 1).sum()))
    return _Accounts(
        n=n,
        seg=seg,
        monthly=monthly,
        created_week=cw,
        created_us=created_us,
        price=price,
        seats0=seats0,
        seats_min=seats_min,
        seats_max=seats_max,
        n_users=n_users,
        e0=e0,
        sat=sat,
        lam_d=lam_d,
        lam_i=lam_i,
        p_adv=p_adv,
        c_onb=c_onb,
        h_u=h_u,
        static_risk=static_risk,
        survey_offset=survey_offset,
        industry=industry,
        region=region,
        name=name,
        csm=csm,
    )


@dataclass
class _Calendar:
    """Decision dates per account and week (weeks beyond the data cover the last horizon)."""

    kind: np.ndarray  # (n, weeks + horizon) int8, _NO_DECISION where none
    day: np.ndarray  # (n, weeks + horizon) day number since the epoch of the decision date
    renewal_day: np.ndarray  # (n,) next renewal after the end of the data (day since epoch)


def _calendar(cfg: SimulatorConfig, acc: _Accounts) -> _Calendar:
    """Monthly anniversaries, annual anniversaries and the annual opt-out, mapped to weeks."""
    n_weeks = cfg.weeks + cfg.horizon_weeks
    kind = np.zeros((acc.n, n_weeks), dtype=np.int8)
    day = np.zeros((acc.n, n_weeks), dtype=np.int64)
    start_day = (cfg.start - _EPOCH).days
    end_day = start_day + 7 * cfg.weeks - 1
    created_day = acc.created_us // _DAY_US
    renewal_day = np.zeros(acc.n, dtype=np.int64)
    max_months = n_weeks // 4 + 3
    for k in range(1, max_months + 1):
        d = _add_months(created_day, np.full(acc.n, k))
        annual_k = (~acc.monthly) & (k % 12 == 0)
        opt = (~acc.monthly) & (k == cfg.opt_out_months)
        monthly_k = acc.monthly.copy()
        which = np.where(
            monthly_k, _MONTHLY, np.where(annual_k, _ANNUAL, np.where(opt, _OPT_OUT, 0))
        )
        week = (d - start_day) // 7
        ok = (which > 0) & (week < n_weeks)
        kind[ok, week[ok]] = which[ok]
        day[ok, week[ok]] = d[ok]
        renew = (monthly_k | annual_k) & (d > end_day) & (renewal_day == 0)
        renewal_day[renew] = d[renew]
    # Anniversaries beyond the loop (annual accounts created late need k up to 36).
    for k in (24, 36, 48):
        d = _add_months(created_day, np.full(acc.n, k))
        renew = (~acc.monthly) & (d > end_day) & (renewal_day == 0)
        renewal_day[renew] = d[renew]
    return _Calendar(kind=kind, day=day, renewal_day=renewal_day)


class _Dynamics:
    """The latent Markov chain and the churn probabilities, shared by simulation and truth."""

    def __init__(self, cfg: SimulatorConfig, acc: _Accounts, cal: _Calendar) -> None:
        self.cfg = cfg
        self.acc = acc
        self.cal = cal
        self.offset = np.array([np.nan, cfg.monthly_logit, cfg.annual_logit, cfg.opt_out_logit])
        self.phase_risk = _per_phase(
            0.0,
            0.0,
            cfg.incident_risk,
            cfg.decline_risk_per_level * _LEVELS,
            cfg.bottom_risk,
        )

    def step(self, dist: np.ndarray, a: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Move state distributions ``dist`` (rows: accounts ``a``) into week ``s``."""
        cfg, acc = self.cfg, self.acc
        n = dist.shape[0]
        out = np.zeros_like(dist)
        o = dist[:, 0]
        c_onb = acc.c_onb[a]
        out[:, 0] = o * (1.0 - c_onb)
        blk = dist[:, 1:].reshape(n, 2, N_PHASE)
        ob = out[:, 1:].reshape(n, 2, N_PHASE)
        ld = acc.lam_d[a][:, None]
        li = acc.lam_i[a][:, None]
        pa_ = acc.p_adv[a][:, None, None]
        rd, rb, ie = cfg.decline_recovery, cfg.bottom_recovery, cfg.incident_end
        h = blk[:, :, P_H]
        i = blk[:, :, P_I]
        d = blk[:, :, 2:P_B]
        b = blk[:, :, P_B]
        adv = (1.0 - rd) * pa_ * d
        ob[:, :, P_H] = h * (1.0 - ld - li) + i * ie + rd * d.sum(axis=2) + rb * b
        ob[:, :, P_I] = h * li + i * (1.0 - ie)
        ob[:, :, 2:P_B] = (1.0 - rd) * (1.0 - pa_) * d
        ob[:, :, 2] += h * ld
        ob[:, :, 3:P_B] += adv[:, :, :-1]
        ob[:, :, P_B] = adv[:, :, -1] + b * (1.0 - rb)
        done = o * c_onb
        slow = (s - acc.created_week[a]) > cfg.slow_ttv_weeks
        ob[:, 0, P_H] += np.where(slow, 0.0, done)
        ob[:, 1, P_H] += np.where(slow, done, 0.0)
        return out

    def nonrenewal(self, a: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows with a decision in week ``s`` and their non-renewal probability per state."""
        cfg = self.cfg
        kind = self.cal.kind[a, s]
        has = kind != _NO_DECISION
        ah, sh = a[has], s[has]
        tenure = (sh - self.acc.created_week[ah]).astype(float)
        base = self.offset[kind[has]] + self.acc.static_risk[ah]
        logit = base[:, None] + self.phase_risk[None, :]
        logit[:, 0] += cfg.onboarding_risk + cfg.onboarding_risk_per_week * tenure
        logit[:, 1:] += np.where(tenure <= 13, cfg.early_risk, 0.0)[:, None]
        logit[:, 1 + N_PHASE :] += np.where(tenure < 26, cfg.slow_ttv_risk, 0.0)[:, None]
        return has, _sigmoid(logit)

    def churn_within(
        self, a: np.ndarray, w: np.ndarray, state: np.ndarray, horizon: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact P(churn in weeks w+1..w+horizon) and P(avoidable churn) from ``state`` at ``w``.

        Propagates the distribution over latent states week by week, in the simulation's order:
        the phase transition into week ``s``, then unavoidable churn, then the renewal decision.
        """
        m = a.size
        dist = np.zeros((m, N_STATES))
        dist[np.arange(m), state] = 1.0
        h = self.acc.h_u[a]
        p_any = np.zeros(m)
        p_av = np.zeros(m)
        for j in range(1, horizon + 1):
            s = w + j
            dist = self.step(dist, a, s)
            p_any += dist.sum(axis=1) * h
            dist *= (1.0 - h)[:, None]
            has, q = self.nonrenewal(a, s)
            if has.any():
                sub = dist[has]
                churn_av = (sub * q).sum(axis=1)
                p_any[has] += churn_av
                p_av[has] += churn_av
                dist[has] = sub * (1.0 - q)
        return p_any, p_av


@dataclass
class _Latent:
    """The simulated latent path: state per account and week, and the churn."""

    state: np.ndarray  # (n, weeks) int8, -1 when not alive in that week
    churn_week: np.ndarray  # (n,) week of churn, or a large number
    churn_us: np.ndarray  # (n,) instant of churn, or the end of data
    churned: np.ndarray  # (n,) bool
    avoidable: np.ndarray  # (n,) bool
    reason: np.ndarray  # (n,) index into AVOIDABLE_REASONS + UNAVOIDABLE_REASONS, -1 if none
    completion_week: np.ndarray  # (n,) week value was reached, or -1


def _simulate_latent(cfg: SimulatorConfig, acc: _Accounts, dyn: _Dynamics) -> _Latent:
    """Run the latent chain and the churn week by week (vectorised over accounts)."""
    rng = _rng(cfg, 2)
    n, n_weeks = acc.n, cfg.weeks
    start_us = (cfg.start - _EPOCH).days * _DAY_US
    end_us = start_us + n_weeks * _WEEK_US
    state = np.full((n, n_weeks), -1, dtype=np.int8)
    cur = np.full(n, -1, dtype=np.int64)
    never = np.int64(1 << 40)
    churn_week = np.full(n, never, dtype=np.int64)
    churn_us = np.full(n, end_us, dtype=np.int64)
    churned = np.zeros(n, bool)
    avoidable = np.zeros(n, bool)
    reason = np.full(n, -1, dtype=np.int64)
    completion = np.full(n, -1, dtype=np.int64)
    rows = np.arange(N_STATES)
    for w in range(n_weeks):
        cur[acc.created_week == w] = 0
        a = np.nonzero((cur >= 0) & (acc.created_week < w))[0]
        if a.size:
            s = np.full(a.size, w)
            onehot = (cur[a][:, None] == rows[None, :]).astype(float)
            probs = dyn.step(onehot, a, s)
            cum = np.cumsum(probs, axis=1)
            u = rng.random(a.size) * cum[:, -1]
            new = np.minimum((cum <= u[:, None]).sum(axis=1), N_STATES - 1)
            completion[a[(cur[a] == 0) & (new != 0)]] = w
            cur[a] = new
            # churn: unavoidable first, then the renewal decision
            u_unav = rng.random(a.size)
            u_av = rng.random(a.size)
            unav = u_unav < acc.h_u[a]
            has, qmat = dyn.nonrenewal(a, s)
            q = np.zeros(a.size)
            q[has] = qmat[np.arange(int(has.sum())), new[has]]
            av = ~unav & (u_av < q)
            gone = unav | av
            ga = a[gone]
            churn_week[ga] = w
            churned[ga] = True
            avoidable[a[av]] = True
            # instants
            week0 = start_us + w * _WEEK_US
            t_unav = week0 + (rng.random(a.size) * _WEEK_US).astype(np.int64)
            t_unav = (t_unav // 1_000_000) * 1_000_000
            t_av = dyn.cal.day[a, w] * _DAY_US
            churn_us[a[unav]] = t_unav[unav]
            churn_us[a[av]] = t_av[av]
            # reasons
            r = rng.random(a.size)
            kind = _STATE_KIND[new]
            slow = _STATE_SLOW[new]
            av_reason = np.select(
                [
                    (kind == 3) | (kind == 4),
                    (kind == 0) | slow,
                    kind == 2,
                ],
                [
                    np.where(r < 0.6, 0, 1),
                    np.where(r < 0.75, 1, 0),
                    np.where(r < 0.55, 2, 3),
                ],
                np.where(r < 0.5, 3, 2),
            )
            big = acc.seg[a] >= 1
            unav_reason = len(AVOIDABLE_REASONS) + np.where(
                big, np.where(r < 0.7, 0, 1), np.where(r < 0.3, 0, 1)
            )
            reason[a[av]] = av_reason[av]
            reason[a[unav]] = unav_reason[unav]
        alive = cur >= 0
        state[alive, w] = cur[alive]
        cur[churned] = -1
    return _Latent(
        state=state,
        churn_week=churn_week,
        churn_us=churn_us,
        churned=churned,
        avoidable=avoidable,
        reason=reason,
        completion_week=completion,
    )


def _true_probabilities(
    cfg: SimulatorConfig, acc: _Accounts, dyn: _Dynamics, lat: _Latent
) -> pd.DataFrame:
    """Exact P(churn in the next horizon) for every account alive at the end of every week."""
    n_weeks, horizon = cfg.weeks, cfg.horizon_weeks
    w_grid = np.arange(n_weeks)
    alive = (acc.created_week[:, None] <= w_grid[None, :]) & (
        lat.churn_week[:, None] > w_grid[None, :]
    )
    # order rows by (week, account) like the snapshot tables
    ww, aa = np.nonzero(alive.T)
    p_any = np.zeros(aa.size)
    p_av = np.zeros(aa.size)
    chunk = 65_536
    for lo in range(0, aa.size, chunk):
        a, w = aa[lo : lo + chunk], ww[lo : lo + chunk]
        p_any[lo : lo + chunk], p_av[lo : lo + chunk] = dyn.churn_within(
            a, w, lat.state[a, w], horizon
        )
    start_us = (cfg.start - _EPOCH).days * _DAY_US
    as_of_us = start_us + (ww * 7 + 6) * _DAY_US
    return pd.DataFrame(
        {
            "account_id": _str_take(_account_ids(acc.n), aa),
            "as_of": _naive(as_of_us),
            "horizon_weeks": np.full(aa.size, horizon, dtype=np.int64),
            "p_churn": np.clip(p_any, 0.0, 1.0),
            "p_churn_avoidable": np.clip(p_av, 0.0, 1.0),
        }
    )


def _account_ids(n: int) -> np.ndarray:
    """Account ids ``ACC-00001`` ..."""
    return np.array([f"ACC-{i + 1:05d}" for i in range(n)], dtype=object)


# ------------------------------------------------------------------------------------ observables
@dataclass
class _Grid:
    """Account x week matrices shared by the observable tables."""

    live: np.ndarray  # (n, W) bool: some activity window exists in that week
    state: np.ndarray  # (n, W) int, 0 where not live
    lo: np.ndarray  # (n, W) int64 start of the activity window
    hi: np.ndarray  # (n, W) int64 end (exclusive) of the activity window
    frac: np.ndarray  # (n, W) share of the week inside the window
    week0: np.ndarray  # (W,) week start instants
    eng: np.ndarray  # (n, W) engagement before the phase multiplier
    final_us: np.ndarray  # (n,) min(churned_at, end of data)


def _grid(cfg: SimulatorConfig, acc: _Accounts, lat: _Latent) -> _Grid:
    """Activity windows, states and engagement for every account and week."""
    rng = _rng(cfg, 3)
    n, n_weeks = acc.n, cfg.weeks
    start_us = (cfg.start - _EPOCH).days * _DAY_US
    week0 = start_us + np.arange(n_weeks, dtype=np.int64) * _WEEK_US
    lo = np.maximum(week0[None, :], acc.created_us[:, None])
    hi = np.minimum(week0[None, :] + _WEEK_US, lat.churn_us[:, None])
    live = (lat.state >= 0) & (hi > lo)
    frac = np.where(live, (hi - lo) / _WEEK_US, 0.0)
    z = np.zeros((n, n_weeks))
    eps = rng.standard_normal((n, n_weeks))
    rho, sd = cfg.engagement_ar, cfg.engagement_noise
    z[:, 0] = sd * eps[:, 0]
    for w in range(1, n_weeks):
        z[:, w] = rho * z[:, w - 1] + np.sqrt(1 - rho**2) * sd * eps[:, w]
    eng = acc.e0[:, None] * np.exp(z - sd**2 / 2) * _week_factor(cfg, n_weeks)[None, :]
    return _Grid(
        live=live,
        state=np.where(live, lat.state, 0).astype(np.int64),
        lo=lo,
        hi=hi,
        frac=frac,
        week0=week0,
        eng=eng,
        final_us=np.minimum(lat.churn_us, start_us + n_weeks * _WEEK_US),
    )


def _usage_events(cfg: SimulatorConfig, acc: _Accounts, lat: _Latent, g: _Grid) -> pd.DataFrame:
    """Logins (one row each) and feature use (one row per user, feature and week)."""
    rng = _rng(cfg, 4)
    n_weeks = cfg.weeks
    user_acc = np.repeat(np.arange(acc.n), acc.n_users)
    first_user = np.concatenate([[0], np.cumsum(acc.n_users)[:-1]])
    user_j = np.arange(user_acc.size) - first_user[user_acc]
    n_u = user_acc.size
    prop = rng.gamma(1.5, 1 / 1.5, n_u)
    delay = np.where(user_j == 0, 0, rng.geometric(0.35, n_u) - 1)
    user_start = acc.created_week[user_acc] + delay
    aff = rng.random((n_u, len(FEATURES))) < _FEATURE_USERS[None, :]
    aff[first_user, 0] = True
    # adoption week per account and feature (core ones counted from the week value was reached)
    never = rng.random((acc.n, len(FEATURES))) < _FEATURE_NEVER[None, :]
    lag = rng.exponential(1.0, (acc.n, len(FEATURES))) * _FEATURE_DELAY[None, :]
    lag = lag / acc.e0[:, None]
    base = np.where(
        _IS_CORE[None, :],
        np.where(lat.completion_week >= 0, lat.completion_week, np.inf)[:, None],
        acc.created_week[:, None].astype(float),
    )
    adopt = np.where(never, np.inf, base + np.ceil(lag))
    rate = _FEATURE_RATE * cfg.feature_rate_scale
    pos = np.full(n_u, -1, dtype=np.int64)

    log_u, log_w, log_n = [], [], []
    f_u, f_f, f_w, f_n = [], [], [], []
    for w in range(n_weeks):
        live = g.live[:, w]
        u = np.nonzero(live[user_acc] & (user_start <= w))[0]
        if not u.size:
            continue
        a = user_acc[u]
        st = g.state[a, w]
        lam = g.eng[a, w] * g.frac[a, w] * prop[u]
        k = rng.poisson(cfg.logins_per_user_week * lam * _M_LOGIN[st])
        nz = k > 0
        log_u.append(u[nz])
        log_w.append(np.full(int(nz.sum()), w))
        log_n.append(k[nz])
        mult = np.where(_IS_CORE[None, :], _M_CORE[st][:, None], _M_LOGIN[st][:, None])
        lam_f = rate[None, :] * (lam[:, None] * mult) * (aff[u] & (adopt[a] <= w))
        cnt = rng.poisson(lam_f)
        # the week value is reached shows as the account's first core-feature event
        done = np.nonzero(live & (lat.completion_week == w))[0]
        if done.size:
            pos[u] = np.arange(u.size)
            p = pos[first_user[done]]
            p = p[p >= 0]
            cnt[p, 0] = np.maximum(cnt[p, 0], 1)
            pos[u] = -1
        ui, fi = np.nonzero(cnt)
        f_u.append(u[ui])
        f_f.append(fi)
        f_w.append(np.full(ui.size, w))
        f_n.append(cnt[ui, fi])

    lu = np.concatenate(log_u)
    ln = np.concatenate(log_n)
    lw = np.concatenate(log_w)
    users = np.concatenate([np.repeat(lu, ln), np.concatenate(f_u)])
    weeks = np.concatenate([np.repeat(lw, ln), np.concatenate(f_w)])
    event = np.concatenate([np.zeros(int(ln.sum()), np.int64), 1 + np.concatenate(f_f)])
    qty = np.concatenate([np.ones(int(ln.sum()), np.int64), np.concatenate(f_n)])
    accs = user_acc[users]
    ts = _draw_times(rng, g.week0[weeks], g.lo[accs, weeks], g.hi[accs, weeks])
    order = np.lexsort((event, users, ts, accs))
    acc_ids = _account_ids(acc.n)
    user_ids = np.array(
        [f"{acc_ids[a]}-U{j + 1:03d}" for a, j in zip(user_acc, user_j, strict=True)], dtype=object
    )
    return pd.DataFrame(
        {
            "account_id": _str_take(acc_ids, accs[order]),
            "occurred_at": _utc(ts[order]),
            "event": _str_take((LOGIN_EVENT, *FEATURES), event[order]),
            "user_id": _str_take(user_ids, users[order]),
            "quantity": qty[order],
        }
    )


def _tickets(cfg: SimulatorConfig, acc: _Accounts, g: _Grid) -> pd.DataFrame:
    """Support tickets: a steady trickle, a burst during incidents, silence during decline."""
    rng = _rng(cfg, 5)
    a, w = np.nonzero(g.live)
    st = g.state[a, w]
    lam = (
        np.asarray(cfg.tickets_per_week)[acc.seg[a]]
        * np.sqrt(acc.n_users[a] / 8.0)
        * _M_TICKETS[st]
        * g.frac[a, w]
    )
    k = rng.poisson(lam)
    a, w, st = np.repeat(a, k), np.repeat(w, k), np.repeat(st, k)
    m = a.size
    opened = _draw_times(rng, g.week0[w], g.lo[a, w], g.hi[a, w])
    incident = _STATE_KIND[st] == 2
    onboarding = _STATE_KIND[st] == 0
    r = rng.random(m)
    cum = np.where(incident[:, None], [[0.35, 0.75, 0.95]], [[0.03, 0.15, 0.7]])
    prio = (r[:, None] >= cum).sum(axis=1)
    priority = np.array(["urgent", "high", "normal", "low"])[prio]
    cats_i = np.array(["bug", "outage", "performance"])
    cats_o = np.array(["onboarding", "how-to", "integration"])
    cats_n = np.array(["how-to", "billing", "feature request", "integration", "bug"])
    r2 = rng.random(m)
    category = np.where(
        incident,
        cats_i[(r2 * 3).astype(int)],
        np.where(onboarding, cats_o[(r2 * 3).astype(int)], cats_n[(r2 * 5).astype(int)]),
    )
    median_h = {"urgent": 4.0, "high": 12.0, "normal": 30.0, "low": 60.0}
    med = np.vectorize(median_h.get, otypes=[float])(priority) * np.where(incident, 2.0, 1.0)
    hours = med * np.exp(0.8 * rng.standard_normal(m))
    closed = opened + (hours * _HOUR_US).astype(np.int64)
    closed = (closed // 1_000_000) * 1_000_000
    end_us = g.week0[-1] + _WEEK_US
    closed = np.minimum(closed, g.final_us[a])  # closed when the account leaves
    closed = np.where(closed >= end_us, np.iinfo(np.int64).min, closed)  # still open at the end
    answered = rng.random(m) < 0.45
    csat_raw = np.where(incident, 2.3, 4.3) + np.where(incident, 1.0, 0.8) * rng.standard_normal(m)
    csat = np.where(answered, np.clip(np.round(csat_raw), 1, 5), np.nan)
    order = np.lexsort((a, opened))
    ids = np.array([f"T-{i + 1:07d}" for i in range(m)], dtype=object)
    acc_ids = _account_ids(acc.n)
    return pd.DataFrame(
        {
            "account_id": _str_take(acc_ids, a[order]),
            "opened_at": _utc(opened[order]),
            "ticket_id": _str_take(ids, np.arange(m)),
            "closed_at": _utc(closed[order]),
            "priority": _str_take(priority, order),
            "category": _str_take(category, order),
            "csat": csat[order],
        }
    )


def _surveys(cfg: SimulatorConfig, acc: _Accounts, g: _Grid) -> pd.DataFrame:
    """Quarterly NPS surveys; engaged and loud accounts answer, silent ones do not."""
    rng = _rng(cfg, 6)
    tenure = np.arange(cfg.weeks)[None, :] - acc.created_week[:, None]
    off = acc.survey_offset[:, None]
    due = g.live & (tenure >= off) & ((tenure - off) % cfg.survey_every_weeks == 0)
    a, w = np.nonzero(due)
    st = g.state[a, w]
    m = a.size
    sent = _draw_times(rng, g.week0[w], g.lo[a, w], g.hi[a, w])
    p = np.clip(
        np.asarray(cfg.survey_response)[acc.seg[a]] * _M_SURVEY[st] * acc.e0[a] ** 0.3, 0.0, 0.95
    )
    answer = rng.random(m) < p
    delay = (rng.exponential(1.5, m) * _DAY_US).astype(np.int64) + 600_000_000
    responded = (sent + delay) // 1_000_000 * 1_000_000
    answer &= responded < g.final_us[a]
    raw = 7.3 + 1.3 * acc.sat[a] + _NPS_SHIFT[st] + 1.2 * rng.standard_normal(m)
    score = np.where(answer, np.clip(np.round(raw), 0, 10), np.nan)
    order = np.lexsort((a, sent))
    return pd.DataFrame(
        {
            "account_id": _str_take(_account_ids(acc.n), a[order]),
            "sent_at": _utc(sent[order]),
            "responded_at": _utc(np.where(answer, responded, np.iinfo(np.int64).min)[order]),
            "score": score[order],
        }
    )


def _touchpoints(cfg: SimulatorConfig, acc: _Accounts, g: _Grid) -> pd.DataFrame:
    """CSM contacts by touch tier, escalation calls during incidents, inbound contacts."""
    rng = _rng(cfg, 7)
    tenure = np.arange(cfg.weeks)[None, :] - acc.created_week[:, None]
    seg = acc.seg[:, None]
    kind_names = ["meeting", "qbr", "call", "email", "webinar", "automated_email", "chat"]
    reply = np.array([0.92, 0.9, 0.85, 0.6, 0.35, 0.25, 1.0])
    st_kind = _STATE_KIND[g.state]
    parts: list[tuple[np.ndarray, np.ndarray, int, bool]] = []

    def add(mask: np.ndarray, kind: int, inbound: bool = False) -> None:
        a, w = np.nonzero(mask & g.live)
        parts.append((a, w, kind, inbound))

    qbr = (seg == 2) & (tenure % 13 == 7)
    add((seg == 2) & (tenure % 4 == 1) & ~qbr, 0)
    add(qbr, 1)
    escalate = rng.random(g.live.shape) < np.where(seg == 2, 0.6, 0.3)
    add((seg >= 1) & (st_kind == 2) & escalate, 2)
    add((seg == 1) & (tenure % 6 == 2), 3)
    add((seg == 1) & (tenure % 4 == 3), 4)
    add((seg == 0) & ((tenure % 2 == 0) | (st_kind == 0)), 5)
    inbound_rate = np.array([0.05, 0.1, 0.25])[seg] * np.sqrt(g.eng) * _M_INBOUND[g.state]
    k_in = rng.poisson(inbound_rate * g.frac)
    a_in, w_in = np.nonzero(k_in * g.live)
    a_in, w_in = np.repeat(a_in, k_in[a_in, w_in]), np.repeat(w_in, k_in[a_in, w_in])
    in_kind = np.where(acc.seg[a_in] == 0, 6, np.where(rng.random(a_in.size) < 0.7, 3, 2))

    a = np.concatenate([p[0] for p in parts] + [a_in])
    w = np.concatenate([p[1] for p in parts] + [w_in])
    kind = np.concatenate([np.full(p[0].size, p[2]) for p in parts] + [in_kind])
    inbound = np.concatenate(
        [np.zeros(p[0].size, bool) for p in parts] + [np.ones(a_in.size, bool)]
    )
    st = g.state[a, w]
    t = _draw_times(rng, g.week0[w], g.lo[a, w], g.hi[a, w])
    p = np.clip(reply[kind] * _M_REPLY[st] * np.minimum(1.0, acc.e0[a] ** 0.3), 0.0, 0.98)
    responded = rng.random(a.size) < p
    order = np.lexsort((kind, a, t))
    resp = pd.array(np.where(inbound, False, responded)[order], dtype="boolean")
    resp[inbound[order]] = pd.NA
    return pd.DataFrame(
        {
            "account_id": _str_take(_account_ids(acc.n), a[order]),
            "occurred_at": _utc(t[order]),
            "kind": _str_take(kind_names, kind[order]),
            "direction": _str_take(["outbound", "inbound"], inbound[order].astype(np.int64)),
            "responded": resp,
        }
    )


def _plan(arr: np.ndarray) -> np.ndarray:
    """Plan index from ARR: starter, team, business, enterprise."""
    return np.searchsorted([8_000.0, 20_000.0, 100_000.0], arr, side="right")


_PLANS = ("starter", "team", "business", "enterprise")


def _contracts(
    cfg: SimulatorConfig, acc: _Accounts, lat: _Latent, g: _Grid, cal: _Calendar
) -> tuple[pd.DataFrame, np.ndarray]:
    """Contract rows (new, renewal, upsell, downgrade) and the current seats per account."""
    rng = _rng(cfg, 8)
    n_weeks = cfg.weeks
    kind = cal.kind[:, :n_weeks]
    dec_us = cal.day[:, :n_weeks] * _DAY_US
    ok = ((kind == _MONTHLY) | (kind == _ANNUAL)) & g.live & (dec_us < g.final_us[:, None])
    ok &= dec_us >= acc.created_us[:, None]
    a, w = np.nonzero(ok)
    st = g.state[a, w]
    sk = _STATE_KIND[st]
    lvl = _STATE_LEVEL[st]
    annual = kind[a, w] == _ANNUAL
    r = rng.random(a.size)
    growth = np.clip(acc.e0[a] * np.exp(0.3 * acc.sat[a]), 0.3, 2.0)
    down = (lvl >= 3) & (r < np.where(annual, 0.35, 0.15))
    up = (sk == 1) & (r < np.where(annual, 0.3, 0.025) * growth)
    keep = annual | down | up
    change = np.where(down, 3, np.where(up, 2, 1))  # 1 renewal, 2 upsell, 3 downgrade
    a, w, change, t = a[keep], w[keep], change[keep], dec_us[a[keep], w[keep]]
    # mid-term expansion of healthy annual accounts
    mid = (
        g.live
        & (~acc.monthly[:, None])
        & (_STATE_KIND[g.state] == 1)
        & (rng.random(g.live.shape) < 0.002 * np.clip(acc.e0, 0.3, 2.0)[:, None])
        & (np.arange(n_weeks)[None, :] > acc.created_week[:, None])
    )
    am, wm = np.nonzero(mid)
    tm = _draw_times(rng, g.week0[wm], g.lo[am, wm], g.hi[am, wm])
    a = np.concatenate([np.arange(acc.n), a, am])
    t = np.concatenate([acc.created_us, t, tm])
    change = np.concatenate([np.zeros(acc.n, np.int64), change, np.full(am.size, 2)])
    factor = np.ones(a.size)
    nu = int((change == 2).sum())
    nd = int((change == 3).sum())
    factor[change == 2] = rng.uniform(1.1, 1.5, nu)
    factor[change == 3] = rng.uniform(0.55, 0.85, nd)
    order = np.lexsort((change, t, a))
    a, t, change, factor = a[order], t[order], change[order], factor[order]
    cum = np.cumsum(np.log(factor))
    first = np.searchsorted(a, a, side="left")
    cum = cum - cum[first] + np.log(factor[first])
    seats = np.clip(
        np.round(acc.seats0[a] * np.exp(cum)).astype(np.int64), acc.seats_min[a], acc.seats_max[a]
    )
    prev = np.concatenate([[-1], seats[:-1]])
    prev[first == np.arange(a.size)] = -1
    # a change that moved no seat (clipped or rounded away) is a plain renewal, or no row at all
    same = (change >= 2) & (seats == prev)
    change = np.where(same, 1, change)
    real = ~(same & (_kind_of_row(a, t, cal, cfg) != _ANNUAL))
    real |= change == 0
    a, t, change, seats = a[real], t[real], change[real], seats[real]
    arr = seats * acc.price[a]
    last = seats[np.searchsorted(a, np.arange(acc.n), side="right") - 1]
    return (
        pd.DataFrame(
            {
                "account_id": _str_take(_account_ids(acc.n), a),
                "effective_at": _utc(t),
                "arr": arr.astype(float),
                "seats": seats,
                "plan": _str_take(_PLANS, _plan(arr)),
                "change": _str_take(("new", "renewal", "upsell", "downgrade"), change),
            }
        ),
        last,
    )


def _kind_of_row(a: np.ndarray, t: np.ndarray, cal: _Calendar, cfg: SimulatorConfig) -> np.ndarray:
    """The decision kind whose date is instant ``t`` for account ``a`` (0 when none)."""
    start_day = (cfg.start - _EPOCH).days
    day = t // _DAY_US
    w = np.clip((day - start_day) // 7, 0, cal.kind.shape[1] - 1)
    hit = (cal.day[a, w] == day) & (t % _DAY_US == 0)
    return np.where(hit, cal.kind[a, w], _NO_DECISION)


# ------------------------------------------------------------------------------------ assembly
def _accounts_table(acc: _Accounts, cal: _Calendar, seats_now: np.ndarray) -> pd.DataFrame:
    """The accounts table (current ARR and seats, the next renewal after the end of data)."""
    ids = _account_ids(acc.n)
    arr = seats_now * acc.price
    csm = np.array(
        [f"CSM-{i + 1:03d}" for i in range(max(1, int(acc.csm.max()) + 1))], dtype=object
    )
    csm_s = _str_take(csm, np.maximum(acc.csm, 0))
    csm_s[acc.csm < 0] = np.nan
    return pd.DataFrame(
        {
            "account_id": _str_take(ids, np.arange(acc.n)),
            "created_at": _utc(acc.created_us),
            "name": _str_take(acc.name, np.arange(acc.n)),
            "plan": _str_take(_PLANS, _plan(arr)),
            "arr": arr.astype(float),
            "seats": seats_now,
            "industry": _str_take(_INDUSTRIES, acc.industry),
            "region": _str_take(_REGIONS, acc.region),
            "csm_id": csm_s,
            "touch_tier": _str_take(TIERS, acc.seg),
            "renewal_date": _naive(cal.renewal_day * _DAY_US),
            "billing_period": _str_take(("annual", "monthly"), acc.monthly.astype(np.int64)),
        }
    )


def _churn_table(acc: _Accounts, lat: _Latent) -> pd.DataFrame:
    """One row per churned account."""
    a = np.nonzero(lat.churned)[0]
    a = a[np.argsort(lat.churn_us[a], kind="stable")]
    return pd.DataFrame(
        {
            "account_id": _str_take(_account_ids(acc.n), a),
            "churned_at": _utc(lat.churn_us[a]),
            "reason": _str_take(AVOIDABLE_REASONS + UNAVOIDABLE_REASONS, lat.reason[a]),
            "avoidable": lat.avoidable[a].astype(bool),
        }
    )


def _episodes(state: np.ndarray, member: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per account: episode count, first week in the set, first week out of it afterwards."""
    n, n_weeks = state.shape
    inside = member[np.where(state >= 0, state, 0)] & (state >= 0)
    prev = np.concatenate([np.zeros((n, 1), bool), inside[:, :-1]], axis=1)
    starts = inside & ~prev
    count = starts.sum(axis=1)
    first = np.where(count > 0, starts.argmax(axis=1), -1)
    after = (np.arange(n_weeks)[None, :] > first[:, None]) & ~inside & (state >= 0)
    out = np.where((count > 0) & after.any(axis=1), after.argmax(axis=1), -1)
    return count, first, out


def _accounts_truth(cfg: SimulatorConfig, acc: _Accounts, lat: _Latent) -> pd.DataFrame:
    """Latent facts per account, for analysis (never an input to a model)."""
    start_us = (cfg.start - _EPOCH).days * _DAY_US
    declining = (_STATE_KIND == 3) | (_STATE_KIND == 4)
    n_dec, first_dec, out_dec = _episodes(lat.state, declining)
    n_inc, first_inc, _ = _episodes(lat.state, _STATE_KIND == 2)
    nat = np.iinfo(np.int64).min

    def week_date(w: np.ndarray) -> pd.Series:
        return _naive(np.where(w >= 0, start_us + w * _WEEK_US, nat))

    ttv = np.where(lat.completion_week >= 0, lat.completion_week - acc.created_week, -1)
    reasons = np.array(AVOIDABLE_REASONS + UNAVOIDABLE_REASONS, dtype=object)
    avoid = pd.array(lat.avoidable, dtype="boolean")
    avoid[~lat.churned] = pd.NA
    return pd.DataFrame(
        {
            "account_id": _str_take(_account_ids(acc.n), np.arange(acc.n)),
            "segment": _str_take(SEGMENTS, acc.seg),
            "touch_tier": _str_take(TIERS, acc.seg),
            "contract": _str_take(("annual", "monthly"), acc.monthly.astype(np.int64)),
            "created_week": acc.created_week,
            "n_users": acc.n_users,
            "engagement_level": acc.e0,
            "satisfaction": acc.sat,
            "onboarding_speed": acc.c_onb,
            "decline_speed": acc.p_adv,
            "ttv_weeks": np.where(ttv >= 0, ttv, np.nan),
            "slow_ttv": ttv > cfg.slow_ttv_weeks,
            "silent": n_dec > 0,
            "loud": n_inc > 0,
            "decline_episodes": n_dec,
            "incident_episodes": n_inc,
            "decline_start": week_date(first_dec),
            "decline_end": week_date(out_dec),
            "incident_start": week_date(first_inc),
            "churned_at": _utc(np.where(lat.churned, lat.churn_us, nat)),
            "churn_reason": pd.Series(
                np.where(lat.churned, reasons[np.maximum(lat.reason, 0)], None), dtype="str"
            ),
            "avoidable": avoid,
        }
    )


def _states_frame(cfg: SimulatorConfig, acc: _Accounts, lat: _Latent, g: _Grid) -> pd.DataFrame:
    """The weekly latent state of every live account (for analysis)."""
    a, w = np.nonzero(lat.state >= 0)
    st = lat.state[a, w].astype(np.int64)
    start_us = (cfg.start - _EPOCH).days * _DAY_US
    return pd.DataFrame(
        {
            "account_id": _str_take(_account_ids(acc.n), a),
            "week_start": _naive(start_us + w * _WEEK_US),
            "phase": _str_take(PHASE_NAMES, _STATE_KIND[st]),
            "decline_level": _STATE_LEVEL[st].astype(np.int64),
            "slow_ttv": _STATE_SLOW[st].astype(bool),
            "engagement": g.eng[a, w] * _M_LOGIN[st],
        }
    )


def _check_config(cfg: SimulatorConfig) -> None:
    """Reject configurations the simulator cannot honour."""
    if cfg.start.weekday() != 0:
        raise ValueError(f"start must be a Monday, got {cfg.start} ({cfg.start:%A})")
    if cfg.n_accounts < 1:
        raise ValueError("n_accounts must be at least 1")
    if cfg.weeks < 2 or cfg.horizon_weeks < 1:
        raise ValueError("weeks must be >= 2 and horizon_weeks >= 1")


def _latent_world(cfg: SimulatorConfig) -> tuple[_Accounts, _Dynamics, _Latent]:
    """The accounts, their dynamics and the simulated latent path (no observables)."""
    acc = _draw_accounts(cfg)
    dyn = _Dynamics(cfg, acc, _calendar(cfg, acc))
    return acc, dyn, _simulate_latent(cfg, acc, dyn)


def simulate(config: SimulatorConfig) -> SimulatedBase:
    """Simulate a customer base: the seven contract tables and the true churn probabilities."""
    _check_config(config)
    cfg = config
    t0 = time.perf_counter()
    acc, dyn, lat = _latent_world(cfg)
    cal = dyn.cal
    t1 = time.perf_counter()
    truth = _true_probabilities(cfg, acc, dyn, lat)
    t2 = time.perf_counter()
    g = _grid(cfg, acc, lat)
    contracts, seats_now = _contracts(cfg, acc, lat, g, cal)
    tables = {
        "accounts": _accounts_table(acc, cal, seats_now),
        "usage_events": _usage_events(cfg, acc, lat, g),
        "tickets": _tickets(cfg, acc, g),
        "surveys": _surveys(cfg, acc, g),
        "touchpoints": _touchpoints(cfg, acc, g),
        "contracts": contracts,
        "churn_events": _churn_table(acc, lat),
    }
    t3 = time.perf_counter()
    log.info(
        "simulated %d accounts x %d weeks: latent %.1fs, truth %.1fs, tables %.1fs",
        cfg.n_accounts,
        cfg.weeks,
        t1 - t0,
        t2 - t1,
        t3 - t2,
    )
    end = cfg.start + timedelta(days=7 * cfg.weeks - 1)
    return SimulatedBase(
        tables={name: tables[name] for name in TABLE_NAMES},
        truth=truth,
        accounts_truth=_accounts_truth(cfg, acc, lat),
        end=end,
        states=_states_frame(cfg, acc, lat, g),
    )


def churnlens_yaml(horizon_weeks: int = 13) -> dict[str, object]:
    """The ``churnlens.yaml`` that tells the pipeline how to read simulated data."""
    return {
        "events": {"login": [LOGIN_EVENT], "core_features": list(CORE_FEATURES)},
        "labels": {
            "horizon_weeks": horizon_weeks,
            "unavoidable_reasons": list(UNAVOIDABLE_REASONS),
        },
    }


def write_base(base: SimulatedBase, out: Path) -> None:
    """Write the tables, ``churnlens.yaml`` and the truth under ``out`` (each file atomically)."""
    out = Path(out)
    truth_dir = out / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    for name in TABLE_NAMES:
        write_frame(base.tables[name], out / f"{name}.parquet")
    horizon = int(base.truth["horizon_weeks"].iloc[0]) if len(base.truth) else 13
    cfg_path = out / "churnlens.yaml"
    tmp = cfg_path.with_name(f".{cfg_path.name}.{os.getpid()}.tmp")
    tmp.write_text(yaml.safe_dump(churnlens_yaml(horizon), sort_keys=False), encoding="utf-8")
    os.replace(tmp, cfg_path)
    write_frame(base.truth, truth_dir / "true_churn_probability.parquet")
    write_frame(base.accounts_truth, truth_dir / "accounts_truth.parquet")
    if len(base.states):
        write_frame(base.states, truth_dir / "latent_states.parquet")
    log.info("wrote the simulated base to %s", out)
