"""What `kfp-rai run` shows while and after it runs: one line per task, in stage order, with the
name people know it by; then the outcome, one line per stage, and where everything is."""

from __future__ import annotations

import re
import shutil
import subprocess  # nosec B404  # only to follow our own child process (see _run.py)
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from kfp_rai.core.verdict import GateStatus

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STAMP = re.compile(r"^(\d\d):(\d\d):(\d\d\.\d+) - ")  # kfp.local's own clock on each of its lines
_TASK_START = re.compile(r"Executing task '([^']+)'")
_TASK_END = re.compile(r"Task '([^']+)' finished with status (\w+)")
_INNER_FAIL = re.compile(r"Inner task failed: '([^']+)'")
_ERROR_LINE = re.compile(r"^(?:[\w.]+\.)?(\w*Error): (.+)$")


_LABEL = 48  # a task's label in the progress lines; longer ones end in "…", the status column stays apart


@dataclass
class Followed:
    """What the log showed: its lines and how long each task took."""

    lines: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def _label(task: str, nested: frozenset[str]) -> tuple[str, str]:
    from kfp_rai.pipelines.tasks import place

    where = place(task, nested)
    return (where[0], where[2]) if where else ("-", task)


def _stamp(line: str) -> float:
    """Seconds since midnight as kfp.local stamped the line, or now when it carries no stamp."""
    if m := _STAMP.match(line):
        return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    return time.monotonic()


def follow(
    process: subprocess.Popen[bytes],
    log_path: Path,
    *,
    quiet: bool,
    out: TextIO | None = None,
    nested: frozenset[str] = frozenset(),
) -> Followed:
    """Show each finished task while the child runs (kfp.local writes the log); return the log."""
    out = out or sys.stdout
    followed = Followed()
    started: dict[str, float] = {}
    position = 0
    pending = ""
    while True:
        done = process.poll() is not None
        with open(log_path, encoding="utf-8", errors="replace") as fh:
            fh.seek(position)
            chunk = fh.read()
            position = fh.tell()
        pending += chunk
        *complete, pending = pending.split("\n")
        for raw in complete:
            line = _ANSI.sub("", raw)
            followed.lines.append(line)
            if m := _TASK_START.search(line):
                started[m.group(1)] = _stamp(line)
            elif m := _TASK_END.search(line):
                task, state = m.group(1), m.group(2)
                took = (_stamp(line) - started.get(task, _stamp(line))) % 86400  # a run may pass midnight
                followed.seconds[task] = took
                if not quiet:
                    stage, label = _label(task, nested)
                    mark = "done" if state == "SUCCESS" else state
                    print(
                        f"  {stage:<11}{_shorten(label, _LABEL):<{_LABEL + 1}}{mark:<8}{took:5.1f} s",
                        file=out,
                        flush=True,
                    )
        if done:
            if pending:
                followed.lines.append(_ANSI.sub("", pending))
            return followed
        time.sleep(0.1)


def error_from_log(lines: list[str]) -> tuple[str | None, str | None]:
    """(failed task, its error line) as kfp.local printed them."""
    task = None
    message = None
    for line in lines:
        if m := _INNER_FAIL.search(line):
            task = m.group(1)
        if (m := _ERROR_LINE.match(line.strip())) and (m.group(1) != "RuntimeError" or message is None):
            message = f"{m.group(1)}: {m.group(2)}"
    return task, message


def _status_label(status: str) -> str:
    return "SKIPPED" if status == "skipped" else GateStatus(status).label


def _shorten(text: str, width: int) -> str:
    """The start of ``text`` that fits; a shortened line ends in "…" (the full text: index.html)."""
    if len(text) <= width:
        return text
    return text[: max(20, width - 2)].rstrip() + " …"


def print_summary(record: dict[str, Any], run_dir: Path, out: TextIO | None = None) -> None:
    """The outcome, one line per stage (shortened to the terminal, ending in "…" when it is), the
    registered version if any, and the path of ``index.html``, which holds everything in full."""
    out = out or sys.stdout
    try:
        shown = run_dir.relative_to(Path.cwd())
    except ValueError:
        shown = run_dir
    index = shown / "index.html"
    width = max(60, shutil.get_terminal_size((120, 24)).columns - 26)
    print(f"\n{record['headline']}", file=out)
    shortened = False
    for name, stage in record["stages"].items():
        if record["pipeline"] == "refresh" and stage["status"] == "skipped":
            continue  # a refresh run without a challenger trained nothing: its refresh line says why
        reason = _shorten(stage["reason"], width)
        shortened |= reason != stage["reason"]
        print(f"  {name:<11} {_status_label(stage['status']):<11} {reason}", file=out)
        retrain = stage.get("retrain", {})
        nested = retrain.get("triggered") and record["pipeline"] != "refresh"  # a refresh run's stages are its own
        for sub, sub_stage in retrain.get("stages", {}).items() if nested else ():
            reason = _shorten(sub_stage["reason"], width - 9)
            shortened |= reason != sub_stage["reason"]
            print(f"    retrain {sub:<11} {_status_label(sub_stage['status']):<11} {reason}", file=out)
    prod = record["stages"]["production"]
    if prod.get("registered"):
        print(f"\nRegistered version {prod['version']} (sha256 {prod['sha256']}) at {prod['registry_uri']}", file=out)
        if prod.get("next_step"):
            print(f"Next, a person decides: {prod['next_step']}", file=out)
    full = "Lines ending in … are shortened here. " if shortened else ""
    print(f"\n{full}Every reason in full, every finding and report: {index}", file=out)
    print(f"Machine-readable: {shown / 'run.json'}", file=out)
