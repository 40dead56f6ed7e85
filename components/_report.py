"""What every *Report shares: JSON serialization and rendering to Markdown and HTML.

A report describes itself as a title, a verdict and sections of paragraphs, tables and images;
one renderer turns that into Markdown (for the Kubeflow UI and the model card) and into a
self-contained HTML page (images embedded), so no report writes its own formatting code.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import math
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class Image:
    png: bytes
    alt: str


Block = str | Table | Image


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...]


def fmt(value: Any) -> str:
    """Format a cell: floats to 3 decimals, missing as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return _jsonable(value.item())  # numpy scalar
    return value


class Report:
    """Mixin for frozen dataclass reports. Subclasses set ``kind``/``title`` and ``sections()``."""

    kind: ClassVar[str] = "report"
    title: ClassVar[str] = "Report"

    def to_dict(self) -> dict[str, Any]:
        data = _jsonable(dataclasses.asdict(self))  # type: ignore[call-overload]
        return {"kind": self.kind, **data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n"

    def verdict(self) -> str:
        passed = getattr(self, "passed", None)
        reason = getattr(self, "reason", "")
        if passed is None:
            return reason
        return f"**{'PASSED' if passed else 'NOT PASSED'}** — {reason}"

    def sections(self) -> list[Section]:  # pragma: no cover - every report overrides it
        return []

    def to_markdown(self) -> str:
        return render_markdown(self.title, self.verdict(), self.sections())

    def to_html(self) -> str:
        return render_html(self.title, self.verdict(), self.sections())


def _md_table(table: Table) -> str:
    head = "| " + " | ".join(c.replace("|", "\\|") for c in table.columns) + " |"
    sep = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(fmt(c).replace("|", "\\|") for c in row) + " |" for row in table.rows]
    return "\n".join([head, sep, *body])


def render_markdown(title: str, verdict: str, sections: list[Section]) -> str:
    out = [f"# {title}", ""]
    if verdict:
        out += [verdict, ""]
    for section in sections:
        out += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Table):
                out += [_md_table(block), ""]
            elif isinstance(block, Image):
                out += [f"*(figure: {block.alt} — see the HTML report)*", ""]
            else:
                out += [block, ""]
    return "\n".join(out).rstrip() + "\n"


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
    "text-align:left}th{background:#f3f3f3}.pass{color:#1a7f37}.fail{color:#cf222e}img{max-width:100%}"
)


def _inline(text: str) -> str:
    # Reports only use **bold** and `code`; escape everything else.
    escaped = html.escape(text)
    parts = escaped.split("**")
    escaped = "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))
    parts = escaped.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def render_html(title: str, verdict: str, sections: list[Section]) -> str:
    out = [
        "<!doctype html>",
        f'<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>',
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if verdict:
        css = "fail" if "NOT PASSED" in verdict else "pass"
        out.append(f'<p class="{css}">{_inline(verdict)}</p>')
    for section in sections:
        out.append(f"<h2>{html.escape(section.title)}</h2>")
        for block in section.blocks:
            if isinstance(block, Table):
                head = "".join(f"<th>{html.escape(c)}</th>" for c in block.columns)
                rows = "".join(
                    "<tr>" + "".join(f"<td>{html.escape(fmt(c))}</td>" for c in row) + "</tr>" for row in block.rows
                )
                out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            elif isinstance(block, Image):
                data = base64.b64encode(block.png).decode("ascii")
                out.append(f'<img alt="{html.escape(block.alt)}" src="data:image/png;base64,{data}">')
            else:
                out.append(f"<p>{_inline(block)}</p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
