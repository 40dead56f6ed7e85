#!/usr/bin/env bash
# Create the local kind cluster from kind-config.yaml, install Kubeflow Pipelines from its official
# manifests and KServe (Standard mode: raw Deployments, no Knative; with cert-manager, its one
# dependency) at pinned versions, build and load the kfp-rai image, apply manifests/overlays/kind.
# Needs: docker (with a running engine), kind v0.27.0, kubectl >= 1.27.
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=kfp-rai
KFP_VERSION=${KFP_VERSION:-2.17.0}  # the backend must be at least as new as the SDK in constraints.txt
# KServe's controller at the version whose InferenceService CRD manifests/kserve/ holds (make verify
# checks the deploy step's object against it); the model server in the image is kserve 0.21 from
# PyPI, which the controller only runs as a container.
KSERVE_VERSION=${KSERVE_VERSION:-v0.20.0}
CERT_MANAGER_VERSION=${CERT_MANAGER_VERSION:-v1.17.2}
VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' src/kfp_rai/_version.py)
# The name the committed compiled YAML and manifests/ use; kind loads it, nothing is pushed.
IMAGE=ghcr.io/kfp-rai/kfp-rai:$VERSION

for tool in docker kind kubectl git python3; do
  command -v "$tool" >/dev/null || { echo "kind-up: $tool is not installed" >&2; exit 2; }
done
docker info >/dev/null 2>&1 || { echo "kind-up: no Docker engine is running" >&2; exit 2; }

if kind get clusters | grep -qx "$CLUSTER"; then
  echo "kind-up: cluster $CLUSTER exists; reusing it"
else
  kind create cluster --config kind-config.yaml --wait 120s
fi
kubectl config use-context "kind-$CLUSTER"

echo "kind-up: installing Kubeflow Pipelines $KFP_VERSION"
kubectl apply -k "github.com/kubeflow/pipelines/manifests/kustomize/cluster-scoped-resources?ref=$KFP_VERSION"
kubectl wait --for condition=established --timeout=120s crd/applications.app.k8s.io
kubectl apply -k "github.com/kubeflow/pipelines/manifests/kustomize/env/platform-agnostic?ref=$KFP_VERSION"

echo "kind-up: installing cert-manager $CERT_MANAGER_VERSION and KServe $KSERVE_VERSION (Standard mode)"
kubectl apply -f "https://github.com/cert-manager/cert-manager/releases/download/$CERT_MANAGER_VERSION/cert-manager.yaml"
kubectl -n cert-manager wait --for=condition=Available --timeout=600s deployment --all
kubectl apply --server-side -f "https://github.com/kserve/kserve/releases/download/$KSERVE_VERSION/kserve.yaml"
kubectl -n kserve wait --for=condition=Available --timeout=600s deployment/kserve-controller-manager
kubectl apply --server-side -f "https://github.com/kserve/kserve/releases/download/$KSERVE_VERSION/kserve-cluster-resources.yaml"
# Standard (raw Deployment) by default: without Knative, Serverless InferenceServices never start.
kubectl -n kserve patch configmap/inferenceservice-config --type=strategic \
  -p '{"data": {"deploy": "{\"defaultDeploymentMode\": \"Standard\"}"}}'

echo "kind-up: building and loading $IMAGE"
docker build --build-arg "VERSION=$VERSION" -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

echo "kind-up: applying manifests/overlays/kind"
kubectl apply -k manifests/overlays/kind
# One key for the pipeline tasks (kubeflow) and the serving app (kfp-rai): pseudonyms must match.
# Reuse the key if the Secret exists (re-running kind-up must not re-key the data); never print it.
key=$(kubectl -n kfp-rai get secret kfp-rai-pseudonymization -o jsonpath='{.data.hmac-key}' 2>/dev/null | base64 -d || true)
[ -n "$key" ] || key=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
for ns in kfp-rai kubeflow; do  # the key goes through stdin, never a command line
  printf '%s' "$key" | kubectl -n "$ns" create secret generic kfp-rai-pseudonymization \
    --from-file=hmac-key=/dev/stdin --dry-run=client -o yaml | kubectl apply -f - >/dev/null
done
unset key

# Model signing: the key pair goes to the namespace pipeline runs execute in (the training and
# registration tasks sign, the others verify); the serving namespace gets the public key only.
# An existing pair is kept: re-keying would make every signed model version unverifiable.
if ! kubectl -n kubeflow get secret kfp-rai-signing >/dev/null 2>&1; then
  keys=$(mktemp -d)
  KFP_RAI_CONFIG_DIR="$keys" .venv/bin/python -c 'from kfp_rai.core.signing import ensure_local_keys; ensure_local_keys()'
  kubectl -n kubeflow create secret generic kfp-rai-signing \
    --from-file=signing-key.pem="$keys/keys/signing-key.pem" --from-file=verify-key.pem="$keys/keys/verify-key.pem"
  rm -rf "$keys"
fi
# People's decisions (approve, promote, roll back) are signed with the decision key, which stays with the
# people who decide (here: your config dir, ~/.config/kfp-rai/keys/decision-key.pem) and never reaches
# a pipeline's namespace; its public half goes to the pipeline tasks and the serving app, which verify.
.venv/bin/python -c 'from kfp_rai.core.signing import ensure_local_keys; ensure_local_keys()'
decision_public=$(.venv/bin/python -c 'from kfp_rai.core.signing import DECISION_KEYS, verify_pem; import base64, sys; sys.stdout.write(base64.b64encode(verify_pem(DECISION_KEYS)).decode())')
kubectl -n kubeflow patch secret kfp-rai-signing --type=merge \
  -p "{\"data\": {\"decision-verify-key.pem\": \"$decision_public\"}}" >/dev/null
verify_public=$(kubectl -n kubeflow get secret kfp-rai-signing -o jsonpath='{.data.verify-key\.pem}')
kubectl -n kfp-rai create secret generic kfp-rai-verify-key --dry-run=client -o yaml \
  --from-file=verify-key.pem=<(printf '%s' "$verify_public" | base64 -d) \
  --from-file=decision-verify-key.pem=<(printf '%s' "$decision_public" | base64 -d) | kubectl apply -f - >/dev/null
unset decision_public verify_public
# The audit key of the serving app (its logs and traffic summaries are keyed with it); kept if it exists.
# The refresh runs read the traffic summaries: the same key in the runs' namespace.
if ! kubectl -n kfp-rai get secret kfp-rai-audit >/dev/null 2>&1; then
  python3 -c 'import secrets; print(secrets.token_hex(32), end="")' |
    kubectl -n kfp-rai create secret generic kfp-rai-audit --from-file=audit-key=/dev/stdin >/dev/null
fi
kubectl -n kfp-rai get secret kfp-rai-audit -o jsonpath='{.data.audit-key}' | base64 -d |
  kubectl -n kubeflow create secret generic kfp-rai-audit --from-file=audit-key=/dev/stdin \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null

# The bearer token callers of the served model present; kept if it exists, never printed.
if ! kubectl -n kfp-rai get secret kfp-rai-serving-token >/dev/null 2>&1; then
  python3 -c 'import secrets; print(secrets.token_urlsafe(32), end="")' |
    kubectl -n kfp-rai create secret generic kfp-rai-serving-token --from-file=token=/dev/stdin >/dev/null
fi
# KServe's storage initializer fetches the model version from KFP's artifact store (MinIO, S3 API)
# with the credentials of a Secret the serving account lists, annotated with the endpoint.
minio_key=$(kubectl -n kubeflow get secret mlpipeline-minio-artifact -o jsonpath='{.data.accesskey}' | base64 -d)
minio_secret=$(kubectl -n kubeflow get secret mlpipeline-minio-artifact -o jsonpath='{.data.secretkey}' | base64 -d)
kubectl -n kfp-rai create secret generic kfp-rai-s3 --dry-run=client -o yaml \
  --from-file=AWS_ACCESS_KEY_ID=<(printf '%s' "$minio_key") \
  --from-file=AWS_SECRET_ACCESS_KEY=<(printf '%s' "$minio_secret") |
  kubectl annotate -f - --local -o yaml serving.kserve.io/s3-endpoint=minio-service.kubeflow:9000 \
    serving.kserve.io/s3-usehttps=0 serving.kserve.io/s3-region=us-east-1 | kubectl apply -f - >/dev/null
unset minio_key minio_secret
kubectl -n kfp-rai patch serviceaccount kfp-rai-serving -p '{"secrets": [{"name": "kfp-rai-s3"}]}'

echo "kind-up: waiting for Kubeflow Pipelines (first start pulls images: allow 10-15 minutes)"
kubectl -n kubeflow wait --for=condition=Available --timeout=1200s deployment --all
echo "kind-up: ready. KFP UI: http://localhost:8888   export KFP_HOST=http://localhost:8888"
