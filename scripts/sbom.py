"""Write a CycloneDX 1.5 SBOM (JSON) of every Python distribution installed where this interpreter runs.

    python scripts/sbom.py OUTPUT VERSION

Run by the Dockerfile's build stage with the image's own venv in isolated mode (`python -I`: the
script's own directory, a source tree, must add no distribution), after everything the image does not
ship is removed: the SBOM lists exactly what the image holds (name, version, a PyPI package URL and
the licence each distribution declares). Sorted and without a timestamp, so the same installed set
always gives the same bytes. The image carries it at /opt/venv/share/kfp-rai/sbom.cdx.json.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import re
import sys
from pathlib import Path


def _licence(dist: metadata.Distribution) -> str:
    declared = dist.metadata.get("License-Expression") or dist.metadata.get("License") or ""
    if declared and len(declared) <= 100 and "\n" not in declared:
        return declared
    classifiers = [c.split(" :: ")[-1] for c in dist.metadata.get_all("Classifier") or [] if c.startswith("License ::")]
    return ", ".join(classifiers)


def sbom(version: str) -> dict[str, object]:
    components = []
    for dist in sorted(metadata.distributions(), key=lambda d: d.metadata["Name"].lower()):
        name = dist.metadata["Name"]
        purl_name = re.sub(r"[-_.]+", "-", name).lower()
        component: dict[str, object] = {
            "type": "library",
            "bom-ref": f"pkg:pypi/{purl_name}@{dist.version}",
            "name": name,
            "version": dist.version,
            "purl": f"pkg:pypi/{purl_name}@{dist.version}",
        }
        licence = _licence(dist)
        if licence:
            component["licenses"] = [{"license": {"name": licence}}]
        components.append(component)
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {"component": {"type": "container", "name": "kfp-rai", "version": version}},
        "components": components,
    }


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: python -I scripts/sbom.py OUTPUT VERSION", file=sys.stderr)
        return 2
    output, version = Path(sys.argv[1]), sys.argv[2]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(sbom(version), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
