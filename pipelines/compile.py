"""Compile kfp-rai pipelines to the YAML that the Kubeflow UI and SDK take."""

from pathlib import Path

from kfp import compiler

from kfp_rai._image import IMAGE
from kfp_rai.pipelines import PIPELINES


def compile_pipeline(name: str, output_dir: str | Path, *, image: str | None = None) -> Path:
    """Compile pipeline ``name`` to ``<output_dir>/<name>.yaml`` and return the path.

    ``image`` replaces the default component image in every executor (private registries); the
    ``KFP_RAI_IMAGE`` environment variable does the same when set before kfp_rai is imported.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"{name}.yaml"
    tmp = output_dir / f".{name}.tmp.yaml"
    try:
        compiler.Compiler().compile(PIPELINES[name], str(tmp))
        if image and image != IMAGE:
            text = tmp.read_text(encoding="utf-8")
            # Every mention: executors' images and the deploy task's KFP_RAI_IMAGE (the serving image).
            tmp.write_text(text.replace(IMAGE, image), encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
