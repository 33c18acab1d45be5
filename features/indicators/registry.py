"""The indicator registry: one pure function per indicator, its metadata declared next to it.

An indicator function is named after the column it returns. Its parameters name its inputs: window
aggregates from :mod:`.inputs` (e.g. ``logins_4w``) or other indicators; the resolver in
:mod:`.compute` passes them in (Hamilton style). Metadata (family, risk direction, unit, the
sentence a CSM reads in English and Japanese) is given once, in the decorator.

Sentence templates are ``str.format`` strings with ``value`` (the indicator), ``abs`` (its absolute
value), ``trend`` (a word for its sign: up / down / unchanged, or 増加 / 減少 / 横ばい), and ``s`` /
``es``, the English plural endings of a noun counted by ``{value:.0f}`` (empty when it shows 1).
"""

from __future__ import annotations

import hashlib
import inspect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ._math import Values

Family = Literal[
    "usage", "adoption", "support", "voice", "silence", "relationship", "lifecycle", "commercial"
]
Direction = Literal["up", "down", "none"]
Lang = Literal["en", "ja"]

FAMILIES: tuple[Family, ...] = (
    "usage",
    "adoption",
    "support",
    "voice",
    "silence",
    "relationship",
    "lifecycle",
    "commercial",
)
FAMILY_LABELS: dict[Family, dict[Lang, str]] = {
    "usage": {"en": "Usage decline", "ja": "利用の減少"},
    "adoption": {"en": "Adoption and breadth", "ja": "機能の定着・活用の幅"},
    "support": {"en": "Support load", "ja": "サポート問い合わせ"},
    "voice": {"en": "Voice of the customer", "ja": "顧客の声（NPS・アンケート）"},
    "silence": {"en": "Silent customer", "ja": "サイレントカスタマー"},
    "relationship": {"en": "Relationship", "ja": "関係性・接点"},
    "lifecycle": {"en": "Lifecycle and onboarding", "ja": "ライフサイクル・オンボーディング"},
    "commercial": {"en": "Contract and renewal", "ja": "契約・更新"},
}
_TREND: dict[Lang, tuple[str, str, str]] = {
    "en": ("up", "down", "unchanged"),
    "ja": ("増加", "減少", "横ばい"),
}

# A change given as a share beside its direction: "{trend} {abs:.0%}" / "{abs:.0%}{trend}".
_TREND_SHARE = re.compile(r"\{trend\} \{abs:([^}]*%)\}|\{abs:([^}]*%)\}\{trend\}")

IndicatorFn = Callable[..., Values]


@dataclass(frozen=True)
class Indicator:
    """A registered indicator and its metadata."""

    name: str
    func: IndicatorFn
    family: Family
    direction: Direction
    unit: str
    description: str
    en: str
    ja: str
    source: str
    inputs: tuple[str, ...] = ()  # names of the function's parameters, filled at registration


REGISTRY: dict[str, Indicator] = {}


def indicator(
    *, family: Family, direction: Direction, unit: str, en: str, ja: str, source: str
) -> Callable[[IndicatorFn], IndicatorFn]:
    """Register the decorated function as the indicator named after it.

    Args:
        family: reason family the indicator explains.
        direction: "up" when a higher value means more risk, "down" when less, else "none".
        unit: unit of the value (e.g. "ratio", "weeks", "count", "share", "flag").
        en: English sentence template for a CSM.
        ja: Japanese sentence template.
        source: contract table the indicator depends on ("accounts" for the profile).
    """

    def register(func: IndicatorFn) -> IndicatorFn:
        name = func.__name__
        if name in REGISTRY and REGISTRY[name].func is not func:
            raise ValueError(f"indicator {name!r} registered twice")
        doc = (inspect.getdoc(func) or "").split("\n")[0]
        if not doc:
            raise ValueError(f"indicator {name!r} needs a one-line docstring")
        params = tuple(inspect.signature(func).parameters)
        REGISTRY[name] = Indicator(name, func, family, direction, unit, doc, en, ja, source, params)
        return func

    return register


def in_family_order() -> list[str]:
    """Every registered indicator, family by family (usage first), registration order within."""
    return sorted(REGISTRY, key=lambda name: FAMILIES.index(REGISTRY[name].family))


def describe(name: str) -> Indicator | None:
    """A registered indicator, or a tracked event group's (:mod:`.tracked`); None otherwise."""
    if name in REGISTRY:
        return REGISTRY[name]
    from .tracked import describe as tracked

    return tracked(name)


def render(name: str, value: float, lang: Lang = "en") -> str:
    """The CSM sentence for indicator ``name`` at ``value``."""
    ind = describe(name)
    if ind is None:
        raise KeyError(f"unknown indicator {name!r}")
    template = ind.ja if lang == "ja" else ind.en
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if ind.unit == "flag" and value < 0.5:
        return ""  # a flag's sentence states the condition; it says nothing when false
    up, down, flat = _TREND[lang]
    trend = up if value > 0 else down if value < 0 else flat
    share = _TREND_SHARE.search(template)
    if share and format(abs(value), share.group(1) or share.group(2)).strip("0.%") == "":
        # A change that shows as 0% is no change: "Logins unchanged", not "Logins up 0%".
        template, trend = _TREND_SHARE.sub("{trend}", template), flat
    one = abs(round(value)) == 1  # as "{value:.0f}" shows it
    return template.format(
        value=value, abs=abs(value), trend=trend, s="" if one else "s", es="" if one else "es"
    )


def code_version() -> str:
    """A digest of every registered indicator's source, recorded with each model."""
    h = hashlib.sha256()
    for name in sorted(REGISTRY):
        h.update(name.encode())
        h.update(inspect.getsource(REGISTRY[name].func).encode())
    from . import tracked

    h.update(inspect.getsource(tracked).encode())
    return h.hexdigest()[:16]
