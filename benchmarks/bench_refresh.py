"""The refresh at scale, side by side with the floors any refresh must pay, and the whole refresh
run against the whole lifecycle run on Adult.

    python benchmarks/bench_refresh.py                          # 1M and 10M rows; writes benchmarks/REFRESH.md
    python benchmarks/bench_refresh.py --sizes 100k --output /tmp/smoke.md   # a quick look

Setup (not timed): a lifecycle run on bundled Adult (`kfp-rai run` with the demo warnings policy),
its version approved and promoted by another person, so the registry's `production` alias names a
real champion; then N labelled rows of Adult's test file (sampled with replacement, `age` + 15),
written once as parquet under benchmarks/.data/.

Each figure is a whole process (the current data read from disk, peak RSS from wait4):

- *read floor*: pyarrow reads the columns a refresh needs, batch by batch, and nothing else;
- *read + score floor*: the same, and the champion's `predict_proba` on every batch — what any
  refresh of a model on labelled rows must do at the least;
- *refresh*: `measure_data` (inputs over the champion's reference bins, its scores, per-group
  confusion cells and score histograms, in one pass) and `judge_refresh` (drift, prediction drift,
  performance and fairness with bootstrap intervals, the decision), as the `monitor_model`
  component runs them.

The whole-run comparison times `kfp-rai run` (the lifecycle) and `kfp-rai run refresh` on Adult's
test file, both through kfp.local as a user runs them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = HERE / ".data"
SENSITIVE = ["sex", "race"]
CHUNK = 500_000


def _sizes(text: str) -> list[int]:
    units = {"k": 1_000, "m": 1_000_000}
    return [int(float(s[:-1]) * units[s[-1].lower()]) if s[-1].lower() in units else int(s) for s in text.split(",")]


# ---------------------------------------------------------------- setup


def _env(base: Path) -> dict[str, str]:
    return {
        **os.environ,
        "KFP_RAI_CONFIG_DIR": str(base / "config"),
        "KFP_RAI_STATE_DIR": str(base / "state"),
    }


def _kfp_rai(base: Path, *args: str) -> float:
    """Run the CLI as a user does; its wall time."""
    exe = Path(sys.executable).with_name("kfp-rai")
    start = time.perf_counter()
    done = subprocess.run([str(exe), *args], cwd=base, env=_env(base), capture_output=True, text=True, check=False)
    took = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"kfp-rai {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return took


def _registry(base: Path) -> tuple[Path, dict[str, float]]:
    """A registry whose production version a lifecycle run trained; the two whole runs, timed."""
    policy = REPO / "examples" / "policies" / "adult-record-warnings.yaml"
    registry = base / "registry"
    times = {"lifecycle": _kfp_rai(base, "run", "--quiet", "--policy", str(policy), "--registry", str(registry),
                                   "--output", str(base / "lifecycle"), "--launched-by", "trainer")}  # fmt: skip
    for command in (
        ["approve", "adult-income", "1", "--by", "reviewer", "--note", "benchmark"],
        ["promote", "adult-income", "1", "--by", "reviewer"],
    ):
        _kfp_rai(base, "models", *command, "--registry", str(registry))
    times["refresh"] = _kfp_rai(base, "run", "refresh", "--quiet", "--model", "adult-income", "--registry",
                                str(registry), "--output", str(base / "refresh"))  # fmt: skip
    return registry, times


def _current(rows: int) -> Path:
    """N labelled rows of Adult's test file, older by 15 years, as one parquet file (made once)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kfp_rai.core.tables import read_table

    path = DATA / f"refresh-current-{rows}.parquet"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    test = read_table("bundled:adult-test")
    test = test.assign(age=test["age"] + 15)
    table = pa.Table.from_pandas(test, preserve_index=False)
    rng = np.random.default_rng(0)
    partial = path.with_suffix(".partial")
    with pq.ParquetWriter(partial, table.schema) as writer:
        for start in range(0, rows, CHUNK):
            writer.write_table(table.take(rng.integers(0, table.num_rows, min(CHUNK, rows - start))))
    partial.rename(path)
    return path


# ---------------------------------------------------------------- one measured process


def _measure(kind: str, data: str, registry: str) -> dict[str, object]:
    import pyarrow.parquet as pq

    from kfp_rai.policy import Policy
    from kfp_rai.production import ModelRegistry
    from kfp_rai.refresh import judge_refresh, measure_data, resolve_champion
    from kfp_rai.refresh._monitor import model_input
    from kfp_rai.stats.stream import BATCH_ROWS

    champion = resolve_champion(ModelRegistry(registry), "adult-income")
    features = [str(f) for f in champion.meta["features"]]
    columns = list(dict.fromkeys([*features, *champion.reference.columns, *SENSITIVE, "income"]))
    start = time.perf_counter()
    rows = 0
    out: dict[str, object] = {}
    if kind == "refresh":
        measured = measure_data(data, champion, SENSITIVE)
        report = judge_refresh(champion, measured, Policy.from_yaml(champion.human_text("policy") or "{}"))
        rows = measured.rows
        drifted = list(report.drift.drifted_columns) if report.drift else []
        out = {"status": report.verdict.status.value, "drifted": drifted, "triggers": list(report.decision.triggers)}
    else:
        model = champion.estimator() if kind == "score" else None
        for batch in pq.ParquetFile(data).iter_batches(batch_size=BATCH_ROWS, columns=columns):
            rows += batch.num_rows
            if model is not None:
                model.predict_proba(model_input(batch, features))
    return {"seconds": time.perf_counter() - start, "rows": rows, **out}


def _timed(kind: str, data: Path, registry: Path, base: Path) -> dict[str, object]:
    """One process per figure: its own wall time inside, its peak RSS from wait4."""
    out = base / f"{kind}.json"
    process = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--measure",
            kind,
            "--data",
            str(data),
            "--registry",
            str(registry),
            "--result",
            str(out),
        ],  # fmt: skip
        env=_env(base),
    )
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"the {kind} measurement failed")
    result = json.loads(out.read_text())
    result["peak_mb"] = usage.ru_maxrss / 1024
    return result


# ---------------------------------------------------------------- report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1M,10M", help="rows of current data (default 1M,10M)")
    parser.add_argument("--output", default=str(HERE / "REFRESH.md"), help="write the report here")
    parser.add_argument("--measure", choices=["read", "score", "refresh"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--registry", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        Path(args.result).write_text(json.dumps(_measure(args.measure, args.data, args.registry)))
        return 0

    base = Path(tempfile.mkdtemp(prefix="bench-refresh-"))
    try:
        registry, runs = _registry(base)
        print(f"lifecycle run {runs['lifecycle']:.1f} s, refresh run {runs['refresh']:.1f} s", flush=True)
        lines = []
        for rows in _sizes(args.sizes):
            data = _current(rows)
            figures = {kind: _timed(kind, data, registry, base) for kind in ("read", "score", "refresh")}
            assert all(f["rows"] == rows for f in figures.values()), figures
            r, s, f = (figures[k] for k in ("read", "score", "refresh"))
            print(f"{rows:>11,} rows: read {r['seconds']:.1f} s, read+score {s['seconds']:.1f} s, "
                  f"refresh {f['seconds']:.1f} s ({f['peak_mb']:.0f} MB)", flush=True)  # fmt: skip
            cells = [
                f"{rows:,}",
                *(f"{x['seconds']:.1f} s, {x['peak_mb']:.0f} MB" for x in (r, s, f)),
                f"{f['seconds'] / s['seconds']:.2f}x",
                f"{f['seconds'] / r['seconds']:.1f}x",
                f"{f['status']}: drift in {', '.join(f['drifted']) or 'nothing'}; "
                f"triggers {', '.join(f['triggers']) or 'none'}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    versions = ", ".join(f"{p} {version(p)}" for p in ("kfp", "pyarrow", "scikit-learn", "numpy", "pandas"))
    report = f"""# The refresh at scale

`python benchmarks/bench_refresh.py --sizes {args.sizes}` on {platform.machine()} with {os.cpu_count()} CPUs,
Python {platform.python_version()}; {versions}.

## One pass over N labelled rows of current data (whole processes: seconds, peak RSS)

The champion: the lifecycle's model on bundled Adult (registry version 1, promoted). The data: Adult's
test rows sampled with replacement, `age` + 15, one parquet file. *read floor*: pyarrow reads the
columns a refresh needs; *read + score floor*: and the champion scores every row (the least a refresh
of labelled rows does); *refresh*: `measure_data` + `judge_refresh`, as `monitor_model` runs them.

| rows | read floor | read + score floor | refresh | refresh / (read + score) | refresh / read | verdict |
|---|---|---|---|---|---|---|
{chr(10).join(lines)}

Target: the refresh within 1.3x of the floor it cannot avoid (reading and scoring every row once),
with memory that does not grow with the rows.

## The whole run on Adult, through kfp.local (wall seconds, as a user runs them)

| `kfp-rai run` (lifecycle, registration) | `kfp-rai run refresh` (champion, refresh gate) | refresh / lifecycle |
|---|---|---|
| {runs["lifecycle"]:.1f} s | {runs["refresh"]:.1f} s | {runs["refresh"] / runs["lifecycle"]:.2f} |
"""
    Path(args.output).write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
