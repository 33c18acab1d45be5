"""Contract and renewal: revenue, contraction, downgrades, the approaching renewal.

``arr`` and ``seats`` come from the contract in force at the end of each week. Without a contracts
table they fall back to the accounts table's current values, which are static (not point in time).
``renewal_date`` is the account's next renewal as exported today; for an earlier ``as_of`` it is
rolled back by whole years (annual terms). Accounts with ``billing_period`` monthly renew at every
monthly anniversary of ``created_at`` instead: for them the next renewal is the next of those.
"""

from __future__ import annotations

import numpy as np

from ._math import Values, change, fill, flag, isknown
from .registry import indicator

_YEAR_DAYS = 365.2425


@indicator(
    family="commercial",
    direction="none",
    unit="currency",
    source="contracts",
    en="ARR {value:,.0f}",
    ja="ARR {value:,.0f}",
)
def arr(now_arr: Values, profile_arr: Values) -> Values:
    """Annual recurring revenue in force (contract, else the account's current ARR)."""
    return fill(now_arr, profile_arr)


@indicator(
    family="commercial",
    direction="down",
    unit="ratio",
    source="contracts",
    en="Seats {trend} {abs:.0%} over the last 13 weeks",
    ja="直近13週間で席数が{abs:.0%}{trend}",
)
def seats_change_13w(now_seats: Values, ago13_seats: Values) -> Values:
    """Relative change in licensed seats over the last 13 weeks (contraction < 0)."""
    return change(now_seats, ago13_seats)


@indicator(
    family="commercial",
    direction="up",
    unit="flag",
    source="contracts",
    en="ARR went down in the last 13 weeks (downgrade)",
    ja="直近13週間でARRが減少（ダウングレード）",
)
def downgraded_13w(now_arr: Values, ago13_arr: Values) -> Values:
    """1 when ARR in force is lower than 13 weeks ago."""
    return flag(now_arr < ago13_arr, isknown(now_arr) & isknown(ago13_arr))


@indicator(
    family="commercial",
    direction="down",
    unit="weeks",
    source="accounts",
    en="Renewal in {value:.0f} week{s}",
    ja="更新まで{value:.0f}週間",
)
def weeks_to_renewal(
    days_to_renewal_date: Values, days_to_monthly_anniversary: Values, billing_monthly: Values
) -> Values:
    """Weeks until the next renewal (monthly anniversary if billed monthly, else annual)."""
    annual = np.mod(days_to_renewal_date, _YEAR_DAYS)
    return np.where(billing_monthly == 1, days_to_monthly_anniversary, annual) / 7.0


@indicator(
    family="commercial",
    direction="none",
    unit="flag",
    source="accounts",
    en="Billed monthly: the customer can leave at any monthly renewal",
    ja="月次契約: 毎月の更新時に解約できる",
)
def monthly_billing(billing_monthly: Values) -> Values:
    """1 for a monthly contract, 0 for an annual one (unknown without ``billing_period``)."""
    return billing_monthly
