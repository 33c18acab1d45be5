"""Typed configuration, loaded from one YAML file and passed in (nothing happens at import).

A data directory may hold a ``churnlens.yaml``; ``--config FILE`` overrides it. Every key is
optional. Example::

    columns:                 # rename source columns to contract names, per table
      accounts: {customer_id: account_id, signup: created_at}
    events:
      login: [login]         # which usage events mean "login"
      core_features: [report_create, integration_sync]
      urgent_priorities: [urgent]
      tracked:               # key events: a timeline column and three indicators per group
        exports: [report_export, csv_download]
        errors: [error_shown]
    labels:
      horizon_weeks: 13
      step_weeks: 4
      unavoidable_reasons: [acquired, bankrupt]
      unavoidable: exclude   # exclude | negative | positive
    tiers:
      high_touch_min_arr: 100000
      low_touch_min_arr: 20000
    validation:
      max_invalid_fraction: 0.5
    seed: 42
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError
from .features.schema import MAX_GROUP_NAME, MAX_TRACKED_GROUPS, TABLES, TRACKED_GROUP

CONFIG_FILE = "churnlens.yaml"
log = logging.getLogger(__name__)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EventsConfig(_Frozen):
    """Which usage events mean what.

    ``tracked`` names groups of key events (``group: [event, ...]``; a plain list makes each event
    a group of its own). Each group becomes a timeline column ``events__<group>`` (its events per
    week) and three indicators (:mod:`churnlens.features.indicators.tracked`).
    """

    login: tuple[str, ...] = ("login",)
    core_features: tuple[str, ...] = ()
    urgent_priorities: tuple[str, ...] = ("urgent",)
    tracked: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @field_validator("tracked", mode="before")
    @classmethod
    def _groups(cls, v: Any) -> Any:
        if isinstance(v, list | tuple):  # each event its own group, named after it
            groups: dict[str, list[Any]] = {}
            for event in v:
                name = re.sub(r"[^a-z0-9]+", "_", str(event).lower()).strip("_")
                name = name if name[:1].isalpha() else f"e_{name}".rstrip("_")
                if name in groups:
                    raise ValueError(
                        f"tracked events {groups[name][0]!r} and {event!r} would share the group"
                        f" name {name!r}: give the groups as a mapping (group: [event, ...])"
                    )
                groups[name] = [event]
            return groups
        return v

    @field_validator("tracked")
    @classmethod
    def _group_names(cls, v: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for name, events in v.items():
            if not TRACKED_GROUP.fullmatch(name) or len(name) > MAX_GROUP_NAME:
                raise ValueError(
                    f"tracked group {name!r}: a name is lower-case letters, digits and single"
                    f" underscores, starting with a letter, at most {MAX_GROUP_NAME} characters"
                    " (it becomes the timeline column events__<group>)"
                )
            if not events or any(not e for e in events):
                raise ValueError(f"tracked group {name!r}: give at least one non-empty event name")
        if len(v) > MAX_TRACKED_GROUPS:
            raise ValueError(f"at most {MAX_TRACKED_GROUPS} tracked groups, got {len(v)}")
        return v


class LabelsConfig(_Frozen):
    """How snapshots are labelled."""

    horizon_weeks: int = Field(13, ge=1, le=104)
    step_weeks: int = Field(4, ge=1, le=52)
    min_tenure_weeks: int = Field(0, ge=0)
    unavoidable_reasons: tuple[str, ...] = ("acquired", "bankrupt", "bankruptcy", "merger")
    unavoidable: Literal["exclude", "negative", "positive"] = "exclude"


class TiersConfig(_Frozen):
    """ARR thresholds that give an account a touch tier when it has none."""

    high_touch_min_arr: float = Field(100_000, ge=0)
    low_touch_min_arr: float = Field(20_000, ge=0)


class ValidationConfig(_Frozen):
    """When a repairable problem becomes fatal."""

    max_invalid_fraction: float = Field(0.5, gt=0, le=1)


class SplitConfig(_Frozen):
    """Time-ordered windows; a purge gap of one horizon separates them."""

    test_weeks: int = Field(13, ge=1)
    valid_weeks: int = Field(13, ge=1)


class ModelConfig(_Frozen):
    """LightGBM and calibration settings."""

    learning_rate: float = Field(0.03, gt=0, le=1)
    num_leaves: int = Field(15, ge=2)
    min_data_in_leaf: int = Field(50, ge=1)
    feature_fraction: float = Field(0.8, gt=0, le=1)
    bagging_fraction: float = Field(0.8, gt=0, le=1)
    lambda_l2: float = Field(1.0, ge=0)
    max_rounds: int = Field(2000, ge=1)
    early_stopping_rounds: int = Field(100, ge=1)
    # After early stopping picks the number of rounds on the validation window, refit on train +
    # validation (rounds scaled by the row ratio) so the model also learns from the latest labels.
    refit: bool = True
    monotone: Literal["directions", "none"] = "directions"
    calibration: Literal["auto", "isotonic", "platt"] = "auto"


class BandsConfig(_Frozen):
    """Churn probability thresholds of the risk bands."""

    red: float = Field(0.30, gt=0, lt=1)
    yellow: float = Field(0.12, gt=0, lt=1)


class RegistryConfig(_Frozen):
    """Champion / challenger gate."""

    model_name: str = "churnlens"
    gate_metric: Literal["roc_auc", "pr_auc", "brier"] = "roc_auc"
    gate_margin: float = Field(0.0, ge=0)


class Config(_Frozen):
    """Everything a run needs to know besides the data."""

    columns: dict[str, dict[str, str]] = Field(default_factory=dict)
    events: EventsConfig = Field(default_factory=EventsConfig)
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    tiers: TiersConfig = Field(default_factory=TiersConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    bands: BandsConfig = Field(default_factory=BandsConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    seed: int = 42

    @field_validator("columns")
    @classmethod
    def _known_tables(cls, v: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for table, renames in v.items():
            if table not in TABLES:
                raise ValueError(f"unknown table {table!r}; expected one of {', '.join(TABLES)}")
            spec = TABLES[table]
            for src, dst in renames.items():
                if dst not in spec.names:
                    raise ValueError(
                        f"{table}: {src!r} is renamed to {dst!r}, which is not a column of "
                        f"{table} (expected one of {', '.join(spec.names)})"
                    )
        return v


def with_tracked_events(cfg: Config, tracked: dict[str, list[str]]) -> Config:
    """``cfg`` with the key-event groups a model was trained on (scoring builds the same
    timeline columns as training). A group the config defines differently is replaced, and said
    so: the model's features mean what they meant in training."""
    if not tracked:
        return cfg
    mine = cfg.events.tracked
    for group, events in tracked.items():
        if group in mine and tuple(mine[group]) != tuple(events):
            log.warning(
                "events.tracked.%s: the config lists %s, the model was trained on %s;"
                " scoring uses the model's",
                group,
                list(mine[group]),
                list(events),
            )
    merged = {**mine, **{g: tuple(e) for g, e in tracked.items()}}
    return cfg.model_copy(update={"events": cfg.events.model_copy(update={"tracked": merged})})


def _format_validation_error(source: str, err: ValidationError) -> str:
    lines = [f"{source}: invalid configuration"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  {loc}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def config_from_dict(data: dict[str, Any], source: str = "config") -> Config:
    """Validate a plain dict into a :class:`Config`, naming every bad key."""
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(source, err)) from None


def load_config(path: Path | None = None, data_dir: Path | None = None) -> Config:
    """Load ``path``, else ``data_dir/churnlens.yaml``, else defaults."""
    if path is None and data_dir is not None and (data_dir / CONFIG_FILE).exists():
        path = data_dir / CONFIG_FILE
    if path is None:
        return Config()
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    return config_from_dict(raw, str(path))
