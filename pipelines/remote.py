"""Submit and schedule kfp-rai pipelines on a Kubeflow Pipelines cluster with the kfp SDK."""

import json
import logging
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfp_rai.core.params import check_seed
from kfp_rai.errors import InvalidParameterError, RAIError
from kfp_rai.pipelines import PIPELINES
from kfp_rai.pipelines.compile import compile_pipeline

_CRON_FIELD = re.compile(r"^[\d*/,\-?LW#A-Za-z]+$")


@dataclass(frozen=True)
class Submitted:
    kind: str  # "run" | "recurring run"
    id: str
    url: str
    state: str | None = None


def pipeline_parameters(name: str) -> list[str]:
    """The parameter names the pipeline accepts."""
    spec = PIPELINES[name].pipeline_spec
    return sorted(spec.root.input_definitions.parameters.keys())


def parse_params(name: str, pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; a value that parses as JSON (numbers, lists) is passed as such."""
    known = pipeline_parameters(name)
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidParameterError(f"--param {pair!r} must look like name=value")
        if key not in known:
            raise InvalidParameterError(f"--param {key!r} is not a parameter of {name}; it has: {', '.join(known)}")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    if "seed" in params:  # refused here, not inside a task on the cluster
        check_seed(params["seed"], "--param seed")
    return params


def check_cron(expression: str) -> str:
    """KFP wants six fields, seconds first (``0 0 3 * * *`` = 03:00 daily)."""
    fields = expression.split()
    if len(fields) != 6 or not all(_CRON_FIELD.match(f) for f in fields):
        raise InvalidParameterError(
            f"--cron {expression!r} must have 6 fields, seconds first, e.g. '0 0 3 * * *' for 03:00 every day"
        )
    return expression


CONNECT_TIMEOUT_S = 5


def _answers(host: str) -> None:
    """One TCP connection to the host within CONNECT_TIMEOUT_S, before kfp's client (whose retries
    take about 26 s to give up on a closed port)."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(host)
    try:
        port = url.port or (443 if url.scheme == "https" else 80)
    except ValueError as exc:
        raise InvalidParameterError(f"--host {host!r} has no valid port: {exc}") from exc
    try:
        with socket.create_connection((url.hostname or "", port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        why = "no answer within 5 s" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise RAIError(
            f"cannot reach Kubeflow Pipelines at {host}: {why} (is the API server or its port-forward up?)"
        ) from exc


def connect(host: str) -> Any:
    """A kfp.Client for ``host``; an unreachable host is a clear error, not a traceback."""
    import kfp

    if not re.match(r"^https?://", host):
        raise InvalidParameterError(f"--host {host!r} must be an http(s) URL, e.g. http://localhost:8888")
    _answers(host)
    try:
        # kfp warns that it needs a v2 backend and urllib3 logs each retry: the error below says it all.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            for name in ("urllib3", "urllib3.connectionpool"):
                logging.getLogger(name).setLevel(logging.ERROR)
            return kfp.Client(host=host)
    except Exception as exc:  # noqa: BLE001 - any failure to talk to the API means: not reachable
        raise RAIError(
            f"cannot reach Kubeflow Pipelines at {host}: {type(exc).__name__}: {exc}".splitlines()[0]
        ) from exc


def _compiled(name: str, image: str | None, scratch: str) -> str:
    return str(compile_pipeline(name, scratch, image=image))


def submit(
    host: str,
    name: str,
    params: dict[str, Any],
    *,
    experiment: str,
    image: str | None = None,
    service_account: str | None = None,
    wait: bool = False,
    timeout_s: int = 3600,
) -> Submitted:
    """Compile ``name`` and start one run on the cluster at ``host``."""
    client = connect(host)
    with tempfile.TemporaryDirectory() as scratch:
        run = client.create_run_from_pipeline_package(
            _compiled(name, image, scratch),
            arguments=params,
            experiment_name=experiment,
            service_account=service_account,
            enable_caching=False,
        )
    url = f"{host.rstrip('/')}/#/runs/details/{run.run_id}"
    state = None
    if wait:
        state = client.wait_for_run_completion(run.run_id, timeout=timeout_s).state
    return Submitted("run", run.run_id, url, state)


def schedule(
    host: str,
    name: str,
    params: dict[str, Any],
    *,
    cron: str,
    experiment: str,
    job_name: str,
    image: str | None = None,
    service_account: str | None = None,
    max_concurrency: int = 1,
) -> Submitted:
    """Create a recurring run of ``name`` (no catch-up, one at a time) on the cluster at ``host``."""
    check_cron(cron)
    client = connect(host)
    exp = client.create_experiment(experiment)
    with tempfile.TemporaryDirectory() as scratch:
        job = client.create_recurring_run(
            experiment_id=exp.experiment_id,
            job_name=job_name,
            cron_expression=cron,
            max_concurrency=max_concurrency,
            no_catchup=True,
            params=params,
            pipeline_package_path=_compiled(name, image, scratch),
            enable_caching=False,
            service_account=service_account,
        )
    return Submitted(
        "recurring run", job.recurring_run_id, f"{host.rstrip('/')}/#/recurringrun/details/{job.recurring_run_id}"
    )


def read_text_param(path: str | None, label: str) -> str | None:
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise InvalidParameterError(f"{label} file not found: {p}")
    return p.read_text(encoding="utf-8")
