"""`kfp-rai compile`, `submit`, `schedule` and `deploy-manifest`: the pipeline and the served
model as Kubeflow runs them."""

from __future__ import annotations

import argparse
import re
from typing import Any

from kfp_rai.errors import RAIError

EXIT_OK, EXIT_FAILED = 0, 1


PIPELINE_NAMES = ["lifecycle", "refresh", "partitioned-drift", "partitioned-fairness"]  # kfp_rai.pipelines.PIPELINES


def cmd_compile(args: argparse.Namespace) -> int:
    from kfp_rai.pipelines.compile import compile_pipeline

    if args.image is not None and not re.fullmatch(r"[\w.\-/:@]+", args.image):
        raise RAIError(f"--image {args.image!r} is not an image reference like registry/name:tag")
    for name in [args.pipeline] if args.pipeline else PIPELINE_NAMES:
        print(compile_pipeline(name, args.output, image=args.image))
    return EXIT_OK


def cmd_deploy_manifest(args: argparse.Namespace) -> int:
    """Print the InferenceService of a registry version (verified first): by default the version
    the production alias names, carrying the signed event that let it serve."""
    import sys
    import tempfile

    from kfp_rai._image import IMAGE
    from kfp_rai.core.model_dir import fetch_version, read_model_metadata
    from kfp_rai.production import manifest_yaml, servable_version, storage_uri
    from kfp_rai.production._deploy import deploy_model

    if args.image is not None and not re.fullmatch(r"[\w.\-/:@]+", args.image):
        raise RAIError(f"--image {args.image!r} is not an image reference like registry/name:tag")
    if args.version and args.alias:
        raise RAIError("give --alias or --version, not both")
    found = servable_version(
        model_uri=args.model_uri, registry=args.registry, name=args.model, ref=args.version or args.alias
    )
    if found.approval is None and not args.allow_unapproved:
        raise RAIError(
            f"{found.uri} is not an approved version of a registry: approve and promote it (`kfp-rai models`), or for "
            "development only --allow-unapproved (its server then needs --allow-unapproved too)"
        )
    if found.approval is not None and found.approval.type == "approved":
        raise RAIError(
            f"version {found.approval.version} is approved but not in production: deployment follows the production "
            "alias (kfp-rai models promote), so its server would refuse it"
        )
    target = args.storage_uri or storage_uri(found.uri)
    if target is None:
        raise RAIError(
            f"{found.uri} is a local path a cluster cannot fetch: give the version's URI as the cluster "
            "sees it with --storage-uri (s3://..., pvc://...)"
        )
    with tempfile.TemporaryDirectory(prefix="kfp-rai-version-") as tmp:
        local = fetch_version(found.uri, tmp)
        meta = read_model_metadata(local)  # verified: a tampered version is never rendered
        if not meta.get("name") or not meta.get("version"):
            raise RAIError(f"{found.uri} is not a registry version (its metadata names no model and version)")
        # never applied from here: the operator applies the printed object with their own credentials
        _, objects = deploy_model(
            local,
            model_name=str(meta["name"]),
            version=str(meta["version"]),
            storage_uri=target,
            image=args.image or IMAGE,
            namespace=args.namespace,
            apply=False,
            approval_event=found.signed_approval,
        )
    if found.approval is None:
        print("kfp-rai: WARNING: --allow-unapproved: this version was approved by no one", file=sys.stderr)
    print(manifest_yaml(objects), end="")
    return EXIT_OK


def _remote_params(args: argparse.Namespace) -> dict[str, Any]:
    from kfp_rai.discovery import CollectionPlan, ReferencePopulation
    from kfp_rai.pipelines.remote import parse_params, read_text_param
    from kfp_rai.policy import Policy

    params: dict[str, Any] = parse_params(args.pipeline, args.param or [])
    if args.pipeline in ("lifecycle", "refresh") and "launched_by" not in params:  # who launched it
        from kfp_rai.cli._run import launched_by

        params["launched_by"] = launched_by(None)
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
    parser.add_argument("--host", required=True, help="Kubeflow Pipelines API/UI URL, e.g. http://localhost:8888")
    parser.add_argument("--pipeline", default="lifecycle", choices=PIPELINE_NAMES)
    parser.add_argument("--param", action="append", metavar="NAME=VALUE", help="pipeline parameter (repeatable)")
    parser.add_argument("--policy", metavar="FILE", help="policy YAML, passed as the policy parameter")
    parser.add_argument("--reference-population", metavar="FILE", help="reference population YAML")
    parser.add_argument("--collection-plan", metavar="FILE", help="data collection plan YAML")
    parser.add_argument("--reviewer", metavar="FILE", help="reviewer file: human-computed metrics")
    parser.add_argument("--experiment", default="kfp-rai", help="KFP experiment (default: kfp-rai)")
    parser.add_argument("--image", metavar="REF", help="component image for this submission")
    parser.add_argument("--service-account", metavar="NAME", help="Kubernetes service account of the run's pods")
