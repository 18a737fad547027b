"""The benchmark's arithmetic: percentiles, medians of runs, ratios, targets and tables.

Every expected value here is worked out by hand, so a wrong interpolation, a ratio
taken the wrong way round or a target judged on the wrong side fails a test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devstack.bench import report
from devstack.bench.kafka_bench import parse_consumer_performance
from devstack.bench.loadgen import LoadResult, passes, step_duration
from devstack.bench.stats import (
    StatsError,
    median,
    median_of_runs,
    percentile,
    rate,
    ratio,
    ratios_per_run,
    summarize,
)

# Percentiles -------------------------------------------------------------------------


def test_percentiles_interpolate_between_the_nearest_ranks() -> None:
    values = [10.0, 20.0, 30.0, 40.0]

    # rank = (n - 1) * q / 100: 1.5 for the median, 2.97 for p99.
    assert percentile(values, 50) == pytest.approx(25.0)
    assert percentile(values, 99) == pytest.approx(30.0 + 0.97 * 10.0)
    assert percentile(values, 0) == 10.0
    assert percentile(values, 100) == 40.0


def test_a_percentile_does_not_depend_on_the_order_of_the_values() -> None:
    assert percentile([5.0, 1.0, 3.0], 50) == 3.0


def test_the_p99_of_a_hundred_values_lies_between_the_last_two() -> None:
    values = [float(v) for v in range(1, 101)]

    assert percentile(values, 99) == pytest.approx(99.01)


def test_a_percentile_of_nothing_or_out_of_range_is_refused() -> None:
    with pytest.raises(StatsError):
        percentile([], 50)
    with pytest.raises(StatsError):
        percentile([1.0], 101)


def test_a_summary_has_the_count_the_tail_and_the_mean() -> None:
    summary = summarize([1.0, 2.0, 3.0, 4.0, 100.0])

    assert summary.count == 5
    assert summary.p50 == 3.0
    assert summary.maximum == 100.0
    assert summary.mean == pytest.approx(22.0)
    assert summary.p99 == pytest.approx(4.0 + 0.96 * 96.0)
    assert summary.to_json()["p99"] == round(summary.p99, 3)


# Runs and ratios ---------------------------------------------------------------------


def test_the_median_of_runs_leaves_out_runs_that_measured_nothing() -> None:
    assert median([3.0, None, 1.0, 2.0]) == 2.0
    assert median([None, None]) is None
    assert median([4.0, 1.0]) == 2.5


def test_a_ratio_is_numerator_over_denominator_and_undefined_without_one() -> None:
    assert ratio(50.0, 200.0) == 0.25
    assert ratio(None, 200.0) is None
    assert ratio(1.0, 0.0) is None


def test_ratios_are_taken_within_each_run_before_their_median() -> None:
    runs: list[dict[str, Any]] = [
        {"worker": 100.0, "bare": 400.0},
        {"worker": 300.0, "bare": 400.0},
        {"worker": 120.0, "bare": 200.0},
    ]

    per_run = ratios_per_run(runs, "worker", "bare")

    assert per_run == [0.25, 0.75, 0.6]
    assert median(per_run) == 0.6
    # The ratio of the medians (120 / 400) would be another number.
    assert median_of_runs(runs, "worker") == 120.0


def test_a_rate_needs_time_to_have_passed() -> None:
    assert rate(500, 2.0) == 250.0
    assert rate(500, 0.0) is None


# The load generator's verdicts --------------------------------------------------------


def _step(latencies: list[float], failed: int = 0) -> LoadResult:
    step = LoadResult(rate=10.0, duration_s=1.0, scheduled=len(latencies))
    step.latencies_ms = latencies
    step.statuses[201] = len(latencies) - failed
    if failed:
        step.statuses[500] = failed
    return step


def test_a_step_passes_only_within_the_limit_and_with_every_request_a_success() -> None:
    fast = [10.0] * 99 + [40.0]
    assert passes(_step(fast), 50.0)
    assert not passes(_step([10.0] * 90 + [80.0] * 10), 50.0)
    assert not passes(_step(fast, failed=1), 50.0)


def test_a_step_lasts_long_enough_for_its_samples() -> None:
    assert step_duration(10.0, minimum_s=4.0, samples=200) == 20.0
    assert step_duration(400.0, minimum_s=4.0, samples=200) == 4.0


# Kafka's tool ------------------------------------------------------------------------

TOOL_OUTPUT = """\
start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, \
rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
2026-12-04 15:25:01:100, 2026-12-04 15:25:12:500, 13.2130, 1.1590, 74231, 6511.4912, \
5464, 5891, 2.2429, 12600.7469
"""


def test_the_tool_summary_is_read_by_its_column_names() -> None:
    figures = parse_consumer_performance(TOOL_OUTPUT)

    assert figures["records"] == 74231
    assert figures["records_per_s"] == pytest.approx(12600.7469)
    assert figures["records_per_s_with_start"] == pytest.approx(6511.4912)
    assert figures["rebalance_ms"] == 5464


# Targets and the document ------------------------------------------------------------


def _results(**sections: Any) -> dict[str, Any]:
    return {"date": "2026-12-04T10:00:00+00:00", "commit": {"short": "abc"}, **sections}


def test_targets_are_judged_on_the_right_side_of_their_limits() -> None:
    results = _results(
        throughput={"medians": {"worker_to_bare": 0.5}},
        end_to_end={
            "medians": {"request_to_clock_p99_ms": 500.0, "request_to_email_p99_ms": 9}
        },
        replay_county={"medians": {"wall_s": 30.0, "cpu_s": 9.9}},
        replay_national={"scale": 0.1, "extrapolated_full": {"cpu_s": 1000.0}},
        memory={
            "processes": {
                "intake-api": {"rss_mib": 143.0},
                "notify-worker": {"rss_mib": 143.1},
                "kafka": {"rss_mib": 700.0},
            }
        },
    )

    verdicts = {t["measure"]: t["met"] for t in report.targets(results)}

    ratio_measure = "deadlines worker / bare kafka-python consumer (same records)"
    assert verdicts[ratio_measure] is True  # at least half
    assert verdicts["request to ClockSet on Kafka, p99"] is False  # under, not at
    assert verdicts["request to email accepted, p99"] is True
    # Replays are judged on CPU time (30 s of wall time on a busy machine is not
    # what the replay costs).
    assert verdicts["county replay, engine in-process (CPU time)"] is True
    assert verdicts["national replay, engine in-process (CPU time)"] is False
    # 143 MiB is 149.95 MB, under the 150 MB target; 143.1 MiB is 150.05 MB.
    assert verdicts["resident memory of intake-api"] is True
    assert verdicts["resident memory of notify-worker"] is False
    # The broker is measured but is not one of the platform's services.
    assert "resident memory of kafka" not in verdicts


def test_rewriting_the_document_keeps_what_is_outside_the_markers(
    tmp_path: Path,
) -> None:
    doc = tmp_path / "docs" / "performance.md"
    doc.parent.mkdir()
    doc.write_text(
        f"# Performance\n\nWritten by hand.\n\n{report.BEGIN}\nold table\n"
        f"{report.END}\n\n## Analysis\n\nAlso by hand.\n"
    )
    results = _results(targets=report.targets(_results()))
    path = tmp_path / "bench" / "results" / "x.json"

    report.write_doc(results, path, doc)

    text = doc.read_text()
    assert text.startswith("# Performance\n\nWritten by hand.")
    assert text.endswith("## Analysis\n\nAlso by hand.\n")
    assert "old table" not in text
    assert "`bench/results/x.json`" in text
    assert text.count(report.BEGIN) == 1
    assert text.count(report.END) == 1
