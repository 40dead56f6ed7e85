#!/usr/bin/env bash
# Run tests/e2e against the cluster at KFP_HOST (default: the kind cluster's UI port), collecting
# the logs of all pods if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export KFP_HOST=${KFP_HOST:-http://localhost:8080}
export KFP_RAI_E2E_REQUIRED=1  # here a cluster is promised: an unreachable one fails, never skips
# The bearer token the served model asks for (the Secret kind-up created); never printed.
KFP_RAI_SERVING_TOKEN=$(kubectl -n kfp-rai get secret kfp-rai-serving-token -o jsonpath='{.data.token}' | base64 -d)
export KFP_RAI_SERVING_TOKEN
if ! .venv/bin/pytest tests/e2e -m e2e -v -rs; then
  bash scripts/collect-logs.sh e2e-logs
  exit 1
fi
