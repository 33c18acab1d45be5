"""Build the notebooks from their cell sources here (so diffs stay readable), outputs stripped.

Run ``python notebooks/build.py``; ``tests/test_notebooks.py`` checks the committed ``.ipynb``
files match and executes them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

INDICATORS_TOUR: list[tuple[str, str]] = [
    (
        "md",
        """# A tour of churnlens' leading indicators

This notebook simulates a small B2B SaaS customer base, builds the weekly timeline (stage 1) and the
leading indicators (stage 2) exactly as the CLI does, and looks at three questions:

1. What does a **silent** customer look like next to a **loud** one, week by week?
2. What do the indicators say about each of them, in the sentences a CSM reads?
3. Which reason families move **before** churn, and how far ahead (the seeds say about three months)?

Everything runs in under a minute on a laptop; CI executes it so it cannot rot.""",
    ),
    (
        "code",
        """import tempfile
from datetime import timedelta
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from churnlens.config import load_config
from churnlens.datasets.simulator import SimulatorConfig, simulate, write_base
from churnlens.features.contract import load_tables
from churnlens.features.indicators import FAMILIES, INDICATORS, REGISTRY, compute_indicators, render
from churnlens.features.timeline import build_timeline

data = Path(tempfile.mkdtemp()) / "base"
base = simulate(SimulatorConfig(n_accounts=600, seed=11))
write_base(base, data)
tables = load_tables(data, load_config(None, data))
timeline = build_timeline(tables)
truth = base.accounts_truth.set_index("account_id")
print(f"{len(tables.accounts)} accounts, {len(timeline):,} account-weeks, data ends {tables.as_of}")
print(truth[["silent", "loud"]].mean().rename("share of accounts"))""",
    ),
    (
        "md",
        """## A silent churner and a loud survivor

The simulator records the latent story of each account (never a model input). We pick an account
that went through a silent decline and churned, and one that had a loud incident (a ticket spike,
a bad NPS) and stayed.""",
    ),
    (
        "code",
        """churned = truth["churned_at"].notna()
silent_id = truth[truth["silent"] & ~truth["loud"] & churned & truth["avoidable"].fillna(False)
                  ].index[0]
loud_id = truth[truth["loud"] & ~truth["silent"] & ~churned].index[0]
as_of_silent = (truth.loc[silent_id, "churned_at"].tz_convert(None) - timedelta(days=7)).date()
as_of_loud = (truth.loc[loud_id, "incident_start"] + timedelta(weeks=3)).date()


def weeks_before(account_id, as_of, n=30):
    tl = timeline[(timeline["account_id"] == account_id)
                  & (timeline["week_start"] <= pd.Timestamp(as_of))]
    return tl.tail(n).set_index("week_start")


cols = ["logins", "core_feature_events", "tickets_opened", "surveys_answered", "touches_inbound"]
fig, axes = plt.subplots(len(cols), 2, figsize=(11, 9), sharex="col")
for j, (acc, as_of, title) in enumerate([(silent_id, as_of_silent, "silent churner"),
                                          (loud_id, as_of_loud, "loud survivor")]):
    tl = weeks_before(acc, as_of)
    for i, c in enumerate(cols):
        axes[i, j].bar(tl.index, tl[c].astype(float), width=5,
                       color="tab:red" if j == 0 else "tab:blue")
        axes[i, j].set_ylabel(c, fontsize=8)
    axes[0, j].set_title(f"{title} {acc} (as of {as_of})")
fig.autofmt_xdate()
plt.tight_layout()
plt.show()""",
    ),
    (
        "md",
        """The silent churner's logins and core-feature use slide for weeks while tickets, survey
answers and inbound contact dry up. The loud account files a burst of tickets — noisy, but engaged.

## What the indicators say

`compute_indicators` is the same function the API will call with a client's timeline. Here are the
sentences a CSM would read for each account.""",
    ),
    (
        "code",
        """reqs = pd.DataFrame({"account_id": [silent_id, loud_id],
                     "as_of": pd.to_datetime([as_of_silent, as_of_loud])})
ind = compute_indicators(timeline, tables.accounts, reqs).set_index("account_id")
rows = []
for name in INDICATORS:
    rows.append({"family": REGISTRY[name].family, "indicator": name,
                 "silent churner": render(name, ind.loc[silent_id, name]),
                 "loud survivor": render(name, ind.loc[loud_id, name])})
pd.set_option("display.max_colwidth", 80)
pd.DataFrame(rows).set_index(["family", "indicator"])""",
    ),
    (
        "md",
        """## Which families move before churn, and how early

For every avoidable churner we compute the indicators at 1, 2, ..., 26 weeks before the churn and
compare them with accounts that did **not** churn within the next 13 weeks at the same dates. The
chart shows, per family, the strongest standardised gap (in standard deviations of the
non-churners) among its indicators.""",
    ),
    (
        "code",
        """acc = tables.accounts.set_index("account_id")
churners = truth[churned & truth["avoidable"].fillna(False)].index
rows = []
for k in range(1, 27):
    for a in churners:
        t = (truth.loc[a, "churned_at"].tz_convert(None) - timedelta(weeks=k)).normalize()
        if t > acc.loc[a, "created_at"] + timedelta(weeks=4):
            rows.append((a, t, k))
req = pd.DataFrame(rows, columns=["account_id", "as_of", "weeks_before"])
churn_ind = compute_indicators(timeline, tables.accounts, req[["account_id", "as_of"]])
churn_ind["weeks_before"] = req["weeks_before"].to_numpy()

# Reference: accounts alive at the same dates that do not churn within 13 weeks.
dates = sorted(req["as_of"].unique())[::4]
alive = []
for t in dates:
    ok = (acc["created_at"] < t - timedelta(weeks=4))
    gone = truth["churned_at"].dt.tz_convert(None)
    ok &= gone.reindex(acc.index).isna() | (gone.reindex(acc.index) > t + timedelta(weeks=13))
    alive += [(a, t) for a in acc.index[ok]]
ref = compute_indicators(timeline, tables.accounts,
                         pd.DataFrame(alive, columns=["account_id", "as_of"]))

gaps = {}
for fam in FAMILIES:
    names = [n for n in INDICATORS if REGISTRY[n].family == fam
             and REGISTRY[n].direction != "none" and n != "tenure_weeks"]
    series = []
    for n in names:
        sd = ref[n].std()
        if not sd or np.isnan(sd):
            continue
        sign = 1 if REGISTRY[n].direction == "up" else -1
        series.append(sign * (churn_ind.groupby("weeks_before")[n].mean() - ref[n].mean()) / sd)
    if series:
        gaps[fam] = pd.concat(series, axis=1).max(axis=1)
gaps = pd.DataFrame(gaps).sort_index(ascending=False)
ax = gaps.plot(figsize=(10, 5), marker="o", ms=3)
ax.invert_xaxis()
ax.axvline(13, color="grey", ls=":")
ax.set_xlabel("weeks before churn")
ax.set_ylabel("risk-direction gap vs non-churners (SD)")
ax.set_title("Reason families that move before avoidable churn")
plt.show()
gaps.loc[[26, 13, 8, 4, 1]].round(2)""",
    ),
    (
        "md",
        """Read the chart from left (26 weeks before churn) to right (the week before). Usage and
adoption indicators separate from the non-churners months ahead; the silent-customer indicators
(quiet channels, silence ratio) and survey silence follow; support load is *not* a leading sign
here — the simulator's loud customers churn less, as the seeds describe. The dotted line marks the
13-week horizon the model is trained for.""",
    ),
    (
        "code",
        """# Checks that keep this notebook honest when it runs in CI.
assert ind.loc[silent_id, "quiet_channels_13w"] >= ind.loc[loud_id, "quiet_channels_13w"]
assert gaps.loc[4, "usage"] > 0.3, gaps.loc[4]
print("ok")""",
    ),
]

MODEL_REPORT: list[tuple[str, str]] = [
    (
        "md",
        """# Model report

Trains churnlens' model on a small simulated base exactly as `churnlens train` does (without
logging to MLflow), then reads it the way an ML engineer and a CS lead would: metrics on the later
test window beside the baselines and the simulator's true probabilities, calibration, what drives
risk by reason family, and two accounts explained with their plays.""",
    ),
    (
        "code",
        """import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from churnlens.config import load_config
from churnlens.datasets.simulator import SimulatorConfig, simulate, write_base
from churnlens.serving.explain import family_contributions
from churnlens.serving.playbooks import load_catalog
from churnlens.serving.scoring import score_frame
from churnlens.training.pipeline import train

data = Path(tempfile.mkdtemp()) / "base"
write_base(simulate(SimulatorConfig(n_accounts=1200, seed=21)), data)
cfg = load_config(None, data)
result = train(data, cfg, register=False)
model, test = result.model, result.test_frame
print("windows:", result.windows.to_dict())
pd.DataFrame(result.metrics).T[["roc_auc", "pr_auc", "brier", "ece", "lift_top_decile",
                                "recall_top_decile", "arr_captured_top10"]].round(4)""",
    ),
    (
        "md",
        """`ground_truth` is the simulator's true probability given its full hidden state: the
ceiling no model of the observable data can pass. `health_score` is the rule-based score a CS team
builds by hand, `logistic` a logistic regression on the same indicators.

## Calibration

A calibrated model's predicted probabilities match observed churn rates; CSMs can read 20% as
"one in five accounts like this leave within 13 weeks".""",
    ),
    (
        "code",
        """y = test["label"].to_numpy(float)
fig, ax = plt.subplots(figsize=(5, 5))
for col, label in (("p", "model"), ("p_truth", "ground truth")):
    p = test[col].to_numpy(float)
    bins = np.array_split(np.argsort(p), 10)
    ax.plot([p[b].mean() for b in bins], [y[b].mean() for b in bins], "o-", label=label)
top = float(test["p"].max())
ax.plot([0, top], [0, top], ":", color="grey")
ax.set_xlabel("predicted (decile mean)")
ax.set_ylabel("observed churn rate")
ax.legend()
plt.show()""",
    ),
    (
        "md",
        """## What drives risk, by reason family

TreeSHAP contributions (log-odds) summed per reason family: the mean absolute contribution shows
which families the model relies on; the share of accounts where a family raises risk shows how
often it is a reason a CSM will read.""",
    ),
    (
        "code",
        """contrib = model.contributions(test)
fam = family_contributions(contrib, model.features)
summary = pd.DataFrame({"mean |SHAP|": fam.abs().mean(), "raises risk for": (fam > 0).mean()})
summary.sort_values("mean |SHAP|", ascending=False).round(3)""",
    ),
    (
        "md",
        """## Two accounts, explained

The riskiest account of the latest test date and a healthy one, with the reasons and plays the
API and the score file return.""",
    ),
    (
        "code",
        """latest = test[test["as_of"] == test["as_of"].max()]
pick = pd.concat([latest.nlargest(1, "p"), latest.nsmallest(1, "p")])
profiles = pd.read_parquet(data / "accounts.parquet")
rows = score_frame(model, pick, profiles, cfg, load_catalog())
for r in rows:
    print(f"{r['account_id']}  p={r['churn_probability']:.1%}  band={r['risk_band']}  "
          f"tier={r['touch_tier']}  ARR at risk={r['arr_at_risk'] or 0:,.0f}")
    for reason in r["top_reasons"]:
        print(f"   {reason['label']} ({reason['impact']:+.2f}): " + "; ".join(reason["evidence"]))
    for play in r["playbooks"]:
        print(f"   -> {play['title']} [{play['owner']}, {play['channel']}, due in {play['due_days']}d]")
    print()""",
    ),
    (
        "code",
        """# Checks that keep this notebook honest when it runs in CI.
m = result.metrics
assert m["model"]["roc_auc"] > m["health_score"]["roc_auc"]
assert m["model"]["ece"] < 0.03
assert rows[0]["churn_probability"] > rows[1]["churn_probability"]
print("ok")""",
    ),
]


SCORE_HISTORY: list[tuple[str, str]] = [
    (
        "md",
        """# Reading the score history: a CS-ops view

Every scheduled `churnlens score` run appends the whole book to the score store (SQLite or
PostgreSQL): one row per account and date with the probability, band, touch tier, ARR at risk,
reasons, plays, CSM and plan. This notebook replays eight weekly runs on a simulated base and reads
them the way a CS-ops analyst does on a Monday morning:

1. Who moved to red this week, why, and what is the first play?
2. ARR at risk by segment and by touch tier, week by week.
3. How the book moved since last week.
4. Red accounts per CSM.
5. What happened next: did the red accounts churn more than the green ones?
6. Comparing history across model versions.

Everything below is pandas on the store's rows or plain SQL on its tables, so the same queries
work on your own store.""",
    ),
    (
        "code",
        """import tempfile
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from churnlens.config import load_config
from churnlens.datasets.simulator import SimulatorConfig, simulate, write_base
from churnlens.features.contract import load_tables
from churnlens.features.indicators import compute_indicators
from churnlens.features.snapshots import alive_accounts
from churnlens.features.timeline import build_timeline
from churnlens.serving.playbooks import load_catalog
from churnlens.serving.scoring import score_frame
from churnlens.store import account_details, open_store
from churnlens.training.pipeline import train

tmp = Path(tempfile.mkdtemp())
data = tmp / "base"
base = simulate(SimulatorConfig(n_accounts=1000, seed=7))
write_base(base, data)
cfg = load_config(None, data)
result = train(data, cfg, register=False)  # trained here, not registered: no MLflow needed
model = result.model
MODEL_VERSION = "churnlens v1"
result.windows.to_dict()""",
    ),
    (
        "md",
        """## Eight Monday runs

Each week a scheduled `churnlens score --as-of <Sunday>` cuts the data at that Sunday, scores every
account alive then and appends one run to the store. We replay eight such runs; the last one is
"this week". The simulated data go on for 13 more weeks, kept aside for section 5. All eight dates
fall in the model's test window or after it, so no churn that followed them was used to fit or
calibrate the model.""",
    ),
    (
        "code",
        """weeks = [base.end - timedelta(weeks=13 + k) for k in range(7, -1, -1)]  # eight Sundays
assert pd.Timestamp(weeks[0]) >= result.windows.test_start
store = open_store(f"sqlite:///{tmp / 'scores.db'}")  # or your CHURNLENS_DATABASE_URL
catalog = load_catalog()
for as_of in weeks:
    tables = load_tables(data, cfg, as_of)
    alive = alive_accounts(tables)
    ind = compute_indicators(build_timeline(tables), alive, as_of=tables.as_of)
    rows = score_frame(model, ind, alive, cfg, catalog)
    store.append_scores(
        rows,
        as_of=as_of,
        model_version=MODEL_VERSION,
        accounts=account_details(alive),  # CSM, name and plan as they are on the day
        scored_at=datetime.combine(as_of + timedelta(days=1), time(6), tzinfo=UTC),
    )
runs = pd.DataFrame(store.runs()).set_index("run_id")
runs[["as_of", "scored_at", "model_version", "n_accounts"]]""",
    ),
    (
        "md",
        """## The whole history as one table

For trends, read every row once. The store's tables are `churnlens_score_runs` (one row per run)
and `churnlens_scores` (one row per account and run; reasons and plays as JSON text). If a date was
scored twice, keep its latest run, as the store's own queries do.""",
    ),
    (
        "code",
        """hist = pd.read_sql(
    \"\"\"SELECT s.run_id, r.scored_at, s.as_of, s.model_version, s.account_id, s.name, s.plan,
              s.csm_id, s.touch_tier, s.risk_band, s.churn_probability, s.arr, s.arr_at_risk
       FROM churnlens_scores s JOIN churnlens_score_runs r ON r.run_id = s.run_id\"\"\",
    store.engine,
    parse_dates=["as_of"],
)
hist = hist.sort_values(["as_of", "scored_at", "run_id"]).drop_duplicates(
    ["account_id", "as_of"], keep="last"
)
BANDS = ["green", "yellow", "red"]
hist.groupby("as_of")["risk_band"].value_counts().unstack().reindex(columns=BANDS).fillna(0)""",
    ),
    (
        "md",
        """## 1. Moved to red this week

`latest_scores()` returns each account's most recent row; for an account that churned since, that
row is weeks old, so keep this week's date only. `previous_scores()` returns the row before it.
"was" is `new` for an account scored for the first time.""",
    ),
    (
        "code",
        """this_week = max(run["as_of"] for run in store.runs())  # the last run may be a re-run
latest = pd.DataFrame(store.latest_scores())
latest = latest[latest["as_of"] == this_week]
prev = pd.DataFrame(store.previous_scores(latest["account_id"].tolist()))
now = latest.merge(
    prev[["account_id", "risk_band", "churn_probability"]],
    on="account_id",
    how="left",
    suffixes=("", "_prev"),
)
new_red = now[(now["risk_band"] == "red") & (now["risk_band_prev"] != "red")]


def why(reasons):
    if not reasons:
        return ""
    r = reasons[0]
    return f"{r['label']}: {r['evidence'][0]}" if r["evidence"] else r["label"]


def play(plays):
    return f"{plays[0]['title']} ({plays[0]['owner']}, {plays[0]['due_days']}d)" if plays else ""


pct = "{:.1%}".format
pd.set_option("display.max_colwidth", 70)
pd.DataFrame(
    {
        "account": new_red["name"],
        "plan": new_red["plan"],
        "CSM": new_red["csm_id"].fillna("-"),
        "was": new_red["risk_band_prev"].fillna("new"),
        "risk before": new_red["churn_probability_prev"].map(pct, na_action="ignore"),
        "risk now": new_red["churn_probability"].map(pct),
        "ARR at risk": new_red["arr_at_risk"].round(-2).astype("Int64"),
        "top reason": new_red["top_reasons"].map(why),
        "first play": new_red["playbooks"].map(play),
    }
).sort_values("ARR at risk", ascending=False).set_index("account")""",
    ),
    (
        "md",
        """An account's own history (`store.history(account_id)`, the CSM page's sparkline) shows
whether it jumped, slid slowly across the line, or hovers around it. Accounts that hover flip
between yellow and red from week to week; if that floods the list, alert on two weeks in red or on
a minimum jump rather than on every crossing.""",
    ),
    (
        "code",
        """fig, ax = plt.subplots(figsize=(9, 3.5))
for acc in new_red.nlargest(5, "arr_at_risk")["account_id"]:
    h = pd.DataFrame(store.history(acc))
    ax.plot(pd.to_datetime(h["as_of"]), h["churn_probability"], marker="o", ms=3,
            label=h["name"].iloc[-1])
for level, colour in ((cfg.bands.red, "tab:red"), (cfg.bands.yellow, "goldenrod")):
    ax.axhline(level, color=colour, ls=":", lw=1)
ax.set_ylabel("13-week churn probability")
ax.set_title("Accounts that moved to red this week")
ax.legend(fontsize=8, loc="upper left")
fig.autofmt_xdate()
plt.show()""",
    ),
    (
        "md",
        """## 2. ARR at risk by segment and touch tier

`arr_at_risk` is probability × ARR: the ARR expected to leave within 13 weeks. Summed over a
segment it is the segment's expected loss, red or not; the ARR of red accounts is the part someone
is working on this week.""",
    ),
    (
        "code",
        """fig, axes = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
for ax, col in zip(axes, ["plan", "touch_tier"], strict=True):
    by_week = hist.pivot_table(index="as_of", columns=col, values="arr_at_risk", aggfunc="sum")
    (by_week / 1000).plot(ax=ax, marker="o", ms=3)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("ARR at risk (thousands)")
    ax.set_title(f"ARR at risk by {col}")
    ax.legend(title=col, bbox_to_anchor=(1.01, 1), loc="upper left")
axes[1].set_xlabel("")
plt.tight_layout()
plt.show()

# First week next to this week, per plan, in thousands.
first_week, last_week = hist["as_of"].min(), hist["as_of"].max()
ends = hist[hist["as_of"].isin([first_week, last_week])].assign(
    arr_in_red=lambda d: d["arr"].where(d["risk_band"] == "red", 0.0),
    week=lambda d: d["as_of"].dt.strftime("%Y-%m-%d"),
)
(
    ends.pivot_table(
        index="plan", columns="week", values=["arr", "arr_at_risk", "arr_in_red"], aggfunc="sum"
    )
    / 1000
).round().astype(int)""",
    ),
    (
        "md",
        """## 3. How the book moved since last week

Band transitions between the last two scoring dates, from the history table above rather than
`previous_scores()`: accounts that left (churned) since last week and new accounts are part of the
picture.""",
    ),
    (
        "code",
        """before, last = sorted(hist["as_of"].drop_duplicates())[-2:]
moves = pd.merge(
    hist.loc[hist["as_of"] == before, ["account_id", "risk_band"]],
    hist.loc[hist["as_of"] == last, ["account_id", "risk_band"]],
    on="account_id",
    how="outer",
    suffixes=("_before", "_now"),
).fillna({"risk_band_before": "(new)", "risk_band_now": "(left)"})
matrix = (
    pd.crosstab(moves["risk_band_before"], moves["risk_band_now"])
    .reindex(index=[*BANDS, "(new)"], columns=[*BANDS, "(left)"], fill_value=0)
    .rename_axis(index=f"band on {before:%Y-%m-%d}", columns=f"band on {last:%Y-%m-%d}")
)
matrix""",
    ),
    (
        "md",
        """## 4. Red accounts per CSM

This week's red and yellow accounts per CSM, with the ARR behind them. Accounts without a CSM are
mostly the tech-touch book: their plays go to automation or a pooled team.""",
    ),
    (
        "code",
        """workload = (
    latest.assign(
        csm=latest["csm_id"].fillna("(no CSM)"),
        red=latest["risk_band"] == "red",
        yellow=latest["risk_band"] == "yellow",
        new_red=latest["account_id"].isin(new_red["account_id"]),
        red_arr=latest["arr"].where(latest["risk_band"] == "red", 0.0),
    )
    .groupby("csm")
    .agg(
        accounts=("account_id", "size"),
        red=("red", "sum"),
        new_red=("new_red", "sum"),
        yellow=("yellow", "sum"),
        red_arr=("red_arr", "sum"),
        arr_at_risk=("arr_at_risk", "sum"),
    )
    .sort_values(["red", "red_arr"], ascending=False)
)
workload.astype({"red_arr": int, "arr_at_risk": int})""",
    ),
    (
        "md",
        """## 5. What happened next

In production the churn events arrive in the following weeks; the simulator already has them. For
each scoring date we count, per band, the accounts that churned within the next 13 weeks (the
model's horizon).

Read this honestly: it is one simulated world (the same one the model was trained on, one seed, a
thousand accounts), the counts in red are small, and the eight dates share most of their
accounts, so the pooled rows are not eight independent checks. It shows how to run the check on
your own history, not how good the model will be on your book.""",
    ),
    (
        "code",
        """churn = base.tables["churn_events"].assign(
    churned_at=lambda d: d["churned_at"].dt.tz_convert(None)
)
out = hist.merge(churn[["account_id", "churned_at", "avoidable"]], on="account_id", how="left")
start = out["as_of"] + pd.Timedelta(days=1)  # scores see data up to the end of as_of
out["churned_13w"] = (out["churned_at"] >= start) & (
    out["churned_at"] < start + pd.Timedelta(weeks=13)
)
out["avoidable_13w"] = out["churned_13w"] & out["avoidable"].fillna(False).astype(bool)


def outcome(d):
    return (
        d.groupby("risk_band")
        .agg(
            accounts=("account_id", "size"),
            predicted=("churn_probability", "mean"),
            churned=("churned_13w", "sum"),
            churn_rate=("churned_13w", "mean"),
            avoidable=("avoidable_13w", "sum"),
        )
        .reindex(BANDS)
    )


pd.concat(
    {
        f"first week ({first_week:%Y-%m-%d})": outcome(out[out["as_of"] == first_week]),
        "all eight weeks (account-weeks)": outcome(out),
    }
).round(3)""",
    ),
    (
        "md",
        """`predicted` is the band's mean probability, `churn_rate` what happened. Two things to
look for: red and yellow accounts should churn several times more often than green ones (the
ranking works), and each band's `churn_rate` should be near its `predicted` (the probabilities can
be read as rates). A band far off its prediction over a few quarters is worth raising with
whoever owns the model; with a few dozen red accounts, one quarter is a noisy check. The model
predicts avoidable churn only (acquisitions and bankruptcies are excluded from its labels):
compare `avoidable`.

## 6. Comparing history across model versions

Every row keeps the `model_version` that scored it. When the champion changes, a jump in the
week of the switch may be the new model rather than the customer:

- filter or group by `model_version` before comparing weeks
  (`store.history(account_id, model_version=...)`, or `WHERE model_version = ...`);
- mark the switch date on trend charts such as the ones above;
- to compare two models on the same accounts, score the same date with both: the store keeps both
  runs, and a re-run of an old date never replaces a newer date's score.""",
    ),
    (
        "code",
        """pd.read_sql(
    \"\"\"SELECT model_version, MIN(as_of) AS first_date, MAX(as_of) AS last_date,
              COUNT(*) AS runs, SUM(n_accounts) AS rows
       FROM churnlens_score_runs GROUP BY model_version ORDER BY first_date\"\"\",
    store.engine,
)""",
    ),
    (
        "code",
        """# Checks that keep this notebook honest when it runs in CI.
pooled = outcome(out)
assert len(store.runs()) == len(weeks) == hist["as_of"].nunique()
assert len(latest) == (hist["as_of"] == last_week).sum()
assert matrix.to_numpy().sum() == len(moves)
at_risk = pooled.loc[["yellow", "red"]]
assert at_risk["churned"].sum() / at_risk["accounts"].sum() > 3 * pooled.loc["green", "churn_rate"]
assert abs(hist["arr_at_risk"].sum() - (hist["churn_probability"] * hist["arr"]).sum()) < 1
store.close()
"ok\"""",
    ),
]


def build(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """A notebook from (kind, source) pairs, with no outputs."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for kind, src in cells:
        cell = (
            nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
        )
        cell.pop("id", None)
        nb.cells.append(cell)
    nb.nbformat_minor = 4
    return nb


NOTEBOOKS = {
    "01_indicators_tour.ipynb": INDICATORS_TOUR,
    "02_model_report.ipynb": MODEL_REPORT,
    "03_score_history.ipynb": SCORE_HISTORY,
}


def render_all() -> dict[str, str]:
    """File name -> notebook JSON text."""
    return {name: nbformat.writes(build(cells)) + "\n" for name, cells in NOTEBOOKS.items()}


if __name__ == "__main__":
    for name, text in render_all().items():
        (HERE / name).write_text(text, encoding="utf-8")
        print(f"wrote notebooks/{name}", file=sys.stderr)
