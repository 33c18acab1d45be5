"""Inline SVG charts drawn on the server: a risk sparkline and weekly bar charts.

No script, no external file: the SVG is part of the page. Only presentation attributes are used
(no ``style=``), so the page's Content-Security-Policy needs no ``unsafe-inline``. Every text that
ends up in the SVG is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

BAND_COLOURS = {"red": "#c62828", "yellow": "#b7791f", "green": "#2e7d32"}
LINE = "#44546a"
BAR = "#5b7db1"
MUTED = "#c9d1dc"


def _num(v: float) -> str:
    """A coordinate with at most one decimal (short SVG)."""
    return f"{v:.1f}".rstrip("0").rstrip(".")


def sparkline(
    values: Sequence[float],
    *,
    band: str | None = None,
    width: int = 96,
    height: int = 24,
    label: str = "",
) -> Markup:
    """A line of churn probabilities (oldest first), the last point dotted in its band's colour.

    The y axis runs from 0 to at least 0.5 (to the highest value if above), so a flat low-risk
    account looks flat and low. One value draws a dot; none draws an empty box.
    """
    pad = 3.0
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    aria = escape(label, quote=True)
    head = (
        f'<svg class="spark" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{aria}">'
    )
    if not vals:
        return Markup(head + "</svg>")
    top = max(0.5, max(vals))
    n = len(vals)
    step = (width - 2 * pad) / (n - 1) if n > 1 else 0.0

    def xy(i: int, v: float) -> tuple[float, float]:
        x = pad + i * step if n > 1 else width / 2
        y = height - pad - (v / top) * (height - 2 * pad)
        return x, y

    pts = [xy(i, v) for i, v in enumerate(vals)]
    parts = [head, f"<title>{aria}</title>"]
    if n > 1:
        coords = " ".join(f"{_num(x)},{_num(y)}" for x, y in pts)
        parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{LINE}" stroke-width="1.5" '
            'stroke-linejoin="round" stroke-linecap="round"/>'
        )
    x, y = pts[-1]
    colour = BAND_COLOURS.get(band or "", LINE)
    parts.append(f'<circle cx="{_num(x)}" cy="{_num(y)}" r="2.5" fill="{colour}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(
    weeks: Sequence[str],
    values: Sequence[float | None],
    *,
    width: int = 260,
    height: int = 56,
    label: str = "",
) -> Markup:
    """Weekly bars (oldest left); an unknown week is a short grey tick, a zero week no bar.

    Each bar carries a ``<title>`` with its week and value (the browser's tooltip).
    """
    n = len(values)
    aria = escape(label, quote=True)
    head = (
        f'<svg class="bars" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{aria}">'
    )
    if n == 0:
        return Markup(head + "</svg>")
    known = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    top = max(known) if known and max(known) > 0 else 1.0
    slot = width / n
    bar_w = max(1.0, slot * 0.75)
    parts = [head, f"<title>{aria}</title>"]
    base = height - 1.0
    parts.append(
        f'<line x1="0" y1="{_num(base)}" x2="{width}" y2="{_num(base)}" stroke="{MUTED}"/>'
    )
    for i, (week, v) in enumerate(zip(weeks, values, strict=True)):
        x = i * slot + (slot - bar_w) / 2
        tip = escape(f"{week}: {'?' if v is None else _fmt(float(v))}")
        if v is None or not math.isfinite(float(v)):
            parts.append(
                f'<rect x="{_num(x)}" y="{_num(base - 2)}" width="{_num(bar_w)}" height="2" '
                f'fill="{MUTED}"><title>{tip}</title></rect>'
            )
            continue
        h = (float(v) / top) * (height - 4)
        parts.append(
            f'<rect x="{_num(x)}" y="{_num(base - h)}" width="{_num(bar_w)}" '
            f'height="{_num(max(h, 0.0))}" fill="{BAR}"><title>{tip}</title></rect>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _fmt(v: float) -> str:
    return str(int(v)) if v.is_integer() else f"{v:.1f}"
