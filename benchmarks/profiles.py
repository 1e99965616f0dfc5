"""Where the time goes: condensed pyinstrument and py-spy profiles for the report."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

#: (label, function, file) of the frames that explain a scenario's time in the
#: test process. The outermost matching frame counts; nothing under it is
#: counted again.
CATEGORIES: tuple[tuple[str, str, str], ...] = (
    ("building boto3 Sessions (`Stack(info)` -> `boto3_session`)", "__init__", "harness/stack.py"),
    ("building boto3 clients (`Stack.client`, on first use per Stack)", "client", "boto3/session.py"),
    ("building Fakers (`Faker()`)", "__init__", "faker/proxy.py"),
    ("building requests Sessions", "__init__", "requests/sessions.py"),
    ("HTTP calls to the API (requests; mostly waiting for the emulator)", "request", "requests/sessions.py"),
    ("AWS API calls (botocore; mostly waiting for the emulator)", "_api_call", "botocore/client.py"),
    ("sleeping between polls (`eventually`)", "sleep", ""),
)


def _walk(frame: dict[str, Any], found: Counter[str]) -> None:
    for label, func, path in CATEGORIES:
        if frame.get("function") == func and (not path or frame.get("file_path_short", "").endswith(path)):
            found[label] += float(frame.get("time", 0.0))
            return
    for child in frame.get("children", ()):
        _walk(child, found)


TRACE_PATHS = ("harness/traces/", "harness/pytest/tracing.py")
#: Libraries whose calls the trace instrumentation wraps: time under them is the call, not the tracing.
WRAPPED = ("/botocore/", "/boto3/", "/requests/", "/urllib3/", "/http/client.py", "/socket.py", "/ssl.py",
           "harness/urls.py")  # fmt: skip


def _wrapped_time(frame: dict[str, Any]) -> float:
    total = 0.0
    for child in frame.get("children", ()):
        path = child.get("file_path", "")
        if any(w in path for w in WRAPPED):
            total += float(child.get("time", 0.0))
        else:
            total += _wrapped_time(child)
    return total


def _trace_own(frame: dict[str, Any]) -> float:
    """Time in the trace instrumentation itself: its frames minus the calls they wrap."""
    if any(p in frame.get("file_path", "") for p in TRACE_PATHS):
        return max(0.0, float(frame.get("time", 0.0)) - _wrapped_time(frame))
    return sum(_trace_own(c) for c in frame.get("children", ()))


def summarize_pyinstrument(prefix: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(Path(f"{prefix}.json").read_text())
        text = Path(f"{prefix}.txt").read_text()
    except (OSError, ValueError):
        return None
    total = float(data.get("duration") or data["root_frame"]["time"])
    found: Counter[str] = Counter()
    _walk(data["root_frame"], found)
    rows = [(label, found[label]) for label, _, _ in CATEGORIES if found[label] > 0]
    rows.append(("everything else (pytest, templating, matching, harness code)", max(0.0, total - sum(found.values()))))
    traced = _trace_own(data["root_frame"])
    if traced > 0:
        rows.append(
            ("of all the above: trace instrumentation's own code (`harness/traces`, without the calls it wraps)",
             traced)
        )  # fmt: skip
    # The call tree, trimmed: enough lines to see the hot paths.
    tree = "\n".join(text.splitlines()[:70])
    return {"total": total, "cpu": data.get("cpu_time"), "rows": rows, "tree": tree}


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def summarize_pyspy(raw: Path, rate: int = 50) -> dict[str, Any] | None:
    """Busy samples of the emulator by ministack module and by leaf function."""
    try:
        lines = raw.read_text().splitlines()
    except OSError:
        return None
    by_module: Counter[str] = Counter()
    by_leaf: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        module = "(outside ministack)"
        for f in reversed(frames):
            m = _FRAME.match(f)
            if m and "ministack/" in m["file"]:
                module = m["file"].split("ministack/", 1)[1]
                break
        by_module[module] += n
        m = _FRAME.match(frames[-1])
        by_leaf[f"{m['func']} ({m['file']})" if m else frames[-1]] += n
    if not total:
        return None
    return {
        "busy_seconds": total / rate,
        "modules": [(k, v / total) for k, v in by_module.most_common(10)],
        "leaves": [(k, v / total) for k, v in by_leaf.most_common(10)],
    }


_IMPORT = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)")


def import_times(stderr: str, top: int = 8) -> list[tuple[str, float]]:
    """``python -X importtime`` output -> the slowest top-level packages (cumulative seconds)."""
    totals: Counter[str] = Counter()
    for line in stderr.splitlines():
        m = _IMPORT.match(line)
        if m and len(m.group(2)) == 1:
            totals[m.group(3).split(".")[0]] += int(m.group(1)) / 1e6
    return totals.most_common(top)
