"""The architecture, enforced: which packages may import kfp, and what the thin layers may hold.

- ``src/kfp_rai`` (the library) never imports kfp, nor ``kfp_rai.components``/``kfp_rai.pipelines``
  (which do); the CLI alone may, because it composes pipelines.
- ``components/`` holds only ``@dsl.component`` definitions and never imports the pipelines.
- ``pipelines/`` may import kfp and the components.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIBRARY = REPO / "src" / "kfp_rai"
COMPONENTS = REPO / "components"
PIPELINES = REPO / "pipelines"
KFP_USERS = ("kfp", "kfp_rai.components", "kfp_rai.pipelines")


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def _offending(path: Path, forbidden: tuple[str, ...]) -> list[str]:
    return [name for name in _imports(path) if any(name == f or name.startswith(f + ".") for f in forbidden)]


def test_the_library_never_imports_kfp_except_the_cli():
    offenders = {
        str(p.relative_to(LIBRARY)): bad
        for p in LIBRARY.rglob("*.py")
        if "cli" not in p.relative_to(LIBRARY).parts and (bad := _offending(p, KFP_USERS))
    }
    assert offenders == {}


def test_importing_every_library_module_loads_no_kfp():
    """The static check above, confirmed at run time in a fresh interpreter (no indirect import)."""
    modules = sorted(
        ".".join(("kfp_rai", *p.relative_to(LIBRARY).with_suffix("").parts)).removesuffix(".__init__")
        for p in LIBRARY.rglob("*.py")
    )
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'kfp' or m.startswith('kfp.'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(done.stdout) == []


def test_components_hold_only_component_definitions():
    for path in COMPONENTS.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert not _offending(path, ("kfp_rai.pipelines",)), path
        assert "from __future__ import annotations" not in path.read_text(encoding="utf-8"), path  # breaks kfp
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                decorators = [ast.unparse(d) for d in getattr(node, "decorator_list", [])]
                assert any(d.startswith("dsl.component") for d in decorators), f"{path.name}: {node.name}"
            elif not (isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__all__"):
                assert isinstance(node, (ast.Import, ast.ImportFrom, ast.Expr)), f"{path.name}: {ast.unparse(node)}"


def test_components_are_one_module_per_stage():
    assert sorted(p.stem for p in COMPONENTS.glob("*.py")) == [
        "__init__",
        "discovery",
        "production",
        "refresh",
        "training",
        "validation",
    ]


@pytest.mark.parametrize("source", ["def f():\n    from kfp import dsl\n", "import kfp_rai.pipelines.local\n"])
def test_the_check_would_catch_an_import(tmp_path, source):
    bad = tmp_path / "bad.py"
    bad.write_text(source)
    assert _offending(bad, KFP_USERS)
