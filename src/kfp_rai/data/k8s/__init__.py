"""Kubernetes templates shipped with the package (kept equal to manifests/base by a test)."""
