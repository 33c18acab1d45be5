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
}


def render_all() -> dict[str, str]:
    """File name -> notebook JSON text."""
    return {name: nbformat.writes(build(cells)) + "\n" for name, cells in NOTEBOOKS.items()}


if __name__ == "__main__":
    for name, text in render_all().items():
        (HERE / name).write_text(text, encoding="utf-8")
        print(f"wrote notebooks/{name}", file=sys.stderr)
