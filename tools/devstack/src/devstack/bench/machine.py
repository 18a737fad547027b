"""What the benchmarks ran on, and how much memory a process holds, read from /proc.

``machine_info`` names the CPU model, core count and memory (``/proc/cpuinfo``,
``/proc/meminfo``), the load average when the run began (the machine is shared, so a
high load explains a slow run), the kernel, Python and Java versions. ``process_memory``
reads a process's resident set (``VmRSS``) and its peak (``VmHWM``) from
``/proc/<pid>/status``, together with its descendants', since a process counts with
whatever it started. These are Linux interfaces; elsewhere the figures are ``None``.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KIB = 1024
MIB = 1024 * 1024


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def cpu_model() -> str:
    """The first ``model name`` of /proc/cpuinfo (or the platform's own word)."""
    for line in _read("/proc/cpuinfo").splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_total_mib() -> int | None:
    match = re.search(r"^MemTotal:\s+(\d+) kB", _read("/proc/meminfo"), re.MULTILINE)
    return int(match.group(1)) // KIB if match else None


def load_average() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def java_version() -> str | None:
    try:
        done = subprocess.run(
            ["java", "-version"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = (done.stderr or done.stdout).strip().splitlines()
    return first[0] if first else None


def machine_info() -> dict[str, Any]:
    """The machine a run measured, as JSON."""
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "memory_mib": memory_total_mib(),
        "load_average_at_start": load_average(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "java": java_version(),
    }


def git_commit(root: Path) -> dict[str, Any]:
    """The checkout's commit and whether files differed from it when the run began."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit or "unknown",
        "short": commit[:10] if commit else "unknown",
        "modified_files": len(dirty.splitlines()) if dirty else 0,
    }


@dataclass(frozen=True, slots=True)
class ProcessMemory:
    """A process's resident memory now and at its peak, with its descendants'."""

    pid: int
    rss_mib: float
    peak_mib: float
    processes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "rss_mib": round(self.rss_mib, 1),
            "peak_rss_mib": round(self.peak_mib, 1),
            "processes": self.processes,
        }


def _status_kib(pid: int, field: str) -> int | None:
    match = re.search(
        rf"^{field}:\s+(\d+) kB", _read(f"/proc/{pid}/status"), re.MULTILINE
    )
    return int(match.group(1)) if match else None


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = _read(str(task / "children"))
        found += [int(part) for part in text.split()]
    return found


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    seen: list[int] = []
    queue = [pid]
    while queue:
        current = queue.pop()
        if current in seen:
            continue
        seen.append(current)
        queue += _children(current)
    return seen


def process_memory(pid: int) -> ProcessMemory | None:
    """The RSS and peak RSS (MiB) of ``pid`` and its descendants; None if it is gone."""
    pids = [p for p in descendants(pid) if _status_kib(p, "VmRSS") is not None]
    if not pids:
        return None
    rss = sum(_status_kib(p, "VmRSS") or 0 for p in pids)
    peak = sum(_status_kib(p, "VmHWM") or 0 for p in pids)
    return ProcessMemory(pid, rss / KIB, peak / KIB, len(pids))


def own_peak_rss_mib() -> float | None:
    """This process's peak resident set (VmHWM), in MiB."""
    kib = _status_kib(os.getpid(), "VmHWM")
    return None if kib is None else kib / KIB


def own_rss_mib() -> float | None:
    kib = _status_kib(os.getpid(), "VmRSS")
    return None if kib is None else kib / KIB
