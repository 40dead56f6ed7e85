"""Run a kfp-rai pipeline with kfp.local (SubprocessRunner, no venv per task, caching off).

Runs tasks in lifecycle order: kfp.local executes one task at a time in a depth-first order over a
protobuf map whose iteration order varies from run to run, so registration could run after the
refresh stage. :func:`init_local` gives it a topological order that, among the tasks ready to
run, takes the earliest lifecycle stage first (a condition group ranks as its latest dependency).

Also mends one gap of kfp 2.17's local runner: a ``dsl.If`` on a *named* output of a
multi-output task (``task.outputs["passed"] == True``) is resolved as a pipeline parameter, not
found, and the branch is silently skipped. Every kfp-rai gate is such an output, so
:func:`init_local` teaches the resolver to read ``<task>-<output>`` as that task's output before
falling back to kfp's own logic. Output names are Python identifiers (no ``-``), so splitting at
the last ``-`` is exact. On a cluster the KFP backend evaluates conditions itself.

Run as ``python -m kfp_rai.pipelines.local SPEC.json`` it executes one pipeline and writes a
result file; ``kfp-rai run`` uses that to keep kfp's logs in a file and show progress instead.
With ``docker`` in the spec (``kfp-rai run --runner docker``) every task runs in the image through
kfp.local's DockerRunner (:mod:`kfp_rai.pipelines.docker`).
"""

import contextlib
import json
import logging
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any

_PATCHED = False


def stage_order(dependencies: dict[str, list[str]]) -> list[str]:
    """A topological order of ``task -> upstream tasks`` taking, among ready tasks, the earliest
    lifecycle stage first (ties by name): the order a person reads the lifecycle in."""
    from kfp_rai.pipelines.tasks import STAGES, place

    rank: dict[str, int] = {}

    def rank_of(task: str) -> int:
        if task not in rank:
            where = place(task)
            upstream = [rank_of(d) for d in dependencies.get(task, []) if d in dependencies]
            rank[task] = STAGES.index(where[0]) if where else max(upstream, default=0)
        return rank[task]

    waiting = {t: {d for d in deps if d in dependencies} for t, deps in dependencies.items()}
    order: list[str] = []
    while waiting:
        ready = sorted((t for t, deps in waiting.items() if not deps), key=lambda t: (rank_of(t), t))
        if not ready:
            raise RuntimeError(f"the pipeline's tasks depend on each other in a cycle: {sorted(waiting)}")
        task = ready[0]
        order.append(task)
        del waiting[task]
        for deps in waiting.values():
            deps.discard(task)
    return order


def _patch_task_order() -> None:
    from kfp.local import graph_utils

    def topological_sort_tasks(tasks: dict[str, Any]) -> list[str]:
        # kfp pops tasks off the right end of the returned stack.
        return stage_order(graph_utils.build_dependency_map(tasks))[::-1]

    graph_utils.topological_sort_tasks = topological_sort_tasks


def _patch_indented_print() -> None:
    """kfp 2.17's ``logging_utils.indented_print`` swaps ``builtins.print`` and puts back the one it
    found. ParallelFor iterations run it in threads at once, so the last to finish can put back
    another thread's indented print: every later ``print`` of the process stays indented, and after
    the next swap it calls a function kfp no longer has. One swap for all concurrent tasks fixes it."""
    import builtins
    import threading

    from kfp.local import logging_utils

    if getattr(logging_utils.indented_print, "_kfp_rai", False):
        return
    lock = threading.Lock()
    state: dict[str, Any] = {"depth": 0, "original": None}

    @contextlib.contextmanager
    def indented_print(num_spaces: int = 4) -> Any:
        with lock:
            if state["depth"] == 0:
                original = state["original"] = builtins.print

                def indented(*args: Any, **kwargs: Any) -> Any:
                    original(" " * num_spaces, end="")
                    return original(*args, **kwargs)

                builtins.print = indented
            state["depth"] += 1
        try:
            yield
        finally:
            with lock:
                state["depth"] -= 1
                if state["depth"] == 0:
                    builtins.print = state["original"]

    indented_print._kfp_rai = True  # type: ignore[attr-defined]
    logging_utils.indented_print = indented_print


def _patch_condition_resolution() -> None:
    global _PATCHED
    if _PATCHED:
        return
    try:
        from kfp.local import graph_utils
        from kfp.local.orchestrator.enhanced_dag_orchestrator import ConditionEvaluator

        original = ConditionEvaluator._resolve_pipeline_channel
        graph_utils.build_dependency_map  # noqa: B018 - both hooks must exist before anything is patched
        graph_utils.topological_sort_tasks  # noqa: B018
    except (ImportError, AttributeError) as exc:
        # Without the fix every gated branch would be skipped silently: refuse to run instead.
        import kfp

        raise RuntimeError(
            f"kfp {kfp.__version__} changed kfp.local's condition resolver or task ordering, which kfp-rai "
            "patches so that dsl.If on gate outputs works locally and tasks run in lifecycle order; use kfp "
            "2.17 or update kfp_rai/pipelines/local.py"
        ) from exc

    def resolve(channel_ref: str, io_store: Any) -> Any:
        ref = channel_ref.replace("pipelinechannel--", "")
        if "--" not in ref and "-Output" not in ref and "-" in ref:
            task, key = ref.rsplit("-", 1)
            try:
                return io_store.get_task_output(task, key)
            except Exception:  # noqa: BLE001  # nosec B110  # not a task output: kfp's own resolution decides below
                pass
        return original(channel_ref, io_store)

    ConditionEvaluator._resolve_pipeline_channel = staticmethod(resolve)
    _patch_task_order()
    _PATCHED = True


def _patch_time_placeholders() -> None:
    """kfp 2.17's local runner resolves the run's id and name but not its creation and schedule times
    (``dsl.PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER``, ``..._SCHEDULE_TIME_UTC_PLACEHOLDER``): a task
    using them fails in its placeholder resolver. A local run is created now and scheduled never, as
    a manual run on a cluster is."""
    import datetime as dt

    from kfp import dsl
    from kfp.local import placeholder_utils

    original = placeholder_utils.resolve_individual_placeholder
    if getattr(original, "_kfp_rai", False):
        return
    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")

    def resolve(element: str, *args: Any, **kwargs: Any) -> Any:
        element = element.replace(dsl.PIPELINE_JOB_CREATE_TIME_UTC_PLACEHOLDER, created)
        element = element.replace(dsl.PIPELINE_JOB_SCHEDULE_TIME_UTC_PLACEHOLDER, "")
        return original(element, *args, **kwargs)

    resolve._kfp_rai = True  # type: ignore[attr-defined]
    placeholder_utils.resolve_individual_placeholder = resolve


def init_local(pipeline_root: str, *, enable_caching: bool = False, docker: dict[str, Any] | None = None) -> None:
    """``kfp.local.init`` with the SubprocessRunner (no venv per task), or with ``docker`` (the
    settings :func:`kfp_rai.pipelines.docker.task_settings` made) kfp.local's DockerRunner: every
    task in the image; either way the condition fix and the lifecycle task order."""
    from kfp import local

    # kfp.local warns for every task whose base image is not named "python*"; locally the tasks run
    # the installed kfp_rai package by design, so the warning is noise.
    warnings.filterwarnings("ignore", message="You may be attemping to run a task", category=RuntimeWarning)
    # Resource requests are for the cluster; kfp.local says it ignores them (for ParallelFor tasks).
    warnings.filterwarnings("ignore", message=".*have no effect in the current local runner")
    _patch_condition_resolution()
    _patch_indented_print()
    _patch_time_placeholders()
    if docker is not None:
        from kfp_rai.pipelines.docker import init_docker

        runner: Any = init_docker(docker)
    else:
        runner = local.SubprocessRunner(use_venv=False)
    local.init(
        runner=runner,
        pipeline_root=pipeline_root,
        raise_on_error=True,
        enable_caching=enable_caching,
    )


def run_pipeline(
    name: str, arguments: dict[str, Any], pipeline_root: str, *, docker: dict[str, Any] | None = None
) -> Path:
    """Run pipeline ``name`` locally (``docker``: every task in a container, see :func:`init_local`);
    return the directory holding its tasks' outputs."""
    from kfp_rai.pipelines import PIPELINES

    init_local(pipeline_root, docker=docker)
    root = Path(pipeline_root)
    before = set(root.iterdir()) if root.exists() else set()
    PIPELINES[name](**arguments)
    return _newest_run(root, before)


def _newest_run(root: Path, before: set[Path]) -> Path:
    created = [p for p in root.iterdir() if p.is_dir() and p not in before] if root.exists() else []
    if not created:
        raise RuntimeError(f"kfp.local wrote no run directory under {root}")
    return max(created, key=lambda p: p.stat().st_mtime)


def _stop_when_orphaned(docker_run: str | None = None) -> None:
    """If `kfp-rai run` dies (even by SIGKILL), stop this pipeline's whole process group (and, with
    ``docker_run``, that run's task containers, which are no process of the group): an orphaned
    pipeline must never go on to register a model nobody is watching."""
    import os
    import signal
    import threading
    import time

    if os.getsid(0) != os.getpid():  # not started as its own session by `kfp-rai run`: leave others alone
        return
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        if docker_run is not None:
            from kfp_rai.pipelines.docker import remove_containers

            with contextlib.suppress(Exception):
                remove_containers(docker_run)
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    """Child-process entry point: ``SPEC.json`` holds name, arguments, pipeline_root, result."""
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    docker = spec.get("docker")
    _stop_when_orphaned(docker["run_id"] if docker else None)
    logging.basicConfig(level=logging.INFO)
    root = Path(spec["pipeline_root"])
    root.mkdir(parents=True, exist_ok=True)
    before = set(root.iterdir())
    result: dict[str, Any] = {"status": "succeeded", "error": None, "pipeline_dir": None}
    try:
        from kfp_rai.pipelines import PIPELINES
        from kfp_rai.pipelines.tasks import nested_in_component

        # Which tasks are a refresh's challenger, in the pipeline this process runs (the CLI's guess,
        # from the shipped compiled spec, only labels its progress lines).
        result["nested"] = sorted(nested_in_component(PIPELINES[spec["name"]]))
        result["pipeline_dir"] = str(run_pipeline(spec["name"], spec["arguments"], str(root), docker=docker))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which explains it
        traceback.print_exc()
        result.update(status="failed", error=str(exc))
        with contextlib.suppress(RuntimeError):
            result["pipeline_dir"] = str(_newest_run(root, before))
    Path(spec["result"]).write_text(json.dumps(result), encoding="utf-8")
    return 0 if result["status"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
