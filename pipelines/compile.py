"""Compile kfp-rai pipelines to the YAML that the Kubeflow UI and SDK take."""

from pathlib import Path

from kfp import compiler

from kfp_rai.pipelines import PIPELINES


def compile_pipeline(name: str, output_dir: str | Path) -> Path:
    """Compile pipeline ``name`` to ``<output_dir>/<name>.yaml`` and return the path."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"{name}.yaml"
    tmp = output_dir / f".{name}.tmp.yaml"
    compiler.Compiler().compile(PIPELINES[name], str(tmp))
    tmp.replace(path)
    return path
