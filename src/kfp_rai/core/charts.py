"""Charts for reports: matplotlib figures rendered to inline SVG (no pyplot, no external resource).

Colours follow status only (the same palette as the HTML): a point of a failed group is red
whatever chart it is in. Text stays text in the SVG (``svg.fonttype: none``), so charts are small,
searchable and readable by screen readers through their ``aria-label``. Every chart has a title and
both axes named, each under an id of its own (``chart-title``, ``x-label``, ``y-label``: the browser
test finds them there), and no legend or label lies over the plotted data: policy limits are named
in the legend, and legends sit outside the plotting area.
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


def _name(ax, title: str, xlabel: str, ylabel: str, *, figure_title: bool = True, **title_options: Any) -> None:  # type: ignore[no-untyped-def]
    """Title and axis labels, each under the id the browser test looks for.

    The title is the figure's, from its left edge and wrapped to its width (an axes' title starts
    where the plot does, after the tick labels, and a long one ran off the chart); a chart of fixed
    margins (``figure_title=False``) keeps the axes' title.
    """
    import textwrap

    fig = ax.get_figure()
    if figure_title:
        size = 10.0
        chars = max(20, int(fig.get_figwidth() * 72 / (size * _EM)) - 2)
        text = fig.suptitle(textwrap.fill(title, chars), x=0.01, ha="left", fontsize=size)
    else:
        text = ax.set_title(title, loc="left", **title_options)
    text.set_gid("chart-title")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.xaxis.label.set_gid("x-label")
    ax.yaxis.label.set_gid("y-label")


# An upper bound of a character's width in DejaVu Sans, in ems (digits are 0.636 em): margins sized
# from it hold every label, whatever its characters.
_EM = 0.66


# The limits' line styles, in order: a chart with two limits tells them apart in its legend.
_LIMIT_STYLES: tuple[Any, ...] = ("--", ":", "-.")


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def interval_chart(
    rows: Sequence[IntervalRow],
    *,
    title: str,
    xlabel: str,
    alt: str,
    ylabel: str = "group",
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
        drawn = [limit for limit in limits if _finite(limit.value)]
        for limit, style in zip(drawn, _LIMIT_STYLES, strict=False):
            ax.axvline(limit.value, color="#57606a", linestyle=style, linewidth=1)
        ax.set_yticks(ys, [row.label for row in rows])
        _name(ax, title, xlabel, ylabel)
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
        # A limit is named in the legend, not beside its line, where it would cover the points near it.
        handles += [
            Line2D([], [], color="#57606a", linestyle=style, linewidth=1, label=limit.label)
            for limit, style in zip(drawn, _LIMIT_STYLES, strict=False)
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), fontsize=8, frameon=False)
        return _svg(fig, alt)


# Roles a bar can have (a feature that is a sensitive attribute, or stands in for one): told apart by
# colour and hatching, and named in the legend. Not status colours: a role is not a verdict.
ROLE_STYLES = {
    "sensitive": {"color": "#8250df", "hatch": ""},
    "proxy": {"color": "#c297ff", "hatch": "//"},
}


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    xlabel: str,
    alt: str,
    ylabel: str = "feature",
    roles: Sequence[str | None] | None = None,
) -> str:
    """Horizontal bars, largest on top (e.g. feature importance); ``roles`` (one per bar, a key of
    :data:`ROLE_STYLES` or None) mark bars apart, with a legend naming each role drawn."""
    import matplotlib
    from matplotlib.patches import Patch

    kinds = list(roles) if roles is not None else [None] * len(labels)
    with matplotlib.rc_context(_RC):
        fig = _figure(7.0, 0.3 * len(labels) + 1.4)
        ax = fig.add_subplot()
        bars = ax.barh(list(labels)[::-1], list(values)[::-1], color=NEUTRAL)
        for bar, kind in zip(bars, kinds[::-1], strict=True):
            if kind is not None:
                bar.set_color(ROLE_STYLES[kind]["color"])
                bar.set_hatch(ROLE_STYLES[kind]["hatch"])
                bar.set_edgecolor("#24292f")
        _name(ax, title, xlabel, ylabel)
        shown = [k for k in ROLE_STYLES if k in kinds]
        if shown:
            handles = [Patch(facecolor=NEUTRAL, label="other feature")] + [
                Patch(facecolor=ROLE_STYLES[k]["color"], hatch=ROLE_STYLES[k]["hatch"], edgecolor="#24292f", label=k)
                for k in shown
            ]
            fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)
        return _svg(fig, alt)


# Lines of a ROC chart, one per group: told apart by colour (blues, purples, teals) and dash, none a status colour.
_GROUP_COLOURS = ("#0969da", "#8250df", "#1b7c83", "#0a3069", "#54aeff", "#6639ba", "#3192aa", "#a475f9")
_GROUP_DASHES: tuple[Any, ...] = ("-", "--", "-.", ":")


@dataclass(frozen=True)
class Curve:
    """One ROC curve: its label and its points (false-positive rate, true-positive rate)."""

    label: str
    fpr: Sequence[float]
    tpr: Sequence[float]


def roc_chart(curves: Sequence[Curve], *, overall: Curve | None, title: str, alt: str) -> str:
    """ROC curves, one line per group, the overall curve in black and the diagonal (chance)."""
    import matplotlib

    # The legend below the plot, in as many columns as its longest entry allows (a long intersection's
    # name in two columns ran off the chart), the figure as tall as its rows need.
    width = 5.2
    entry = max((len(c.label) for c in curves), default=8) * 8 * _EM + 40  # points: text, line and gap
    ncols = max(1, min(3, int((width * 72 - 10) // entry)))
    with matplotlib.rc_context(_RC):
        fig = _figure(width, 4.6 + 0.17 * math.ceil((len(curves) + 2) / ncols))
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], color="#8c959f", linestyle=":", linewidth=1, label="chance")
        if overall is not None:
            ax.plot(list(overall.fpr), list(overall.tpr), color=REFERENCE, linewidth=2.2, label=overall.label)
        for i, curve in enumerate(curves):
            ax.plot(
                list(curve.fpr),
                list(curve.tpr),
                color=_GROUP_COLOURS[i % len(_GROUP_COLOURS)],
                linestyle=_GROUP_DASHES[(i // len(_GROUP_COLOURS) + i) % len(_GROUP_DASHES)],
                linewidth=1.3,
                label=curve.label,
            )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_aspect("equal")
        _name(ax, title, "false positive rate", "true positive rate")
        fig.legend(loc="outside lower center", ncols=ncols, fontsize=8, frameon=False)
        return _svg(fig, alt)


def distribution_chart(
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    alt: str,
    status: GateStatus = GateStatus.PASSED,
    xlabel: str = "value",
) -> str:
    """Side-by-side bars of shares per bin or category (reference vs current).

    The current series takes the status colour, so a drifted column's chart is never green. The
    legend sits between the title and the plot, never over the bars.
    """
    import matplotlib

    names = list(series)
    colours = [REFERENCE, STATUS_COLOURS[status]] + [NEUTRAL] * max(0, len(names) - 2)
    # Margins in inches from what they must hold: tick labels turned upright (as long as the longest
    # category, at 8 pt) and the axis label below; the title, then the legend, above. Up to 17
    # categories fit the 3.4 inches a chart has in a gallery (an upright 8 pt label is 0.13 inch
    # thick, a category gets 0.15 or more); more make the chart wider rather than the labels touch.
    longest = max((len(str(c)) for c in categories), default=1)
    bottom, top, plot, left, right = longest * 8 * _EM / 72 + 0.35, 0.62, 1.55, 0.62, 0.1
    step = max(0.15, min(0.22, (3.4 - left - right) / max(len(categories), 1)))
    width = max(3.4, left + right + step * len(categories))
    height = bottom + plot + top
    with matplotlib.rc_context(_RC):
        fig = _figure(width, height, constrained=False)
        fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height, bottom=bottom / height)
        ax = fig.add_subplot()
        bar = 0.8 / max(len(names), 1)
        for i, name in enumerate(names):
            xs = [x + (i - (len(names) - 1) / 2) * bar for x in range(len(categories))]
            ax.bar(xs, list(series[name]), width=bar, color=colours[i], label=name, alpha=0.55 if i == 0 else 0.9)
        ax.set_xticks(range(len(categories)), list(categories), rotation=90, fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        _name(ax, title, xlabel, "share of rows", figure_title=False, fontsize=9, pad=17)
        ax.xaxis.label.set_fontsize(8)
        ax.yaxis.label.set_fontsize(8)
        ax.legend(
            fontsize=8, frameon=False, ncols=len(names), loc="lower right", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.2
        )
        return _svg(fig, alt)
