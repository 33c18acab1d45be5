"""Support load: ticket spikes, urgent tickets, backlog."""

from __future__ import annotations

import numpy as np

from ._math import Values, isknown, ratio
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
    sum_tickets_opened_4w: Values,
    sum_tickets_opened_13w: Values,
    weeks_4w: Values,
    weeks_13w: Values,
) -> Values:
    """Weekly ticket rate of the last 4 weeks divided by that of the last 13 (1 = steady)."""
    spike = ratio(ratio(sum_tickets_opened_4w, weeks_4w), ratio(sum_tickets_opened_13w, weeks_13w))
    # No tickets at all in 13 weeks is a steady state, not an unknown.
    return np.where(sum_tickets_opened_13w == 0, 0.0, spike)


@indicator(
    family="support",
    direction="up",
    unit="count",
    source="tickets",
    en="{value:.0f} ticket{s} in the last 13 weeks",
    ja="直近13週間の問い合わせは{value:.0f}件",
)
def tickets_13w(sum_tickets_opened_13w: Values) -> Values:
    """Tickets opened in the last 13 weeks."""
    return sum_tickets_opened_13w


@indicator(
    family="support",
    direction="up",
    unit="count",
    source="tickets",
    en="{value:.0f} urgent ticket{s} in the last 13 weeks",
    ja="直近13週間の緊急の問い合わせは{value:.0f}件",
)
def urgent_tickets_13w(sum_tickets_urgent_13w: Values) -> Values:
    """Urgent tickets opened in the last 13 weeks."""
    return sum_tickets_urgent_13w


@indicator(
    family="support",
    direction="up",
    unit="count",
    source="tickets",
    en="{value:.0f} ticket{s} still open",
    ja="未解決の問い合わせが{value:.0f}件",
)
def open_tickets(now_tickets_open: Values) -> Values:
    """Tickets open at the end of the last complete week (backlog)."""
    return now_tickets_open


@indicator(
    family="support",
    direction="none",
    unit="weeks",
    source="tickets",
    en="Last ticket {value:.0f} week{s} ago",
    ja="最後の問い合わせは{value:.0f}週間前",
)
def weeks_since_last_ticket(
    since_tickets_opened: Values, weeks_observed: Values, sum_tickets_opened_26w: Values
) -> Values:
    """Weeks since the last ticket (the whole tenure when there was none)."""
    never = np.isnan(since_tickets_opened) & isknown(sum_tickets_opened_26w)
    return np.where(never, weeks_observed, since_tickets_opened)
