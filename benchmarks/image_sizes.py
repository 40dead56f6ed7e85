"""What the image is made of: its size, the base's, and the installed size of every distribution in
its venv, largest first (what `Dockerfile` could cut next).

    python benchmarks/image_sizes.py [--image REF] [--write benchmarks/IMAGE.md]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

PROBE = r"""
import importlib.metadata as md, json, os
sizes = {}
for dist in md.distributions():
    total = 0
    for f in dist.files or ():
        try:
            total += os.path.getsize(dist.locate_file(f))
        except OSError:
            pass
    sizes[dist.metadata["Name"]] = total
print(json.dumps(sizes))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default=os.environ.get("KFP_RAI_IMAGE", "kfp-rai:test"))
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--write", metavar="FILE")
    args = parser.parse_args()

    def inspect(ref: str) -> dict:
        out = subprocess.run(["docker", "image", "inspect", ref], capture_output=True, text=True, check=True).stdout
        return json.loads(out)[0]

    info = inspect(args.image)
    layers = subprocess.run(["docker", "history", "--no-trunc", "--format", "{{.Size}}\t{{.CreatedBy}}", args.image],
                            capture_output=True, text=True, check=True).stdout.splitlines()  # fmt: skip
    sizes = json.loads(subprocess.run(["docker", "run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp",
                                       args.image, "python", "-c", PROBE],
                                      capture_output=True, text=True, check=True).stdout)  # fmt: skip
    venv = sum(sizes.values())
    rows = sorted(sizes.items(), key=lambda kv: -kv[1])
    lines = [
        "# What the image is made of",
        "",
        f"`python benchmarks/image_sizes.py` on {time.strftime('%Y-%m-%d')}: image `{args.image}`, "
        f"{info['Size'] / 1e6:.0f} MB in all (target: at most 1,000 MB); the venv's distributions "
        f"{venv / 1e6:.0f} MB; the rest is the base (Debian bookworm with python3) and the user.",
        "",
        "Layers (newest first):",
        "",
        *(f"- {line.split(chr(9))[0]}: `{line.split(chr(9))[1][:110]}`" for line in layers),
        "",
        f"The {args.top} largest distributions of the venv (installed size, after the Dockerfile removed test",
        "suites, headers, Cython sources, stubs, Arrow Flight and symbol tables):",
        "",
        "| distribution | MB |",
        "|---|---:|",
        *(f"| {name} | {size / 1e6:.1f} |" for name, size in rows[: args.top]),
        f"| {len(rows) - args.top} others | {sum(s for _, s in rows[args.top :]) / 1e6:.1f} |",
        "",
    ]
    if args.write:
        with open(args.write, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
