#!/usr/bin/env bash
# Run tests/e2e against the cluster at KFP_HOST (default: the kind cluster's UI port), collecting
# the logs of all pods if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export KFP_HOST=${KFP_HOST:-http://localhost:8080}
export KFP_RAI_E2E_REQUIRED=1  # here a cluster is promised: an unreachable one fails, never skips
if ! .venv/bin/pytest tests/e2e -m e2e -v -rs; then
  bash scripts/collect-logs.sh e2e-logs
  exit 1
fi
