"""Stage 2: leading indicators of churn, one pure function each, grouped by reason family."""

from . import (  # noqa: F401  (importing registers the indicators)
    adoption,
    commercial,
    lifecycle,
    relationship,
    silence,
    support,
    usage,
    voice,
)
from .compute import SOURCES, availability_column, compute_indicators, indicator_columns
from .registry import (
    FAMILIES,
    FAMILY_LABELS,
    REGISTRY,
    Indicator,
    code_version,
    describe,
    in_family_order,
    render,
)

# Every indicator, in family order (usage first); a model's feature list is taken from here.
INDICATORS: tuple[str, ...] = tuple(in_family_order())

__all__ = [
    "FAMILIES",
    "FAMILY_LABELS",
    "INDICATORS",
    "REGISTRY",
    "SOURCES",
    "Indicator",
    "availability_column",
    "code_version",
    "compute_indicators",
    "describe",
    "indicator_columns",
    "render",
]
