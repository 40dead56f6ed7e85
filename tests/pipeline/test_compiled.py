"""Golden test: the committed compiled YAML is exactly what the code compiles to (sdkVersion aside)."""

import re
from pathlib import Path

import pytest
import yaml
from kfp.components import load_component_from_file

from kfp_rai._image import IMAGE
from kfp_rai._version import __version__
from kfp_rai.pipelines.compile import compile_pipeline

COMPILED = Path(__file__).resolve().parents[2] / "pipelines" / "compiled"
_SDK = re.compile(r"^(# )?sdkVersion: .*$", re.M)


def _normalise(text: str) -> str:
    return _SDK.sub("sdkVersion: <any>", text)


NAMES = ["lifecycle", "partitioned-drift", "partitioned-fairness"]


@pytest.mark.parametrize("name", NAMES)
def test_committed_yaml_is_up_to_date(tmp_path, name):
    fresh = compile_pipeline(name, tmp_path).read_text()
    committed = (COMPILED / f"{name}.yaml").read_text()
    assert _normalise(fresh) == _normalise(committed), "run `make compile` and commit pipelines/compiled/"


def test_yaml_loads_back_and_uses_one_versioned_image():
    path = COMPILED / "lifecycle.yaml"
    component = load_component_from_file(str(path))
    assert component.name == "kfp-rai-lifecycle"
    spec = next(yaml.safe_load_all(path.read_text()))
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert images == {IMAGE} and IMAGE.endswith(":" + __version__)
    # the lifecycle: load, registry check, 9 build-and-judge (register or the blocked branch), deploy = 12; its
    # refresh sub-pipeline: champion, refresh gate, load, training rows, the challenger's 9, comparison, notify = 15
    assert len(spec["deploymentSpec"]["executors"]) == 27


def _described(definitions: dict, kind: str) -> list[str]:
    return [name for name, spec in definitions.get(kind, {}).items() if not spec.get("description", "").strip()]


@pytest.mark.parametrize("name", NAMES)
def test_every_input_and_output_has_a_description(name):
    """kfp copies each Args:/Returns: entry of a docstring into the YAML; the Kubeflow UI shows it."""
    spec = next(yaml.safe_load_all((COMPILED / f"{name}.yaml").read_text()))
    missing = {"<pipeline>": _described(spec["root"]["inputDefinitions"], "parameters")}
    for task, component in spec["components"].items():
        if "executorLabel" not in component or task.startswith("comp-importer"):
            continue  # dsl.If / ParallelFor sub-DAGs and importers: the compiler's own channels
        for side in ("inputDefinitions", "outputDefinitions"):
            for kind in ("parameters", "artifacts"):
                missing[f"{task}.{side}.{kind}"] = _described(component.get(side, {}), kind)
    assert {k: v for k, v in missing.items() if v} == {}
    assert spec["pipelineInfo"]["description"].startswith(
        "Responsible-AI lifecycle" if name == "lifecycle" else "Drift" if name.endswith("drift") else "Per-group"
    )


def test_component_reference_is_in_step_with_the_docstrings():
    from kfp_rai.pipelines.reference import components_markdown

    committed = (COMPILED.parents[1] / "docs" / "components.md").read_text()
    assert committed == components_markdown(), "run `make docs` and commit docs/"


@pytest.mark.parametrize("name", ["partitioned-drift", "partitioned-fairness"])
def test_partitioned_pipelines_never_answer_from_the_cache(name):
    """The same URI holds new data on each run: a cached partition list or summary would be stale."""
    spec = next(yaml.safe_load_all((COMPILED / f"{name}.yaml").read_text()))
    tasks = [
        task
        for component in [spec["root"], *spec["components"].values()]
        for task in component.get("dag", {}).get("tasks", {}).values()
        if "componentRef" in task and not task["componentRef"]["name"].startswith("comp-for-loop")
    ]
    assert len(tasks) == (5 if name.endswith("drift") else 4) and all(
        task.get("cachingOptions", {}).get("enableCache") is not True for task in tasks
    )


def test_the_shipped_spec_and_the_built_pipeline_name_the_same_challenger_tasks():
    """The CLI labels progress from the shipped spec, the runner files outputs from the pipeline it
    built: both must agree on which tasks are the refresh's challenger."""
    from kfp_rai.pipelines import PIPELINES
    from kfp_rai.pipelines.tasks import nested_in_component, nested_tasks

    for name in ("lifecycle", "refresh"):
        assert nested_tasks(name) == nested_in_component(PIPELINES[name])
    assert "train-model-2" in nested_tasks("lifecycle")
