#!/usr/bin/env bash
# Run tests/e2e against the cluster at KFP_HOST (default: the kind cluster's UI port), collecting
# the logs of all pods if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export KFP_HOST=${KFP_HOST:-http://localhost:8888}
export KFP_RAI_E2E_REQUIRED=1  # here a cluster is promised: an unreachable one fails, never skips
# The bearer token the served model asks for (the Secret kind-up created); never printed.
KFP_RAI_SERVING_TOKEN=$(kubectl -n kfp-rai get secret kfp-rai-serving-token -o jsonpath='{.data.token}' | base64 -d)
export KFP_RAI_SERVING_TOKEN
# A person's decisions (kfp-rai models approve/promote) are signed with the decision key kind-up left in
# your config dir and written to the registry in KFP's object store, reached through a port-forward on
# loopback; the model versions there verify with the cluster's public key. Nothing is printed.
KFP_RAI_VERIFY_KEY=$(kubectl -n kubeflow get secret kfp-rai-signing -o jsonpath='{.data.verify-key\.pem}' | base64 -d)
AWS_ACCESS_KEY_ID=$(kubectl -n kubeflow get secret mlpipeline-minio-artifact -o jsonpath='{.data.accesskey}' | base64 -d)
AWS_SECRET_ACCESS_KEY=$(kubectl -n kubeflow get secret mlpipeline-minio-artifact -o jsonpath='{.data.secretkey}' | base64 -d)
export KFP_RAI_VERIFY_KEY AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
export KFP_RAI_E2E_REGISTRY="s3://mlpipeline/kfp-rai/registry?endpoint_override=127.0.0.1:9000&scheme=http"
kubectl -n kubeflow port-forward svc/minio-service 9000:9000 --address 127.0.0.1 >/dev/null 2>&1 &
forward=$!
trap 'kill $forward 2>/dev/null || true' EXIT
if ! .venv/bin/pytest tests/e2e -m e2e -v -rs; then
  bash scripts/collect-logs.sh e2e-logs
  exit 1
fi
