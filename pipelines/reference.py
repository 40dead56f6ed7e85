"""The reference docs, generated: ``docs/components.md`` from the components' and pipelines' own
specs (the descriptions kfp copies from their docstrings into the compiled YAML) and
``docs/policy.md`` from the policy's declarations. A test keeps both in step.

Run ``python -m kfp_rai.pipelines.reference docs`` (``make docs``) after changing a docstring.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from kfp_rai.core.files import atomic_write_text
from kfp_rai.policy import reference_markdown

_STAGE_OF = {
    "discovery": "Discovery",
    "training": "Training",
    "validation": "Validation",
    "production": "Production",
    "refresh": "Refresh",
}


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _type(spec: Any) -> str:
    return str(spec.type).split("@")[0].removeprefix("system.")


def _section(title: str, spec: Any, heading: str = "###") -> list[str]:
    out = [f"{heading} `{title}`", "", (spec.description or "").strip(), ""]
    if spec.inputs:
        out += ["| input | type | default | description |", "|---|---|---|---|"]
        for name, item in spec.inputs.items():
            default = "" if not item.optional else f"`{item.default!r}`" if item.default is not None else "`None`"
            out.append(f"| `{name}` | {_type(item)} | {default} | {_one_line(item.description)} |")
        out.append("")
    if spec.outputs:
        out += ["| output | type | description |", "|---|---|---|"]
        for name, item in spec.outputs.items():
            out.append(f"| `{name}` | {_type(item)} | {_one_line(item.description)} |")
        out.append("")
    return out


def components_markdown() -> str:
    """``docs/components.md``: every component and pipeline, its inputs and outputs."""
    import kfp_rai.components as components
    from kfp_rai.pipelines import PIPELINES

    out = [
        "# Component reference",
        "",
        "Generated from the docstrings (`make docs`); a test keeps it in step. The same descriptions",
        "are in `pipelines/compiled/*.yaml`, where the Kubeflow UI shows them beside each parameter.",
        "Every gate returns `status` (passed, warning, failed, not_judged), `passed` (passed or warning)",
        "and `reason` (one line naming every finding that did not pass).",
        "",
        "## Pipelines",
        "",
    ]
    for name, pipeline in PIPELINES.items():
        out += _section(name, pipeline.component_spec)
    for module, title in _STAGE_OF.items():
        out += [f"## {title}", ""]
        funcs = [getattr(components, n).python_func for n in components.__all__]
        names = [
            f.__name__
            for f in sorted(funcs, key=lambda f: f.__code__.co_firstlineno)
            if f.__module__ == f"kfp_rai.components.{module}"
        ]
        for name in names:
            out += _section(name, getattr(components, name).component_spec)
    return "\n".join(out).rstrip() + "\n"


def write_docs(directory: str | Path) -> list[Path]:
    docs = Path(directory)
    written = []
    for name, text in (("components.md", components_markdown()), ("policy.md", reference_markdown())):
        atomic_write_text(docs / name, text)
        written.append(docs / name)
    return written


if __name__ == "__main__":
    for path in write_docs(sys.argv[1] if len(sys.argv) > 1 else "docs"):
        print(path)
