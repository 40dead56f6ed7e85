#!/usr/bin/env bash
# Offline verification of everything that ships to a cluster, for CI and for `make verify`:
#   kustomize build (kubectl's built-in kustomize) of base and the kind overlay, the deploy step's
#   InferenceService against the kserve SDK's types and KServe's CRD schema (manifests/kserve/),
#   strict validation of every rendered object against the Kubernetes API schemas of the
#   version kind-config.yaml pins, a security scan (checkov) of the manifests and the Dockerfile,
#   hadolint, yamllint, and the GitHub workflows against their JSON schema.
# Needs: kubectl (for kustomize) and the tools of requirements-tools.txt on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSION=$(sed -n 's/.*kindest\/node:v\([0-9.]*\)@.*/\1/p' kind-config.yaml)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

step() { printf '\n== %s\n' "$*"; }

step "kustomize build (kubectl $(kubectl version --client 2>/dev/null | sed -n 's/Kustomize Version: //p'))"
for target in base overlays/kind; do
  name=${target//\//-}
  kubectl kustomize "manifests/$target" > "$out/$name.yaml"
  echo "manifests/$target: $(grep -c '^kind:' "$out/$name.yaml") objects"
done

step "the deploy task's InferenceService, rendered for a small model: kserve SDK types + KServe CRD schema"
# env -u: if this runs inside a pod, the deploy step must still only render, never apply.
# The pod KServe will run from it (predictor fields as a Pod) goes to the Kubernetes schema check
# and the security scan below.
env -u KUBERNETES_SERVICE_HOST "${PYTHON:-.venv/bin/python}" - "$out/deploy-rendered.yaml" <<'PY'
import os, sys, tempfile
import numpy as np, pandas as pd, yaml
os.environ["KFP_RAI_CONFIG_DIR"] = tempfile.mkdtemp()  # a throwaway signing key, never the user's
from kfp_rai.core.signing import ensure_local_keys
ensure_local_keys()
from sklearn.linear_model import LogisticRegression
from kfp_rai.core.model_dir import save_model_dir
from kfp_rai.production import deploy_model
from kfp_rai.production._inference_service import check_against_sdk_types, validate_against_crd
model = LogisticRegression().fit(pd.DataFrame({"x": np.arange(20.0)}), np.arange(20) % 2)
with tempfile.TemporaryDirectory() as tmp:
    save_model_dir(model, tmp, {"features": ["x"]})
    _, objects = deploy_model(tmp, model_name="adult-income", version="1", storage_uri="s3://models/adult-income/1",
                              image="ghcr.io/kfp-rai/kfp-rai:0.1.0")
*claims, isvc = objects
problems = check_against_sdk_types(isvc) + validate_against_crd(isvc, "manifests/kserve/serving.kserve.io_inferenceservices.yaml.gz")
if problems:
    sys.exit("InferenceService invalid:\n  " + "\n  ".join(problems))
print("InferenceService/adult-income: fits the kserve SDK types and the KServe CRD schema")
predictor = isvc["spec"]["predictor"]
pod_fields = ("serviceAccountName", "automountServiceAccountToken", "securityContext", "containers", "volumes")
pod = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "adult-income-predictor", "namespace": "kfp-rai", "labels": predictor["labels"],
                    "annotations": {k: v for k, v in isvc["metadata"]["annotations"].items() if k.startswith("checkov")}},
       "spec": {k: predictor[k] for k in pod_fields}}
yaml.safe_dump_all([*claims, pod], open(sys.argv[1], "w"), sort_keys=False)
print(f"rendered the predictor pod and its {len(claims)} audit volume claims for the checks below")
PY

step "kubernetes-validate --strict against Kubernetes $K8S_VERSION"
kubernetes-validate --strict --quiet -k "$K8S_VERSION" "$out"/*.yaml
echo "all objects valid"

step "checkov: rendered manifests and Dockerfile (skips are explained in the manifests)"
checkov --quiet --compact --skip-download --framework kubernetes -f "$out/base.yaml" -f "$out/overlays-kind.yaml" \
  -f "$out/deploy-rendered.yaml"
checkov --quiet --compact --skip-download --framework dockerfile -f Dockerfile

step "hadolint"
hadolint Dockerfile && echo "Dockerfile clean"

step "yamllint"
yamllint --strict manifests kind-config.yaml .github .yamllint.yaml

step "GitHub workflows against their schema"
check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
