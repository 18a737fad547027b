"""Dates the engine can parse but not count with, through the processor.

Another system may publish a well-formed, schema-valid event dated in year 1 or 9999.
The engine counts only in the calendar's supported range (``sendkit.calendar``,
1 September 2014 to 31 December 2100), so such an event is dead-lettered as an
unusable event naming the field and the range, never as a failure of the processor,
and the record after it is still processed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from test_processor_clocks import TICKS, Harness, Log, case_id, kinds

from deadlines.application.partitioning import case_partition, progress_key
from deadlines.application.ticks import TICK_KEY
from sendkit.calendar import SUPPORTED_FROM, SUPPORTED_TO

RANGE = f"from {SUPPORTED_FROM} to {SUPPORTED_TO}"
YEARS = f"from {SUPPORTED_FROM.year} to {SUPPORTED_TO.year}"
AGREED = {"notified_on": "2025-02-10"}


def request(received_at: str) -> dict[str, Any]:
    return {
        "requester_type": "parent",
        "channel": "email",
        "received_at": received_at,
        "school_urn": 100001,
        "curriculum_year": 5,
    }


OUT_OF_RANGE: list[tuple[str, str, dict[str, Any], str, str]] = [
    (
        "the earliest timestamp",
        "send.intake.RequestReceived.v1",
        request("0001-01-01T00:00:00Z"),
        "received_at",
        RANGE,
    ),
    (
        "the latest timestamp",
        "send.intake.RequestReceived.v1",
        request("9999-12-31T23:00:00Z"),
        "received_at",
        RANGE,
    ),
    (
        "a minute before EHC assessments began, in London",
        "send.intake.RequestReceived.v1",
        request("2014-08-31T22:59:00Z"),
        "received_at",
        RANGE,
    ),
    (
        "a move to another council in year 9999",
        "send.plans.PlanTransferOutNotified.v1",
        {"learned_on": "2025-06-02", "move_on": "9999-12-31"},
        "move_on",
        RANGE,
    ),
    (
        "a move to another council in year 1",
        "send.plans.PlanTransferOutNotified.v1",
        {"learned_on": "2025-06-02", "move_on": "0001-01-01"},
        "move_on",
        RANGE,
    ),
    (
        "a final plan issued in 2101",
        "send.plans.PlanIssued.v1",
        {"issued_on": "2101-01-01"},
        "issued_on",
        RANGE,
    ),
    (
        "a phase transfer in year 9999",
        "send.placement.PhaseTransferDue.v1",
        {
            "transfer": "school",
            "transfer_year": 9999,
            "phase": "primary_to_secondary",
            "leaving_year": 6,
        },
        "transfer_year",
        YEARS,
    ),
]


@pytest.mark.parametrize(
    ("event_type", "data", "field", "supported"),
    [row[1:] for row in OUT_OF_RANGE],
    ids=[row[0] for row in OUT_OF_RANGE],
)
async def test_an_event_dated_outside_the_range_is_an_unusable_event(
    event_type: str, data: dict[str, Any], field: str, supported: str
) -> None:
    log = Log()
    harness = Harness(log)
    bad, next_case = case_id(f"out-of-range-{field}"), case_id("after-out-of-range")
    bad_record = log.publish(bad, event_type, data)

    await harness.deliver([bad_record, log.request(next_case, "2025-01-06T10:00:00Z")])

    [letter] = harness.publisher.dead_letters()
    headers = dict(letter.record.headers)
    assert letter.record.value == bad_record.value
    assert headers["dlq_error"] == b"unusable-event"
    assert headers["dlq_error_type"] == b"UnusableEvent"
    assert f"field {field!r}".encode() in headers["dlq_reason"]
    assert supported.encode() in headers["dlq_reason"]
    assert harness.outputs(bad) == []
    assert bad.encode() not in harness.table
    assert ("ClockSet", "decision") in kinds(harness.outputs(next_case))
    assert len(harness.acked) == 2


async def test_a_correction_to_a_timestamp_outside_the_range_changes_no_clock() -> None:
    log = Log()
    harness = Harness(log)
    case = case_id("corrected-to-year-1")
    await harness.deliver([log.request(case, "2025-01-06T10:00:00Z")])
    before = harness.outputs(case)

    await harness.deliver(
        [
            log.event(
                case,
                "RequestCorrected",
                {
                    "field": "received_at",
                    "old_value": "2025-01-06T10:00:00Z",
                    "new_value": "0001-01-01T00:00:00Z",
                },
            )
        ]
    )

    [letter] = harness.publisher.dead_letters()
    headers = dict(letter.record.headers)
    assert headers["dlq_error"] == b"unusable-event"
    assert b"field 'new_value'" in headers["dlq_reason"]
    assert RANGE.encode() in headers["dlq_reason"]
    assert harness.outputs(case) == before


async def test_an_undated_start_recorded_outside_the_range_is_unusable() -> None:
    # A move with no date of its own is set on the day it was recorded, so that day
    # must be countable too.
    log = Log()
    harness = Harness(log)
    case = case_id("recorded-in-year-9999")

    await harness.deliver(
        [
            log.publish(
                case,
                "send.placement.PhaseTransferDue.v1",
                {
                    "transfer": "school",
                    "transfer_year": 2026,
                    "phase": "primary_to_secondary",
                    "leaving_year": 6,
                },
                when=datetime(9999, 12, 31, 22, tzinfo=UTC),
            )
        ]
    )

    [letter] = harness.publisher.dead_letters()
    headers = dict(letter.record.headers)
    assert headers["dlq_error"] == b"unusable-event"
    assert b"its time" in headers["dlq_reason"]
    assert RANGE.encode() in headers["dlq_reason"]


@pytest.mark.parametrize(
    ("received_at", "counts_from"),
    [
        ("2014-08-31T23:00:00Z", date(2014, 9, 1)),  # midnight in London, BST
        ("2100-12-31T23:59:59Z", date(2100, 12, 31)),  # GMT: still the 31st
    ],
)
async def test_the_first_and_last_moments_of_the_range_set_a_clock(
    received_at: str, counts_from: date
) -> None:
    log = Log()
    harness = Harness(log)
    case = case_id(f"edge-{received_at}")

    await harness.deliver([log.request(case, received_at)])

    assert harness.publisher.dead_letters() == []
    [decision] = [
        e
        for e in harness.outputs(case)
        if e.name == "ClockSet" and e.data["clock_id"] == "decision"
    ]
    assert decision.data["started_on"] == counts_from.isoformat()
    assert progress_key(case_partition(case)).encode() in harness.table


async def test_a_tick_dated_outside_the_range_is_dead_lettered_and_moves_no_clock() -> (
    None
):
    log = Log()
    harness = Harness(log)
    case = case_id("ticked-in-9999")
    await harness.deliver([log.request(case, "2025-01-06T10:00:00Z")])
    before = harness.outputs(case)
    partition = case_partition(case)
    far = log.append(TICKS, partition, TICK_KEY, b'{"now":"9999-12-31T23:00:00Z"}', [])

    await harness.deliver([far, log.event(case, "AssessmentAgreed", AGREED)])

    [letter] = harness.publisher.dead_letters()
    headers = dict(letter.record.headers)
    assert letter.topic == f"deadlines.{TICKS}.dlq"
    assert headers["dlq_error"] == b"invalid-tick"
    assert RANGE.encode() in headers["dlq_reason"]
    after = harness.outputs(case)[len(before) :]
    assert ("ClockMet", "decision") in kinds(after)
    assert ("ClockSet", "no_plan_notice") in kinds(after)
    # Taken as 'now', the far tick would have made every open clock overdue.
    assert not [e for e in after if e.name in ("ClockOverdue", "ClockApproaching")]
