"""Which fairlearn mitigation, if any, lets an Adult model pass the default policy?

Runs the whole lifecycle (`kfp-rai run`, kfp.local) once per mitigation under the default policy
plus `training.mitigation` (and its constraint), and writes benchmarks/MITIGATION.md: accuracy,
the disparities the validation gate judges, the explanation's proxy share and each gate's verdict.

    .venv/bin/python benchmarks/bench_mitigation.py          # ~10 min on 2 vCPUs
"""

from __future__ import annotations

import json
import platform
import subprocess  # nosec B404 - runs our own CLI
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = HERE / ".mitigation-runs"
CONFIGS = [
    ("none", None),
    ("correlation_remover", None),
    ("exponentiated_gradient", "demographic_parity"),
    ("exponentiated_gradient", "equalized_odds"),
    ("threshold_optimizer", "demographic_parity"),
    ("threshold_optimizer", "equalized_odds"),
]


def _run(method: str, constraint: str | None) -> dict:
    name = method if constraint is None else f"{method}-{constraint}"
    out = RUNS / name
    policy = out.with_suffix(".yaml")
    RUNS.mkdir(exist_ok=True)
    lines = [
        f"training: {{mitigation: {method}" + (f", mitigation_constraint: {constraint}" if constraint else "") + "}"
    ]
    policy.write_text("\n".join(lines) + "\n")
    if out.exists():
        subprocess.run(["rm", "-rf", str(out)], check=True)  # nosec B603 B607
    start = time.perf_counter()
    subprocess.run(  # nosec B603
        [str(Path(sys.executable).parent / "kfp-rai"), "run", "--quiet", "--policy", str(policy), "--output", str(out),
         "--registry", str(RUNS / "registry")],
        check=True,
        capture_output=True,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    record = json.loads((out / "run.json").read_text())
    validation = record["stages"]["validation"]
    explanation = json.loads((out / "validation" / "explanation.json").read_text())
    d = validation["disparities"]
    return {
        "mitigation": name,
        "accuracy": validation["overall"]["accuracy"],
        "roc_auc": validation["overall"]["roc_auc"],
        "sex DP ratio": d["sex"]["demographic_parity_ratio"],
        "race DP ratio": d["race"]["demographic_parity_ratio"],
        "sex EO diff": d["sex"]["equalized_odds_difference"],
        "race EO diff": d["race"]["equalized_odds_difference"],
        "proxy share": explanation["proxy_share"],
        "validation": validation["status"],
        "failed checks": sum(f["status"] != "passed" for f in validation["findings"]),
        "production": record["stages"]["production"]["status"],
        "seconds": seconds,
    }


def main() -> int:
    from importlib.metadata import version

    rows = [_run(m, c) for m, c in CONFIGS]
    columns = list(rows[0])
    table = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        table.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r.values()) + " |")
    passing = [r["mitigation"] for r in rows if r["validation"] in ("passed", "warning")]
    text = [
        "# Mitigation on Adult under the default policy",
        "",
        "`python benchmarks/bench_mitigation.py`: one `kfp-rai run` per mitigation (bundled Adult, seed 0, the",
        "default policy plus `training.mitigation`), read from each run's `run.json`. The validation gate judges",
        "performance, the disparities of sex, race and sex × race, and the explanation (proxy share).",
        "",
        *table,
        "",
        "Validation passes with: " + (", ".join(passing) if passing else "**none of them**") + ".",
        "",
        f"Machine: {platform.machine()}, Python {platform.python_version()}, fairlearn {version('fairlearn')}, "
        f"scikit-learn {version('scikit-learn')}, kfp {version('kfp')}.",
        "",
    ]
    (HERE / "MITIGATION.md").write_text("\n".join(text))
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
