"""Time `kfp-rai run` on the bundled Adult data: wall time of the whole command and each task's
time from kfp.local's own log timestamps (so any version of kfp-rai can be measured alike).

    python benchmarks/bench_local_run.py [--runs 3] [--kfp-rai PATH/TO/kfp-rai]

Prints one table: per task the median over the runs, then the median wall time and the share of
it spent outside tasks (start-up of the command and of kfp.local, collecting outputs).
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_LINE = re.compile(r"^(\d\d):(\d\d):(\d\d\.\d+) - \w+ - (?:Executing task '([^']+)'|Task '([^']+)' finished)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def task_seconds(log: Path) -> dict[str, float]:
    started: dict[str, float] = {}
    took: dict[str, float] = {}
    for raw in log.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _LINE.match(_ANSI.sub("", raw))
        if not m:
            continue
        stamp = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
        if m.group(4):
            started[m.group(4)] = stamp
        else:
            took[m.group(5)] = (stamp - started[m.group(5)]) % 86400
    return took


def one_run(command: str) -> tuple[float, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        start = time.perf_counter()
        subprocess.run(
            [command, "run", "--quiet", "--output", str(out), "--registry", str(Path(tmp) / "registry")],
            check=True,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - start
        return wall, task_seconds(out / "logs" / "kfp-local.log")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kfp-rai", default=str(Path(sys.executable).with_name("kfp-rai")))
    args = parser.parse_args()
    runs = [one_run(args.kfp_rai) for _ in range(args.runs)]
    walls = [wall for wall, _ in runs]
    tasks = list(runs[0][1])
    print(f"kfp-rai run, bundled Adult, {args.runs} runs; {platform.machine()}, {platform.python_version()}")
    print(f"{'task':<28}{'median s':>10}")
    for task in tasks:
        print(f"{task:<28}{statistics.median(r[1].get(task, float('nan')) for r in runs):>10.2f}")
    in_tasks = statistics.median(sum(r[1].values()) for r in runs)
    wall = statistics.median(walls)
    print(f"{'all tasks':<28}{in_tasks:>10.2f}")
    print(f"{'wall (whole command)':<28}{wall:>10.2f}   outside tasks: {wall - in_tasks:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
