"""Synthetic event histories in the shape of the DfE's figures, for the benchmarks.

A history is one calendar year (2024 by default) of what the intake, plans and reviews
services publish for a council (``scope="county"``, Buckinghamshire by default) or for
England (``scope="national"``), together with a round of clock ticks at 08:00 London
every day, all in the order it happened. It is written as a sorted tab-separated file
(``write_history``), which the Kafka benchmarks publish and the in-process replay
streams (``read_history``), so a national history of millions of events never has to
fit in memory.

Where the shape comes from (``devstack.dfe``, the DfE release "Education, health and
care plans" 2025):

- the plans that exist at the start: the number the year's annual-review figures are
  counted over (``ReviewFigures.plans``: 7,217 for Buckinghamshire, 638,745 for
  England). Each plan's history begins with a ``PlanIssued`` dated on a day of the year
  before, standing for its last issue or review (it is loaded at the start of the year,
  as a council loads its existing caseload); a share ``meetings_held / plans`` of them
  is reviewed in the year, and the decisions after the reviews follow the published
  outcomes (amend, maintain, cease) and the published share notified within 4 weeks;
- new requests: ``devstack.demo_data.generate_caseload`` (the published counts of
  requests, outcomes and decisions within 6 weeks), each with its coordinator; for
  each agreed assessment, three pieces of advice, then a plan (in the published ratio
  of new plans to assessments agreed, within 20 weeks in the published share) or a
  notice that no plan will be issued.

Assumptions of this module, not published figures: the days of the year, 80% of review
meetings held by the due date (the rest up to 60 days late), papers sent 14 days ahead
in 85%, reports within 2 weeks in 80%, amended plans within 8 weeks of the decision in
65%, advice within 6 weeks in 70%, and every review on the SENCO's termly list (the
``ReviewListSentToSenco`` local-practice event) and its agency referrals made. Cases
still open from earlier years, interim reviews, re-assessments, transfers and phase
transfers are not generated, so ``send.placement.events`` stays empty. Every id and
reference is synthetic (random UUIDs from the seed, "Demo" school URNs from 990001).

Each line is ``recorded_us, seq, kind, case_id, event_id, type, payload``: the moment
it was recorded (microseconds since the epoch, zero-padded so the text sorts in time
order), a sequence number that breaks ties in the order of generation, the kind
(``i`` intake, ``p`` plans, ``r`` reviews, ``t`` a tick), and for an event its case,
its id, its CloudEvents type and its data as JSON; a tick's payload is its ``now``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any, Literal, TextIO

from devstack.demo_data import PlannedCase, demo_schools, generate_caseload
from devstack.dfe import BUCKINGHAMSHIRE, DemoDataError, LaFigures, load_la_figures
from send_schemas import intake, plans, reviews
from send_schemas.topics import INTAKE, PLANS, REVIEWS
from sendkit.calendar import (
    LONDON,
    is_working_day,
    last_of_months_starting_with,
    london_date,
    next_working_day,
    previous_working_day,
)
from sendkit.envelope import format_time

FORMAT_VERSION = 1
"""Bumped whenever the generator's output changes, so cached files are not reused."""

Scope = Literal["county", "national"]
KIND_INTAKE = "i"
KIND_PLANS = "p"
KIND_REVIEWS = "r"
KIND_TICK = "t"
TOPIC_OF_KIND = {
    KIND_INTAKE: INTAKE.name,
    KIND_PLANS: PLANS.name,
    KIND_REVIEWS: REVIEWS.name,
}
SOURCE_OF_KIND = {
    KIND_INTAKE: "/send/intake",
    KIND_PLANS: "/send/plans",
    KIND_REVIEWS: "/send/reviews",
}
TICK_TIME = clock_time(8, 0)

# Assumptions (see the module docstring).
MEETING_ON_TIME_SHARE = 0.80
PAPERS_ON_TIME_SHARE = 0.85
REPORT_ON_TIME_SHARE = 0.80
AMENDED_IN_8_WEEKS_SHARE = 0.65
ADVICE_IN_6_WEEKS_SHARE = 0.70
SPECIAL_SETTING_SHARE = 0.15
ADVICE_BODIES = ("educational_psychology", "health", "social_care")
REVIEW_ROLES = ["parent", "senco", "ehc_coordinator"]
CEASE_REASONS = ("needs_met", "maximum_age", "moved_english_la", "employment")


class HistoryError(DemoDataError):
    """A history cannot be generated or read; the message says what to change."""


@dataclass(frozen=True, slots=True)
class HistorySpec:
    """Which history: the geography, a scale on its figures, the seed and the year."""

    scope: Scope = "county"
    scale: float = 1.0
    seed: int = 825
    year: int = 2024
    la_code: str = BUCKINGHAMSHIRE

    def __post_init__(self) -> None:
        if self.scope not in ("county", "national"):
            raise HistoryError(f"scope {self.scope!r} is not 'county' or 'national'")
        if self.scale <= 0:
            raise HistoryError(f"scale {self.scale} must be above 0, such as 1.0")

    @property
    def old_la_code(self) -> str | None:
        return None if self.scope == "national" else self.la_code

    @property
    def file_name(self) -> str:
        where = "england" if self.scope == "national" else f"la{self.la_code}"
        return (
            f"history-{where}-{self.year}-x{self.scale:g}-seed{self.seed}"
            f"-v{FORMAT_VERSION}.tsv"
        )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class HistoryLine:
    """One line of a history: an event of a case, or a round of ticks."""

    recorded_us: int
    kind: str
    case_id: str
    event_id: str
    event_type: str
    payload: str

    @property
    def is_tick(self) -> bool:
        return self.kind == KIND_TICK

    @property
    def recorded_at(self) -> datetime:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
            microseconds=self.recorded_us
        )

    def data(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.payload)
        return value


@dataclass(frozen=True, slots=True)
class HistorySummary:
    """What a history holds: events by type, cases, tick rounds and its first day."""

    spec: HistorySpec
    events: int
    ticks: int
    existing_plans: int
    new_requests: int
    by_type: dict[str, int]
    first_day: str
    last_day: str
    seconds: float

    @property
    def cases(self) -> int:
        return self.existing_plans + self.new_requests

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_json(),
            "events": self.events,
            "tick_rounds": self.ticks,
            "cases": self.cases,
            "existing_plans": self.existing_plans,
            "new_requests": self.new_requests,
            "by_type": dict(sorted(self.by_type.items())),
            "first_day": self.first_day,
            "last_day": self.last_day,
            "generation_seconds": round(self.seconds, 2),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HistorySummary:
        return cls(
            spec=HistorySpec(**data["spec"]),
            events=int(data["events"]),
            ticks=int(data["tick_rounds"]),
            existing_plans=int(data["existing_plans"]),
            new_requests=int(data["new_requests"]),
            by_type={str(k): int(v) for k, v in data["by_type"].items()},
            first_day=str(data["first_day"]),
            last_day=str(data["last_day"]),
            seconds=float(data["generation_seconds"]),
        )


# -- figures ---------------------------------------------------------------------------


def figures_for(spec: HistorySpec) -> LaFigures:
    """The DfE figures a history is shaped on, ready for ``generate_caseload``.

    The national age breakdown has an "Age unknown" row that the demo's caseload
    generator cannot place; it is left out (one request in 154,489), so the national
    request count the generator plans is one short of the published figure.
    """
    figures = load_la_figures(spec.old_la_code, spec.year)
    if figures.reviews is None:
        raise HistoryError(
            f"the DfE release has annual-review figures only for its latest year; "
            f"{spec.year} has none, so its existing plans cannot be shaped: use 2024"
        )
    requests = figures.requests
    known_ages = {
        label: count
        for label, count in requests.by_age.items()
        if label.lower().startswith("aged")
    }
    return dataclasses.replace(
        figures, requests=dataclasses.replace(requests, by_age=known_ages)
    )


# -- writing ---------------------------------------------------------------------------


def _micros(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _at(day: date, hours: float) -> datetime:
    """A moment ``hours`` after London midnight of ``day``, in UTC."""
    whole = int(hours)
    minutes = int((hours - whole) * 60)
    local = datetime.combine(day, clock_time(whole, minutes), LONDON)
    return local.astimezone(UTC)


def _working_on_or_after(day: date) -> date:
    return day if is_working_day(day) else next_working_day(day)


def _working_on_or_before(day: date) -> date:
    return day if is_working_day(day) else previous_working_day(day)


class _Writer:
    """Writes unsorted lines, counting what it wrote."""

    def __init__(self, out: TextIO, rng: random.Random, earliest: datetime) -> None:
        self.out = out
        self.rng = rng
        self.earliest = earliest
        self.seq = 0
        self.by_type: Counter[str] = Counter()
        self.last_day = london_date(earliest)

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def office_time(self, day: date) -> datetime:
        return _at(day, 9.0 + self.rng.random() * 8.0)

    def event(
        self,
        recorded: datetime,
        kind: str,
        case_id: str,
        model: type[Any],
        data: dict[str, Any],
    ) -> None:
        # Facts dated before the history starts are loaded with the caseload.
        recorded = max(recorded, self.earliest)
        self.seq += 1
        body = json.dumps(
            {"case_id": case_id, **data}, separators=(",", ":"), sort_keys=True
        )
        event_type = str(model.EVENT_TYPE)
        self.out.write(
            f"{_micros(recorded):017d}\t{self.seq:010d}\t{kind}\t{case_id}\t"
            f"{self.new_id()}\t{event_type}\t{body}\n"
        )
        self.by_type[event_type] += 1
        day = london_date(recorded)
        if day > self.last_day:
            self.last_day = day

    def tick(self, day: date) -> None:
        moment = _at(day, TICK_TIME.hour)
        self.seq += 1
        self.out.write(
            f"{_micros(moment):017d}\t{self.seq:010d}\t{KIND_TICK}\t\t\t\t"
            f"{format_time(moment)}\n"
        )


def _school(rng: random.Random, schools: Sequence[tuple[int, str]]) -> tuple[int, str]:
    urn, phase = rng.choice(schools)
    if phase == "special" or rng.random() < SPECIAL_SETTING_SHARE:
        return urn, "special_maintained"
    if phase == "college":
        return urn, "further_education"
    if phase == "early_years":
        return urn, "early_years"
    return urn, "mainstream_maintained"


def _iso(day: date) -> str:
    return day.isoformat()


def _existing_plans(w: _Writer, figures: LaFigures, spec: HistorySpec) -> int:
    """The caseload at the start of the year and its annual reviews; the plan count."""
    assert figures.reviews is not None  # figures_for refuses a year without reviews
    r = figures.reviews
    rng = w.rng
    count = max(1, round(r.plans * spec.scale))
    reviewed_share = r.meetings_held / r.plans
    outcomes = ["amend", "maintain", "cease"]
    weights = [r.outcome_amend, r.outcome_maintain, r.outcome_cease]
    in_time = r.within_4_weeks_share
    schools = [(s.urn, s.phase) for s in demo_schools()]
    year_before = date(spec.year - 1, 1, 1)
    days_before = (date(spec.year, 1, 1) - year_before).days

    for _ in range(count):
        case_id = w.new_id()
        last = year_before + timedelta(days=rng.randrange(days_before))
        urn, setting_type = _school(rng, schools)
        w.event(
            w.earliest,
            KIND_PLANS,
            case_id,
            plans.PlanIssued,
            {
                "issued_on": _iso(last),
                "setting_urn": urn,
                "setting_type": setting_type,
                "start_date": _iso(last),
            },
        )
        if rng.random() >= reviewed_share:
            continue  # not reviewed this year: its annual review goes overdue

        due = last_of_months_starting_with(last, 12)
        if rng.random() < MEETING_ON_TIME_SHARE:
            meeting = _working_on_or_before(due - timedelta(days=rng.randint(0, 42)))
        else:
            meeting = _working_on_or_after(due + timedelta(days=rng.randint(1, 60)))
        _review(
            w, case_id, urn, due, meeting, rng.choices(outcomes, weights)[0], in_time
        )
    return count


def _review(
    w: _Writer,
    case_id: str,
    urn: int,
    due: date,
    meeting: date,
    decision: str,
    in_time_share: float,
) -> None:
    rng = w.rng
    review_id = w.new_id()
    arranged = _working_on_or_before(meeting - timedelta(days=63))
    listed = _working_on_or_before(meeting - timedelta(days=rng.randint(30, 80)))
    w.event(
        w.office_time(listed),
        KIND_REVIEWS,
        case_id,
        reviews.ReviewListSentToSenco,
        {
            "setting_urn": urn,
            "sent_on": _iso(listed),
            "term_starts_on": _iso(listed + timedelta(days=14)),
            "review_due_on": _iso(due),
        },
    )
    w.event(
        w.office_time(arranged),
        KIND_REVIEWS,
        case_id,
        reviews.ReviewArranged,
        {
            "review_id": review_id,
            "kind": "annual",
            "meeting_on": _iso(meeting),
            "arranged_on": _iso(arranged),
            "setting_urn": urn,
            "invitee_roles": REVIEW_ROLES,
        },
    )
    referred = _working_on_or_after(arranged + timedelta(days=rng.randint(0, 7)))
    w.event(
        w.office_time(referred),
        KIND_REVIEWS,
        case_id,
        reviews.AgencyReferralsMade,
        {"review_id": review_id, "made_on": _iso(referred)},
    )
    ahead = (
        rng.randint(14, 21)
        if rng.random() < PAPERS_ON_TIME_SHARE
        else rng.randint(3, 13)
    )
    papers = _working_on_or_before(meeting - timedelta(days=ahead))
    w.event(
        w.office_time(papers),
        KIND_REVIEWS,
        case_id,
        reviews.ReviewPapersSent,
        {"review_id": review_id, "sent_on": _iso(papers)},
    )
    w.event(
        w.office_time(meeting),
        KIND_REVIEWS,
        case_id,
        reviews.ReviewHeld,
        {
            "review_id": review_id,
            "held_on": _iso(meeting),
            "child_views_gathered": True,
            "attendee_roles": REVIEW_ROLES,
        },
    )
    after = (
        rng.randint(2, 14)
        if rng.random() < REPORT_ON_TIME_SHARE
        else rng.randint(15, 30)
    )
    report = _working_on_or_after(meeting + timedelta(days=after))
    w.event(
        w.office_time(report),
        KIND_REVIEWS,
        case_id,
        reviews.ReviewReportReceived,
        {"review_id": review_id, "received_on": _iso(report)},
    )
    wait = rng.randint(5, 28) if rng.random() < in_time_share else rng.randint(29, 90)
    notified = meeting + timedelta(days=wait)
    w.event(
        w.office_time(notified),
        KIND_REVIEWS,
        case_id,
        reviews.ReviewDecided,
        {"review_id": review_id, "decision": decision, "notified_on": _iso(notified)},
    )
    if decision == "amend":
        weeks = (
            rng.randint(14, 56)
            if rng.random() < AMENDED_IN_8_WEEKS_SHARE
            else rng.randint(57, 140)
        )
        issued = _working_on_or_after(notified + timedelta(days=weeks))
        w.event(
            w.office_time(issued),
            KIND_PLANS,
            case_id,
            plans.PlanAmended,
            {"issued_on": _iso(issued), "changes": ["F"]},
        )
    elif decision == "cease":
        ceased = notified + timedelta(days=rng.randint(28, 60))
        w.event(
            w.office_time(ceased),
            KIND_PLANS,
            case_id,
            plans.PlanCeased,
            {"ceased_on": _iso(ceased), "reason": rng.choice(CEASE_REASONS)},
        )


def _new_requests(w: _Writer, figures: LaFigures, spec: HistorySpec) -> int:
    """The year's requests (the demo's caseload) and what follows them; the count."""
    rng = w.rng
    cases = generate_caseload(figures, spec.year, spec.scale, spec.seed)
    plan_share = min(
        1.0, figures.new_plans / max(1, figures.requests.decided_to_assess)
    )
    timeliness = figures.timeliness
    in_20_weeks = timeliness.within_20_weeks / max(1, timeliness.plans_issued)
    schools = [(s.urn, s.phase) for s in demo_schools()]
    for case in cases:
        case_id = w.new_id()
        _request(w, case_id, case)
        if case.outcome == "agreed" and case.decision_notified_on is not None:
            _assessment(
                w,
                case_id,
                case,
                case.decision_notified_on,
                plan_share,
                in_20_weeks,
                _school(rng, schools),
            )
    return len(cases)


def _request(w: _Writer, case_id: str, case: PlannedCase) -> None:
    received = case.received_at.astimezone(UTC)
    w.event(
        received,
        KIND_INTAKE,
        case_id,
        intake.RequestReceived,
        {
            "requester_type": case.requester,
            "channel": case.channel,
            "received_at": format_time(received),
            "school_urn": case.school_urn,
            "curriculum_year": case.curriculum_year,
        },
    )
    w.event(
        received + timedelta(minutes=5),
        KIND_INTAKE,
        case_id,
        intake.CoordinatorAssigned,
        {"coordinator_id": case.coordinator_id, "previous_coordinator_id": None},
    )
    if case.exception_reason is not None and case.exception_noted_on is not None:
        w.event(
            w.office_time(case.exception_noted_on),
            KIND_INTAKE,
            case_id,
            intake.TimeLimitExceptionRecorded,
            {"clock": "decision", "reason": case.exception_reason},
        )
    recorded = case.outcome_recorded_at.astimezone(UTC)
    if case.decision_notified_on is not None:
        model: type[Any] = (
            intake.AssessmentAgreed
            if case.outcome == "agreed"
            else intake.AssessmentRefused
        )
        w.event(
            recorded,
            KIND_INTAKE,
            case_id,
            model,
            {"notified_on": _iso(case.decision_notified_on)},
        )
    else:
        withdrawn = case.withdrawn_on or case.received_on
        w.event(
            recorded,
            KIND_INTAKE,
            case_id,
            intake.RequestWithdrawn,
            {"withdrawn_on": _iso(withdrawn)},
        )


def _assessment(
    w: _Writer,
    case_id: str,
    case: PlannedCase,
    agreed_on: date,
    plan_share: float,
    in_20_weeks: float,
    school: tuple[int, str],
) -> None:
    rng = w.rng
    received_on = case.received_on
    last_advice = agreed_on
    for body in ADVICE_BODIES:
        advice_id = w.new_id()
        asked = _working_on_or_after(agreed_on + timedelta(days=rng.randint(1, 5)))
        w.event(
            w.office_time(asked),
            KIND_PLANS,
            case_id,
            plans.AdviceRequested,
            {"advice_id": advice_id, "body": body, "received_by_body_on": _iso(asked)},
        )
        took = (
            rng.randint(20, 42)
            if rng.random() < ADVICE_IN_6_WEEKS_SHARE
            else rng.randint(43, 90)
        )
        answered = _working_on_or_after(asked + timedelta(days=took))
        last_advice = max(last_advice, answered)
        w.event(
            w.office_time(answered),
            KIND_PLANS,
            case_id,
            plans.AdviceReceived,
            {"advice_id": advice_id, "received_on": _iso(answered)},
        )

    if rng.random() >= plan_share:
        notice = _working_on_or_after(
            max(
                last_advice + timedelta(days=7),
                received_on + timedelta(days=rng.randint(70, 112)),
            )
        )
        w.event(
            w.office_time(notice),
            KIND_PLANS,
            case_id,
            plans.NoPlanNoticeSent,
            {"notified_on": _iso(notice)},
        )
        return

    # The draft comes after the last advice and at least 15 days before the final.
    earliest = max(last_advice + timedelta(days=16), agreed_on + timedelta(days=30))
    limit = received_on + timedelta(weeks=20)
    if rng.random() < in_20_weeks and earliest <= limit:
        final = earliest + timedelta(days=rng.randint(0, (limit - earliest).days))
    else:
        final = max(earliest, limit + timedelta(days=1)) + timedelta(
            days=rng.randint(0, 120)
        )
    final = _working_on_or_before(final)
    draft = max(
        last_advice + timedelta(days=1),
        final - timedelta(days=rng.randint(15, 30)),
    )
    draft = _working_on_or_after(draft)
    if (final - draft).days < 15:
        final = _working_on_or_after(draft + timedelta(days=15))
    w.event(
        w.office_time(draft),
        KIND_PLANS,
        case_id,
        plans.DraftPlanIssued,
        {"served_on": _iso(draft)},
    )
    urn, setting_type = school
    w.event(
        w.office_time(final),
        KIND_PLANS,
        case_id,
        plans.PlanIssued,
        {
            "issued_on": _iso(final),
            "setting_urn": urn,
            "setting_type": setting_type,
            "start_date": _iso(final + timedelta(days=rng.randint(0, 30))),
        },
    )


def generate_unsorted(spec: HistorySpec, out: TextIO) -> HistorySummary:
    """Write the history's lines to ``out`` in the order generated (not yet sorted)."""
    started = time.monotonic()
    figures = figures_for(spec)
    rng = random.Random(f"devstack.bench.history/{spec.seed}")
    start = datetime.combine(date(spec.year, 1, 1), clock_time(0, 0), LONDON)
    w = _Writer(out, rng, start.astimezone(UTC))
    existing = _existing_plans(w, figures, spec)
    requests = _new_requests(w, figures, spec)
    first = date(spec.year, 1, 1)
    ticks = 0
    day = first
    while day <= w.last_day + timedelta(days=1):
        w.tick(day)
        ticks += 1
        day += timedelta(days=1)
    return HistorySummary(
        spec=spec,
        events=sum(w.by_type.values()),
        ticks=ticks,
        existing_plans=existing,
        new_requests=requests,
        by_type=dict(w.by_type),
        first_day=first.isoformat(),
        last_day=(w.last_day + timedelta(days=1)).isoformat(),
        seconds=time.monotonic() - started,
    )


def write_history(spec: HistorySpec, path: Path) -> HistorySummary:
    """Generate the history and write it to ``path`` sorted in time order.

    The sort is GNU ``sort`` on the fixed-width time and sequence columns, so a
    national history sorts in bounded memory. A summary is written beside it as
    ``<path>.json``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    sorter = shutil.which("sort")
    if sorter is None:
        raise HistoryError("GNU sort is needed to order a history; install coreutils")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        unsorted = Path(scratch) / "unsorted.tsv"
        with unsorted.open("w", encoding="utf-8") as out:
            summary = generate_unsorted(spec, out)
        env = {**os.environ, "LC_ALL": "C"}
        partial = path.with_name(path.name + ".partial")
        subprocess.run(
            [sorter, "-S", "256M", "-T", scratch, "-o", str(partial), str(unsorted)],
            check=True,
            env=env,
        )
        partial.replace(path)
    summary = dataclasses.replace(summary, seconds=time.monotonic() - started)
    summary_path(path).write_text(json.dumps(summary.to_json(), indent=2) + "\n")
    return summary


def summary_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def ensure_history(spec: HistorySpec, folder: Path) -> tuple[Path, HistorySummary]:
    """The history file for ``spec`` in ``folder``, generated unless already there."""
    path = folder / spec.file_name
    summary_file = summary_path(path)
    if path.is_file() and summary_file.is_file():
        try:
            return path, HistorySummary.from_json(json.loads(summary_file.read_text()))
        except (KeyError, TypeError, ValueError):
            pass  # an unreadable summary: generate again
    return path, write_history(spec, path)


def read_history(path: Path) -> Iterator[HistoryLine]:
    """The lines of a history file, in order."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            parts = line.rstrip("\n").split("\t", 6)
            if len(parts) != 7:
                raise HistoryError(
                    f"line {number} of {path} has {len(parts)} fields, not 7: the file "
                    "is not a history; delete it and run the benchmark again"
                )
            recorded, _seq, kind, case_id, event_id, event_type, payload = parts
            yield HistoryLine(
                int(recorded), kind, case_id, event_id, event_type, payload
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.bench.history",
        description="Write a synthetic event history shaped like the DfE figures.",
    )
    parser.add_argument("--scope", choices=("county", "national"), default="county")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=825)
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument("--la", default=BUCKINGHAMSHIRE, help="old LA code (county)")
    parser.add_argument("--out", type=Path, required=True, help="the .tsv to write")
    args = parser.parse_args(argv)
    try:
        spec = HistorySpec(args.scope, args.scale, args.seed, args.year, args.la)
        summary = write_history(spec, args.out)
    except DemoDataError as error:
        print(f"history: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary.to_json(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
