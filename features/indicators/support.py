"""Support load: ticket spikes, urgent tickets, backlog."""

from __future__ import annotations

import pandas as pd

from ._math import ratio
from .registry import indicator


@indicator(
    family="support",
    direction="up",
    unit="ratio",
    source="tickets",
    en="Tickets in the last 4 weeks at {value:.1f}x the 13-week rate",
    ja="直近4週間の問い合わせが13週間平均の{value:.1f}倍",
)
def ticket_spike_4w_vs_13w(
    sum_tickets_opened_4w: pd.Series,
    sum_tickets_opened_13w: pd.Series,
    weeks_4w: pd.Series,
    weeks_13w: pd.Series,
) -> pd.Series:
    """Weekly ticket rate of the last 4 weeks divided by that of the last 13 (1 = steady)."""
    spike = ratio(ratio(sum_tickets_opened_4w, weeks_4w), ratio(sum_tickets_opened_13w, weeks_13w))
    # No tickets at all in 13 weeks is a steady state, not an unknown.
    return spike.mask((sum_tickets_opened_13w == 0), 0.0)


@indicator(
    family="support",
    direction="up",
    unit="count",
    source="tickets",
    en="{value:.0f} tickets in the last 13 weeks",
    ja="直近13週間の問い合わせは{value:.0f}件",
)
def tickets_13w(sum_tickets_opened_13w: pd.Series) -> pd.Series:
    """Tickets opened in the last 13 weeks."""
    return sum_tickets_opened_13w


@indicator(
    family="support",
    direction="up",
    unit="count",
    source="tickets",
    en="{value:.0f} urgent tickets in the last 13 weeks",
    ja="直近13週間の緊急の問い合わせは{value:.0f}件",
)
def urgent_tickets_13w(sum_tickets_urgent_13w: pd.Series) -> pd.Series:
    """Urgent tickets opened in the last 13 weeks."""
    return sum_tickets_urgent_13w


@indicator(
    family="support",
    direction="up",
    unit="count",
    source="tickets",
    en="{value:.0f} tickets still open",
    ja="未解決の問い合わせが{value:.0f}件",
)
def open_tickets(now_tickets_open: pd.Series) -> pd.Series:
    """Tickets open at the end of the last complete week (backlog)."""
    return now_tickets_open


@indicator(
    family="support",
    direction="none",
    unit="weeks",
    source="tickets",
    en="Last ticket {value:.0f} weeks ago",
    ja="最後の問い合わせは{value:.0f}週間前",
)
def weeks_since_last_ticket(
    since_tickets_opened: pd.Series, weeks_observed: pd.Series, sum_tickets_opened_26w: pd.Series
) -> pd.Series:
    """Weeks since the last ticket (the whole tenure when there was none)."""
    never = since_tickets_opened.isna() & sum_tickets_opened_26w.notna()
    return since_tickets_opened.mask(never, weeks_observed)
