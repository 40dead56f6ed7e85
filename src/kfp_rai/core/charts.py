"""Charts for reports: matplotlib figures rendered to inline SVG (no pyplot, no external resource).

Colours follow status only (the same palette as the HTML): a point of a failed group is red
whatever chart it is in. Text stays text in the SVG (``svg.fonttype: none``), so charts are small,
searchable and readable by screen readers through their ``aria-label``.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kfp_rai.core.report import STATUS_COLOURS
from kfp_rai.core.verdict import GateStatus

NEUTRAL = "#3b6ea5"
REFERENCE = "#24292f"
# Text at 8 pt or more: charts are drawn at 96 dpi at their size or larger, so no label is under 10 px.
_RC: Any = {"svg.fonttype": "none", "svg.hashsalt": "kfp-rai", "font.size": 9, "axes.spines.top": False}


@dataclass(frozen=True)
class IntervalRow:
    """One row of an interval chart: a value with its interval, an optional reference, a status."""

    label: str
    value: float
    low: float | None = None
    high: float | None = None
    reference: float | None = None
    status: GateStatus | None = GateStatus.PASSED  # None: measured, not judged by any gate (neutral colour)


@dataclass(frozen=True)
class Limit:
    """A vertical line marking a policy limit on an interval chart."""

    value: float
    label: str


def _figure(width: float, height: float, *, constrained: bool = True):  # type: ignore[no-untyped-def]
    from matplotlib.figure import Figure

    # A constrained layout fits any labels but costs about twice the drawing time; charts of a fixed
    # shape drawn many times per report (one per drifted column) set their margins instead.
    return Figure(figsize=(width, height), layout="constrained" if constrained else None)


def _svg(fig, alt: str) -> str:  # type: ignore[no-untyped-def]
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        FigureCanvasSVG(fig).print_svg(buf, metadata={"Date": None, "Creator": None})  # type: ignore[no-untyped-call]
    text = buf.getvalue()
    svg = text[text.index("<svg") :]
    label = html.escape(alt, quote=True)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def interval_chart(
    rows: Sequence[IntervalRow],
    *,
    title: str,
    xlabel: str,
    alt: str,
    reference_label: str = "reference",
    limits: Sequence[Limit] = (),
    xlim: tuple[float, float] | None = None,
) -> str:
    """Dot-and-whisker chart, one row per group: value (coloured by status), interval, reference."""
    import matplotlib
    from matplotlib.lines import Line2D

    with matplotlib.rc_context(_RC):
        fig = _figure(7.0, 0.32 * len(rows) + 1.6)
        ax = fig.add_subplot()
        ys = list(range(len(rows)))[::-1]
        for y, row in zip(ys, rows, strict=True):
            colour = NEUTRAL if row.status is None else STATUS_COLOURS[row.status]
            if _finite(row.low) and _finite(row.high):
                ax.plot([row.low, row.high], [y, y], color=colour, linewidth=2, solid_capstyle="butt")
            if _finite(row.value):
                ax.plot([row.value], [y], "o", color=colour, markersize=5)
            if _finite(row.reference):
                ax.plot([row.reference], [y], "D", markerfacecolor="none", markeredgecolor=REFERENCE, markersize=6)
        for limit in limits:
            if _finite(limit.value):
                ax.axvline(limit.value, color="#57606a", linestyle="--", linewidth=1)
                ax.annotate(
                    limit.label,
                    (limit.value, 1.0),
                    xycoords=("data", "axes fraction"),
                    fontsize=8,
                    color="#57606a",
                    rotation=90,
                    va="top",
                    ha="right",
                )
        ax.set_yticks(ys, [row.label for row in rows])
        ax.set_xlabel(xlabel)
        ax.set_title(title, loc="left")
        if xlim:
            ax.set_xlim(*xlim)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        handles = [
            Line2D(
                [],
                [],
                marker="o",
                linestyle="-",
                color=NEUTRAL if s is None else STATUS_COLOURS[s],
                label="measured (not a gate)" if s is None else s.label.lower(),
            )
            for s in dict.fromkeys(r.status for r in rows)
        ]
        if any(_finite(r.reference) for r in rows):
            handles.append(
                Line2D(
                    [],
                    [],
                    marker="D",
                    linestyle="",
                    markerfacecolor="none",
                    markeredgecolor=REFERENCE,
                    label=reference_label,
                )
            )
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)
        return _svg(fig, alt)


def bar_chart(labels: Sequence[str], values: Sequence[float], *, title: str, xlabel: str, alt: str) -> str:
    """Horizontal bars, largest on top (e.g. feature importance)."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig = _figure(7.0, 0.3 * len(labels) + 1.2)
        ax = fig.add_subplot()
        ax.barh(list(labels)[::-1], list(values)[::-1], color=NEUTRAL)
        ax.set_xlabel(xlabel)
        ax.set_title(title, loc="left")
        return _svg(fig, alt)


def distribution_chart(
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    alt: str,
    status: GateStatus = GateStatus.PASSED,
) -> str:
    """Side-by-side bars of shares per bin or category (reference vs current).

    The current series takes the status colour, so a drifted column's chart is never green.
    """
    import matplotlib

    names = list(series)
    colours = [REFERENCE, STATUS_COLOURS[status]] + [NEUTRAL] * max(0, len(names) - 2)
    with matplotlib.rc_context(_RC):
        fig = _figure(3.4, 2.9, constrained=False)
        fig.subplots_adjust(left=0.19, right=0.98, top=0.89, bottom=0.40)
        ax = fig.add_subplot()
        width = 0.8 / max(len(names), 1)
        for i, name in enumerate(names):
            xs = [x + (i - (len(names) - 1) / 2) * width for x in range(len(categories))]
            ax.bar(xs, list(series[name]), width=width, color=colours[i], label=name, alpha=0.55 if i == 0 else 0.9)
        ax.set_xticks(range(len(categories)), list(categories), rotation=60, ha="right", fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.set_ylabel("share of rows", fontsize=8)
        ax.set_title(title, loc="left", fontsize=9)
        ax.legend(fontsize=8, frameon=False)
        return _svg(fig, alt)
