"""`kfp-rai compile`, `submit`, `schedule` and `deploy-manifest`: the pipeline and the served
model as Kubeflow runs them."""

from __future__ import annotations

import argparse
import re
from typing import Any

from kfp_rai.errors import RAIError

EXIT_OK, EXIT_FAILED = 0, 1


PIPELINE_NAMES = ["lifecycle", "partitioned-drift", "partitioned-fairness"]  # kfp_rai.pipelines.PIPELINES


def cmd_compile(args: argparse.Namespace) -> int:
    from kfp_rai.pipelines.compile import compile_pipeline

    if args.image is not None and not re.fullmatch(r"[\w.\-/:@]+", args.image):
        raise RAIError(f"--image {args.image!r} is not an image reference like registry/name:tag")
    for name in [args.pipeline] if args.pipeline else PIPELINE_NAMES:
        print(compile_pipeline(name, args.output, image=args.image))
    return EXIT_OK


def cmd_deploy_manifest(args: argparse.Namespace) -> int:
    """Print the InferenceService of a registry version (verified first): apply it to deploy that
    version, or to roll back to it."""
    import tempfile

    from kfp_rai._image import IMAGE
    from kfp_rai.core.model_dir import fetch_version, read_model_metadata
    from kfp_rai.production import manifest_yaml, storage_uri
    from kfp_rai.production._deploy import deploy_model

    if args.image is not None and not re.fullmatch(r"[\w.\-/:@]+", args.image):
        raise RAIError(f"--image {args.image!r} is not an image reference like registry/name:tag")
    target = args.storage_uri or storage_uri(args.model_uri)
    if target is None:
        raise RAIError(
            f"{args.model_uri} is a local path a cluster cannot fetch: give the version's URI as the cluster "
            "sees it with --storage-uri (s3://..., pvc://...)"
        )
    with tempfile.TemporaryDirectory(prefix="kfp-rai-version-") as tmp:
        local = fetch_version(args.model_uri, tmp)
        meta = read_model_metadata(local)  # verified: a tampered version is never rendered
        if not meta.get("name") or not meta.get("version"):
            raise RAIError(f"{args.model_uri} is not a registry version (its metadata names no model and version)")
        # never applied from here: the operator applies the printed object with their own credentials
        _, (isvc,) = deploy_model(
            local,
            model_name=str(meta["name"]),
            version=str(meta["version"]),
            storage_uri=target,
            image=args.image or IMAGE,
            namespace=args.namespace,
            apply=False,
        )
    print(manifest_yaml(isvc), end="")
    return EXIT_OK


def _remote_params(args: argparse.Namespace) -> dict[str, Any]:
    from kfp_rai.discovery import CollectionPlan, ReferencePopulation
    from kfp_rai.pipelines.remote import parse_params, read_text_param
    from kfp_rai.policy import Policy

    params: dict[str, Any] = parse_params(args.pipeline, args.param or [])
    if (policy := read_text_param(args.policy, "policy")) is not None:
        Policy.from_yaml(policy)
        params["policy"] = policy
    if (reference := read_text_param(args.reference_population, "reference population")) is not None:
        ReferencePopulation.from_yaml(reference)
        params["reference_population"] = reference
    if (reviewer := read_text_param(args.reviewer, "reviewer file")) is not None:
        from kfp_rai.validation import ReviewerFile

        ReviewerFile.from_yaml(reviewer)
        params["reviewer"] = reviewer
    if (plan := read_text_param(args.collection_plan, "data collection plan")) is not None:
        CollectionPlan.from_yaml(plan)
        params["collection_plan"] = plan
    return params


def cmd_submit(args: argparse.Namespace) -> int:
    from kfp_rai.pipelines.remote import submit

    done = submit(
        args.host,
        args.pipeline,
        _remote_params(args),
        experiment=args.experiment,
        image=args.image,
        service_account=args.service_account,
        wait=args.wait,
    )
    print(f"submitted {done.kind} {done.id}: {done.url}" + (f" -> {done.state}" if done.state else ""))
    return EXIT_OK if done.state in (None, "SUCCEEDED") else EXIT_FAILED


def cmd_schedule(args: argparse.Namespace) -> int:
    from kfp_rai.pipelines.remote import check_cron, schedule

    check_cron(args.cron)
    done = schedule(
        args.host,
        args.pipeline,
        _remote_params(args),
        cron=args.cron,
        experiment=args.experiment,
        job_name=args.name or f"kfp-rai-{args.pipeline}-recurring",
        image=args.image,
        service_account=args.service_account,
    )
    print(f"created {done.kind} {done.id}: {done.url}")
    return EXIT_OK


def add_remote_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", required=True, help="Kubeflow Pipelines API/UI URL, e.g. http://localhost:8080")
    parser.add_argument("--pipeline", default="lifecycle", choices=PIPELINE_NAMES)
    parser.add_argument("--param", action="append", metavar="NAME=VALUE", help="pipeline parameter (repeatable)")
    parser.add_argument("--policy", metavar="FILE", help="policy YAML, passed as the policy parameter")
    parser.add_argument("--reference-population", metavar="FILE", help="reference population YAML")
    parser.add_argument("--collection-plan", metavar="FILE", help="data collection plan YAML")
    parser.add_argument("--reviewer", metavar="FILE", help="reviewer file: human-computed metrics")
    parser.add_argument("--experiment", default="kfp-rai", help="KFP experiment (default: kfp-rai)")
    parser.add_argument("--image", metavar="REF", help="component image for this submission")
    parser.add_argument("--service-account", metavar="NAME", help="Kubernetes service account of the run's pods")
