"""What every *Report shares: its subject, its verdict, JSON, Markdown and self-contained HTML.

A report describes itself as sections of paragraphs, bullet lists, tables, findings and figures;
one renderer turns that into Markdown (Kubeflow's Markdown viewer, the model card) and into one
HTML page with everything inline (Kubeflow's sandboxed HTML viewer loads nothing external). The
verdict banner, the findings and every status cell take their colour from :class:`GateStatus`,
never from text. Nothing is truncated: every finding appears in full.
"""

from __future__ import annotations

import dataclasses
import enum
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from kfp_rai._version import __version__
from kfp_rai.core.clock import utc_now
from kfp_rai.core.files import jsonable
from kfp_rai.core.verdict import Finding, GateStatus, Verdict


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class Figure:
    """An inline SVG chart (from :mod:`kfp_rai.core.charts`) and its caption."""

    svg: str
    caption: str


@dataclass(frozen=True)
class Gallery:
    """Small charts side by side (one per column, say)."""

    figures: tuple[Figure, ...]


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Findings:
    """Findings rendered as a table, each row in its status colour, problems first."""

    findings: tuple[Finding, ...]


Block = str | Table | Figure | Gallery | Bullets | Findings


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...]
    collapsed: bool = False  # reference material: in the HTML one click away (<details>), still in the page


@dataclass(frozen=True)
class Subject:
    """What a report is about: the model, the data and the policy, by hash, and when and by what.

    ``model_version`` is ``candidate`` until the registry gives the model a version.
    """

    model_name: str | None = None
    model_version: str | None = None
    model_sha256: str | None = None
    data_sha256: Mapping[str, str] = field(default_factory=dict)
    policy_sha256: str | None = None
    created: str = field(default_factory=utc_now)
    kfp_rai_version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "data_sha256": dict(self.data_sha256)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Subject:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def rows(self) -> tuple[tuple[str, str], ...]:
        model = " ".join(
            part
            for part in (
                self.model_name or "",
                f"version {self.model_version}" if self.model_version else "",
            )
            if part
        )
        rows = [("model", model or "—"), ("model sha256", self.model_sha256 or "—")]
        rows += [(f"{role} data sha256", digest or "—") for role, digest in self.data_sha256.items()]
        rows += [
            ("policy sha256", self.policy_sha256 or "—"),
            ("created (UTC)", self.created),
            ("kfp-rai", self.kfp_rai_version),
        ]
        return tuple(rows)


def fmt(value: Any) -> str:
    """Format a cell: floats to 3 decimals, missing as an em dash, booleans as yes/no."""
    if value is None:
        return "—"
    if isinstance(value, GateStatus):
        return value.label
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "—" if not math.isfinite(value) else f"{value:.3f}"
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, float) for v in value):
        return f"{value[0]:.3f}–{value[1]:.3f}"
    return str(value)


class Report:
    """Mixin for frozen dataclass reports holding a ``verdict`` field.

    Subclasses set ``kind`` and ``title`` and describe their content in :meth:`sections`.
    """

    kind: ClassVar[str] = "report"
    title: ClassVar[str] = "Report"
    verdict: Verdict

    @property
    def status(self) -> GateStatus:
        return self.verdict.status

    @property
    def passed(self) -> bool:
        return self.verdict.passed

    @property
    def reason(self) -> str:
        return self.verdict.reason

    def sections(self) -> list[Section]:  # pragma: no cover - every report overrides it
        return []

    def verdict_label(self) -> str:
        """The word on the verdict banner; a report may name its decision (the card: BLOCKED)."""
        return self.verdict.status.label

    def headline(self) -> str:
        """The banner's text: the verdict's reason; a report whose reason gathers other reports'
        (the card) says it in one line and gives the rest below."""
        return self.verdict.reason

    def to_dict(self, subject: Subject | None = None) -> dict[str, Any]:
        """The report as JSON data: ``kind``, the verdict's fields at the top, ``subject``, content."""
        content = {
            f.name: jsonable(dataclasses.asdict(self)[f.name])  # type: ignore[call-overload]
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if f.name != "verdict"
        }
        head: dict[str, Any] = {"kind": self.kind, **self.verdict.to_dict()}
        if subject is not None:
            head["subject"] = subject.to_dict()
        return {**head, **content}

    def to_markdown(self, subject: Subject | None = None, title: str | None = None) -> str:
        """The report as Markdown (``title``: another name for what it is, e.g. a command's own report)."""
        return render_markdown(
            title or self.title, self.verdict, self.sections(), subject, self.verdict_label(), self.headline()
        )

    def to_html(self, subject: Subject | None = None, title: str | None = None) -> str:
        """The report as one self-contained HTML page (``title`` as in :meth:`to_markdown`)."""
        return render_html(
            title or self.title, self.verdict, self.sections(), subject, self.verdict_label(), self.headline()
        )


def findings_section(verdict: Verdict, title: str = "Findings") -> Section:
    """Every finding of a verdict, problems first; says so when there were none."""
    if not verdict.findings:
        return Section(title, ("No checks were made.",))
    ordered = verdict.problems + tuple(f for f in verdict.findings if f.status is GateStatus.PASSED)
    return Section(title, (Findings(ordered),))


_FINDING_COLUMNS = ("status", "rule", "subject", "observed", "limit", "interval", "message")


def _finding_cells(f: Finding) -> tuple[Any, ...]:
    return (f.status.label, f.rule, f.subject, f.observed, f.limit, f.interval, f.message)


# ---------------------------------------------------------------------------------------- Markdown


def _md_cell(value: Any) -> str:
    return fmt(value).replace("|", "\\|").replace("\n", " ")


def _md_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "| " + " | ".join(_md_cell(c) for c in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join([head, sep, *body])


def render_markdown(
    title: str,
    verdict: Verdict | None,
    sections: Sequence[Section],
    subject: Subject | None,
    label: str = "",
    headline: str | None = None,
) -> str:
    out = [f"# {title}", ""]
    if verdict is not None:
        out += [f"**Verdict: {label or verdict.status.label}** — {headline or verdict.reason}", ""]
    if subject is not None:
        out += [_md_table(("subject", "value"), subject.rows()), ""]
    for section in sections:
        out += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Table):
                out += [_md_table(block.columns, block.rows), ""]
            elif isinstance(block, Findings):
                out += [_md_table(_FINDING_COLUMNS, [_finding_cells(f) for f in block.findings]), ""]
            elif isinstance(block, Figure):
                out += [f"*Figure: {block.caption} (drawn in the HTML report).*", ""]
            elif isinstance(block, Gallery):
                out += [f"*Figures: {len(block.figures)} charts (drawn in the HTML report).*", ""]
            elif isinstance(block, Bullets):
                out += [*(f"- {item}" for item in block.items), ""]
            else:
                out += [block, ""]
    return "\n".join(out).rstrip() + "\n"


# -------------------------------------------------------------------------------------------- HTML

STATUS_COLOURS = {
    GateStatus.PASSED: "#1a7f37",
    GateStatus.WARNING: "#bf8700",
    GateStatus.FAILED: "#cf222e",
    GateStatus.NOT_JUDGED: "#6e7781",
}
_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1040px;margin:2em auto;padding:0 1em;color:#1f2328}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #d0d7de;padding:4px 8px;"
    "text-align:left;vertical-align:top}th{background:#f6f8fa}code{background:#f6f8fa;padding:0 3px}"
    ".verdict{padding:.7em 1em;border-radius:6px;color:#fff;margin:1em 0}"
    ".verdict .badge{font-weight:700;margin-right:.6em}"
    "td.status{font-weight:700;color:#fff;white-space:nowrap}"
    "figure{margin:1em 0}figure svg{max-width:100%;height:auto}figcaption{font-size:.85em;color:#57606a}"
    ".charts{display:flex;flex-wrap:wrap;gap:.5em}.charts figure{margin:0;width:330px}"
    "table.subject td:first-child{color:#57606a}"
    "details>summary{cursor:pointer}details.section>summary h2{display:inline}details.passed{margin:.5em 0}"
    + "".join(
        f".status-{s.value}.verdict,td.status.status-{s.value}{{background:{c}}}"
        f"span.status-{s.value}{{color:{c};font-weight:700}}"
        for s, c in STATUS_COLOURS.items()
    )
)


def _inline(text: str) -> str:
    # Report text uses only **bold** and `code`; everything else is escaped.
    escaped = html.escape(text)
    parts = escaped.split("**")
    escaped = "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))
    parts = escaped.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def verdict_html(status: GateStatus, reason: str, label: str | None = None) -> str:
    """The verdict banner in the status colour (also the run index's outcome banner)."""
    return (
        f'<div class="verdict status-{status.value}" data-status="{status.value}">'
        f'<span class="badge">{html.escape(label or status.label)}</span>{_inline(reason)}</div>'
    )


def status_cell(status: GateStatus, label: str | None = None) -> str:
    """A table cell in the status colour; ``label`` replaces the status's own (e.g. ``SKIPPED``)."""
    text = html.escape(label or status.label)
    return f'<td class="status status-{status.value}" data-status="{status.value}">{text}</td>'


def _cell(value: Any) -> str:
    return status_cell(value) if isinstance(value, GateStatus) else f"<td>{html.escape(fmt(value))}</td>"


def html_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], css_class: str = "") -> str:
    """A table; a :class:`GateStatus` cell is drawn in its status colour."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    attr = f' class="{css_class}"' if css_class else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _findings_table(findings: Sequence[Finding]) -> str:
    head = "".join(f"<th>{c}</th>" for c in _FINDING_COLUMNS)
    rows = "".join(
        f'<tr class="finding" data-status="{f.status.value}">{status_cell(f.status)}'
        + "".join(f"<td>{html.escape(fmt(c))}</td>" for c in _finding_cells(f)[1:])
        + "</tr>"
        for f in findings
    )
    return f'<table class="findings"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _findings_html(findings: Sequence[Finding]) -> str:
    """The problems first, in full; the passed checks after them, collapsed (one click away, still
    in the page): a reader reaches what needs a decision without scrolling past what does not."""
    problems = [f for f in findings if f.status is not GateStatus.PASSED]
    passed = [f for f in findings if f.status is GateStatus.PASSED]
    out = _findings_table(problems) if problems else "<p>No problem: every check passed.</p>"
    if passed:
        out += (
            f'<details class="passed"><summary>{len(passed)} passed check{"s" * (len(passed) != 1)}</summary>'
            f"{_findings_table(passed)}</details>"
        )
    return out


def _block_html(block: Block) -> str:
    if isinstance(block, Table):
        return html_table(block.columns, block.rows)
    if isinstance(block, Findings):
        return _findings_html(block.findings)
    if isinstance(block, Figure):
        return f"<figure>{block.svg}<figcaption>{html.escape(block.caption)}</figcaption></figure>"
    if isinstance(block, Gallery):
        return '<div class="charts">' + "".join(_block_html(f) for f in block.figures) + "</div>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block.items) + "</ul>"
    return f"<p>{_inline(block)}</p>"


def html_page(title: str, body: str) -> str:
    """A complete, self-contained HTML page (inline CSS, no external resource)."""
    return (
        "<!doctype html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>\n{body}\n</body></html>\n"
    )


def render_html(
    title: str,
    verdict: Verdict | None,
    sections: Sequence[Section],
    subject: Subject | None,
    label: str = "",
    headline: str | None = None,
) -> str:
    out = [f"<h1>{html.escape(title)}</h1>"]
    if verdict is not None:
        out.append(verdict_html(verdict.status, headline or verdict.reason, label or None))
    if subject is not None:
        out.append(html_table(("subject", "value"), subject.rows(), "subject"))
    for section in sections:
        heading = f"<h2>{html.escape(section.title)}</h2>"
        blocks = "\n".join(_block_html(block) for block in section.blocks)
        if section.collapsed:
            out.append(f'<details class="section"><summary>{heading}</summary>\n{blocks}\n</details>')
        else:
            out += [heading, blocks]
    return html_page(title, "\n".join(out))
