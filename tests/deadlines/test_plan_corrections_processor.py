"""Plans' corrections through the deadlines processor: clocks redone, alerts withdrawn.

The plans events are made by the real plans service (its decide, on an in-memory store)
and published as plans' relay would; the processor runs as in the worker, without a
broker (``test_processor_clocks``' harness). Dates, counted by hand:

- request received Mon 1 Sep 2025: final plan due Mon 19 Jan 2026 (+ 20 weeks);
- assessment agreed Mon 6 Oct 2025, draft served Mon 1 Dec 2025 (comments until Mon 15
  Dec);
- the final plan recorded as issued Wed 21 Jan 2026 (late; first review by Wed 20 Jan
  2027, the last day of the 12 months starting with it), then corrected to Fri 16 Jan
  2026 (in time; first review by Fri 15 Jan 2027).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from test_processor_clocks import Harness, Log, at_london, case_id, only

from deadlines.application.partitioning import case_partition
from deadlines.application.ports import InputRecord
from plans.application.reactions import IntakeReactions
from plans.application.service import PlansService
from plans.domain import (
    Command,
    CorrectPlan,
    IssueDraftPlan,
    IssuePlan,
    ProposeAmendment,
)
from plans.settings import SOURCE
from sendkit.envelope import ReceivedEvent, from_kafka, to_kafka
from sendkit.events import Metadata, RecordedEvent
from sendkit.store import InMemoryEventStore

PLANS = "send.plans.events"
REVIEWS = "send.reviews.events"
NOW = datetime(2027, 1, 11, 12, tzinfo=UTC)
"""The plans service's "now" when the commands are handled: Mon 11 Jan 2027."""
REVIEW = "0c9e7f4a-1b2d-4c3e-8f5a-6b7c8d9e0f1a"


class PlansCase:
    """One case recorded through the plans service, its events published to the log.

    Intake's request (Mon 1 Sep 2025) and agreement (Mon 6 Oct 2025) go on the log
    first, and plans opens the case from them as its subscriber would.
    """

    def __init__(self, log: Log, name: str) -> None:
        self.log = log
        self.id = case_id(name)
        self.store = InMemoryEventStore(SOURCE)
        self.service = PlansService(self.store, clock=lambda: NOW)
        self.intake = [
            log.request(self.id, "2025-09-01T09:00:00Z"),
            log.event(self.id, "AssessmentAgreed", {"notified_on": "2025-10-06"}),
        ]
        reactions = IntakeReactions(clock=lambda: NOW)
        with self.store.transaction() as tx:
            for record in self.intake:
                reactions(from_kafka(record), tx)
        self.published = len(self.store.read_stream(self.id))

    def do(self, *commands: Command) -> list[InputRecord]:
        """Handle the commands; publish the events they recorded as the relay would."""
        for command in commands:
            self.service.handle(command)
        events = self.store.read_stream(self.id)
        fresh, self.published = events[self.published :], len(events)
        return [self._publish(PLANS, event) for event in fresh]

    def _publish(self, topic: str, event: RecordedEvent) -> InputRecord:
        out = to_kafka(event)
        return self.log.append(
            topic, case_partition(self.id), out.key, out.value, out.headers
        )

    def review_held(self, held_on: str) -> InputRecord:
        """Reviews' ``ReviewHeld`` of ``REVIEW``, as its relay would publish it."""
        event = RecordedEvent(
            id=f"{self.id}/reviews/1",
            stream_id=self.id,
            version=1,
            position=1,
            type="send.reviews.ReviewHeld.v1",
            source="/send/reviews",
            time=datetime(2026, 3, 4, 16, tzinfo=UTC),
            data={"case_id": self.id, "review_id": REVIEW, "held_on": held_on},
            metadata=Metadata(actor="ehcco-7", correlation_id=f"review-{self.id}"),
        )
        return self._publish(REVIEWS, event)

    def event_id(self, short: str) -> str:
        for event in self.store.read_stream(self.id):
            if event.type == f"send.plans.{short}.v1":
                return event.id
        raise AssertionError(f"no {short} in case {self.id}")


def _issue(case_id: str, issued_on: date) -> IssuePlan:
    return IssuePlan(
        case_id=case_id,
        issued_on=issued_on,
        setting_urn=123456,
        setting_type="mainstream_academy",
        start_date=date(2026, 2, 2),
        primary_need="SLCN",
    )


def _names(events: list[ReceivedEvent]) -> list[tuple[str, str]]:
    return [(e.name, e.data["clock_id"]) for e in events]


async def test_a_late_plan_corrected_to_in_time_is_met_and_its_alerts_withdrawn() -> (
    None
):
    log = Log()
    harness = Harness(log)
    case = PlansCase(log, "late-plan")
    await harness.deliver(case.intake)
    await harness.deliver(
        case.do(IssueDraftPlan(case_id=case.id, served_on=date(2025, 12, 1)))
    )
    await harness.deliver(log.tick(at_london(date(2026, 1, 20))))
    overdue = only(harness.outputs(case.id), "ClockOverdue", "final_plan")

    await harness.deliver(case.do(_issue(case.id, date(2026, 1, 21))))
    late = only(harness.outputs(case.id), "ClockLate", "final_plan")
    review = only(harness.outputs(case.id), "ClockSet", "annual_review")
    assert (late.data["due_on"], late.data["stopped_on"]) == (
        "2026-01-19",
        "2026-01-21",
    )
    assert review.data["due_on"] == "2027-01-20"
    # A week before the first review: its approaching alert is raised.
    await harness.deliver(log.tick(at_london(date(2027, 1, 11))))
    approaching = only(harness.outputs(case.id), "ClockApproaching", "annual_review")
    assert approaching.data["due_on"] == "2027-01-20"
    before = len(harness.outputs(case.id))

    correction = CorrectPlan(
        case_id=case.id,
        event_id=case.event_id("PlanIssued"),
        field="issued_on",
        new_value=date(2026, 1, 16),
        reason="issue date mistyped from the covering letter",
    )
    await harness.deliver(case.do(correction))

    after = harness.outputs(case.id)[before:]
    met = only(after, "ClockMet", "final_plan")
    assert (met.data["due_on"], met.data["stopped_on"]) == ("2026-01-19", "2026-01-16")
    withdrawn = [e for e in after if e.name == "AlertWithdrawn"]
    assert {(e.data["clock_id"], e.data["alert_id"]) for e in withdrawn} == {
        ("final_plan", overdue.id),
        ("annual_review", approaching.id),
    }
    moved = only(after, "ClockDueDateChanged", "annual_review")
    assert moved.data["due_on"] == "2027-01-15"
    # The review is still approaching under its new date: alerted again, once.
    again = only(after, "ClockApproaching", "annual_review")
    assert again.data["due_on"] == "2027-01-15"
    assert not [e for e in after if e.name in ("ClockLate", "ClockOverdue")]
    assert not [e for e in after if e.data["clock_id"] == "decision"]


async def test_a_corrected_draft_date_moves_its_comment_window() -> None:
    log = Log()
    harness = Harness(log)
    case = PlansCase(log, "draft-date")
    await harness.deliver(case.intake)
    await harness.deliver(
        case.do(IssueDraftPlan(case_id=case.id, served_on=date(2025, 12, 1)))
    )
    window = "draft_comments[DraftPlanIssued#1]"
    assert only(harness.outputs(case.id), "ClockSet", window).data["due_on"] == (
        "2025-12-15"
    )

    correction = CorrectPlan(
        case_id=case.id,
        event_id=case.event_id("DraftPlanIssued"),
        field="served_on",
        new_value=date(2025, 12, 3),
        reason="served by post two days later than recorded",
    )
    await harness.deliver(case.do(correction))

    # Served Wed 3 Dec 2025: 15 days beginning with it end on Wed 17 Dec.
    moved = only(harness.outputs(case.id), "ClockDueDateChanged", window)
    assert moved.data["due_on"] == "2025-12-17"


async def test_a_notice_naming_its_review_sets_no_second_final_amended_plan_clock() -> (
    None
):
    log = Log()
    harness = Harness(log)
    case = PlansCase(log, "review-notice")
    await harness.deliver(case.intake)
    await harness.deliver(
        case.do(
            IssueDraftPlan(case_id=case.id, served_on=date(2025, 12, 1)),
            _issue(case.id, date(2026, 1, 16)),
        )
    )
    await harness.deliver([case.review_held("2026-03-04")])
    await harness.deliver(
        case.do(
            ProposeAmendment(
                case_id=case.id,
                notice_sent_on=date(2026, 4, 15),
                proposals="add weekly physiotherapy to section F",
                review_id=REVIEW,
            )
        )
    )

    finals = [
        e
        for e in harness.outputs(case.id)
        if e.name == "ClockSet" and e.data["clock"] == "final_amended_plan"
    ]
    # 15 Apr + 8 weeks is Wed 10 Jun; the meeting of Wed 4 Mar + 12 weeks, 27 May.
    assert _names(finals) == [("ClockSet", f"final_amended_plan[review_id={REVIEW}]")]
    assert finals[0].data["due_on"] == "2026-05-27"
