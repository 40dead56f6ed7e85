"""Load and fault figures for `kfp-rai serve` on loopback, side by side with the server it replaced.

    python benchmarks/bench_serving.py [--seconds 60] [--clients 8] [--old-commit a749220] [--output FILE]
    python benchmarks/bench_serving.py --traffic [--seconds 30] [--output benchmarks/TRAFFIC.md]

``--traffic`` measures what the traffic summaries cost: the same server with and without them
(``--traffic-window-minutes 0``), V1 and V2, one row per request, interleaved runs (off, on, off,
on) so that a slow moment of the machine does not land on one side only.

For each server and request size (1 row, 100 rows) it runs ``--clients`` closed-loop clients (each
sends its next request when the last one is answered, over a kept-alive connection where the
server allows it) for ``--seconds``, then reports throughput, p50 and p99 latency, and checks the
audit trail: one ``predict`` record per answered request (none lost, none duplicated) and the
chain verified afterwards. Then the fault run: the new server is killed with SIGKILL in the middle
of the load, restarted on the same log, stopped, and the whole trail verified.

"Old" is `kfp-rai serve` from ``--old-commit`` (the last commit before the switch to KServe, on
Python's http.server), extracted with ``git archive`` and run from that tree against the same
signed model. Traffic goes to 127.0.0.1 only and is bounded by ``--seconds``.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AUDIT_KEY = "bench-audit-key-0123456789abcdef0123456789"
TOKEN = "bench-serving-token-0123456789abcdef"


@dataclass
class Result:
    server: str
    rows: int
    seconds: float
    ok: int
    errors: int
    p50_ms: float
    p99_ms: float
    audit_macs: list[str]

    @property
    def rps(self) -> float:
        return self.ok / self.seconds


def _model(base: Path) -> tuple[str, dict]:
    """A registered, servable version of a model trained on the bundled Adult data, and one row."""
    from kfp_rai.core.bundled import load_bundled
    from kfp_rai.core.model_dir import REFERENCE_FILE, model_bytes
    from kfp_rai.core.signing import ensure_local_keys
    from kfp_rai.core.verdict import GateStatus, Verdict
    from kfp_rai.production import ModelRegistry, approve
    from kfp_rai.refresh import reference_summary
    from kfp_rai.training import train_model

    ensure_local_keys()
    data = load_bundled("adult").sample(5000, random_state=0)
    model, summary = train_model(data, target="income", positive_label=">50K", sensitive_features=["sex", "race"])
    registry = ModelRegistry(str(base / "registry"))
    reference = reference_summary(data, columns=list(data.columns))  # served traffic is counted over its bins
    entry = registry.register(
        "adult-income",
        model=model_bytes(model),
        model_card="# benchmark model",
        metadata={**asdict(summary), "decision_threshold": 0.5},
        verdict=Verdict(GateStatus.PASSED, "benchmark"),
        extra={REFERENCE_FILE: json.dumps(reference.to_dict()).encode()},
        launched_by="benchmark",
    )
    approve(registry, "adult-income", entry.version, by="benchmark reviewer", note="benchmark")
    row = data[list(summary.features)].iloc[0].to_dict()
    return entry.uri, {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}


class Server:
    """One `kfp-rai serve` process (new or old) on a free loopback port."""

    def __init__(
        self,
        kind: str,
        model_uri: str,
        base: Path,
        old_src: Path | None,
        *,
        new_log: bool = True,
        extra: tuple[str, ...] = (),
        protocol: str = "v1",
    ):
        self.kind, self.base = kind, base
        self.log = base / f"{kind}-audit.jsonl"
        env = {**os.environ, "KFP_RAI_AUDIT_KEY": AUDIT_KEY, "KFP_RAI_SERVING_TOKEN": TOKEN}
        args = ["serve", "--model-uri", model_uri, "--port", "0", "--state-dir", str(base / f"{kind}-state")]
        args += ["--audit-log", str(self.log)] + (["--new-audit-log"] if new_log else []) + list(extra)
        if kind == "old":
            assert old_src is not None
            env["PYTHONPATH"] = str(old_src)  # the old tree's kfp_rai comes first on the path
            args = [sys.executable, "-c", "import sys; from kfp_rai.cli import main; sys.exit(main())", *args]
        else:
            args = [str(Path(sys.executable).with_name("kfp-rai")), *args]
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if " on http://" not in line:
            self.proc.kill()
            raise SystemExit(
                f"{kind} server did not start: {line}{self.proc.stderr.read() if self.proc.stderr else ''}"
            )
        self.port = int(re.search(r"on http://[\d.]+:(\d+)", line).group(1))  # type: ignore[union-attr]
        self.protocol = protocol
        if kind == "old":
            self.path = "/v1/predict"
        else:
            self.path = "/v1/models/adult-income:predict" if protocol == "v1" else "/v2/models/adult-income/infer"

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.communicate(timeout=60)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.communicate(timeout=60)


def load(
    server: Server, row: dict, rows: int, clients: int, seconds: float, stop: threading.Event | None = None
) -> Result:
    body = json.dumps(_body(row, rows, server.protocol)).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    latencies: list[list[float]] = [[] for _ in range(clients)]
    macs: list[list[str]] = [[] for _ in range(clients)]
    errors = [0] * clients
    deadline = time.monotonic() + seconds

    def client(i: int) -> None:
        conn: http.client.HTTPConnection | None = None
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                started = time.perf_counter()
                conn.request("POST", server.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                if response.status == 200:
                    latencies[i].append(time.perf_counter() - started)
                    answer = json.loads(data)
                    macs[i].append(answer["audit"] if "audit" in answer else answer["parameters"]["audit"])
                else:
                    errors[i] += 1
                if response.getheader("connection", "").lower() == "close" or response.version == 10:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                errors[i] += 1
                if conn is not None:
                    conn.close()
                conn = None
                if stop and stop.is_set():
                    break
                time.sleep(0.01)

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    flat = sorted(x for lat in latencies for x in lat)
    q = statistics.quantiles(flat, n=100) if len(flat) >= 2 else [float("nan")] * 99
    answered = [m for per_client in macs for m in per_client]
    return Result(server.kind, rows, elapsed, len(flat), sum(errors), q[49] * 1000, q[98] * 1000, answered)


def _body(row: dict, rows: int, protocol: str) -> dict:
    if protocol == "v1":
        return {"instances": [row] * rows}
    types = {bool: "BOOL", int: "FP64", float: "FP64", str: "BYTES"}
    return {
        "inputs": [
            {"name": k, "shape": [rows], "datatype": types.get(type(v), "BYTES"), "data": [v] * rows}
            for k, v in row.items()
        ]
    }


def traffic_cost(model_uri: str, row: dict, base: Path, clients: int, seconds: float) -> list[str]:
    """Throughput and p99 with and without the traffic summaries, V1 and V2, runs interleaved."""
    from importlib.metadata import version

    runs: dict[tuple[str, str], list[Result]] = {}
    for round_ in range(2):
        for protocol in ("v1", "v2"):
            for traffic in ("off", "on"):
                where = base / f"traffic-{protocol}-{traffic}-{round_}"
                where.mkdir()
                extra = ("--traffic-window-minutes", "0") if traffic == "off" else ("--traffic-dir", str(where / "t"))
                server = Server("new", model_uri, where, None, extra=extra, protocol=protocol)
                try:
                    load(server, row, 1, 1, 1.0)  # warm-up, not counted
                    result = load(server, row, 1, clients, seconds)
                finally:
                    server.stop()
                runs.setdefault((protocol, traffic), []).append(result)
                print(f"{protocol} traffic {traffic}: {result.rps:8.1f} req/s  p99 {result.p99_ms:6.1f} ms", flush=True)
    lines = [
        "# What the traffic summaries cost (loopback)",
        "",
        f"`python benchmarks/bench_serving.py --traffic --seconds {seconds:g} --clients {clients}` on "
        f"{platform.machine()} with {os.cpu_count()} CPUs, Python {platform.python_version()}, kserve "
        f"{version('kserve')}, uvicorn {version('uvicorn')}; one row per request, two interleaved rounds per "
        "setting (off, on, off, on), each its own server process. Server and clients share the CPUs.",
        "",
        "| protocol | traffic summaries | requests/s (rounds) | p99 ms (rounds) | requests/s vs off |",
        "|---|---|---|---|---|",
    ]
    verdicts = []
    for protocol in ("v1", "v2"):
        off = statistics.mean(r.rps for r in runs[(protocol, "off")])
        for traffic in ("off", "on"):
            rs = runs[(protocol, traffic)]
            mean = statistics.mean(r.rps for r in rs)
            lines.append(
                f"| {protocol.upper()} | {traffic} | {mean:.1f} ({', '.join(f'{r.rps:.0f}' for r in rs)}) | "
                f"{statistics.mean(r.p99_ms for r in rs):.1f} ({', '.join(f'{r.p99_ms:.1f}' for r in rs)}) | "
                f"{mean / off:.3f} |"
            )
        on = statistics.mean(r.rps for r in runs[(protocol, "on")])
        p99 = statistics.mean(r.p99_ms for r in runs[(protocol, "on")])
        cost = 1 - on / off
        verdicts.append(
            f"- {protocol.upper()}: throughput cost {cost:+.1%} (target <= 5%: {'met' if cost <= 0.05 else 'NOT met'});"
            f" p99 with summaries {p99:.1f} ms (target < 50 ms: {'met' if p99 < 50 else 'NOT met'})"
        )
    return [*lines, "", *verdicts, ""]


def audit_check(log: Path, answered: list[str]) -> str:
    """Every answer's audit MAC is a record of the log (none lost), no record twice (none
    duplicated), and the chain verifies with its latest checkpoint."""
    from kfp_rai.serving import verify_audit_log

    records = [json.loads(line) for line in log.read_text().splitlines()]
    predicts = [r["mac"] for r in records if r.get("event") == "predict"]
    lost = len(set(answered) - set(predicts))
    duplicated = len(predicts) - len(set(predicts))
    unanswered = len(set(predicts) - set(answered))
    check = verify_audit_log(log, AUDIT_KEY.encode())
    return (
        f"{len(answered)} answers, {len(predicts)} predict records: lost {lost}, duplicated {duplicated}"
        + (f", {unanswered} recorded but never answered (in flight when the server died)" if unanswered else "")
        + f"; chain: {check.message}"
    )


def old_tree(commit: str, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, "src"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "src"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="per server and request size (default 60)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--old-commit", default="a749220", help="the last commit with the http.server app")
    parser.add_argument("--output", type=Path, help="also write the report (Markdown) here")
    parser.add_argument("--traffic", action="store_true", help="measure the traffic summaries' cost instead")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="kfp-rai-bench-serving-"))
    os.environ["KFP_RAI_CONFIG_DIR"] = str(base / "config")  # throwaway signing keys, never the user's
    for var in ("KFP_RAI_SIGNING_KEY", "KFP_RAI_SIGNING_KEY_FILE", "KFP_RAI_VERIFY_KEY", "KFP_RAI_VERIFY_KEY_FILE"):
        os.environ.pop(var, None)
    model_uri, row = _model(base)
    if args.traffic:
        gc.collect()
        gc.freeze()
        report = "\n".join(traffic_cost(model_uri, row, base, args.clients, args.seconds))
        print()
        print(report)
        if args.output:
            args.output.write_text(report, encoding="utf-8")
        return 0
    old_src = old_tree(args.old_commit, base / "old") if args.old_commit else None
    # This process trained a model (pandas, sklearn in memory): a full garbage collection here would
    # pause the clients for tens of ms and be counted as server latency. Out of its sight, it cannot.
    gc.collect()
    gc.freeze()

    results, audits = [], []
    for kind in ["new", "old"] if old_src else ["new"]:
        for rows in (1, 100):
            (base / f"{kind}-{rows}").mkdir()
            server = Server(kind, model_uri, base / f"{kind}-{rows}", old_src)
            try:
                warm = load(server, row, 1, 1, 1.0)  # warm-up (first pandas/sklearn calls), not counted
                result = load(server, row, rows, args.clients, args.seconds)
            finally:
                server.stop()
            results.append(result)
            records = [json.loads(line) for line in server.log.read_text().splitlines()]
            audits.append(f"{kind}, {rows} row(s): {audit_check(server.log, warm.audit_macs + result.audit_macs)}")
            print(
                f"{kind:>3} {rows:>3} row(s): {result.rps:8.1f} req/s  p50 {result.p50_ms:6.1f} ms  "
                f"p99 {result.p99_ms:6.1f} ms  errors {result.errors}  ({len(records)} audit records)",
                flush=True,
            )

    # Fault: SIGKILL in the middle of the load, restart on the same log, stop, verify.
    fault = base / "fault"
    fault.mkdir()
    server = Server("new", model_uri, fault, None)
    stop = threading.Event()
    holder: list[Result] = []
    runner = threading.Thread(target=lambda: holder.append(load(server, row, 1, args.clients, args.seconds, stop)))
    runner.start()
    time.sleep(max(1.0, min(args.seconds / 2, 10.0)))
    server.kill()
    stop.set()
    runner.join()
    killed = holder[0]
    restarted = Server("new", model_uri, fault, None, new_log=False)
    after = load(restarted, row, 1, 2, min(args.seconds, 5.0))
    restarted.stop()
    fault_line = (
        f"kill -9 after {killed.ok} answered requests, restart on the same log, {after.ok} more: "
        + audit_check(server.log, killed.audit_macs + after.audit_macs)
    )

    from importlib.metadata import version

    by = {(r.server, r.rows): r for r in results}
    lines = [
        "# Serving under load (loopback)",
        "",
        f"`python benchmarks/bench_serving.py --seconds {args.seconds:g} --clients {args.clients}` on "
        f"{platform.machine()} with {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"kserve {version('kserve')}, uvicorn {version('uvicorn')}, scikit-learn {version('scikit-learn')}; "
        f"old = `kfp-rai serve` at {args.old_commit} (http.server). Server and clients share the CPUs.",
        "",
        "| server | rows/request | requests/s | p50 ms | p99 ms | errors | vs old (requests/s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        old = by.get(("old", r.rows))
        ratio = f"{r.rps / old.rps:.1f}x" if old and r.server == "new" and old.rps else ""
        lines.append(
            f"| {r.server} | {r.rows} | {r.rps:.1f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.errors} | {ratio} |"
        )
    lines += ["", "Audit trail:", "", *(f"- {a}" for a in audits), f"- {fault_line}", ""]
    new1, old1 = by.get(("new", 1)), by.get(("old", 1))
    if new1 and old1 and old1.rps:
        ratio = new1.rps / old1.rps
        lines += [
            f"Serving issue's targets at {args.clients} clients: throughput {ratio:.1f}x the old server's "
            f"(target >= 4x: {'met' if ratio >= 4 else 'NOT met'}); 1-row p99 {new1.p99_ms:.1f} ms "
            f"(target <= 50 ms: {'met' if new1.p99_ms <= 50 else 'NOT met'}).",
            "",
        ]
    report = "\n".join(lines)
    print()
    print(report)
    if args.output:
        args.output.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
