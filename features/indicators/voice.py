"""Voice of the customer: NPS level and change, detractors, survey response and silence."""

from __future__ import annotations

import numpy as np

from ._math import Values, flag, isknown, ratio
from .registry import indicator


@indicator(
    family="voice",
    direction="down",
    unit="score 0-10",
    source="surveys",
    en="Last NPS answer: {value:.0f}/10",
    ja="直近のNPS回答: {value:.0f}/10",
)
def nps_last(last_nps: Values) -> Values:
    """The most recent NPS answer (0-10)."""
    return last_nps


@indicator(
    family="voice",
    direction="down",
    unit="points",
    source="surveys",
    en="NPS {trend} {abs:.0f} points since the previous answer",
    ja="NPSが前回の回答から{abs:.0f}ポイント{trend}",
)
def nps_change(last_nps: Values, previous_nps: Values) -> Values:
    """Last NPS answer minus the one before it."""
    return last_nps - previous_nps


@indicator(
    family="voice",
    direction="up",
    unit="flag",
    source="surveys",
    en="The last NPS answer was a detractor (0-6)",
    ja="直近のNPS回答は批判者（0〜6）",
)
def nps_detractor(nps_last: Values) -> Values:
    """1 when the last NPS answer was 0-6."""
    return flag(nps_last <= 6, isknown(nps_last))


@indicator(
    family="voice",
    direction="down",
    unit="share",
    source="surveys",
    en="Answered {value:.0%} of surveys in the last 26 weeks",
    ja="直近26週間のアンケート回答率は{value:.0%}",
)
def survey_response_rate_26w(
    sum_surveys_answered_26w: Values, sum_surveys_sent_26w: Values
) -> Values:
    """Surveys answered / surveys sent over the last 26 weeks (capped at 1)."""
    return np.minimum(ratio(sum_surveys_answered_26w, sum_surveys_sent_26w), 1.0)


@indicator(
    family="voice",
    direction="up",
    unit="weeks",
    source="surveys",
    en="No survey answered in {value:.0f} week{s}",
    ja="{value:.0f}週間アンケートへの回答なし",
)
def weeks_since_survey_answer(
    since_surveys_answered: Values, weeks_observed: Values, sum_surveys_sent_26w: Values
) -> Values:
    """Weeks since the last survey answer (the whole tenure when there was none)."""
    never = np.isnan(since_surveys_answered) & isknown(sum_surveys_sent_26w)
    return np.where(never, weeks_observed, since_surveys_answered)
