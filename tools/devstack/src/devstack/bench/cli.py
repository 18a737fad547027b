"""``python -m devstack.bench`` (``make bench``): every figure, one JSON, one table.

The run, in order, on a Kafka broker of its own (``.run/bench/``, free ports):

1. histories: the county's year (Buckinghamshire 2024, about 70,000 events, with a
   round of ticks each day) and a tenth of it for the profiles, generated once and
   kept in ``.cache/bench/``;
2. throughput: the county history published under a prefix, then, in each of
   ``--runs`` runs, a bare kafka-python consumer (with and without its pure-Python CRC
   check), Kafka's ConsumerPerformance and, in the first ``--worker-runs`` runs (one by
   default: it takes minutes), a fresh deadlines worker read it, one after the other.
   The worker's run is also the county replay through faust, and its resident memory
   once done is the processor's with a county in its table. ``--profile-worker`` adds
   a worker run under cProfile over the tenth;
3. the platform (``devstack.run``'s start-up: mail catcher, intake API and relay,
   deadlines worker and API, notify worker) after a round of ticks for the present:
   end to end (request to clock event to email) in ``--runs`` runs, then intake's
   latency at ``--steady-rate`` in ``--runs`` runs, then ``--runs`` ramps up the rate
   ladder to the highest rate whose p99 stays within 50 ms, then each process's
   resident memory;
4. everything is stopped, the JVM included; then the in-process replays: the county
   history ``--runs`` times, once more passing over every case at each tick as the
   processor does (the others keep a heap of wake-up days), the tenth once under
   cProfile (where the time goes), and the national history at ``--national-scale``
   (1.0 is the full 5.4 million events; the default is a fiftieth, and the full-size
   time is extrapolated from it, since the cost grows with the number of cases).

The results go to ``bench/results/<date>-<commit>.json`` and the table between the
markers of ``docs/performance.md`` is rewritten from them. ``--tiny`` runs every step
at a toy size (for the tests); ``--skip`` leaves steps out.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import httpx

from devstack.bench import report
from devstack.bench.control import STOP, Interrupted, check_stop
from devstack.bench.e2e import ClockWatcher, run_end_to_end
from devstack.bench.history import HistorySpec, HistorySummary, read_history
from devstack.bench.intake_bench import handle_cost
from devstack.bench.kafka_bench import (
    PrefilledTopics,
    bare_consume,
    consumer_performance,
    deadlines_worker,
    end_offsets,
    group_lag,
    publish_history,
    wait_for_group,
)
from devstack.bench.loadgen import LoadResult, Target, find_max_rate, open_loop
from devstack.bench.machine import git_commit, machine_info, process_memory
from devstack.bench.stats import median, median_of_runs, ratio
from devstack.demo_data import DEMO_STAFF
from devstack.issuer import LocalIssuer
from devstack.kafka import repo_root
from devstack.kafka_config import LOOPBACK
from devstack.processes import ProcessStartError, Stack
from devstack.run import (
    KAFKA_READY_TIMEOUT_S,
    Platform,
    RunLayout,
    auth_env,
    broker_pid,
    choose_ports,
    kafka_spec,
    start_platform,
)
from send_schemas.topics import CLOCK_TICKS, DEADLINES, INTAKE

log = logging.getLogger(__name__)

RESULTS_SCHEMA = 1
DEFAULT_RAMP = (5, 10, 20, 30, 40, 60, 80, 100, 130, 160, 200, 250, 300, 400, 500)
P99_LIMIT_MS = 50.0
SETTLE_TIMEOUT_S = 120.0
DEADLINES_GROUP = "send-deadlines"
NOTIFY_GROUP = "send-notify"
TOKEN_LIFETIME = timedelta(hours=12)
PHASES = ("throughput", "platform", "replay", "national")


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """What one benchmark run measures, and how much of it."""

    runs: int = 3
    county_scale: float = 1.0
    profile_scale: float = 0.1
    throughput_scale: float = 1.0
    national_scale: float = 0.02
    worker_runs: int = 1
    steady_rate: float = 20.0
    steady_seconds: float = 30.0
    ramp: tuple[float, ...] = DEFAULT_RAMP
    ramp_min_seconds: float = 4.0
    ramp_samples: int = 100
    e2e_requests: int = 40
    e2e_interval_s: float = 0.25
    profile: bool = True
    profile_worker: bool = False
    skip: frozenset[str] = frozenset()
    tiny: bool = False
    seed: int = 825
    results_dir: Path = field(default_factory=lambda: repo_root() / "bench" / "results")
    doc: Path | None = field(
        default_factory=lambda: repo_root() / "docs" / "performance.md"
    )
    run_dir: Path = field(default_factory=lambda: repo_root() / ".run" / "bench")
    cache_dir: Path = field(default_factory=lambda: repo_root() / ".cache" / "bench")
    render: Path | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["skip"] = sorted(self.skip)
        data["ramp"] = list(self.ramp)
        for key in ("results_dir", "doc", "run_dir", "cache_dir", "render"):
            data[key] = None if data[key] is None else str(data[key])
        return data


TINY = {
    "runs": 1,
    "county_scale": 0.01,
    "profile_scale": 0.01,
    "throughput_scale": 0.01,
    "national_scale": 0.0005,
    "steady_rate": 5.0,
    "steady_seconds": 2.0,
    "ramp": (5.0, 10.0),
    "ramp_min_seconds": 1.0,
    "ramp_samples": 5,
    "e2e_requests": 2,
    "e2e_interval_s": 0.5,
}


def _say(out: TextIO, text: str) -> None:
    stamp = datetime.now(UTC).strftime("%H:%M:%S")
    print(f"[{stamp}] {text}", file=out, flush=True)


class Bench:
    """One benchmark run: its options, where it writes, and what it found."""

    def __init__(self, options: BenchOptions, out: TextIO) -> None:
        self.options = options
        self.out = out
        self.started = time.monotonic()
        self.layout = RunLayout(options.run_dir)
        self.results: dict[str, Any] = {
            "schema": RESULTS_SCHEMA,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": git_commit(repo_root()),
            "machine": machine_info(),
            "options": options.to_json(),
        }
        self.histories: dict[str, HistorySummary] = {}
        self.paths: dict[str, Path] = {}
        self._sequence = 0
        self.coordinator_id = ""
        self.headers: dict[str, str] = {}

    def say(self, text: str) -> None:
        _say(self.out, text)

    def next_number(self) -> int:
        self._sequence += 1
        return self._sequence

    # -- histories ----------------------------------------------------------------

    def history(self, name: str, spec: HistorySpec) -> Path:
        path = self.options.cache_dir / spec.file_name
        summary_file = path.with_name(path.name + ".json")
        if not (path.is_file() and summary_file.is_file()):
            self.say(f"generating the {name} history ({spec.scope}, x{spec.scale:g})")
            generate = [
                sys.executable,
                "-m",
                "devstack.bench.history",
                "--scope",
                spec.scope,
                "--scale",
                str(spec.scale),
                "--seed",
                str(spec.seed),
                "--year",
                str(spec.year),
                "--la",
                spec.la_code,
                "--out",
                str(path),
            ]
            subprocess.run(generate, check=True, stdout=subprocess.DEVNULL)
        summary = HistorySummary.from_json(json.loads(summary_file.read_text()))
        self.histories[name] = summary
        self.paths[name] = path
        self.results.setdefault("histories", {})[name] = summary.to_json()
        return path

    # -- the whole run ------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        options = self.options
        self.layout.reset()
        self.layout.prepare()
        county = HistorySpec("county", options.county_scale, options.seed)
        self.history("county", county)
        self.history("profile", replace(county, scale=options.profile_scale))
        if options.throughput_scale != options.county_scale:
            self.history("throughput", replace(county, scale=options.throughput_scale))

        stack = Stack(self.layout.logs)
        try:
            ports, _notes = choose_ports(free_only=True)
            if {"throughput", "platform"} - options.skip:
                self.say(f"starting Kafka on {LOOPBACK}:{ports.kafka}")
                stack.start(kafka_spec(self.layout, ports.kafka), KAFKA_READY_TIMEOUT_S)
                bootstrap = f"{LOOPBACK}:{ports.kafka}"
                if "throughput" not in options.skip:
                    self.throughput(bootstrap)
                if "platform" not in options.skip:
                    with LocalIssuer() as issuer:
                        self.trust(issuer)
                        platform = start_platform(
                            stack,
                            self.layout,
                            ports,
                            existing_kafka=bootstrap,
                            out=self.out,
                            auth=auth_env(issuer),
                        )
                        self.platform(stack, platform)
        finally:
            stopping = time.monotonic()
            started = len(stack.processes)
            stack.stop()
            if started:
                self.say(
                    f"stopped all {started} processes in "
                    f"{time.monotonic() - stopping:.1f} s"
                )

        if "platform" not in options.skip:
            self.results["intake_in_process"] = handle_cost(20 if options.tiny else 300)
        if "replay" not in options.skip:
            self.replays()
        if "national" not in options.skip:
            self.national()
        self.results["duration_s"] = round(time.monotonic() - self.started, 1)
        # Other work may commit to the checkout while a long run goes on; the
        # processes started later then ran newer code than the commit at the start.
        self.results["commit_at_end"] = git_commit(repo_root())
        self.results["targets"] = report.targets(self.results)
        return self.results

    # -- throughput ---------------------------------------------------------------

    def publish(self, bootstrap: str, name: str) -> PrefilledTopics:
        prefix = f"bench-{uuid.uuid4().hex[:8]}-{name}."
        started = time.monotonic()
        topics = publish_history(bootstrap, read_history(self.paths[name]), prefix)
        self.say(
            f"published the {name} history: {topics.total:,} records in "
            f"{time.monotonic() - started:.1f} s"
        )
        return topics

    def throughput(self, bootstrap: str) -> None:
        options = self.options
        name = "throughput" if "throughput" in self.paths else "county"
        topics = self.publish(bootstrap, name)
        runs: list[dict[str, Any]] = []
        work = self.layout.work / "throughput"
        for number in range(1, options.runs + 1):
            check_stop()
            run: dict[str, Any] = {"run": number}
            run["bare"] = bare_consume(bootstrap, topics)
            run["bare_no_crc"] = bare_consume(bootstrap, topics, check_crcs=False)
            run["tool"] = consumer_performance(bootstrap, topics, work)
            if number <= options.worker_runs:
                self.say(f"throughput run {number}: deadlines worker")
                run["worker"] = deadlines_worker(
                    bootstrap,
                    topics,
                    name=f"deadlines-throughput-{number}",
                    log_dir=self.layout.logs,
                    work_dir=work,
                )
            run["ratios"] = _throughput_ratios(run)
            self.say(f"throughput run {number}: {_rates_line(run)}")
            runs.append(run)
        section: dict[str, Any] = {"topic": topics.to_json(), "runs": runs}
        section["medians"] = _throughput_medians(runs)
        self.results["throughput"] = section

        if options.profile_worker:
            self.say("profiling a deadlines worker over a tenth of the county")
            profile = self.layout.root / "deadlines-worker.prof"
            profiled = deadlines_worker(
                bootstrap,
                self.publish(bootstrap, "profile"),
                name="deadlines-profiled",
                log_dir=self.layout.logs,
                work_dir=work,
                profile_to=profile,
            )
            profiled["profile"] = report.profile_rows(profile)
            profiled["phases"] = report.worker_phases(profile)
            self.results["worker_profile"] = profiled

    # -- the platform -------------------------------------------------------------

    def trust(self, issuer: LocalIssuer) -> None:
        """Mint the benchmark's token from the issuer the services will trust.

        The services are given ``devstack.run.auth_env(issuer)``, so they verify
        bearer tokens as in production (``AUTH_MODE=on``). The token is a team
        manager's, who may receive requests and assign coordinators in their team.
        """
        manager = next(m for m in DEMO_STAFF if m.role == "manager")
        coordinator = next(
            m
            for m in DEMO_STAFF
            if m.role == "coordinator" and m.manager_id == manager.staff_id
        )
        token = issuer.mint_for_staff(manager.staff_id, lifetime=TOKEN_LIFETIME)
        self.coordinator_id = coordinator.staff_id
        self.headers = {
            "Authorization": f"Bearer {token}",
            "X-Staff-Id": manager.staff_id,
        }
        self.results["auth"] = {
            "mode": auth_env(issuer).get("AUTH_MODE"),
            "staff_id": manager.staff_id,
            "algorithm": issuer.algorithm,
        }

    def platform(self, stack: Stack, platform: Platform) -> None:
        from deadlines.ticker import Ticker

        bootstrap = platform.bootstrap
        ticker = Ticker(bootstrap)
        try:
            ticker.send(datetime.now(UTC))
        finally:
            ticker.close()
        wait_for_group(bootstrap, DEADLINES_GROUP, [CLOCK_TICKS.name], timeout_s=120)

        self.end_to_end(platform)
        self.latency(platform)

        memory: dict[str, Any] = {}
        for name, pid in stack.pids().items():
            found = process_memory(pid)
            memory[name] = found.to_json() if found is not None else None
        self.results["memory"] = {
            "processes": memory,
            "broker_jvm_pid": broker_pid(self.layout),
            "intake_cases": _intake_cases(platform, self.headers),
        }
        self.say(
            "resident memory (MiB): "
            + ", ".join(
                f"{name} {value['rss_mib']}" for name, value in memory.items() if value
            )
        )

    def end_to_end(self, platform: Platform) -> None:
        watcher = ClockWatcher(platform.bootstrap).start()
        runs: list[dict[str, Any]] = []
        try:
            for number in range(1, self.options.runs + 1):
                check_stop()
                run = run_end_to_end(
                    intake_url=platform.intake_url,
                    mail_url=platform.mail_url,
                    watcher=watcher,
                    coordinator_id=self.coordinator_id,
                    headers=self.headers,
                    count=self.options.e2e_requests,
                    interval_s=self.options.e2e_interval_s,
                    sequence=self.next_number,
                ).to_json()
                runs.append(run)
                self.say(
                    f"end to end run {number}: clock p99 "
                    f"{_p(run, 'request_to_clock_ms', 'p99')} ms, email p99 "
                    f"{_p(run, 'request_to_email_ms', 'p99')} ms"
                )
                self.settle(platform.bootstrap)
        finally:
            watcher.stop()
        self.results["end_to_end"] = {
            "runs": runs,
            "medians": {
                f"{name}_{q}_ms": median(_p(run, f"{name}_ms", q) for run in runs)
                for name in (
                    "request_to_clock",
                    "accepted_to_clock",
                    "request_to_email",
                )
                for q in ("p50", "p99")
            },
        }

    def intake_target(self, platform: Platform) -> Target:
        received = datetime.now(UTC).replace(microsecond=0).isoformat()
        received = received.replace("+00:00", "Z")
        base = self.next_number() * 1_000_000

        def body(index: int) -> bytes:
            number = base + index
            return json.dumps(
                {
                    "requester_type": "school",
                    "child_reference": f"C-{number % 100_000_000:08d}",
                    "date_of_birth": "2015-05-01",
                    "school_urn": 990001 + number % 12,
                    "curriculum_year": 4,
                    "channel": "portal",
                    "received_at": received,
                },
                separators=(",", ":"),
            ).encode()

        return Target(
            host=LOOPBACK,
            port=platform.ports.intake,
            method="POST",
            path="/cases",
            body=body,
            headers=tuple(self.headers.items()),
        )

    def latency(self, platform: Platform) -> None:
        options = self.options
        target = self.intake_target(platform)
        steady: list[LoadResult] = []
        for number in range(1, options.runs + 1):
            check_stop()
            result = open_loop(target, options.steady_rate, options.steady_seconds)
            steady.append(result)
            summary = result.summary()
            self.say(
                f"intake at {options.steady_rate:g}/s run {number}: p50 "
                f"{summary.p50:.1f} ms, p99 {summary.p99:.1f} ms, "
                f"failed {result.failed}"
            )
            self.settle(platform.bootstrap)
        ramps = []
        for number in range(1, options.runs + 1):
            check_stop()
            ramp = find_max_rate(
                target,
                options.ramp,
                limit_ms=P99_LIMIT_MS,
                minimum_s=options.ramp_min_seconds,
                samples=options.ramp_samples,
                between=lambda: self.settle(platform.bootstrap),
            )
            ramps.append(ramp.to_json())
            self.say(
                f"intake ramp {number}: highest rate with p99 <= {P99_LIMIT_MS:g} ms: "
                f"{ramp.max_rate}/s"
            )
            self.settle(platform.bootstrap)
        self.results["intake_latency"] = {
            "command": "POST /cases (receive a request)",
            "steady": {
                "rate_per_s": options.steady_rate,
                "seconds": options.steady_seconds,
                "runs": [result.to_json() for result in steady],
                "p50_ms": median(r.summary().p50 for r in steady),
                "p99_ms": median(r.summary().p99 for r in steady),
            },
            "ramp": {
                "runs": ramps,
                # A ramp whose first rate already missed counts as 0, not as absent.
                "max_sustained_rate_per_s": median(
                    r["max_sustained_rate_per_s"] or 0.0 for r in ramps
                ),
            },
        }

    def settle(self, bootstrap: str) -> None:
        """Wait (a bounded time) until the processors have caught up with intake."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        last_end = -1
        while time.monotonic() < deadline:
            check_stop()
            end = sum(end_offsets(bootstrap, [INTAKE.name]).values())
            lag = group_lag(bootstrap, DEADLINES_GROUP, [INTAKE.name])
            lag += group_lag(bootstrap, NOTIFY_GROUP, [DEADLINES.name])
            if lag == 0 and end == last_end:
                return
            last_end = end
            time.sleep(1.0)
        self.say(f"the processors had not caught up after {SETTLE_TIMEOUT_S:.0f} s")

    # -- in-process replays -------------------------------------------------------

    def replay_once(
        self, path: Path, profile: Path | None = None, *, pass_over: bool = False
    ) -> dict[str, Any]:
        command = [
            sys.executable,
            "-m",
            "devstack.bench.replay",
            "--history",
            str(path),
        ]
        if profile is not None:
            command += ["--profile", str(profile)]
        if pass_over:
            command.append("--pass-over-every-case")
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise report.BenchError(
                f"the replay of {path} failed ({done.returncode}): "
                f"{done.stderr[-2000:]}"
            )
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result

    def replays(self) -> None:
        runs = []
        for number in range(1, self.options.runs + 1):
            check_stop()
            result = self.replay_once(self.paths["county"])
            runs.append(result)
            self.say(
                f"county replay run {number}: {result['events']:,} events in "
                f"{result['wall_s']:.1f} s (cpu {result['cpu_s']:.1f} s), peak "
                f"{result['peak_rss_mib']} MiB"
            )
        section: dict[str, Any] = {
            "history": self.histories["county"].to_json(),
            "runs": runs,
            "medians": {
                key: median_of_runs(runs, key)
                for key in (
                    "wall_s",
                    "cpu_s",
                    "apply_s",
                    "tick_s",
                    "events_per_s",
                    "apply_us_per_event",
                    "tick_us_per_case",
                    "peak_rss_mib",
                    "peak_rss_above_start_mib",
                )
            },
        }
        # Once more as the processor finds the cases a tick wakes (looking at every
        # case), to show what that pass costs beside the replay's heap.
        check_stop()
        passing = self.replay_once(self.paths["county"], pass_over=True)
        section["pass_over_every_case"] = passing
        self.say(f"county replay passing over every case: cpu {passing['cpu_s']:.1f} s")
        if self.options.profile:
            check_stop()
            profile = self.layout.root / "replay.prof"
            profiled = self.replay_once(self.paths["profile"], profile)
            section["profile"] = {
                "history": self.histories["profile"].to_json(),
                "wall_s": profiled["wall_s"],
                "apply_s": profiled["apply_s"],
                "tick_s": profiled["tick_s"],
                "functions": profiled["profile"],
                "phases": profiled["phases"],
            }
        self.results["replay_county"] = section

    def national(self) -> None:
        check_stop()
        spec = HistorySpec("national", self.options.national_scale, self.options.seed)
        started = time.monotonic()
        path = self.history("national", spec)
        generated = time.monotonic() - started
        self.say(
            f"national replay at x{spec.scale:g} "
            f"({self.histories['national'].events:,} events)"
        )
        result = self.replay_once(path)
        scale = spec.scale
        result["scale"] = scale
        result["history_ready_s"] = round(generated, 1)
        result["full_size"] = scale >= 1.0
        if scale < 1.0:
            result["extrapolated_full"] = {
                "events": round(result["events"] / scale),
                "wall_s": round(result["wall_s"] / scale, 1),
                "cpu_s": round(result["cpu_s"] / scale, 1),
                "peak_rss_above_start_mib": round(
                    result["peak_rss_above_start_mib"] / scale, 1
                ),
                "method": "linear in the scale: every cost here grows with the "
                "number of cases (events per case and tick rounds do not change)",
            }
        self.say(
            f"national replay: {result['events']:,} events in {result['wall_s']:.1f} s "
            f"(cpu {result['cpu_s']:.1f} s), peak {result['peak_rss_mib']} MiB"
        )
        self.results["replay_national"] = result


def _intake_cases(platform: Platform, headers: dict[str, str]) -> int | None:
    """How many cases intake holds (its list's total), or None if it cannot say."""
    try:
        answer = httpx.get(
            f"{platform.intake_url}/cases", params={"limit": 1}, headers=headers
        )
        total = answer.json().get("total")
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return int(total) if isinstance(total, int) else None


def _p(run: dict[str, Any], key: str, q: str) -> float | None:
    value = run.get(key)
    if not isinstance(value, dict):
        return None
    found = value.get(q)
    return float(found) if isinstance(found, int | float) else None


def _rate(run: dict[str, Any], reader: str) -> float | None:
    found = run.get(reader)
    if not isinstance(found, dict):
        return None
    value = found.get("records_per_s")
    return float(value) if isinstance(value, int | float) else None


def _throughput_ratios(run: dict[str, Any]) -> dict[str, float | None]:
    worker = _rate(run, "worker")
    bare = _rate(run, "bare")
    return {
        "worker_to_bare": ratio(worker, bare),
        "worker_to_bare_no_crc": ratio(worker, _rate(run, "bare_no_crc")),
        "worker_to_tool": ratio(worker, _rate(run, "tool")),
        "bare_to_tool": ratio(bare, _rate(run, "tool")),
    }


def _throughput_medians(runs: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    medians: dict[str, float | None] = {
        f"{reader}_per_s": median(_rate(run, reader) for run in runs)
        for reader in ("worker", "bare", "bare_no_crc", "tool")
    }
    for name in (
        "worker_to_bare",
        "worker_to_bare_no_crc",
        "worker_to_tool",
        "bare_to_tool",
    ):
        medians[name] = median(run["ratios"].get(name) for run in runs)
    return medians


def _rates_line(run: dict[str, Any]) -> str:
    parts = []
    for reader in ("worker", "bare", "bare_no_crc", "tool"):
        value = _rate(run, reader)
        if value is not None:
            parts.append(f"{reader} {value:,.0f}/s")
    return ", ".join(parts)


# -- the command -----------------------------------------------------------------------


def parse_options(argv: Sequence[str] | None) -> BenchOptions:
    defaults = BenchOptions()
    parser = argparse.ArgumentParser(
        prog="python -m devstack.bench",
        description="Measure intake's latency, end-to-end latency, the deadlines "
        "processor's throughput beside Kafka's, replays and memory; write "
        "bench/results/*.json and docs/performance.md.",
    )
    parser.add_argument("--runs", type=int, default=defaults.runs)
    parser.add_argument(
        "--national-scale",
        type=float,
        default=defaults.national_scale,
        help="share of England's figures for the national replay (1.0: the full "
        f"history of about 5.4 million events; default {defaults.national_scale})",
    )
    parser.add_argument("--county-scale", type=float, default=defaults.county_scale)
    parser.add_argument("--worker-runs", type=int, default=defaults.worker_runs)
    parser.add_argument(
        "--throughput-scale",
        type=float,
        default=defaults.throughput_scale,
        help="share of the county history the throughput runs read (default 1.0, "
        "the whole county; 0.25 saves most of the worker's ten minutes, but the "
        "worker then holds a quarter of a county, not a county)",
    )
    parser.add_argument("--steady-rate", type=float, default=defaults.steady_rate)
    parser.add_argument("--steady-seconds", type=float, default=defaults.steady_seconds)
    parser.add_argument("--e2e-requests", type=int, default=defaults.e2e_requests)
    parser.add_argument(
        "--no-profile", action="store_true", help="skip the cProfile of the replay"
    )
    parser.add_argument(
        "--profile-worker",
        action="store_true",
        help="also run a deadlines worker under cProfile (slow)",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="the long run: --worker-runs = --runs, --national-scale 1.0 and "
        "--profile-worker",
    )
    parser.add_argument(
        "--skip", action="append", choices=PHASES, default=[], help="leave a step out"
    )
    parser.add_argument("--tiny", action="store_true", help="everything at toy size")
    parser.add_argument(
        "--render",
        type=Path,
        default=None,
        metavar="RESULTS_JSON",
        help="measure nothing: judge a results file again and rewrite the doc from it",
    )
    parser.add_argument("--results-dir", type=Path, default=None)
    parser.add_argument("--doc", type=Path, default=None)
    parser.add_argument("--no-doc", action="store_true", help="leave the doc alone")
    parser.add_argument("--run-dir", type=Path, default=None)
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args(argv)

    options = replace(
        defaults,
        runs=args.runs,
        national_scale=args.national_scale,
        county_scale=args.county_scale,
        worker_runs=args.worker_runs,
        throughput_scale=args.throughput_scale,
        steady_rate=args.steady_rate,
        steady_seconds=args.steady_seconds,
        e2e_requests=args.e2e_requests,
        profile=not args.no_profile,
        profile_worker=args.profile_worker,
        skip=frozenset(args.skip),
    )
    if args.full:
        options = replace(
            options,
            worker_runs=options.runs,
            national_scale=1.0,
            profile_worker=True,
        )
    if args.tiny:
        options = replace(options, tiny=True, **TINY)  # type: ignore[arg-type]
    if args.results_dir is not None:
        options = replace(options, results_dir=args.results_dir)
    if args.no_doc:
        options = replace(options, doc=None)
    elif args.doc is not None:
        options = replace(options, doc=args.doc)
    if args.run_dir is not None:
        options = replace(options, run_dir=args.run_dir)
    if args.cache_dir is not None:
        options = replace(options, cache_dir=args.cache_dir)
    if args.render is not None:
        options = replace(options, render=args.render)
    if (
        options.runs < 1
        or min(options.county_scale, options.national_scale, options.throughput_scale)
        <= 0
    ):
        parser.error("--runs must be at least 1 and every scale above 0")
    return options


def render_again(path: Path, doc: Path | None, out: TextIO) -> int:
    """Judge a results file against the targets again and rewrite the doc from it."""
    results = json.loads(path.read_text())
    results["targets"] = report.targets(results)
    path.write_text(json.dumps(results, indent=2) + "\n")
    if doc is not None:
        report.write_doc(results, path, doc)
        _say(out, f"table written to {doc} from {path}")
    print(report.summary_lines(results), file=out, flush=True)
    return 0


def _stop_on_signal(signum: int, frame: FrameType | None) -> None:
    STOP.set()
    raise Interrupted(f"signal {signum}")


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    options = parse_options(argv)
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("kafka").setLevel(logging.ERROR)
    if options.render is not None:
        return render_again(options.render, options.doc, out)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGINT, _stop_on_signal)
    bench = Bench(options, out)
    try:
        results = bench.run()
    except (Interrupted, KeyboardInterrupt):
        _say(out, "interrupted; every process started was stopped")
        return 130
    except (ProcessStartError, report.BenchError) as error:
        _say(out, f"make bench failed: {error}")
        return 1
    path = report.write_results(results, options.results_dir)
    _say(out, f"results written to {path}")
    if options.doc is not None:
        report.write_doc(results, path, options.doc)
        _say(out, f"table written to {options.doc}")
    print(report.summary_lines(results), file=out, flush=True)
    return 0
