"""The deploy step: serve a registered model by applying its serving objects when in a cluster.

Outside a cluster nothing is applied; the report says so and the rendered objects stay as
evidence (see :mod:`kfp_rai.production._serving_manifest`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfp_rai.core.model_dir import META_FILE, MODEL_FILE, read_model_metadata
from kfp_rai.core.report import Report, Section, Table
from kfp_rai.core.signing import SIGNATURE_FILE
from kfp_rai.core.verdict import GateStatus, Verdict
from kfp_rai.production._kube import apply_objects, in_cluster
from kfp_rai.production._serving_manifest import render_serving


@dataclass(frozen=True)
class DeploymentReport(Report):
    """What was (or would have been) applied, and whether it was."""

    kind = "deployment_report"
    title = "Deployment"

    verdict: Verdict
    deployed: bool
    namespace: str
    model_name: str
    model_version: str
    model_sha256: str
    image: str
    objects: tuple[str, ...]

    def verdict_label(self) -> str:
        return "DEPLOYED" if self.deployed else "NOT DEPLOYED"

    def sections(self) -> list[Section]:
        rows = (
            ("model", f"{self.model_name} version {self.model_version}"),
            ("sha256", self.model_sha256),
            ("image", self.image),
            ("namespace", self.namespace),
            ("objects", ", ".join(self.objects)),
        )
        return [
            Section(
                "Serving",
                (
                    Table(("field", "value"), rows),
                    "Roll back: `kubectl -n kfp-rai rollout undo deployment/kfp-rai-serving`. "
                    "Switch off: `kubectl -n kfp-rai scale deployment/kfp-rai-serving --replicas=0`.",
                ),
            )
        ]


def deploy_model(
    model_dir: str | os.PathLike[str],
    *,
    model_name: str,
    version: str,
    image: str,
    namespace: str = "kfp-rai",
) -> tuple[DeploymentReport, list[dict[str, Any]]]:
    """Render the serving objects for a registered model and apply them when in a cluster."""
    meta = read_model_metadata(model_dir)  # verifies the hash before anything ships
    files = {name: (Path(model_dir) / name).read_bytes() for name in (MODEL_FILE, META_FILE, SIGNATURE_FILE)}
    objects = render_serving(
        model_name=model_name,
        version=version,
        model_sha256=meta["sha256"],
        model_files=files,
        image=image,
        namespace=namespace,
    )
    names = tuple(f"{o['kind']}/{o['metadata']['name']}" for o in objects)
    if in_cluster():
        apply_objects(objects)
        deployed, reason = True, f"applied {', '.join(names)} in namespace {namespace} (server-side apply)"
    else:
        deployed = False
        reason = (
            "skipped: not running in a Kubernetes cluster (KUBERNETES_SERVICE_HOST is unset); "
            "the objects that would be applied are in the manifest output"
        )
    # Not a gate: a deployment that happened is passed; one skipped outside a cluster decided nothing.
    report = DeploymentReport(
        verdict=Verdict(GateStatus.PASSED if deployed else GateStatus.NOT_JUDGED, reason),
        deployed=deployed,
        namespace=namespace,
        model_name=model_name,
        model_version=version,
        model_sha256=meta["sha256"],
        image=image,
        objects=names,
    )
    return report, objects
