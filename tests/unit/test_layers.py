"""The one architectural rule: logic modules never import kfp (only component wrappers do)."""

import ast
from pathlib import Path

COMPONENTS = Path(__file__).resolve().parents[2] / "components"
WRAPPERS = {"component.py", "components.py"}


def _imports_kfp(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found += [n for n in names if n == "kfp" or n.startswith("kfp.")]
    return found


def test_logic_modules_never_import_kfp():
    offenders = {
        str(p.relative_to(COMPONENTS)): _imports_kfp(p)
        for p in COMPONENTS.rglob("*.py")
        if p.name not in WRAPPERS and _imports_kfp(p)
    }
    assert offenders == {}


def test_the_check_would_catch_an_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from kfp import dsl\n")
    assert _imports_kfp(bad) == ["kfp"]


def test_component_modules_have_no_future_annotations():
    # `from __future__ import annotations` breaks kfp's compilation of components.
    for path in COMPONENTS.rglob("component.py"):
        assert "from __future__ import annotations" not in path.read_text(encoding="utf-8"), path
