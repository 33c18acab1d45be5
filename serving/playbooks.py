"""Playbooks: what a CS team does about a reason, per touch tier and risk band.

The catalog is YAML (``serving/playbooks.yaml`` is packaged; a team may ship its own), validated at
load with English and Japanese text for every human-readable field. A play matches a
``(family, touch tier, risk band)``; the first match in catalog order wins, so specific plays come
before broad ones. ``expansion`` is a pseudo-family for healthy promoters (green band, NPS >= 9).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ..errors import ChurnlensError
from ..features.indicators import FAMILIES
from .explain import LANGS, Reason, as_float, check_lang

CATALOG_FILE = "playbooks.yaml"
EXPANSION = "expansion"
PROMOTER_MIN_NPS = 9.0
TIERS = ("high", "low", "tech")
BANDS = ("red", "yellow", "green")

Tier = Literal["high", "low", "tech"]
Band = Literal["red", "yellow", "green"]
Channel = Literal["call", "email", "meeting", "in_app", "webinar", "ticket", "chat", "help_center"]
Owner = Literal[
    "csm", "support_engineer", "account_executive", "cs_ops", "automation", "executive_sponsor"
]
Urgency = Literal["high", "medium", "low"]
NonNegInt = Annotated[int, Field(strict=True, ge=0)]

_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_TIER_SUFFIX = re.compile(r"[\s_-]*touch$")


class PlaybookError(ChurnlensError):
    """A playbook catalog cannot be read or breaks the schema."""


def _check_text(value: dict[str, str]) -> dict[str, str]:
    """Every supported language present and non-blank, nothing else."""
    unknown = sorted(set(value) - set(LANGS))
    if unknown:
        raise ValueError(f"unknown language {unknown[0]!r}; expected {', '.join(LANGS)}")
    for lang in LANGS:
        if not value.get(lang, "").strip():
            raise ValueError(f"{lang!r} text is missing or empty")
    return value


class Task(BaseModel):
    """One step of a play's schedule, ``day`` days after the play starts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    day: NonNegInt
    en: str = Field(min_length=1)
    ja: str = Field(min_length=1)

    @field_validator("en", "ja")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("text is empty")
        return v

    def text(self, lang: str) -> str:
        """The task in ``lang``."""
        return self.ja if check_lang(lang) == "ja" else self.en


class Play(BaseModel):
    """One catalog entry: who does what, through which channel, how soon."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    family: str
    tiers: tuple[Tier, ...] = Field(min_length=1)
    bands: tuple[Band, ...] = Field(min_length=1)
    title: dict[str, str]
    action: dict[str, str]
    channel: Channel
    owner: Owner
    urgency: Urgency
    due_days: NonNegInt
    tasks: tuple[Task, ...] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _kebab(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(f"{v!r} is not kebab-case (lowercase letters, digits, hyphens)")
        return v

    @field_validator("family")
    @classmethod
    def _known_family(cls, v: str) -> str:
        if v not in (*FAMILIES, EXPANSION):
            raise ValueError(
                f"unknown family {v!r}; expected one of {', '.join(FAMILIES)}, expansion"
            )
        return v

    @field_validator("tiers", "bands")
    @classmethod
    def _no_repeats(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError("lists a value more than once")
        return v

    @field_validator("title", "action")
    @classmethod
    def _bilingual(cls, v: dict[str, str]) -> dict[str, str]:
        return _check_text(v)

    @field_validator("tasks")
    @classmethod
    def _in_order(cls, v: tuple[Task, ...]) -> tuple[Task, ...]:
        days = [t.day for t in v]
        if days != sorted(days):
            raise ValueError(f"tasks must be in day order, got days {days}")
        return v

    @model_validator(mode="after")
    def _expansion_is_green(self) -> Play:
        if self.family == EXPANSION and set(self.bands) != {"green"}:
            raise ValueError("expansion plays are for the green band only (bands: [green])")
        return self

    def matches(self, family: str, tier: str, band: str) -> bool:
        """Whether the play applies to ``family`` at ``tier`` in ``band``."""
        return self.family == family and tier in self.tiers and band in self.bands


class Catalog(BaseModel):
    """A versioned list of plays with unique ids."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: NonNegInt
    plays: tuple[Play, ...] = Field(min_length=1)

    @field_validator("plays")
    @classmethod
    def _unique_ids(cls, v: tuple[Play, ...]) -> tuple[Play, ...]:
        first: dict[str, int] = {}
        for i, play in enumerate(v):
            if play.id in first:
                raise PydanticCustomError(
                    "duplicate_play_id",
                    "duplicate id '{play_id}' (first used by plays[{first}])",
                    {"index": i, "play_id": play.id, "first": first[play.id]},
                )
            first[play.id] = i
        return v

    def find(self, family: str, tier: str, band: str) -> Play | None:
        """The first play for ``family`` at ``tier`` in ``band``, or None."""
        return next((p for p in self.plays if p.matches(family, tier, band)), None)

    def get(self, play_id: str) -> Play:
        """The play with id ``play_id`` (KeyError when absent)."""
        for play in self.plays:
            if play.id == play_id:
                return play
        raise KeyError(play_id)


def _where(loc: tuple[int | str, ...], raw: object) -> str:
    """``plays[3] (id 'x'): urgency`` from a pydantic error location."""
    parts: list[str] = []
    rest = list(loc)
    if len(rest) >= 2 and rest[0] == "plays" and isinstance(rest[1], int):
        i = rest[1]
        plays = raw.get("plays") if isinstance(raw, dict) else None
        entry = plays[i] if isinstance(plays, list) and i < len(plays) else None
        pid = entry.get("id") if isinstance(entry, dict) else None
        parts.append(f"plays[{i}]" + (f" (id {pid!r})" if pid is not None else ""))
        rest = rest[2:]
    path = ""
    for item in rest:
        path += f"[{item}]" if isinstance(item, int) else (f".{item}" if path else str(item))
    if path:
        parts.append(path)
    return ": ".join(parts)


def _describe(err: Any, raw: object) -> str:
    """One line for one pydantic error."""
    loc: tuple[int | str, ...] = tuple(err["loc"])
    if err["type"] == "duplicate_play_id":
        loc = ("plays", err["ctx"]["index"], "id")
    where = _where(loc, raw)
    return f"{where}: {err['msg']}" if where else str(err["msg"])


def load_catalog(path: Path | None = None) -> Catalog:
    """Read and validate a playbook catalog (None: the packaged ``playbooks.yaml``)."""
    if path is None:
        source = resources.files(__name__.rpartition(".")[0]).joinpath(CATALOG_FILE)
        name = str(source)
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as exc:  # pragma: no cover - a broken install
            raise PlaybookError(f"{name}: cannot read the packaged catalog: {exc}") from exc
    else:
        name = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise PlaybookError(f"{name}: cannot read: {exc.strerror or exc}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PlaybookError(f"{name}: invalid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise PlaybookError(
            f"{name}: expected a mapping with 'version' and 'plays', got {type(raw).__name__}"
        )
    try:
        return Catalog.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{name}: {_describe(e, raw)}" for e in exc.errors()]
        raise PlaybookError("\n".join(lines)) from exc


def touch_tier(tier: str | None, arr: float | None, high_min_arr: float, low_min_arr: float) -> str:
    """The account's touch tier if valid ("High-touch" -> "high"), else by ARR, else "tech"."""
    if high_min_arr < low_min_arr:
        raise ValueError(f"high_min_arr ({high_min_arr}) must be >= low_min_arr ({low_min_arr})")
    if isinstance(tier, str):
        norm = _TIER_SUFFIX.sub("", tier.strip().lower()).strip()
        if norm in TIERS:
            return norm
    value = as_float(arr)
    if math.isnan(value):
        return "tech"
    if value >= high_min_arr:
        return "high"
    if value >= low_min_arr:
        return "low"
    return "tech"


def risk_band(p: float, red: float = 0.30, yellow: float = 0.12) -> str:
    """``red`` when p >= red, ``yellow`` when p >= yellow, else ``green``."""
    if not 0.0 < yellow <= red <= 1.0:
        raise ValueError(f"need 0 < yellow <= red <= 1, got yellow={yellow}, red={red}")
    if not 0.0 <= as_float(p) <= 1.0:
        raise ValueError(f"churn probability must be in [0, 1], got {p!r}")
    if p >= red:
        return "red"
    if p >= yellow:
        return "yellow"
    return "green"


class TaskItem(TypedDict):
    """One scheduled step in one language."""

    day: int
    task: str


@dataclass(frozen=True)
class Recommendation:
    """A play chosen for an account, in one language."""

    play_id: str
    family: str
    title: str
    action: str
    channel: str
    owner: str
    urgency: str
    due_days: int
    tasks: list[TaskItem] = field(default_factory=list)

    @classmethod
    def from_play(cls, play: Play, lang: str) -> Recommendation:
        """``play`` rendered in ``lang``."""
        lg = check_lang(lang)
        return cls(
            play_id=play.id,
            family=play.family,
            title=play.title[lg],
            action=play.action[lg],
            channel=play.channel,
            owner=play.owner,
            urgency=play.urgency,
            due_days=play.due_days,
            tasks=[TaskItem(day=t.day, task=t.text(lg)) for t in play.tasks],
        )

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "play_id": self.play_id,
            "family": self.family,
            "title": self.title,
            "action": self.action,
            "channel": self.channel,
            "owner": self.owner,
            "urgency": self.urgency,
            "due_days": self.due_days,
            "tasks": [dict(t) for t in self.tasks],
        }


def is_promoter(nps_last: float | None) -> bool:
    """Whether the last NPS answer is known and >= 9."""
    return as_float(nps_last) >= PROMOTER_MIN_NPS  # NaN compares False


def choose_playbooks(
    reasons: Sequence[Reason],
    tier: str,
    band: str,
    catalog: Catalog,
    *,
    lang: str = "en",
    nps_last: float | None = None,
    max_plays: int = 3,
) -> list[Recommendation]:
    """Plays for one account: the expansion play for green-band promoters, then one per reason.

    Reasons are taken in order (most impactful first); each contributes the first catalog play
    matching ``(reason.family, tier, band)``, a play already chosen is not repeated, and reasons
    that do not raise risk (impact <= 0) are skipped. A green-band account without reasons gets
    nothing unless it is a promoter.
    """
    if tier not in TIERS:
        raise ValueError(f"unknown touch tier {tier!r}; expected one of {', '.join(TIERS)}")
    if band not in BANDS:
        raise ValueError(f"unknown risk band {band!r}; expected one of {', '.join(BANDS)}")
    if max_plays < 0:
        raise ValueError(f"max_plays must be >= 0, got {max_plays}")
    check_lang(lang)
    chosen: list[Play] = []
    if band == "green" and is_promoter(nps_last):
        expansion = catalog.find(EXPANSION, tier, band)
        if expansion is not None:
            chosen.append(expansion)
    for reason in reasons:
        if reason.impact <= 0:
            continue
        play = catalog.find(reason.family, tier, band)
        if play is not None and all(play.id != c.id for c in chosen):
            chosen.append(play)
    return [Recommendation.from_play(p, lang) for p in chosen[:max_plays]]
