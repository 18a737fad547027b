"""The benchmark's results: checked against the targets, kept as JSON, shown as tables.

``targets(results)`` compares every figure with its target (the issue's: the deadlines
processor at least half the bare consumer's rate, request to clock event p99 under
500 ms, request to email p99 under 1 s, a county replay under 10 s, a national one
under 15 minutes, each process under 150 MB resident). ``write_results`` writes
``bench/results/<date>-<commit>.json``; ``write_doc`` rewrites the part of
``docs/performance.md`` between its two markers from those results, leaving the
written analysis around it alone.
"""

from __future__ import annotations

import json
import pstats
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

BEGIN = "<!-- bench:results:begin (written by make bench; edit outside the markers) -->"
END = "<!-- bench:results:end -->"
SERVICE_PROCESSES = (
    "intake-api",
    "intake-relay",
    "deadlines-worker",
    "deadlines-api",
    "notify-worker",
)
NOT_SERVICES = ("kafka", "mail")
"""Processes measured but not held to the target: the broker and the mail catcher."""
MIB_PER_MB = 1e6 / 2**20

RATIO_TARGET = 0.5
CLOCK_P99_MS = 500.0
EMAIL_P99_MS = 1000.0
COUNTY_REPLAY_S = 10.0
NATIONAL_REPLAY_S = 15 * 60.0
PROCESS_MB = 150.0


class BenchError(RuntimeError):
    """The benchmark could not measure something; the message says what and why."""


def _get(data: Mapping[str, Any] | None, *path: str) -> Any:
    value: Any = data
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _target(
    measure: str,
    value: float | None,
    unit: str,
    target: str,
    met: bool | None,
    note: str = "",
) -> dict[str, Any]:
    return {
        "measure": measure,
        "value": None if value is None else round(float(value), 3),
        "unit": unit,
        "target": target,
        "met": met,
        "note": note,
    }


def _below(value: float | None, limit: float) -> bool | None:
    return None if value is None else value < limit


def first_worker_run(results: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The first throughput run's deadlines worker (the county replay through faust)."""
    for run in _get(results, "throughput", "runs") or ():
        worker = _get(run, "worker")
        if isinstance(worker, Mapping):
            return worker
    return None


def targets(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each target with the figure it is judged on and whether it was met."""
    found: list[dict[str, Any]] = []

    ratio = _get(results, "throughput", "medians", "worker_to_bare")
    found.append(
        _target(
            "deadlines worker / bare kafka-python consumer (same records)",
            ratio,
            "ratio",
            f">= {RATIO_TARGET}",
            None if ratio is None else ratio >= RATIO_TARGET,
            "median of the runs' ratios",
        )
    )
    for key, limit, name in (
        ("request_to_clock_p99_ms", CLOCK_P99_MS, "request to ClockSet on Kafka, p99"),
        ("request_to_email_p99_ms", EMAIL_P99_MS, "request to email accepted, p99"),
    ):
        value = _get(results, "end_to_end", "medians", key)
        found.append(
            _target(name, value, "ms", f"< {limit:g} ms", _below(value, limit))
        )

    # The replays are judged on CPU time, the time they take on a core of their own:
    # on this shared machine their wall time also counts the waits for a core.
    county = _get(results, "replay_county", "medians", "cpu_s")
    wall = _get(results, "replay_county", "medians", "wall_s")
    found.append(
        _target(
            "county replay, engine in-process (CPU time)",
            county,
            "s",
            f"< {COUNTY_REPLAY_S:g} s",
            _below(county, COUNTY_REPLAY_S),
            f"wall {_fmt(wall)} s",
        )
    )
    worker = first_worker_run(results)
    scale = _get(results, "options", "throughput_scale")
    county_scale = _get(results, "options", "county_scale") or 1.0
    whole_county = scale is None or scale >= county_scale
    if worker is not None and whole_county:
        found.append(
            _target(
                "county replay, deadlines worker over Kafka (wall)",
                worker.get("seconds"),
                "s",
                f"< {COUNTY_REPLAY_S:g} s",
                _below(worker.get("seconds"), COUNTY_REPLAY_S),
                f"{_fmt(worker.get('inputs'))} records, first clock event to last",
            )
        )

    national = _get(results, "replay_national")
    if isinstance(national, Mapping):
        if national.get("full_size"):
            value, note = national.get("cpu_s"), "measured at full size"
        else:
            value = _get(national, "extrapolated_full", "cpu_s")
            note = f"extrapolated from scale {national.get('scale')}"
        found.append(
            _target(
                "national replay, engine in-process (CPU time)",
                value,
                "s",
                f"< {NATIONAL_REPLAY_S:g} s",
                _below(value, NATIONAL_REPLAY_S),
                note,
            )
        )

    memory = _get(results, "memory", "processes") or {}
    services = [name for name in memory if name not in NOT_SERVICES]
    for name in services or SERVICE_PROCESSES:
        rss = _get(memory, name, "rss_mib")
        mb = None if rss is None else rss / MIB_PER_MB
        found.append(
            _target(
                f"resident memory of {name}",
                mb,
                "MB",
                f"< {PROCESS_MB:g} MB",
                _below(mb, PROCESS_MB),
                "after the end-to-end and latency runs",
            )
        )
    county_rss = _get(worker, "memory", "rss_mib")
    if county_rss is not None and whole_county:
        mb = county_rss / MIB_PER_MB
        found.append(
            _target(
                "resident memory of a deadlines worker holding the county",
                mb,
                "MB",
                f"< {PROCESS_MB:g} MB",
                _below(mb, PROCESS_MB),
                "after the county replay through faust",
            )
        )
    return found


# -- files -----------------------------------------------------------------------------


def results_name(results: Mapping[str, Any]) -> str:
    day = str(results.get("date", "unknown"))[:10]
    commit = str(_get(results, "commit", "short") or "unknown")
    return f"{day}-{commit}.json"


def write_results(results: Mapping[str, Any], folder: Path) -> Path:
    """Write the results; a second run on the same day and commit gets ``-2``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / results_name(results)
    number = 1
    while path.exists():
        number += 1
        path = folder / results_name(results).replace(".json", f"-{number}.json")
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    return path


def worker_phases(path: Path) -> list[dict[str, Any]]:
    """Where a profiled deadlines worker's main thread spent its time."""
    from devstack.bench.replay import WORKER_PHASES, phase_times

    if not path.is_file():
        return []
    return phase_times(pstats.Stats(str(path)), WORKER_PHASES, total_of=None)


def profile_rows(path: Path, limit: int = 20) -> list[dict[str, Any]]:
    """The functions with the most time of their own in a cProfile output file."""
    from devstack.bench.replay import top_functions

    if not path.is_file():
        return []
    return top_functions(pstats.Stats(str(path)), limit)


# -- the document ----------------------------------------------------------------------


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:,.{digits}f}"
    return str(value)


def _met(value: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[value]


def _table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return lines


def render(results: Mapping[str, Any], results_path: str) -> str:
    """The generated part of docs/performance.md."""
    machine = results.get("machine", {})
    commit = results.get("commit", {})
    options = results.get("options", {})
    lines = [
        f"Run of {results.get('date')} on commit `{commit.get('short')}`"
        + (
            f" ({commit.get('modified_files')} tracked files modified)"
            if commit.get("modified_files")
            else ""
        )
        + _commit_moved(results)
        + f"; results in `{results_path}`; {_fmt(results.get('duration_s'))} s in all.",
        "",
        f"Machine: {machine.get('cores')} cores, {_fmt(machine.get('memory_mib'))} MiB "
        f"of memory, {machine.get('cpu_model')}; load average at the start "
        f"{machine.get('load_average_at_start')} (the machine is shared); Python "
        f"{machine.get('python')}, {machine.get('java')}. Runs per figure: "
        f"{options.get('runs')}; figures are medians of the runs.",
        "",
        "### Targets",
        "",
    ]
    lines += _table(
        ("Measure", "Result", "Target", "Met", "Note"),
        (
            (
                t["measure"],
                f"{_fmt(t['value'], 2)} {t['unit']}",
                t["target"],
                _met(t["met"]),
                t["note"],
            )
            for t in results.get("targets", [])
        ),
    )
    lines += ["", "### Figures", ""]
    lines += _table(("Figure", "Value"), _figures(results))
    profile = _get(results, "replay_county", "profile", "functions")
    if profile:
        lines += [
            "",
            "### Where the replay's time goes (cProfile, a tenth of the county)",
            "",
        ]
        phases = _get(results, "replay_county", "profile", "phases") or []
        if phases:
            lines += _phase_table(phases, "Part of the engine")
            lines += ["", "The functions with the most time of their own:", ""]
        lines += _profile_table(profile[:12])
    worker_profile = _get(results, "worker_profile", "profile")
    if worker_profile:
        records = _get(results, "worker_profile", "inputs")
        lines += [
            "",
            "### Where the deadlines worker's time goes "
            f"(cProfile of its main thread, {_fmt(records)} records)",
            "",
        ]
        phases = _get(results, "worker_profile", "phases") or []
        if phases:
            lines += _phase_table(phases, "Part of the worker")
            lines += ["", "The functions with the most time of their own:", ""]
        lines += _profile_table(worker_profile[:12])
    return "\n".join(lines)


def _commit_moved(results: Mapping[str, Any]) -> str:
    start = _get(results, "commit", "commit")
    end = _get(results, "commit_at_end", "commit")
    if end is None or end == start:
        return ""
    short = _get(results, "commit_at_end", "short")
    return (
        f" (the checkout moved to `{short}` during the run, so later steps may "
        "have run newer code)"
    )


def _phase_table(rows: Iterable[Mapping[str, Any]], first: str) -> list[str]:
    return _table(
        (first, "Function", "Cumulative s", "Share of the run"),
        (
            (
                row["meaning"],
                f"`{row['function']}`",
                _fmt(row["cumulative_s"], 2),
                "-" if row["share"] is None else f"{row['share']:.0%}",
            )
            for row in rows
        ),
    )


def _profile_table(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    return _table(
        ("Function", "Calls", "Own s", "Cumulative s"),
        (
            (
                f"`{row['function']}`",
                _fmt(row["calls"]),
                _fmt(row["own_s"], 2),
                _fmt(row["cumulative_s"], 2),
            )
            for row in rows
        ),
    )


def _figures(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []

    def add(name: str, value: Any, unit: str = "", digits: int = 1) -> None:
        if value is not None:
            rows.append((name, f"{_fmt(value, digits)} {unit}".strip()))

    steady = _get(results, "intake_latency", "steady") or {}
    rate = steady.get("rate_per_s")
    add(
        f"intake POST /cases at {_fmt(rate)}/s open loop, p50",
        steady.get("p50_ms"),
        "ms",
        2,
    )
    add(
        f"intake POST /cases at {_fmt(rate)}/s open loop, p99",
        steady.get("p99_ms"),
        "ms",
        2,
    )
    add(
        "intake: highest rate with p99 <= 50 ms (rate ladder)",
        _get(results, "intake_latency", "ramp", "max_sustained_rate_per_s"),
        "requests/s",
        0,
    )
    alone = _get(results, "intake_in_process", "ms") or {}
    add(
        "intake's command in-process, no HTTP (ReceiveRequest), p50",
        alone.get("p50"),
        "ms",
        2,
    )
    add("intake's command in-process, no HTTP, p99", alone.get("p99"), "ms", 2)
    e2e = _get(results, "end_to_end", "medians") or {}
    add(
        "request sent to ClockSet on send.deadlines.events, p50",
        e2e.get("request_to_clock_p50_ms"),
        "ms",
    )
    add("request sent to ClockSet, p99", e2e.get("request_to_clock_p99_ms"), "ms")
    add(
        "request accepted (201) to ClockSet, p99",
        e2e.get("accepted_to_clock_p99_ms"),
        "ms",
    )
    add(
        "request sent to email accepted by SMTP, p50",
        e2e.get("request_to_email_p50_ms"),
        "ms",
    )
    add(
        "request sent to email accepted by SMTP, p99",
        e2e.get("request_to_email_p99_ms"),
        "ms",
    )

    records = _get(results, "throughput", "topic", "records")
    medians = _get(results, "throughput", "medians") or {}
    where = f" ({_fmt(records)} records)" if records else ""
    add(
        f"deadlines worker over a pre-filled topic{where}",
        medians.get("worker_per_s"),
        "records/s",
        0,
    )
    add(
        "bare kafka-python consumer, same records",
        medians.get("bare_per_s"),
        "records/s",
        0,
    )
    add(
        "bare kafka-python consumer without CRC checks",
        medians.get("bare_no_crc_per_s"),
        "records/s",
        0,
    )
    add(
        "Kafka ConsumerPerformance (fetch.nMsg.sec), same records",
        medians.get("tool_per_s"),
        "records/s",
        0,
    )
    add("ratio worker / bare consumer", medians.get("worker_to_bare"), "", 3)
    add(
        "ratio worker / bare consumer without CRC checks",
        medians.get("worker_to_bare_no_crc"),
        "",
        3,
    )
    add("ratio worker / ConsumerPerformance", medians.get("worker_to_tool"), "", 3)
    add("ratio bare consumer / ConsumerPerformance", medians.get("bare_to_tool"), "", 3)

    worker = first_worker_run(results)
    if isinstance(worker, Mapping):
        add(
            f"county replay by the worker ({_fmt(worker.get('inputs'))} records)",
            worker.get("seconds"),
            "s",
        )
        add("  clock events it published", worker.get("outputs"))

    replay = _get(results, "replay_county", "medians") or {}
    events = _get(results, "replay_county", "history", "events")
    add(
        f"county replay in-process ({_fmt(events)} events), wall",
        replay.get("wall_s"),
        "s",
    )
    add("  cpu", replay.get("cpu_s"), "s")
    add("  of which engine.apply", replay.get("apply_s"), "s")
    add("  of which tick rounds", replay.get("tick_s"), "s")
    add("  apply per event", replay.get("apply_us_per_event"), "µs")
    add("  tick per due case", replay.get("tick_us_per_case"), "µs", 2)
    add("  peak resident memory", replay.get("peak_rss_mib"), "MiB")
    add(
        "  peak above the interpreter's start",
        replay.get("peak_rss_above_start_mib"),
        "MiB",
    )

    national = _get(results, "replay_national")
    if isinstance(national, Mapping):
        scale = national.get("scale")
        add(
            f"national replay at scale {scale} "
            f"({_fmt(national.get('events'))} events), wall",
            national.get("wall_s"),
            "s",
        )
        add("  cpu", national.get("cpu_s"), "s")
        add("  peak resident memory", national.get("peak_rss_mib"), "MiB")
        full = national.get("extrapolated_full")
        if isinstance(full, Mapping):
            add(
                f"  extrapolated to full size ({_fmt(full.get('events'))} events), "
                "wall",
                full.get("wall_s"),
                "s",
                0,
            )
            add(
                "  extrapolated peak above start",
                full.get("peak_rss_above_start_mib"),
                "MiB",
                0,
            )

    memory = _get(results, "memory", "processes") or {}
    cases = _get(results, "memory", "intake_cases")
    for name, value in memory.items():
        if isinstance(value, Mapping):
            add(
                f"resident memory of {name}"
                + (
                    f" (intake holding {_fmt(cases)} cases)"
                    if name == "intake-api" and cases
                    else ""
                ),
                value.get("rss_mib"),
                "MiB",
            )
    add(
        "resident memory of a deadlines worker holding the county's clocks",
        _get(first_worker_run(results), "memory", "rss_mib"),
        "MiB",
    )
    return rows


def write_doc(results: Mapping[str, Any], results_path: Path, doc: Path) -> None:
    """Rewrite the generated block of ``doc``, creating the file if it is missing."""
    try:
        shown = str(results_path.resolve().relative_to(doc.resolve().parents[1]))
    except ValueError:
        shown = str(results_path)
    block = f"{BEGIN}\n\n{render(results, shown)}\n\n{END}"
    text = doc.read_text() if doc.is_file() else f"# Performance\n\n{BEGIN}\n{END}\n"
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        text = text.rstrip() + "\n\n" + f"{BEGIN}\n{END}\n"
        start, end = text.find(BEGIN), text.find(END)
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text[:start] + block + text[end + len(END) :])


def summary_lines(results: Mapping[str, Any]) -> str:
    """The targets as lines for the terminal."""
    lines = ["Targets:"]
    for t in results.get("targets", []):
        lines.append(
            f"  {_met(t['met']).strip('*'):<12} {t['measure']}: "
            f"{_fmt(t['value'], 2)} {t['unit']} (target {t['target']})"
        )
    return "\n".join(lines)
