#!/usr/bin/env bash
# Dump the state and logs of every pod in the cluster into DIR (default: e2e-logs/).
set -uo pipefail
dir=${1:-e2e-logs}
mkdir -p "$dir"
kubectl get pods -A -o wide > "$dir/pods.txt" 2>&1
kubectl get events -A --sort-by=.lastTimestamp > "$dir/events.txt" 2>&1
kubectl get pods -A --no-headers -o custom-columns=NS:.metadata.namespace,NAME:.metadata.name 2>/dev/null |
  while read -r ns pod; do
    kubectl -n "$ns" logs "$pod" --all-containers --prefix > "$dir/$ns.$pod.log" 2>&1
    kubectl -n "$ns" describe pod "$pod" > "$dir/$ns.$pod.describe.txt" 2>&1
  done
echo "logs of all pods in $dir/"
