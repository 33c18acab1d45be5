"""Cut the small committed test samples from the two public datasets, in their source format.

Run::

    python -m churnlens.datasets.samples --fightchurn SRC --ravenstack SRC --out tests/data

which writes ``tests/data/fightchurn-sample/`` and ``tests/data/ravenstack-sample/``, each with a
``README.md`` carrying the dataset's credit and licence lines. The cut is deterministic (fixed
seed, sorted candidate lists) and keeps the source files' columns, text and row order, so tests run
the adapters on source-format files.

- fightchurn: :data:`FC_ACCOUNTS` accounts with all their subscriptions and events: churners
  (some within a week of the data end), an account renewed on the last day of the data (so the
  sample's data end is the full data's), the rest not churned; only accounts with at most
  :data:`FC_MAX_EVENTS` events, so the gzipped events stay small. socialnet7 has no gap between
  periods, so **one subscription is edited**: the start of the second period of the account in
  :data:`FC_GAP_ACCOUNT_RANK` is moved :data:`FC_GAP_DAYS` days later, giving a short renewal gap.
  The README names the account and the change.
- ravenstack: about :data:`RS_ACCOUNTS` accounts with all their subscriptions, feature usage,
  tickets and churn events, including examples of every known inconsistency (churn_flag against
  churn_events both ways, colliding usage_id pairs, several churns, a same-day repeat churn, a
  reactivation with no earlier churn, subscriptions flagged both upgrade and downgrade).
"""

from __future__ import annotations

import argparse
import gzip
import logging
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

log = logging.getLogger(__name__)

SEED = 20240601
FC_ACCOUNTS = 60
FC_CHURNERS = 16
FC_NEAR_END_CHURNERS = 2
FC_MAX_EVENTS = 2500
FC_GAP_DAYS = 3
FC_GAP_ACCOUNT_RANK = 0
RS_ACCOUNTS = 100
RS_EXAMPLES = 3

FC_CREDIT = """\
Source: output of the ChurnSim simulator in carl24k/fight-churn (commit 1310fc75, MIT licence,
(c) 2020 Carl Gold; companion code of the book *Fighting Churn with Data*). Config `socialnet7`
with 2,000 starting customers, seed 42, 2020-01-01 to 2020-06-01.
"""

RS_CREDIT = """\
Source: the "RavenStack" synthetic SaaS dataset by River @ Rivalytics (licence "MIT-like", credit
required; see the dataset's `KAGGLE_README.md`, quoted below), as committed untouched in
Leop-SR/RetainIQ (commit 54fac999).

From the dataset's KAGGLE_README:

- Author: River @ Rivalytics
- Credit Requirement: You may use or remix this dataset for educational or portfolio purposes, but
  please credit the original author.
- License: MIT-like (fully synthetic, no PII)
- "This dataset is fully synthetic and distributed under a permissive MIT-like license. You may use
  or remix it for learning, research, or portfolio purposes, but you must credit the dataset
  author: River @ Rivalytics."
"""


def _paragraphs(text: str) -> str:
    """Re-wrap each paragraph of ``text`` at 100 columns (lists and headings left alone)."""
    out = []
    for block in text.strip().split("\n\n"):
        if block.startswith(("#", "- ")):
            out.append(block)
        else:
            out.append(textwrap.fill(" ".join(block.split()), width=100, break_on_hyphens=False))
    return "\n\n".join(out) + "\n"


def _line_end(path: Path) -> str:
    """The line terminator of ``path`` (CRLF or LF), read from its first line."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as f:
        return "\r\n" if f.readline().endswith(b"\r\n") else "\n"


def _read_text(path: Path) -> pd.DataFrame:
    """A CSV with every field kept as its original text (empty stays empty)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)


def _write_csv(df: pd.DataFrame, path: Path, line_end: str) -> None:
    """Write text columns back as CSV; ``.gz`` gets a fixed gzip header (reproducible bytes)."""
    if path.name.endswith(".gz"):
        compression: dict[str, object] | None = {"method": "gzip", "mtime": 0}
    else:
        compression = None
    df.to_csv(path, index=False, lineterminator=line_end, compression=compression)


def _pick(rng: np.random.Generator, pool: list[str], n: int, taken: set[str]) -> list[str]:
    """``n`` ids from ``pool`` (sorted, minus ``taken``), drawn with ``rng``."""
    candidates = sorted(set(pool) - taken)
    if n <= 0 or not candidates:
        return []
    return sorted(str(x) for x in rng.choice(candidates, min(n, len(candidates)), replace=False))


def _fc_events(path: Path) -> pd.DataFrame:
    text = {c: pa.string() for c in ("account_id", "event_time", "event_type_id", "user_id")}
    text["event_value"] = pa.string()
    opts = pacsv.ConvertOptions(column_types=text, strings_can_be_null=False)
    return pacsv.read_csv(path, convert_options=opts).to_pandas()


def cut_fightchurn(source: Path, out: Path) -> dict[str, int]:
    """Write the fightchurn sample to ``out``; returns rows per file."""
    out.mkdir(parents=True, exist_ok=True)
    accounts = _read_text(source / "account.csv")
    subs = _read_text(source / "subscription.csv")
    types = _read_text(source / "event_type.csv")
    event_file = source / "event.csv.gz"
    if not event_file.exists():
        event_file = source / "event.csv"
    events = _fc_events(event_file)

    start = pd.to_datetime(subs["start_date"])
    end = pd.to_datetime(subs["end_date"])
    data_end = start.max()
    last_end = end.groupby(subs["account_id"]).max()
    n_events = events["account_id"].value_counts()
    small = set(n_events[n_events <= FC_MAX_EVENTS].index)
    churners = [a for a in last_end.index[last_end <= data_end] if a in small]
    near = [a for a in churners if last_end[a] > data_end - pd.Timedelta(days=7)]
    renewed_last_day = [a for a in subs.loc[start == data_end, "account_id"] if a in small]
    periods = subs["account_id"].value_counts()
    stayers = [a for a in last_end.index[last_end > data_end] if a in small]

    rng = np.random.default_rng(SEED)
    chosen: set[str] = set()
    chosen |= set(_pick(rng, near, FC_NEAR_END_CHURNERS, chosen))
    chosen |= set(_pick(rng, churners, FC_CHURNERS - len(chosen), chosen))
    chosen |= set(_pick(rng, renewed_last_day, 1, chosen))
    long_stayers = [a for a in stayers if periods[a] >= 4]
    gap_pool = _pick(rng, long_stayers, 1, chosen)
    chosen |= set(gap_pool)
    chosen |= set(_pick(rng, stayers, FC_ACCOUNTS - len(chosen), chosen))

    sub_out = subs[subs["account_id"].isin(chosen)].copy()
    gap_account = gap_pool[FC_GAP_ACCOUNT_RANK]
    rows = sub_out.index[sub_out["account_id"] == gap_account]
    second = pd.to_datetime(sub_out.loc[rows, "start_date"]).sort_values().index[1]
    old = sub_out.loc[second, "start_date"]
    new = (pd.Timestamp(old) + pd.Timedelta(days=FC_GAP_DAYS)).strftime("%Y-%m-%d")
    sub_out.loc[second, "start_date"] = new
    log.info("fightchurn sample: account %s period start %s moved to %s", gap_account, old, new)

    files = {
        "account.csv": accounts[accounts["account_id"].isin(chosen)],
        "subscription.csv": sub_out,
        "event.csv.gz": events[events["account_id"].isin(chosen)],
        "event_type.csv": types,
    }
    for name, df in files.items():
        origin = event_file if name == "event.csv.gz" else source / name
        _write_csv(df, out / name, _line_end(origin))
    n_churn = len(set(churners) & chosen)
    readme = f"""# fightchurn sample (test fixture)

{FC_CREDIT}
Cut by `python -m churnlens.datasets.samples` (seed {SEED}) from
`{source.name}/`: {len(chosen)} accounts with all their subscriptions and
events, in the source format. {n_churn} of them churned by {data_end.date()} (coverage ended on or
before the last subscription start and did not resume); accounts with more than {FC_MAX_EVENTS}
events were not drawn, to keep `event.csv.gz` small.

**Edited (not in the original data):** socialnet7 has no gap between subscription periods, so the
second period of account {gap_account} starts {new} instead of {old}, a {FC_GAP_DAYS}-day gap that
the adapter must read as a renewal. Everything else is unchanged text.
"""
    (out / "README.md").write_text(_paragraphs(readme), encoding="utf-8")
    return {name: len(df) for name, df in files.items()}


def _rs_examples(
    acc: pd.DataFrame, subs: pd.DataFrame, usage: pd.DataFrame, churn: pd.DataFrame
) -> dict[str, list[tuple[str, ...]]]:
    """Per known inconsistency, the groups of accounts that show it (a pair for an id collision)."""
    has_event = acc["account_id"].isin(churn["account_id"])
    flag = acc["churn_flag"].str.lower() == "true"
    owner = usage["subscription_id"].map(subs.set_index("subscription_id")["account_id"])
    shared = usage["usage_id"].duplicated(keep=False)
    owners = pd.DataFrame({"usage_id": usage["usage_id"], "account_id": owner})[shared]
    pairs: list[tuple[str, ...]] = [
        tuple(sorted({str(a) for a in grp["account_id"]}))
        for _, grp in owners.groupby("usage_id", sort=True)
    ]
    per = churn["account_id"].value_counts()
    first = churn.sort_values(["account_id", "churn_date", "churn_event_id"])
    first = first.drop_duplicates("account_id")
    react_first = first.loc[first["is_reactivation"].str.lower() == "true", "account_id"]
    same_day = churn.loc[churn.duplicated(["account_id", "churn_date"]), "account_id"]
    up = subs["upgrade_flag"].str.lower() == "true"
    down = subs["downgrade_flag"].str.lower() == "true"

    def single(ids: pd.Series | pd.Index) -> list[tuple[str, ...]]:
        return [(str(a),) for a in sorted(set(ids))]

    return {
        "churn_flag_without_event": single(acc.loc[flag & ~has_event, "account_id"]),
        "churn_event_without_flag": single(acc.loc[~flag & has_event, "account_id"]),
        "usage_id_collision": sorted({tuple(str(a) for a in ids) for ids in pairs}),
        "three_or_more_churns": single(per[per >= 3].index),
        "same_day_churns": single(same_day),
        "reactivation_without_prior_churn": single(react_first),
        "upgrade_and_downgrade": single(subs.loc[up & down, "account_id"]),
    }


def _choose_ravenstack(examples: dict[str, list[tuple[str, ...]]], all_ids: list[str]) -> set[str]:
    """Up to :data:`RS_EXAMPLES` groups per inconsistency, then random accounts up to the target."""
    rng = np.random.default_rng(SEED)
    chosen: set[str] = set()
    for groups in examples.values():
        have = sum(set(g) <= chosen for g in groups)
        rest = [g for g in groups if not set(g) <= chosen]
        n = min(RS_EXAMPLES - have, len(rest))
        if n > 0:
            for i in sorted(rng.choice(len(rest), n, replace=False)):
                chosen |= set(rest[i])
    chosen |= set(_pick(rng, all_ids, RS_ACCOUNTS - len(chosen), chosen))
    return chosen


def cut_ravenstack(source: Path, out: Path) -> dict[str, int]:
    """Write the ravenstack sample to ``out``; returns rows per file."""
    out.mkdir(parents=True, exist_ok=True)
    names = ("accounts", "subscriptions", "feature_usage", "support_tickets", "churn_events")
    src = {n: _read_text(source / f"ravenstack_{n}.csv") for n in names}
    acc, subs, usage = src["accounts"], src["subscriptions"], src["feature_usage"]
    examples = _rs_examples(acc, subs, usage, src["churn_events"])
    chosen = _choose_ravenstack(examples, list(acc["account_id"]))

    sub_ids = set(subs.loc[subs["account_id"].isin(chosen), "subscription_id"])
    files = {
        "ravenstack_accounts.csv": acc[acc["account_id"].isin(chosen)],
        "ravenstack_subscriptions.csv": subs[subs["subscription_id"].isin(sub_ids)],
        "ravenstack_feature_usage.csv": usage[usage["subscription_id"].isin(sub_ids)],
        "ravenstack_support_tickets.csv": src["support_tickets"][
            src["support_tickets"]["account_id"].isin(chosen)
        ],
        "ravenstack_churn_events.csv": src["churn_events"][
            src["churn_events"]["account_id"].isin(chosen)
        ],
    }
    for name, df in files.items():
        _write_csv(df, out / name, _line_end(source / name))
    readme = f"""# ravenstack sample (test fixture)

{RS_CREDIT}
Cut by `python -m churnlens.datasets.samples` (seed {SEED}) from `{source.name}/`:
{len(chosen)} accounts with all their subscriptions, feature usage, support tickets and churn
events, in the source format and unedited. The accounts were chosen to keep examples of each known
inconsistency (churn_flag against churn_events both ways, usage rows outside their subscription's
dates, colliding usage_id pairs, several churns per account, a same-day repeat churn, a
reactivation with no earlier churn, subscriptions flagged both upgrade and downgrade).
"""
    (out / "README.md").write_text(_paragraphs(readme), encoding="utf-8")
    return {name: len(df) for name, df in files.items()}


def main(argv: list[str] | None = None) -> int:
    """Command line: cut one or both samples."""
    parser = argparse.ArgumentParser(prog="python -m churnlens.datasets.samples")
    parser.add_argument("--fightchurn", type=Path, help="folder of the fightchurn socialnet7 data")
    parser.add_argument("--ravenstack", type=Path, help="folder of the ravenstack data")
    parser.add_argument("--out", type=Path, required=True, help="e.g. tests/data")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.fightchurn is None and args.ravenstack is None:
        parser.error("give --fightchurn and/or --ravenstack")
    if args.fightchurn is not None:
        rows = cut_fightchurn(args.fightchurn, args.out / "fightchurn-sample")
        log.info("fightchurn-sample: %s", rows)
    if args.ravenstack is not None:
        rows = cut_ravenstack(args.ravenstack, args.out / "ravenstack-sample")
        log.info("ravenstack-sample: %s", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
