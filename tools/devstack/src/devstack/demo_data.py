"""A synthetic year of EHC needs assessment requests, shaped like one council's figures.

``generate_caseload(figures, year, scale, seed)`` plans one calendar year of requests
for the demo to post through the intake API: when each arrived (London office hours
mostly, some in the evening, at night or at the weekend), who asked and how, the
child's pseudonymous reference, date of birth and school, the coordinator it goes to,
whether the council agreed or refused to assess (or the request was withdrawn), and the
day the decision was notified. The shape comes from the DfE figures (``devstack.dfe``):

- outcomes are apportioned exactly (largest remainder) to the published counts of
  requests agreed, refused, still undecided at the year end, and withdrawn; the
  undecided ones are decided in the first weeks of the next year;
- decisions within 6 weeks are apportioned to the published within/after-6-weeks
  counts, so at ``scale=1.0`` Buckinghamshire's 2024 year has 1,782 requests and 92.2%
  of decisions within 6 weeks; a few late decisions carry a reg 5(4) time-limit
  exception, and a few decisions are recorded a few working days after the day they
  were notified, as happens when paperwork lags;
- the child's age at the request follows the published age breakdown.

Everything else (requester and channel mix, time of day, seasons, schools, staff) is an
assumption of this module, stated in its constants. Every person, school and reference
is synthetic: child references are ``C-`` and eight digits, children are named
``<NATO word> Testcase``, staff are ``<name> Example`` at ``send-demo.example.org``
(a reserved domain), and schools are "Demo" schools with URNs from 990001.

Each agreed assessment is then carried on to the end of the simulated period
(``until``, by default 31 July of the next year, ``default_period_end``), as far as it
gets by then (``PlannedAssessment``): requests for advice from the school, health, the
educational psychology service (and social care for some) and the advice received;
either a notice that no plan will be issued, or a draft plan, the family's comments and
the final plan (``PlannedPlan``); and for the plans issued early enough, the first
annual review (``PlannedReview``): arranged, referrals made, papers sent, the meeting
held, the report, the decision to maintain, amend or cease, and the amended plan or the
cessation that follows. These follow the published figures too (``devstack.dfe``):

- the share of assessments ending without a plan, and how many of those notices came
  within 16 weeks (at least one such notice, so the demo shows the path);
- the share of new plans issued within 20 weeks (32.1% for Buckinghamshire in 2024) is
  apportioned over the plans issued within the period, the late ones mostly within a
  year of the request and the published share of them after more than a year; and
  exceptions to the 20-week limit in the published share (none for Buckinghamshire);
- of the first reviews due within the period, the published share of meetings held is
  held in time; the decisions after the meetings held are within 4 weeks in the
  published share (52.1%) of those made within the period, and maintain, amend or cease
  in the published mix.

The plans of the period then make a phase-transfer year (``plan_transfers``, for
September of the year after the requests; ``TransferPlan``): the council identifies
the cohort on the first working day of the school year before the move and again on
the first working day of January, each child with an issued plan who is then in N2
(into Reception), Year 6 (to secondary) or Year 11 (to post-16), as placement's default
rules say; two or three schools or colleges are consulted for each (colleges by
UKPRN), some answering within the 15 days, some later, some never; a submission
follows the 15 days, goes to the next panel of the child's team (the first and third
Wednesday of each month but August, its agenda recorded a week ahead), which names a
setting (a few are deferred to the panel after); the family is told within a week, and
plans amends the plan naming the setting (section I), some before the deadline (14
February, or 30 March for post-16) and some after it. The DfE publishes nothing on
consultations, panels or phase-transfer timeliness, so their shares are synthetic
(``CONSULTATION_ANSWERS``, ``PLACE_OFFERED_SHARE``, ``PANEL_DEFERRED_SHARE``,
``TRANSFER_NAMED_IN_TIME_SHARE``), apportioned exactly over the cohort; a child whose
family hears too late cannot be named in time, whatever the share. A transfer's
amended plan never falls between a review's notice to amend and its amended plan (it
moves after the review's), so the review's clocks end as planned; a plan the review
decided to cease is not taken to a panel.

Each ``PlannedCase`` also gives the JSON bodies of the intake API's commands for it
(``receive_request_body``, ``assign_coordinator_body``, ``time_limit_exception_body``,
``outcome_body``), its later commands in order (``steps()``, each a ``PlannedStep``
with the date of the fact and the moment it is recorded) with their bodies for the
plans, reviews or intake API (``step_body``); ``planned_clocks`` and
``planned_timeliness`` say how every clock those facts start must end and what the
DfE's figures must be; ``write_staff_csv`` writes the staff directory notify reads
(the SEND team, and with ``DEMO_SENCOS`` each school's SENCO).

The generator's own due dates (``sendkit.calendar``, counted as the Regulations count
them) only decide which cases it makes late and what the demo checks; the deadlines
service remains the authority on statutory dates. Working days are the kernel's, so
the demo and the clocks agree on every bank holiday. The later stages draw from a
random generator of their own, so the requests and decisions do not depend on them.

Known limits: how often advice, review papers, reports and amended plans are late is
an assumption (the release publishes none of it), as are the review meeting's timing
within its year and the mix of needs and settings. Only a plan's first review is
planned, so the second annual review, interim reviews, amendment notices of plans' own
and re-assessments never happen in the demo. Because the demo's requests all arrive
in one calendar year, its plans issued are the ones of that year's requests only, not
a year's issue as the DfE counts it (which includes plans of the year before).
"""

from __future__ import annotations

import argparse
import bisect
import csv
import itertools
import json
import math
import random
from collections import Counter
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

from devstack.dfe import DemoDataError, LaFigures, load_la_figures
from sendkit.calendar import (
    LONDON,
    is_working_day,
    last_of_months_starting_with,
    london_date,
    months_after,
    weeks_after,
)

DEFAULT_SEED = 825
DECISION_WEEKS = 6
STAFF_DOMAIN = "send-demo.example.org"
STAFF_CSV_COLUMNS = (
    "staff_id",
    "name",
    "email",
    "role",
    "manager_id",
    "school_urn",
    "mobile",
)
DRAMA_MOBILES = "07700900"
"""Ofcom's range of mobile numbers for drama (07700 900000 to 900999): never anyone's.
The demo's numbers start at 900500, clear of GOV.UK Notify's simulator numbers."""
FIRST_URN = 990001
CURRICULUM_YEAR_FIRST = -2
CURRICULUM_YEAR_LAST = 14

# The vocabularies of the intake contract (send_schemas.intake).
Requester = Literal["parent", "young_person", "school", "professional"]
Channel = Literal["email", "letter", "portal", "phone"]
Outcome = Literal["agreed", "refused", "withdrawn"]
# The letters of reg 5(4) of the SEND Regulations 2014: (a) a school closure of four
# weeks or more, (c) exceptional personal circumstances, (d) absence from the area.
# Reason (b), an early-years provider's closure, is not planned.
ExceptionReason = Literal["a", "c", "d"]
Role = Literal["coordinator", "manager", "senco"]
Phase = Literal["early_years", "primary", "secondary", "special", "college"]

# Assumptions of the demo, not published figures.
# Requests per working day by month: fewer in August and at Christmas, when schools
# (who make or support many requests) are closed.
MONTH_WEIGHT = {1: 1.0, 2: 1.0, 3: 1.1, 4: 0.85, 5: 1.05, 6: 1.1, 7: 1.0, 8: 0.45}
MONTH_WEIGHT |= {9: 1.0, 10: 1.1, 11: 1.15, 12: 0.7}
NON_WORKING_DAY_WEIGHT = 0.08
OFFICE_HOURS = (time(8, 0), time(18, 0))
# On a working day: in office hours, in the evening (18:00-23:00), or at night.
TIME_OF_DAY_WEIGHTS = {"office": 0.86, "evening": 0.10, "night": 0.04}
CHANNEL_IN_OFFICE_HOURS: Mapping[Channel, float] = {
    "portal": 0.45,
    "email": 0.43,
    "letter": 0.10,
    "phone": 0.02,
}
CHANNEL_OUT_OF_HOURS: Mapping[Channel, float] = {"portal": 0.55, "email": 0.45}
REQUESTER_UNDER_16: Mapping[Requester, float] = {
    "parent": 0.56,
    "school": 0.34,
    "professional": 0.10,
}
REQUESTER_16_AND_OVER: Mapping[Requester, float] = {
    "young_person": 0.30,
    "parent": 0.42,
    "school": 0.20,
    "professional": 0.08,
}
# Outside the summer holiday, an exception is for (c) or (d).
EXCEPTION_REASON_OTHERWISE: Mapping[ExceptionReason, float] = {"c": 0.6, "d": 0.4}
EXCEPTION_EVIDENCE: Mapping[ExceptionReason, str] = {
    "a": "Synthetic demo: advice was asked of the school during its summer closure.",
    "c": "Synthetic demo: exceptional personal circumstances of the family.",
    "d": "Synthetic demo: the family was away from the area for five weeks.",
}
SPECIAL_SCHOOL_SHARE = 0.15
EXCEPTION_SHARE_OF_LATE = 0.12
LATE_RECORDING_SHARE = 0.02
LATE_BY_AT_MOST = timedelta(weeks=8)

CHILD_GIVEN_NAMES = [
    "Alfa",
    "Bravo",
    "Charlie",
    "Delta",
    "Echo",
    "Foxtrot",
    "Golf",
    "Hotel",
    "India",
    "Juliett",
    "Kilo",
    "Lima",
    "Mike",
    "November",
    "Oscar",
    "Papa",
    "Quebec",
    "Romeo",
    "Sierra",
    "Tango",
    "Uniform",
    "Victor",
    "Whiskey",
    "Xray",
    "Yankee",
    "Zulu",
]
CHILD_FAMILY_NAME = "Testcase"


@dataclass(frozen=True, slots=True)
class StaffMember:
    """A synthetic member of staff: a coordinator or their manager in the SEND team,
    or a school's SENCO (who has a ``school_urn`` and no manager)."""

    staff_id: str
    name: str
    email: str
    role: Role
    manager_id: str | None
    school_urn: int | None = None
    mobile: str | None = None


@dataclass(frozen=True, slots=True)
class School:
    """A synthetic school or setting, with a 6-digit URN and the phase it serves."""

    urn: int
    name: str
    phase: Phase


def demo_staff(coordinators: int = 6, managers: int = 2) -> tuple[StaffMember, ...]:
    """Synthetic managers (``STAFF-001``...) and coordinators (``STAFF-101``...)."""
    if coordinators < 1 or managers < 1:
        raise DemoDataError("the demo team needs at least one coordinator and manager")
    given = [
        "Alex",
        "Bailey",
        "Casey",
        "Devon",
        "Emery",
        "Finley",
        "Gray",
        "Harper",
        "Indigo",
        "Jules",
        "Kai",
        "Logan",
        "Morgan",
        "Noel",
        "Oakley",
        "Parker",
        "Quinn",
        "Reese",
        "Sage",
        "Taylor",
    ]
    names = iter(itertools.cycle(given))
    team: list[StaffMember] = []
    for number in range(1, managers + 1):
        name = f"{next(names)} Example"
        team.append(_member(f"STAFF-{number:03d}", name, "manager", None, number))
    for number in range(1, coordinators + 1):
        manager = team[(number - 1) % managers].staff_id
        name = f"{next(names)} Example"
        team.append(
            _member(f"STAFF-{100 + number:03d}", name, "coordinator", manager, number)
        )
    return tuple(team)


def _member(
    staff_id: str, name: str, role: Role, manager_id: str | None, number: int
) -> StaffMember:
    local = name.lower().replace(" ", ".")
    if number > 20:
        local += str(number)
    # Managers 07700 900501..., coordinators 900601...: Ofcom's drama range.
    first = 500 if role == "manager" else 600
    return StaffMember(
        staff_id,
        name,
        f"{local}@{STAFF_DOMAIN}",
        role,
        manager_id,
        mobile=drama_mobile(first + number),
    )


def drama_mobile(number: int) -> str:
    """The ``number``-th mobile of Ofcom's drama range (07700 900000 + number)."""
    if not 0 <= number <= 999:
        raise DemoDataError(f"the drama range has 1,000 numbers; {number} is outside")
    return f"{DRAMA_MOBILES}{number:03d}"


def demo_schools() -> tuple[School, ...]:
    """A fixed pool of synthetic schools, URNs 990001 upwards."""
    pools: list[tuple[Phase, str, int]] = [
        ("early_years", "Demo Nursery", 4),
        ("primary", "Demo Primary School", 12),
        ("secondary", "Demo Secondary School", 6),
        ("special", "Demo Special School", 4),
        ("college", "Demo College", 3),
    ]
    words = itertools.cycle(
        [
            "Ashgrove",
            "Beechfield",
            "Cedarbrook",
            "Damsonway",
            "Elmstead",
            "Fernside",
            "Greywell",
            "Hollyridge",
            "Ivydene",
            "Juniper",
            "Kestrel",
            "Larchwood",
            "Maplevale",
            "Nutmeg",
            "Oakhollow",
            "Pinecrest",
            "Quillby",
            "Rowanmere",
            "Sorrelgate",
            "Thistledown",
            "Umberfield",
            "Violetbank",
            "Willowmead",
            "Yarrowdale",
            "Zinnia",
        ]
    )
    schools: list[School] = []
    urn = FIRST_URN
    for phase, label, count in pools:
        for _ in range(count):
            schools.append(School(urn, f"{next(words)} {label}", phase))
            urn += 1
    return tuple(schools)


def demo_sencos(schools: Iterable[School]) -> tuple[StaffMember, ...]:
    """One synthetic SENCO for each school (``SENCO-<urn>``), told of its reviews;
    their mobiles are 07700 900700 onwards."""
    return tuple(
        StaffMember(
            f"SENCO-{school.urn}",
            f"{school.name.split()[0]} Senco Example",
            f"senco.{school.urn}@{STAFF_DOMAIN}",
            "senco",
            None,
            school.urn,
            mobile=drama_mobile(700 + index),
        )
        for index, school in enumerate(schools)
    )


def demo_preferences(
    staff: Iterable[StaffMember],
) -> dict[str, dict[str, object]]:
    """How each demo member of staff wants alerts: notify's preferences bodies.

    Coordinators by email, the first of them as a daily digest of approaching alerts;
    the second by text for approaching alerts and by email and text when overdue;
    managers by email and text for a missed deadline; SENCOs by email. Everyone else
    (and every unset kind) has notify's defaults: email, no digest, texts held between
    20:00 and 08:00.

    The two who get texts have no quiet hours. The demo's ticks come at 08:00, so no
    text would fall in them on the ticks' clock; but an alert notify raises before its
    tick clock has caught up is judged on the wall clock, and a demo run in the
    evening would then hold those texts until the next real morning, long after the
    demo ends. The notify tests show quiet hours holding on the ticks' clock.
    """
    chosen: dict[str, dict[str, object]] = {}
    coordinators = 0
    for member in staff:
        channels = {"approaching": "email", "overdue": "email"}
        body: dict[str, object] = {}
        if member.role == "manager":
            channels["overdue"] = "both"
            body["quiet_hours"] = None
        elif member.role == "coordinator":
            coordinators += 1
            if coordinators == 1:
                body["daily_digest"] = True
            elif coordinators == 2:
                channels = {"approaching": "sms", "overdue": "both"}
                body["quiet_hours"] = None
        if {"sms", "both"} & set(channels.values()) and member.mobile is None:
            raise DemoDataError(
                f"{member.staff_id} is to get texts but has no mobile number"
            )
        chosen[member.staff_id] = {"channels": channels, **body}
    return chosen


DEMO_STAFF = demo_staff()
DEMO_SCHOOLS = demo_schools()
DEMO_SENCOS = demo_sencos(DEMO_SCHOOLS)
"""The schools' SENCOs, kept apart from ``DEMO_STAFF`` (the SEND team)."""


# -- the later stages: the assessment, the plan and its first annual review ------------

AdviceBody = Literal["education", "health", "educational_psychology", "social_care"]
NeedType = Literal[
    "SPLD", "MLD", "SLD", "PMLD", "SEMH", "SLCN", "HI", "VI", "MSI", "PD", "ASD", "OTH"
]
SettingType = Literal[
    "early_years",
    "mainstream_maintained",
    "mainstream_academy",
    "special_maintained",
    "special_academy",
    "further_education",
]
Respondent = Literal["parent", "young_person"]
ReviewDecision = Literal["maintain", "amend", "cease"]
StepKind = Literal[
    "advice_requested",
    "advice_received",
    "no_plan_notice",
    "draft_plan",
    "draft_comments",
    "final_plan_exception",
    "final_plan",
    "review_arranged",
    "referrals_made",
    "papers_sent",
    "review_held",
    "report_received",
    "review_decided",
    "plan_amended",
    "plan_ceased",
]
STEP_KINDS: tuple[StepKind, ...] = (
    "advice_requested",
    "advice_received",
    "no_plan_notice",
    "draft_plan",
    "draft_comments",
    "final_plan_exception",
    "final_plan",
    "review_arranged",
    "referrals_made",
    "papers_sent",
    "review_held",
    "report_received",
    "review_decided",
    "plan_amended",
    "plan_ceased",
)
"""The later commands of a case, in the order they come on one day."""

ADVICE_WEEKS = 6
NO_PLAN_WEEKS = 16
FINAL_PLAN_WEEKS = 20
REVIEW_REPORT_WEEKS = 2
REVIEW_DECISION_WEEKS = 4
REVIEW_PAPERS_DAYS_BEFORE = 14
REFERRALS_WEEKS_BEFORE = 8
AMENDED_PLAN_WEEKS = 8
AMENDED_PLAN_WEEKS_AFTER_MEETING = 12
COMMENT_WINDOW_DAYS = 15

# Assumptions of the demo about the later stages, not published figures.
# The advice every assessment asks for, and social care's for some children.
ADVICE_ALWAYS: tuple[AdviceBody, ...] = (
    "education",
    "health",
    "educational_psychology",
)
SOCIAL_CARE_ADVICE_SHARE = 0.35
# Advice received after its 6 weeks, where the draft plan leaves room for it; the
# educational psychology service is the one most often short of time.
ADVICE_LATE_SHARE: Mapping[AdviceBody, float] = {
    "education": 0.12,
    "health": 0.2,
    "educational_psychology": 0.35,
    "social_care": 0.2,
}
ADVICE_LABELS: Mapping[AdviceBody, str] = {
    "education": "the school's SENCO",
    "health": "the designated clinical officer's team",
    "educational_psychology": "the educational psychology service",
    "social_care": "the children's social care team",
}
# The quickest assessment planned: advice gathered, a draft, its comment window.
SHORTEST_ASSESSMENT = timedelta(weeks=7)
# A late plan comes up to a year after the request; the published share of late plans
# issued after more than a year comes up to this much later still.
LATE_PLAN_WITHIN_A_YEAR = timedelta(weeks=32)
LATE_PLAN_AFTER_A_YEAR = timedelta(weeks=12)
LATE_NO_PLAN_BY_AT_MOST = timedelta(weeks=12)
EARLY_FINAL_PLAN_SHARE = 0.04
MEETING_REQUESTED_SHARE = 0.2
PREFERRED_SETTING_SHARE = 0.3
SPECIAL_SETTING_SHARE = 0.2
SECONDARY_NEED_SHARE = 0.4
# Roughly the national mix of primary needs in new plans.
NEED_WEIGHTS: Mapping[NeedType, float] = {
    "ASD": 0.31,
    "SLCN": 0.21,
    "SEMH": 0.17,
    "MLD": 0.08,
    "SPLD": 0.04,
    "SLD": 0.04,
    "PD": 0.03,
    "HI": 0.02,
    "VI": 0.01,
    "PMLD": 0.01,
    "MSI": 0.005,
    "OTH": 0.025,
}
# A review is arranged 10 to 14 weeks ahead and held in the 10 weeks before it is due
# (or, when late, up to 12 weeks after), never in August or over Christmas.
REVIEW_WINDOW_BEFORE_DUE = timedelta(weeks=10)
REVIEW_LATE_BY_AT_MOST = timedelta(weeks=12)
REVIEW_ARRANGED_WEEKS_AHEAD = (10, 14)
REFERRALS_LATE_SHARE = 0.15
PAPERS_LATE_SHARE = 0.15
REPORT_LATE_SHARE = 0.2
CHILD_VIEWS_GATHERED_SHARE = 0.9
REVIEW_DECISION_LATE_BY_AT_MOST = timedelta(weeks=10)
AMENDED_PLAN_LATE_SHARE = 0.4
APPEAL_PERIOD_MONTHS = 2
# Where the figures have no such row (reviews are published for the latest year only).
DEFAULT_NO_PLAN_SHARE = 0.06
DEFAULT_REVIEWS_HELD_SHARE = 0.95
DEFAULT_DECISIONS_IN_TIME_SHARE = 0.5
DEFAULT_REVIEW_OUTCOMES: Mapping[ReviewDecision, float] = {
    "amend": 0.85,
    "maintain": 0.14,
    "cease": 0.01,
}


@dataclass(frozen=True, slots=True)
class PlannedAdvice:
    """One request for professional advice: the day the body received it, and the
    day its advice reached the council (None if not by the end of the demo)."""

    body: AdviceBody
    requested_on: date
    received_on: date | None

    @property
    def due_on(self) -> date:
        return weeks_after(self.requested_on, ADVICE_WEEKS)

    @property
    def within_time(self) -> bool | None:
        if self.received_on is None:
            return None
        return self.received_on <= self.due_on


@dataclass(frozen=True, slots=True)
class PlannedPlan:
    """The final EHC plan as issued: the setting it names, its start, the needs."""

    issued_on: date
    setting_urn: int
    setting_type: SettingType
    start_date: date
    primary_need: NeedType
    secondary_need: NeedType | None


@dataclass(frozen=True, slots=True)
class PlannedReview:
    """A plan's first annual review, as far as it got by the end of the demo.

    It was arranged on ``arranged_on`` for ``meeting_on``; every later fact is None
    if it had not happened by the end of the simulated period.
    """

    due_on: date
    arranged_on: date
    meeting_on: date
    referrals_made_on: date | None
    papers_sent_on: date | None
    held_on: date | None
    invitee_roles: tuple[str, ...]
    attendee_roles: tuple[str, ...]
    child_views_gathered: bool
    report_received_on: date | None
    decision: ReviewDecision | None
    decision_notified_on: date | None
    amended_on: date | None
    ceased_on: date | None

    @property
    def papers_due_on(self) -> date:
        return self.meeting_on - timedelta(days=REVIEW_PAPERS_DAYS_BEFORE)

    @property
    def referrals_due_on(self) -> date:
        return self.meeting_on - timedelta(weeks=REFERRALS_WEEKS_BEFORE)

    @property
    def report_due_on(self) -> date | None:
        if self.held_on is None:
            return None
        return weeks_after(self.held_on, REVIEW_REPORT_WEEKS)

    @property
    def decision_due_on(self) -> date | None:
        if self.held_on is None:
            return None
        return weeks_after(self.held_on, REVIEW_DECISION_WEEKS)

    @property
    def amended_plan_due_on(self) -> date | None:
        """The earlier of notice + 8 weeks and meeting + 12 weeks (Reg 22(3))."""
        if self.decision != "amend" or self.decision_notified_on is None:
            return None
        assert self.held_on is not None  # a decision follows the meeting
        return min(
            weeks_after(self.decision_notified_on, AMENDED_PLAN_WEEKS),
            weeks_after(self.held_on, AMENDED_PLAN_WEEKS_AFTER_MEETING),
        )

    @property
    def held_in_time(self) -> bool | None:
        if self.held_on is None:
            return None
        return self.held_on <= self.due_on

    @property
    def decided_in_time(self) -> bool | None:
        due = self.decision_due_on
        if due is None or self.decision_notified_on is None:
            return None
        return self.decision_notified_on <= due


@dataclass(frozen=True, slots=True)
class PlannedAssessment:
    """What follows an agreement to assess, up to the end of the simulated period.

    Either ``no_plan_notified_on`` is set (the council decided not to issue a plan) or
    the case goes on to a draft and a final ``plan``; any step after the end of the
    period is None, as is everything after it. ``exception_reason`` is an exception
    to the 20-week limit (reg 13(3)), noted on ``exception_noted_on``.
    """

    agreed_on: date
    no_plan_due_on: date
    final_plan_due_on: date
    advice: tuple[PlannedAdvice, ...]
    no_plan_notified_on: date | None
    draft_served_on: date | None
    comments_received_on: date | None
    respondent: Respondent
    preferred_setting_urn: int | None
    meeting_requested: bool
    agreed_to_early_final_plan: bool
    plan: PlannedPlan | None
    exception_reason: ExceptionReason | None
    exception_noted_on: date | None
    review: PlannedReview | None

    @property
    def comment_window_ends_on(self) -> date | None:
        if self.draft_served_on is None:
            return None
        return self.draft_served_on + timedelta(days=COMMENT_WINDOW_DAYS - 1)

    @property
    def plan_within_20_weeks(self) -> bool | None:
        if self.plan is None:
            return None
        return self.plan.issued_on <= self.final_plan_due_on


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """One later command of a case: what, the date of the fact, and when recorded.

    ``advice_body`` names the request for advice an advice step belongs to.
    """

    kind: StepKind
    on: date
    at: datetime
    advice_body: AdviceBody | None = None

    @property
    def service(self) -> Literal["intake", "plans", "reviews"]:
        if self.kind == "final_plan_exception":
            return "intake"
        if self.kind.startswith("review") or self.kind in (
            "referrals_made",
            "papers_sent",
            "report_received",
        ):
            return "reviews"
        return "plans"


@dataclass(frozen=True, slots=True)
class PlannedCase:
    """One planned request: what arrives, when, for whom, and how it is decided.

    ``received_at`` is the exact UTC time the request arrived; the legal date is its
    London date (``received_on``). Exactly one of ``decision_notified_on`` (agreed or
    refused) and ``withdrawn_on`` is set. ``outcome_recorded_at`` is when the
    coordinator records that outcome, usually on the same working day.
    """

    sequence: int
    child_ref: str
    child_given_name: str
    child_family_name: str
    date_of_birth: date
    age_at_request: int
    curriculum_year: int
    school_urn: int
    requester: Requester
    channel: Channel
    received_at: datetime
    coordinator_id: str
    manager_id: str
    outcome: Outcome
    decision_due_on: date
    decision_notified_on: date | None
    withdrawn_on: date | None
    outcome_recorded_at: datetime
    exception_reason: ExceptionReason | None
    exception_noted_on: date | None
    exception_evidence: str | None
    assessment: PlannedAssessment | None = None

    @property
    def child_name(self) -> str:
        return f"{self.child_given_name} {self.child_family_name}"

    @property
    def received_on(self) -> date:
        return london_date(self.received_at)

    @property
    def decided(self) -> bool:
        return self.decision_notified_on is not None

    @property
    def within_time(self) -> bool | None:
        """Whether the decision was notified within 6 weeks (None if withdrawn)."""
        if self.decision_notified_on is None:
            return None
        return self.decision_notified_on <= self.decision_due_on

    @property
    def outstanding_at_year_end(self) -> bool:
        """Decided only after the 31 December of the year it was received in."""
        closed = self.decision_notified_on or self.withdrawn_on
        return closed is not None and closed.year > self.received_on.year

    @property
    def received_out_of_hours(self) -> bool:
        local = self.received_at.astimezone(LONDON)
        in_hours = OFFICE_HOURS[0] <= local.time() < OFFICE_HOURS[1]
        return not (in_hours and is_working_day(local.date()))

    @property
    def curriculum_year_label(self) -> str:
        return curriculum_year_label(self.curriculum_year)

    # The bodies of intake's HTTP commands for this case (POST /cases, then
    # /cases/{id}/coordinator, /time-limit-exceptions, /decision or /withdrawal).

    def receive_request_body(self) -> dict[str, Any]:
        return {
            "requester_type": self.requester,
            "child_reference": self.child_ref,
            "date_of_birth": self.date_of_birth.isoformat(),
            "school_urn": self.school_urn,
            "curriculum_year": self.curriculum_year,
            "channel": self.channel,
            "received_at": self.received_at.isoformat(),
            "child_name": self.child_name,
        }

    def assign_coordinator_body(self) -> dict[str, Any]:
        return {"coordinator_id": self.coordinator_id}

    def time_limit_exception_body(self) -> dict[str, Any] | None:
        if self.exception_reason is None:
            return None
        return {
            "clock": "decision",
            "reason": self.exception_reason,
            "evidence": self.exception_evidence,
        }

    def outcome_body(self) -> dict[str, Any]:
        """The decision body, or for a withdrawn request the withdrawal body."""
        if self.decision_notified_on is not None:
            return {
                "outcome": self.outcome,
                "notified_on": self.decision_notified_on.isoformat(),
            }
        # Without a decision the request was withdrawn, so withdrawn_on is set.
        withdrawn = self.withdrawn_on or self.received_on
        return {
            "withdrawn_on": withdrawn.isoformat(),
            "reason": "Synthetic demo: the family withdrew the request.",
        }

    # The later stages: the commands of an agreed assessment, in the order they
    # happen, and the JSON body of each for the plans, reviews or intake API.

    def steps(self) -> tuple[PlannedStep, ...]:
        """Every later command of the case, in order (none unless it was agreed)."""
        return _steps_of(self)

    def step_body(self, step: PlannedStep) -> dict[str, Any]:
        """The body of ``step``'s command (``DemoDataError`` if not this case's)."""
        return _step_body(self, step)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = _jsonable(asdict(self))
        data["received_on"] = self.received_on.isoformat()
        return data


def curriculum_year_label(year: int) -> str:
    """National curriculum year as schools say it: 0 is Reception, -1 N2, -2 N1."""
    if year <= -2:
        return "N1"
    if year == -1:
        return "N2"
    if year == 0:
        return "Reception"
    if year <= 13:
        return f"Year {year}"
    return "Post-19"


def curriculum_year_for(date_of_birth: date, on: date) -> int:
    """The curriculum year of a child on ``on``: age on the last 31 August, less 4.

    Clamped as the intake contract counts: -2 (N1) for every younger child, and 14
    for anyone past Year 13.
    """
    start_year = on.year if on.month >= 9 else on.year - 1
    year = age_on(date_of_birth, date(start_year, 8, 31)) - 4
    return max(CURRICULUM_YEAR_FIRST, min(year, CURRICULUM_YEAR_LAST))


def age_on(date_of_birth: date, on: date) -> int:
    return (
        on.year
        - date_of_birth.year
        - ((on.month, on.day) < (date_of_birth.month, date_of_birth.day))
    )


K = TypeVar("K", bound=Hashable)


def apportion(weights: Mapping[K, float], total: int) -> dict[K, int]:
    """Split ``total`` in proportion to ``weights``, each part within 1 of its share.

    Largest remainder: every key gets the whole part of its exact share, and the units
    left over go to the largest fractions (ties to the earlier key).
    """
    weight_sum = sum(weights.values())
    if total < 0 or weight_sum <= 0:
        raise DemoDataError(f"cannot apportion {total} over weights {dict(weights)}")
    exact = {key: total * weight / weight_sum for key, weight in weights.items()}
    parts = {key: int(share) for key, share in exact.items()}
    left = total - sum(parts.values())
    by_fraction = sorted(weights, key=lambda key: -(exact[key] - parts[key]))
    for key in by_fraction[:left]:
        parts[key] += 1
    return parts


# Calendar


class _WorkingDays:
    """The working days of some years (two by default), searchable by range."""

    def __init__(self, first_year: int, last_year: int | None = None) -> None:
        last = first_year + 1 if last_year is None else last_year
        start, end = date(first_year, 1, 1), date(last, 12, 31)
        every = (start + timedelta(days=n) for n in range((end - start).days + 1))
        self.days = [day for day in every if is_working_day(day)]

    def between(self, first: date, last: date) -> list[date]:
        """Working days from ``first`` to ``last``, both included."""
        low = bisect.bisect_left(self.days, first)
        high = bisect.bisect_right(self.days, last)
        return self.days[low:high]


def _due(received_on: date) -> date:
    return weeks_after(received_on, DECISION_WEEKS)


def _pick(rng: random.Random, days: Sequence[date], alpha: float, beta: float) -> date:
    """One of ``days``, skewed by a beta distribution (alpha > beta leans late)."""
    index = min(int(rng.betavariate(alpha, beta) * len(days)), len(days) - 1)
    return days[index]


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year - years, day=28)


def _local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=LONDON).astimezone(UTC)


def _random_time(rng: random.Random, start: time, end: time) -> time:
    first = start.hour * 3600 + start.minute * 60
    last = end.hour * 3600 + end.minute * 60
    second = rng.randrange(first, last)
    return time(second // 3600, second // 60 % 60, second % 60)


def _choose(rng: random.Random, weights: Mapping[K, float]) -> K:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[key] for key in keys])[0]


# Generation


@dataclass(slots=True)
class _Draft:
    received_at: datetime
    received_on: date
    channel: Channel
    outcome: Outcome = "agreed"
    ongoing: bool = False
    late: bool = False


def _arrivals(rng: random.Random, year: int, count: int) -> list[_Draft]:
    start = date(year, 1, 1)
    days = [
        start + timedelta(days=n) for n in range((date(year, 12, 31) - start).days + 1)
    ]
    weights = [
        MONTH_WEIGHT[day.month]
        * (1.0 if is_working_day(day) else NON_WORKING_DAY_WEIGHT)
        for day in days
    ]
    drafts = []
    for day in rng.choices(days, weights=weights, k=count):
        slot = _choose(rng, TIME_OF_DAY_WEIGHTS) if is_working_day(day) else "weekend"
        if slot == "office":
            channel = _choose(rng, CHANNEL_IN_OFFICE_HOURS)
            if channel == "letter":
                # Post is opened in the morning.
                at = _random_time(rng, time(9, 0), time(12, 30))
            else:
                at = _random_time(rng, *OFFICE_HOURS)
        else:
            channel = _choose(rng, CHANNEL_OUT_OF_HOURS)
            if slot == "evening":
                at = _random_time(rng, time(18, 0), time(23, 0))
            elif slot == "night" and rng.random() < 0.5:
                at = _random_time(rng, time(23, 0), time(23, 59))
            elif slot == "night":
                at = _random_time(rng, time(0, 0), time(7, 59))
            else:
                at = _random_time(rng, time(7, 0), time(23, 0))
        received_at = _local(day, at)
        drafts.append(_Draft(received_at, london_date(received_at), channel))
    drafts.sort(key=lambda draft: draft.received_at)
    return drafts


def _weighted_sample(
    rng: random.Random, items: Sequence[int], weights: Sequence[float], count: int
) -> list[int]:
    # Efraimidis-Spirakis: the largest keys u ** (1 / w) are a weighted sample without
    # replacement.
    keyed = sorted(
        (
            (rng.random() ** (1.0 / weight), item)
            for item, weight in zip(items, weights, strict=True)
        ),
        reverse=True,
    )
    return sorted(item for _, item in keyed[:count])


def _age_pool(by_age: Mapping[str, int], count: int, rng: random.Random) -> list[int]:
    """``count`` ages at the request, apportioned to the published age breakdown."""
    if not by_age:
        raise DemoDataError("the figures have no age breakdown of requests to follow")
    labels = apportion(by_age, count)
    ages: list[int] = []
    for label, number in labels.items():
        for _ in range(number):
            ages.append(_age_from_label(label, rng))
    rng.shuffle(ages)
    return ages


def _age_from_label(label: str, rng: random.Random) -> int:
    words = label.lower().split()
    numbers = [int(word) for word in words if word.isdigit()]
    if not numbers:
        raise DemoDataError(f"cannot read an age from the breakdown {label!r}")
    age = numbers[0]
    if "under" in words:
        # Most requests "aged 2 and under" are for two-year-olds.
        return rng.choices(
            range(age + 1), weights=[(k + 1) ** 2 for k in range(age + 1)]
        )[0]
    if "over" in words:
        return age + min(int(rng.expovariate(0.6)), 4)
    return age


def _exception_reason(rng: random.Random, received_on: date) -> ExceptionReason:
    # Advice asked of a school from a week before the summer closure to a week before
    # it reopens falls under (a); the dates are a typical English summer holiday.
    summer = (
        date(received_on.year, 6, 20) <= received_on <= date(received_on.year, 8, 27)
    )
    if summer:
        return "a"
    return _choose(rng, EXCEPTION_REASON_OTHERWISE)


def _school_for(
    rng: random.Random, curriculum_year: int, schools: Sequence[School]
) -> School:
    phase: Phase
    if curriculum_year <= -1:
        phase = "early_years"
    elif curriculum_year <= 6:
        phase = "primary"
    elif curriculum_year <= 11:
        phase = "secondary"
    else:
        phase = "college"
    if rng.random() < SPECIAL_SCHOOL_SHARE:
        phase = "special"
    pool = [school for school in schools if school.phase == phase] or list(schools)
    return rng.choice(pool)


def generate_caseload(
    figures: LaFigures,
    year: int = 2024,
    scale: float = 1.0,
    seed: int = DEFAULT_SEED,
    *,
    staff: Sequence[StaffMember] = DEMO_STAFF,
    schools: Sequence[School] = DEMO_SCHOOLS,
    until: date | None = None,
) -> list[PlannedCase]:
    """Plan a synthetic year of requests in the shape of ``figures``, in arrival order.

    ``scale`` shrinks (or grows) the year: 0.05 plans about 90 of Buckinghamshire's
    1,782 requests. Each agreed assessment is then carried on, as far as it gets by
    ``until`` (``default_period_end(year)`` when not given), to its plan and first
    annual review. The same arguments always give the same cases.
    """
    if scale <= 0:
        raise DemoDataError(f"scale must be above 0, not {scale}")
    period_end = default_period_end(year) if until is None else until
    coordinators = [member for member in staff if member.role == "coordinator"]
    if not coordinators or not schools:
        raise DemoDataError("the demo needs at least one coordinator and one school")
    requests = figures.requests
    count = max(1, round(requests.received * scale))
    rng = random.Random(seed)
    calendar = _WorkingDays(year)
    year_end = date(year, 12, 31)
    next_year = date(year + 1, 1, 1)

    # 1. When the requests arrive.
    drafts = _arrivals(rng, year, count)

    # 2. How many of each outcome and timing, apportioned to the published counts.
    outcomes = apportion(
        {
            "agreed": requests.decided_to_assess,
            "refused": requests.decided_not_to_assess,
            "ongoing": requests.decision_not_made,
            "withdrawn": requests.withdrawn,
        },
        count,
    )
    later_outcomes = apportion(
        {
            "agreed": requests.decided_to_assess,
            "refused": requests.decided_not_to_assess,
        },
        outcomes["ongoing"],
    )
    timing = apportion(
        {
            "within": requests.decided_within_6_weeks,
            "late": requests.decided_after_6_weeks,
        },
        count - outcomes["withdrawn"],
    )

    # 3. Withdrawn requests: early enough in the year to be withdrawn within it.
    early = [
        i
        for i, d in enumerate(drafts)
        if d.received_on <= year_end - timedelta(days=31)
    ]
    for i in rng.sample(early, min(outcomes["withdrawn"], len(early))):
        drafts[i].outcome = "withdrawn"
    decided = [i for i, d in enumerate(drafts) if d.outcome != "withdrawn"]

    # 4. Requests still undecided on 31 December: the ones that cannot be decided in
    # the year, then more of the late arrivals, likelier the later they came.
    forced = [
        i
        for i in decided
        if not calendar.between(drafts[i].received_on + timedelta(days=1), year_end)
        and not is_working_day(drafts[i].received_on)
    ]
    window = [
        i
        for i in decided
        if i not in forced and calendar.between(next_year, _due(drafts[i].received_on))
    ]
    window_start = min((drafts[i].received_on for i in window), default=year_end)
    extra = max(0, outcomes["ongoing"] - len(forced))
    ongoing = forced + _weighted_sample(
        rng,
        window,
        [float((drafts[i].received_on - window_start).days + 1) for i in window],
        extra,
    )
    for i in ongoing:
        drafts[i].ongoing = True

    # 5. Agreed or refused.
    in_year = [i for i in decided if not drafts[i].ongoing]
    for i in rng.sample(in_year, min(outcomes["refused"], len(in_year))):
        drafts[i].outcome = "refused"
    for i in rng.sample(sorted(ongoing), min(later_outcomes["refused"], len(ongoing))):
        drafts[i].outcome = "refused"

    # 6. Late decisions: only where a late decision fits in its year.
    can_be_late = [
        i
        for i in decided
        if drafts[i].ongoing
        or calendar.between(_due(drafts[i].received_on) + timedelta(days=1), year_end)
    ]
    for i in rng.sample(can_be_late, min(timing["late"], len(can_be_late))):
        drafts[i].late = True
    late = [i for i in decided if drafts[i].late]
    exceptions = set(
        rng.sample(
            late, min(len(late), max(1, round(len(late) * EXCEPTION_SHARE_OF_LATE)))
        )
        if late
        else []
    )

    # 7. The rest of each case, in arrival order.
    ages = _age_pool(requests.by_age, count, rng)
    refs = rng.sample(range(10_000_000, 100_000_000), count)
    school_coordinator = {
        school.urn: coordinators[n % len(coordinators)]
        for n, school in enumerate(schools)
    }
    cases = []
    for i, draft in enumerate(drafts):
        cases.append(
            _complete(
                rng,
                calendar,
                i,
                draft,
                ages[i],
                refs[i],
                i in exceptions,
                schools,
                school_coordinator,
                year_end,
                next_year,
            )
        )

    # 8. The later stages, drawn from a generator of their own, so the requests and
    # decisions are the same whatever follows them.
    earliest = first_stage_ends_on(cases)
    if period_end < earliest:
        raise DemoDataError(
            f"the demo period must run at least until {earliest.isoformat()}, when "
            f"the last decision is recorded, not end on {period_end.isoformat()}"
        )
    later = random.Random(f"{seed}:later-stages")
    last_year = period_end.year + 2
    return _plan_later_stages(
        later, figures, cases, _WorkingDays(year, last_year), period_end, schools
    )


def _complete(
    rng: random.Random,
    calendar: _WorkingDays,
    index: int,
    draft: _Draft,
    age: int,
    ref: int,
    has_exception: bool,
    schools: Sequence[School],
    school_coordinator: Mapping[int, StaffMember],
    year_end: date,
    next_year: date,
) -> PlannedCase:
    received_on = draft.received_on
    due = _due(received_on)

    # The child: age at the request, then a date of birth that gives it.
    earliest = _years_before(received_on, age + 1) + timedelta(days=1)
    latest = _years_before(received_on, age)
    born = earliest + timedelta(days=rng.randrange((latest - earliest).days + 1))
    curriculum_year = curriculum_year_for(born, received_on)
    school = _school_for(rng, curriculum_year, schools)
    coordinator = school_coordinator[school.urn]
    requester = _choose(rng, REQUESTER_16_AND_OVER if age >= 16 else REQUESTER_UNDER_16)

    # The outcome and its day.
    notified: date | None = None
    withdrawn: date | None = None
    if draft.outcome == "withdrawn":
        days = calendar.between(
            received_on + timedelta(days=3),
            min(received_on + timedelta(days=35), year_end),
        ) or calendar.between(received_on + timedelta(days=1), year_end)
        withdrawn = _pick(rng, days, 1.5, 2.0) if days else received_on
        closed = withdrawn
    else:
        if draft.late:
            first = max(due + timedelta(days=1), next_year if draft.ongoing else due)
            last = (
                first + LATE_BY_AT_MOST
                if draft.ongoing
                else min(due + LATE_BY_AT_MOST, year_end)
            )
            days = calendar.between(first, last)
            notified = _pick(rng, days, 1.1, 2.8)
        else:
            first = max(
                received_on + timedelta(days=1),
                next_year if draft.ongoing else received_on,
            )
            last = due if draft.ongoing else min(due, year_end)
            days = calendar.between(first, last) or [received_on]
            notified = _pick(rng, days, 2.6, 1.5)
        closed = notified

    recorded_on = closed
    if notified is not None and rng.random() < LATE_RECORDING_SHARE:
        lag = calendar.between(closed + timedelta(days=1), closed + timedelta(days=9))
        recorded_on = lag[rng.randrange(min(5, len(lag)))]
    recorded_at = _local(recorded_on, _random_time(rng, time(10, 0), time(17, 30)))
    recorded_at = max(recorded_at, draft.received_at + timedelta(minutes=5))

    reason: ExceptionReason | None = None
    noted: date | None = None
    if has_exception and notified is not None:
        reason = _exception_reason(rng, received_on)
        days = calendar.between(
            received_on + timedelta(days=7), due - timedelta(days=1)
        )
        noted = rng.choice(days) if days else received_on

    return PlannedCase(
        sequence=index + 1,
        child_ref=f"C-{ref:08d}",
        child_given_name=rng.choice(CHILD_GIVEN_NAMES),
        child_family_name=CHILD_FAMILY_NAME,
        date_of_birth=born,
        age_at_request=age,
        curriculum_year=curriculum_year,
        school_urn=school.urn,
        requester=requester,
        channel=draft.channel,
        received_at=draft.received_at,
        coordinator_id=coordinator.staff_id,
        manager_id=coordinator.manager_id or coordinator.staff_id,
        outcome=draft.outcome,
        decision_due_on=due,
        decision_notified_on=notified,
        withdrawn_on=withdrawn,
        outcome_recorded_at=recorded_at,
        exception_reason=reason,
        exception_noted_on=noted,
        exception_evidence=None if reason is None else EXCEPTION_EVIDENCE[reason],
    )


# Generation of the later stages


def default_period_end(year: int) -> date:
    """The last simulated day for ``year``'s requests: 31 July of the next year.

    That is the end of the summer term after, when the plans issued early in the
    demo have had their first annual review and its decision.
    """
    return date(year + 1, 7, 31)


def first_stage_ends_on(cases: Iterable[PlannedCase]) -> date:
    """The last day a decision or withdrawal is recorded: the earliest period end."""
    return max(london_date(case.outcome_recorded_at) for case in cases)


@dataclass(slots=True)
class _Assessing:
    """One agreed case while its later stages are planned."""

    case: PlannedCase
    start: date
    no_plan_due: date
    final_due: date
    no_plan: bool = False
    in_time: bool = False
    within_on: date | None = None
    late_on: date | None = None
    exception: bool = False

    @property
    def plan_on(self) -> date:
        """The day the plan (or the notice that none will be issued) comes."""
        chosen = self.within_on if self.in_time else self.late_on
        assert chosen is not None  # every case has a late day, in-time ones both
        return chosen


@dataclass(slots=True)
class _Reviewing:
    """One plan's first review while it is planned."""

    due: date
    meeting: date
    arranged: date
    decided_in_time: bool = False
    within_on: date | None = None
    late_on: date | None = None
    decision: ReviewDecision = "maintain"

    @property
    def decision_on(self) -> date:
        chosen = self.within_on if self.decided_in_time else self.late_on
        assert chosen is not None
        return chosen


@dataclass(frozen=True, slots=True)
class _LaterShares:
    """The published shares the later stages follow (assumptions where none)."""

    no_plan: float
    no_plan_in_time: float
    plan_in_time: float
    exception: float
    exception_in_time: float
    late_after_a_year: float
    reviews_held: float
    decisions_in_time: float
    outcomes: Mapping[ReviewDecision, float]

    @classmethod
    def of(cls, figures: LaFigures) -> _LaterShares:
        t = figures.timeliness
        exceptions = t.plans_issued - t.plans_issued_excl_exceptions
        within_with_exception = t.within_20_weeks - t.within_20_weeks_excl_exceptions
        a = figures.assessments
        r = figures.reviews
        return cls(
            no_plan=a.no_plan_share if a is not None else DEFAULT_NO_PLAN_SHARE,
            no_plan_in_time=a.no_plan_within_16_weeks_share if a is not None else 0.0,
            plan_in_time=t.within_20_weeks / t.plans_issued if t.plans_issued else 0.0,
            exception=exceptions / t.plans_issued if t.plans_issued else 0.0,
            exception_in_time=within_with_exception / exceptions if exceptions else 0,
            late_after_a_year=t.after_1_year_share_of_late,
            reviews_held=(
                r.meetings_held / r.reviews_expected
                if r is not None and r.reviews_expected
                else DEFAULT_REVIEWS_HELD_SHARE
            ),
            decisions_in_time=(
                r.within_4_weeks_share
                if r is not None
                else DEFAULT_DECISIONS_IN_TIME_SHARE
            ),
            outcomes=(
                {
                    "amend": r.outcome_amend,
                    "maintain": r.outcome_maintain,
                    "cease": r.outcome_cease,
                }
                if r is not None
                else DEFAULT_REVIEW_OUTCOMES
            ),
        )


def _balanced(
    rng: random.Random,
    items: Sequence[int],
    within_on: Mapping[int, date | None],
    late_on: Mapping[int, date],
    share: float,
    until: date,
) -> set[int]:
    """Which of ``items`` are done in time, so that ``share`` of those done by
    ``until`` were in time (the whole number of them nearest to it that shows as the
    same percentage to one decimal place, where one does).

    Each item is done on ``within_on`` (if it can be in time at all) or ``late_on``.
    A first draw takes the share of all items; then single items move between in
    time and late until the count of the ones done in the period that were in time is
    the share of them, rounded (or as near as moving one item at a time gets).
    """
    feasible = [i for i in items if within_on[i] is not None]
    wanted = min(len(feasible), round(share * len(items)))
    chosen = set(rng.sample(feasible, wanted))

    def in_period(i: int) -> bool:
        day = within_on[i] if i in chosen else late_on[i]
        return day is not None and day <= until

    best, best_gap = set(chosen), float("inf")
    for _ in range(2 * len(items) + 1):
        done = [i for i in items if in_period(i)]
        in_time = sum(i in chosen for i in done)
        gap = in_time - _count_showing(share, len(done))
        if abs(gap) < best_gap:
            best, best_gap = set(chosen), abs(gap)
        if gap == 0:
            break
        if gap > 0:
            movable = sorted(i for i in done if i in chosen)
            chosen.discard(rng.choice(movable))
            continue
        candidates = [i for i in feasible if i not in chosen]
        movable = [i for i in candidates if (within_on[i] or until) <= until]
        if not movable:
            break
        chosen.add(rng.choice(movable))
    return best


def _count_showing(share: float, total: int) -> int:
    """The count of ``total`` nearest ``share`` of it that shows as ``share`` does.

    A published 32.1% of 1,293 plans is 415 of them (32.10%), not the nearer 414
    (32.02%), so the demo's figure reads as the published one.
    """
    exact = share * total
    nearest = sorted(
        {math.floor(exact), math.ceil(exact)}, key=lambda k: (abs(k - exact), k)
    )
    for count in nearest:
        if total and round(100 * count / total, 1) == round(100 * share, 1):
            return count
    return round(exact)


def _plan_later_stages(
    rng: random.Random,
    figures: LaFigures,
    cases: list[PlannedCase],
    calendar: _WorkingDays,
    until: date,
    schools: Sequence[School],
) -> list[PlannedCase]:
    shares = _LaterShares.of(figures)
    agreed: list[_Assessing] = []
    for case in cases:
        if case.outcome != "agreed" or case.decision_notified_on is None:
            continue
        recorded = london_date(case.outcome_recorded_at)
        agreed.append(
            _Assessing(
                case=case,
                start=_next_working_day(max(case.decision_notified_on, recorded)),
                no_plan_due=weeks_after(case.received_on, NO_PLAN_WEEKS),
                final_due=weeks_after(case.received_on, FINAL_PLAN_WEEKS),
            )
        )
    if not agreed:
        return cases

    # 1. The assessments ending in a notice that no plan will be issued: the
    # published share, and at least one where any were published, so the demo
    # shows that path too.
    wanted = apportion(
        {"plan": 1.0 - shares.no_plan, "no_plan": shares.no_plan}, len(agreed)
    )["no_plan"]
    if shares.no_plan > 0:
        wanted = max(1, wanted)
    room = [a for a in agreed if a.start + SHORTEST_ASSESSMENT <= until]
    for a in rng.sample(room, min(wanted, len(room))):
        a.no_plan = True
    notices = [a for a in agreed if a.no_plan]
    in_time = apportion(
        {"in": shares.no_plan_in_time, "late": 1.0 - shares.no_plan_in_time},
        len(notices),
    )["in"]
    timely = set(map(id, rng.sample(notices, in_time)))
    for a in notices:
        earliest = a.start + SHORTEST_ASSESSMENT - timedelta(weeks=2)
        days = calendar.between(earliest, a.no_plan_due)
        a.within_on = _pick(rng, days, 2.0, 1.3) if days else None
        late = calendar.between(
            max(earliest, a.no_plan_due + timedelta(days=1)),
            a.no_plan_due + LATE_NO_PLAN_BY_AT_MOST,
        )
        a.late_on = _pick(rng, late, 1.2, 2.4)
        a.in_time = id(a) in timely and a.within_on is not None

    # 2. Each plan's day if it is issued in time, and if it is late: in the six weeks
    # before its 20 weeks run out, or up to a year after the request (more than a
    # year for the published share of late plans).
    issuing = [a for a in agreed if not a.no_plan]
    for a in issuing:
        earliest = a.start + SHORTEST_ASSESSMENT
        if earliest <= a.final_due:
            days = calendar.between(
                max(earliest, a.final_due - timedelta(weeks=6)), a.final_due
            )
            a.within_on = _pick(rng, days, 2.2, 1.2) if days else None
        year_on = _years_after(a.case.received_on, 1)
        if rng.random() < shares.late_after_a_year:
            first, last = year_on + timedelta(days=1), year_on + LATE_PLAN_AFTER_A_YEAR
        else:
            first, last = a.final_due + timedelta(days=1), year_on
        late = calendar.between(max(first, earliest), max(last, earliest))
        a.late_on = _pick(rng, late, 1.2, 2.6) if late else max(first, earliest)

    # 3. Which plans are in time: the published share of those issued by the end.
    numbered = dict(enumerate(issuing))
    timely_plans = _balanced(
        rng,
        list(numbered),
        {n: a.within_on for n, a in numbered.items()},
        {n: a.late_on or until for n, a in numbered.items()},
        shares.plan_in_time,
        until,
    )
    for n, a in numbered.items():
        a.in_time = n in timely_plans

    # 4. Exceptions to the 20-week limit, in the published share of plans issued.
    issued = [a for a in issuing if a.plan_on <= until]
    excepted = apportion(
        {"yes": shares.exception, "no": 1.0 - shares.exception}, len(issued)
    )["yes"]
    timely_excepted = round(excepted * shares.exception_in_time)
    for pool, count in (
        ([a for a in issued if a.in_time], timely_excepted),
        ([a for a in issued if not a.in_time], excepted - timely_excepted),
    ):
        for a in rng.sample(pool, min(count, len(pool))):
            a.exception = True

    # 5. The first annual reviews of the plans issued in the period.
    reviewing = _plan_reviews(rng, shares, issued, calendar, until)

    planned: dict[int, PlannedAssessment] = {}
    for a in agreed:
        planned[a.case.sequence] = _assessment(
            rng, a, reviewing.get(id(a)), calendar, until, schools
        )
    return [replace(case, assessment=planned.get(case.sequence)) for case in cases]


def _plan_reviews(
    rng: random.Random,
    shares: _LaterShares,
    issued: Sequence[_Assessing],
    calendar: _WorkingDays,
    until: date,
) -> dict[int, _Reviewing]:
    """The first review of each plan in ``issued``, keyed by ``id()`` of its case."""
    reviews: dict[int, _Reviewing] = {}
    due_by_end = [a for a in issued if _review_due(a.plan_on) <= until]
    held = apportion(
        {"held": shares.reviews_held, "not": 1.0 - shares.reviews_held},
        len(due_by_end),
    )["held"]
    late_meetings = {id(a) for a in due_by_end} - {
        id(a) for a in rng.sample(due_by_end, held)
    }
    for a in issued:
        due = _review_due(a.plan_on)
        if id(a) in late_meetings:
            days = _meeting_days(
                calendar, due + timedelta(days=1), due + REVIEW_LATE_BY_AT_MOST
            )
            meeting = _pick(rng, days, 1.1, 2.5)
        else:
            days = _meeting_days(calendar, due - REVIEW_WINDOW_BEFORE_DUE, due)
            meeting = _pick(rng, days, 1.6, 1.2)
        weeks = rng.randint(*REVIEW_ARRANGED_WEEKS_AHEAD)
        arranged = _previous_working_day(meeting - timedelta(weeks=weeks))
        arranged = max(arranged, _next_working_day(a.plan_on))
        reviews[id(a)] = _Reviewing(due=due, meeting=meeting, arranged=arranged)

    # The decisions after the meetings held: in time in the published share of those
    # made by the end, and each maintains, amends or ceases in the published mix.
    held_ones = {n: r for n, r in enumerate(reviews.values()) if r.meeting <= until}
    for r in held_ones.values():
        within = calendar.between(
            r.meeting + timedelta(days=5),
            weeks_after(r.meeting, REVIEW_DECISION_WEEKS),
        )
        r.within_on = _pick(rng, within, 1.8, 1.4) if within else None
        late_from = weeks_after(r.meeting, REVIEW_DECISION_WEEKS) + timedelta(days=1)
        late = calendar.between(late_from, late_from + REVIEW_DECISION_LATE_BY_AT_MOST)
        r.late_on = _pick(rng, late, 1.2, 2.4) if late else late_from
    timely = _balanced(
        rng,
        list(held_ones),
        {n: r.within_on for n, r in held_ones.items()},
        {n: r.late_on or until for n, r in held_ones.items()},
        shares.decisions_in_time,
        until,
    )
    decided: list[_Reviewing] = []
    for n, r in held_ones.items():
        r.decided_in_time = n in timely
        if r.decision_on <= until:
            decided.append(r)
    outcomes = apportion(dict(shares.outcomes), len(decided))
    pool = list(decided)
    rng.shuffle(pool)
    cursor = 0
    for decision in ("amend", "cease", "maintain"):
        for r in pool[cursor : cursor + outcomes.get(decision, 0)]:
            r.decision = decision
        cursor += outcomes.get(decision, 0)
    return reviews


def _review_due(issued_on: date) -> date:
    return last_of_months_starting_with(issued_on, 12)


def _meeting_days(calendar: _WorkingDays, first: date, last: date) -> list[date]:
    """Working days from ``first`` to ``last`` in term time (not August or the
    Christmas fortnight), or every working day there if that leaves none."""
    days = calendar.between(first, last)
    in_term = [
        day
        for day in days
        if day.month != 8
        and not (day.month == 12 and day.day >= 21)
        and not (day.month == 1 and day.day <= 3)
    ]
    return in_term or days or [first]


def _assessment(
    rng: random.Random,
    a: _Assessing,
    reviewing: _Reviewing | None,
    calendar: _WorkingDays,
    until: date,
    schools: Sequence[School],
) -> PlannedAssessment:
    case = a.case
    assert case.decision_notified_on is not None  # only agreed cases come here

    # The draft, the comments and the final plan (or the notice), back from its day.
    closing_on = a.plan_on
    early = not a.no_plan and rng.random() < EARLY_FINAL_PLAN_SHARE
    if a.no_plan:
        draft = None
        comments = None
    elif early:
        draft = _previous_working_day(closing_on - timedelta(days=rng.randint(5, 12)))
        comments_days = calendar.between(draft + timedelta(days=1), closing_on)
        comments = _pick(rng, comments_days, 1.5, 1.5) if comments_days else closing_on
    else:
        gap = COMMENT_WINDOW_DAYS + rng.randint(0, 13)
        draft = _previous_working_day(closing_on - timedelta(days=gap))
        window_end = draft + timedelta(days=COMMENT_WINDOW_DAYS - 1)
        comments_days = calendar.between(
            draft + timedelta(days=3), min(window_end, closing_on - timedelta(days=1))
        )
        comments = _pick(rng, comments_days, 1.6, 1.4) if comments_days else None
    advice_until = _previous_working_day((draft or closing_on) - timedelta(days=1))

    # The advice: asked for in the first week, received by the day before the draft
    # (or the notice), late in the assumed share where the draft leaves room for it.
    bodies = list(ADVICE_ALWAYS)
    if rng.random() < SOCIAL_CARE_ADVICE_SHARE:
        bodies.append("social_care")
    advice: list[PlannedAdvice] = []
    for body in bodies:
        asked = _pick(rng, calendar.between(a.start, a.start + timedelta(days=7)), 1, 2)
        due = weeks_after(asked, ADVICE_WEEKS)
        late_days = calendar.between(
            due + timedelta(days=1), min(advice_until, due + timedelta(weeks=10))
        )
        if late_days and rng.random() < ADVICE_LATE_SHARE[body]:
            received = _pick(rng, late_days, 1.2, 2.2)
        else:
            days = calendar.between(
                asked + timedelta(days=10), min(due, advice_until)
            ) or calendar.between(asked + timedelta(days=1), advice_until)
            received = _pick(rng, days, 2.0, 1.4) if days else advice_until
        if asked <= until:
            advice.append(
                PlannedAdvice(body, asked, received if received <= until else None)
            )

    # The plan itself.
    plan: PlannedPlan | None = None
    if not a.no_plan and closing_on <= until:
        urn, setting_type = _plan_setting(rng, case, schools)
        primary = _choose(rng, NEED_WEIGHTS)
        secondary: NeedType | None = None
        if rng.random() < SECONDARY_NEED_SHARE:
            others: dict[NeedType, float] = {
                k: w for k, w in NEED_WEIGHTS.items() if k != primary
            }
            other: NeedType = _choose(rng, others)
            secondary = other
        plan = PlannedPlan(
            issued_on=closing_on,
            setting_urn=urn,
            setting_type=setting_type,
            start_date=closing_on + timedelta(days=rng.randint(7, 28)),
            primary_need=primary,
            secondary_need=secondary,
        )
    respondent: Respondent = (
        "young_person" if case.age_at_request >= 16 and rng.random() < 0.5 else "parent"
    )
    preferred = (
        plan.setting_urn
        if plan is not None and rng.random() < PREFERRED_SETTING_SHARE
        else None
    )

    exception_reason: ExceptionReason | None = None
    noted: date | None = None
    if a.exception:
        exception_reason = _exception_reason(rng, case.received_on)
        days = calendar.between(a.start, a.final_due - timedelta(days=1))
        noted = rng.choice(days) if days else a.start

    def by_end(day: date | None) -> date | None:
        return day if day is not None and day <= until else None

    review = None
    if plan is not None and reviewing is not None:
        review = _review(rng, case, reviewing, calendar, until, bodies)
    return PlannedAssessment(
        agreed_on=case.decision_notified_on,
        no_plan_due_on=a.no_plan_due,
        final_plan_due_on=a.final_due,
        advice=tuple(advice),
        no_plan_notified_on=by_end(closing_on) if a.no_plan else None,
        draft_served_on=by_end(draft),
        comments_received_on=by_end(comments) if by_end(draft) else None,
        respondent=respondent,
        preferred_setting_urn=preferred,
        meeting_requested=rng.random() < MEETING_REQUESTED_SHARE,
        agreed_to_early_final_plan=early,
        plan=plan,
        exception_reason=exception_reason,
        exception_noted_on=by_end(noted),
        review=review,
    )


def _plan_setting(
    rng: random.Random, case: PlannedCase, schools: Sequence[School]
) -> tuple[int, SettingType]:
    """The setting the plan names: the child's school, or for some a special one."""
    school = next((s for s in schools if s.urn == case.school_urn), schools[0])
    specials = [s for s in schools if s.phase == "special"]
    if school.phase != "special" and specials and rng.random() < SPECIAL_SETTING_SHARE:
        school = rng.choice(specials)
    kinds: Mapping[Phase, tuple[SettingType, ...]] = {
        "early_years": ("early_years",),
        "primary": ("mainstream_maintained", "mainstream_academy"),
        "secondary": ("mainstream_maintained", "mainstream_academy"),
        "special": ("special_maintained", "special_academy"),
        "college": ("further_education",),
    }
    return school.urn, rng.choice(kinds[school.phase])


def _review(
    rng: random.Random,
    case: PlannedCase,
    r: _Reviewing,
    calendar: _WorkingDays,
    until: date,
    advice_bodies: Sequence[AdviceBody],
) -> PlannedReview | None:
    if r.arranged > until:
        return None
    meeting = r.meeting
    family = "young_person" if case.age_at_request >= 16 else "parent"
    invitees = [family, "senco", "ehc_coordinator", "educational_psychologist"]
    if "social_care" in advice_bodies:
        invitees.append("social_care")
    attendees = [family, "senco", "ehc_coordinator"]
    if rng.random() < 0.5:
        attendees.append("educational_psychologist")

    # Referrals by 8 weeks before the meeting (a local target), papers by 2 weeks
    # before (the law), the report by 2 weeks after: each late in an assumed share.
    referrals_due = meeting - timedelta(weeks=REFERRALS_WEEKS_BEFORE)
    in_time = calendar.between(r.arranged + timedelta(days=1), referrals_due)
    late = calendar.between(
        referrals_due + timedelta(days=1), meeting - timedelta(days=1)
    )
    if late and (not in_time or rng.random() < REFERRALS_LATE_SHARE):
        referrals = _pick(rng, late, 1.2, 2.5)
    else:
        referrals = _pick(rng, in_time, 1.5, 1.5) if in_time else meeting
    papers_due = meeting - timedelta(days=REVIEW_PAPERS_DAYS_BEFORE)
    first = max(r.arranged + timedelta(days=1), meeting - timedelta(days=21))
    in_time = calendar.between(first, papers_due)
    late = calendar.between(papers_due + timedelta(days=1), meeting - timedelta(days=2))
    if late and (not in_time or rng.random() < PAPERS_LATE_SHARE):
        papers = _pick(rng, late, 1.2, 2.0)
    else:
        papers = _pick(rng, in_time, 1.4, 1.4) if in_time else papers_due
    report_due = weeks_after(meeting, REVIEW_REPORT_WEEKS)
    if rng.random() < REPORT_LATE_SHARE:
        days = calendar.between(
            report_due + timedelta(days=1), report_due + timedelta(days=21)
        )
    else:
        days = calendar.between(meeting + timedelta(days=2), report_due)
    report = _pick(rng, days, 1.4, 1.6) if days else report_due
    child_views = rng.random() < CHILD_VIEWS_GATHERED_SHARE

    # What the decision leads to: an amended plan, or the plan ceasing once the
    # appeal period is over.
    held = meeting if meeting <= until else None
    notified = r.decision_on if held is not None else None
    if notified is not None and notified > until:
        notified = None
    amended: date | None = None
    ceased: date | None = None
    if notified is not None and r.decision == "amend":
        due = min(
            weeks_after(notified, AMENDED_PLAN_WEEKS),
            weeks_after(meeting, AMENDED_PLAN_WEEKS_AFTER_MEETING),
        )
        if rng.random() < AMENDED_PLAN_LATE_SHARE:
            days = calendar.between(due + timedelta(days=1), due + timedelta(weeks=8))
        else:
            days = calendar.between(notified + timedelta(weeks=2), due)
        amended = _pick(rng, days, 1.5, 1.5) if days else _next_working_day(notified)
    elif notified is not None and r.decision == "cease":
        after_appeal = months_after(notified, APPEAL_PERIOD_MONTHS)
        days = calendar.between(after_appeal, after_appeal + timedelta(days=14))
        ceased = days[0] if days else after_appeal

    def by_end(day: date | None) -> date | None:
        return day if day is not None and day <= until else None

    return PlannedReview(
        due_on=r.due,
        arranged_on=r.arranged,
        meeting_on=meeting,
        referrals_made_on=by_end(referrals),
        papers_sent_on=by_end(papers),
        held_on=held,
        invitee_roles=tuple(invitees),
        attendee_roles=tuple(attendees),
        child_views_gathered=child_views,
        report_received_on=by_end(report) if held is not None else None,
        decision=r.decision if notified is not None else None,
        decision_notified_on=notified,
        amended_on=by_end(amended),
        ceased_on=by_end(ceased),
    )


def _next_working_day(day: date) -> date:
    following = day + timedelta(days=1)
    while not is_working_day(following):
        following += timedelta(days=1)
    return following


def _previous_working_day(day: date) -> date:
    while not is_working_day(day):
        day -= timedelta(days=1)
    return day


def _years_after(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year + years, day=28)


# The later stages: steps and bodies


_STEP_ORDER = {kind: number for number, kind in enumerate(STEP_KINDS)}
_FIRST_STEP_MINUTES = 9 * 60
_STEP_SPREAD_MINUTES = 6 * 60
_STEP_GAP_MINUTES = 5


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def _facts_of(case: PlannedCase) -> list[tuple[date, StepKind, AdviceBody | None]]:
    assessment = case.assessment
    if assessment is None:
        return []
    facts: list[tuple[date, StepKind, AdviceBody | None]] = []
    for advice in assessment.advice:
        facts.append((advice.requested_on, "advice_requested", advice.body))
        if advice.received_on is not None:
            facts.append((advice.received_on, "advice_received", advice.body))
    dated: list[tuple[date | None, StepKind]] = [
        (assessment.exception_noted_on, "final_plan_exception"),
        (assessment.no_plan_notified_on, "no_plan_notice"),
        (assessment.draft_served_on, "draft_plan"),
        (assessment.comments_received_on, "draft_comments"),
        (assessment.plan.issued_on if assessment.plan else None, "final_plan"),
    ]
    review = assessment.review
    if review is not None:
        dated += [
            (review.arranged_on, "review_arranged"),
            (review.referrals_made_on, "referrals_made"),
            (review.papers_sent_on, "papers_sent"),
            (review.held_on, "review_held"),
            (review.report_received_on, "report_received"),
            (review.decision_notified_on, "review_decided"),
            (review.amended_on, "plan_amended"),
            (review.ceased_on, "plan_ceased"),
        ]
    facts += [(on, kind, None) for on, kind in dated if on is not None]
    facts.sort(key=lambda fact: (fact[0], _STEP_ORDER[fact[1]]))
    return facts


def _steps_of(case: PlannedCase) -> tuple[PlannedStep, ...]:
    # Each fact is recorded on its own day, in office hours, a few minutes after the
    # one before it; the hour depends on the case, so cases do not all come at once.
    start = _FIRST_STEP_MINUTES + (case.sequence * 37) % _STEP_SPREAD_MINUTES
    steps: list[PlannedStep] = []
    same_day = 0
    for on, kind, body in _facts_of(case):
        same_day = same_day + 1 if steps and steps[-1].on == on else 0
        minutes = start + _STEP_GAP_MINUTES * same_day
        at = _local(on, time(minutes // 60, minutes % 60))
        steps.append(PlannedStep(kind, on, at, body))
    return tuple(steps)


def _step_body(case: PlannedCase, step: PlannedStep) -> dict[str, Any]:
    assessment = case.assessment
    if assessment is None or step not in _steps_of(case):
        raise DemoDataError(
            f"step {step.kind} on {step.on} is not one of case {case.sequence}'s"
        )
    review = assessment.review
    plan = assessment.plan
    on = step.on.isoformat()
    if step.kind == "advice_requested":
        advice_body = step.advice_body or "education"
        return {
            "body": advice_body,
            "received_by_body_on": on,
            "professional": f"Synthetic demo: {ADVICE_LABELS[advice_body]}",
        }
    if step.kind == "advice_received":
        return {"received_on": on}
    if step.kind == "no_plan_notice":
        return {
            "notified_on": on,
            "reasons": "Synthetic demo: the setting can meet the needs from its own "
            "resources.",
        }
    if step.kind == "draft_plan":
        return {"served_on": on}
    if step.kind == "draft_comments":
        return {
            "received_on": on,
            "respondent": assessment.respondent,
            "comments": "Synthetic demo: the family's comments on the draft.",
            "preferred_setting_urn": assessment.preferred_setting_urn,
            "meeting_requested": assessment.meeting_requested,
            "agreed_to_early_final_plan": assessment.agreed_to_early_final_plan,
        }
    if step.kind == "final_plan_exception":
        reason = assessment.exception_reason or "c"
        return {
            "clock": "final_plan",
            "reason": reason,
            "evidence": EXCEPTION_EVIDENCE[reason],
        }
    if step.kind == "final_plan" and plan is not None:
        return {
            "issued_on": on,
            "setting_urn": plan.setting_urn,
            "setting_type": plan.setting_type,
            "start_date": plan.start_date.isoformat(),
            "primary_need": plan.primary_need,
            "secondary_need": plan.secondary_need,
        }
    if review is None:
        raise DemoDataError(f"case {case.sequence} has no review for {step.kind}")
    if step.kind == "review_arranged":
        return {
            "meeting_on": review.meeting_on.isoformat(),
            "invitee_roles": list(review.invitee_roles),
            "kind": "annual",
            "arranged_on": on,
        }
    if step.kind == "referrals_made":
        return {"made_on": on}
    if step.kind == "papers_sent":
        return {"sent_on": on}
    if step.kind == "review_held":
        return {
            "held_on": on,
            "attendee_roles": list(review.attendee_roles),
            "child_views_gathered": review.child_views_gathered,
            "recommendations": "Synthetic demo: the meeting's recommendations.",
        }
    if step.kind == "report_received":
        return {"received_on": on}
    if step.kind == "review_decided":
        decision = review.decision or "maintain"
        body: dict[str, Any] = {"decision": decision, "notified_on": on}
        if decision == "amend":
            body["proposed_amendments"] = (
                "Synthetic demo: update the needs (section B) and the provision "
                "(section F) as the review recommended."
            )
        return body
    if step.kind == "plan_amended":
        return {
            "issued_on": on,
            "changes": ["B", "F"],
            "summary": "Synthetic demo: sections B and F updated after the review.",
        }
    if step.kind == "plan_ceased":
        return {
            "ceased_on": on,
            "reason": "needs_met",
            "note": "Synthetic demo: the needs are met without a plan.",
        }
    raise DemoDataError(f"no body for step {step.kind}")


# The intended outcome of every clock


PLANNED_CLOCKS = (
    "decision",
    "local_area_surgery",
    "final_plan",
    "no_plan_notice",
    "advice",
    "draft_comments",
    "annual_review",
    "review_notice",
    "agency_referrals",
    "review_report",
    "review_decision",
    "amendment_comments",
    "final_amended_plan",
)
"""The clocks whose end the plan predicts (the others the demo's facts never start)."""

CLOCK_STATES = ("set", "met", "late", "cancelled", "overdue", "open", "exception")


class _ClockTally:
    """Counts of planned clocks by the state each is in after the last day's tick."""

    def __init__(self, until: date) -> None:
        self.until = until
        self.rows = {name: dict.fromkeys(CLOCK_STATES, 0) for name in PLANNED_CLOCKS}

    def add(
        self,
        clock: str,
        due: date,
        stopped: date | None = None,
        *,
        cancelled: bool = False,
        exception: bool = False,
    ) -> None:
        # The last tick is 08:00 on the last day: a clock is overdue once a tick falls
        # on a day after its due date, and a stop dated after that day is late.
        if cancelled:
            state = "cancelled"
        elif stopped is not None:
            state = "met" if stopped <= due else "late"
        else:
            state = "overdue" if due < self.until else "open"
        row = self.rows[clock]
        row["set"] += 1
        row[state] += 1
        row["exception"] += exception

    def window(self, clock: str, last_day: date) -> None:
        """A window closes (counts as met) once a tick falls after its last day."""
        self.add(clock, last_day, last_day if last_day < self.until else None)


def planned_clocks(
    cases: Iterable[PlannedCase], until: date
) -> dict[str, dict[str, int]]:
    """How each clock the demo's facts start must stand after the tick of ``until``.

    Each count is worked out from the plan's own dates and the clock rules as the law
    states them (``STATUTORY_CLOCKS.md``), independently of the deadlines service, so
    a clock gone wrong there shows as a difference.
    """
    tally = _ClockTally(until)
    for case in cases:
        withdrawn = case.outcome == "withdrawn"
        closed = case.decision_notified_on
        tally.add(
            "decision",
            case.decision_due_on,
            closed,
            cancelled=withdrawn,
            exception=case.exception_reason is not None,
        )
        tally.add(
            "local_area_surgery", case.decision_due_on, closed, cancelled=withdrawn
        )
        final_due = weeks_after(case.received_on, FINAL_PLAN_WEEKS)
        assessment = case.assessment
        if assessment is None:
            # Refused or withdrawn: the 20-week clock no longer applies.
            tally.add("final_plan", final_due, cancelled=True)
            continue
        _tally_assessment(tally, assessment, final_due)
    return tally.rows


def _tally_assessment(
    tally: _ClockTally, assessment: PlannedAssessment, final_due: date
) -> None:
    plan = assessment.plan
    tally.add(
        "final_plan",
        final_due,
        plan.issued_on if plan is not None else None,
        cancelled=assessment.no_plan_notified_on is not None,
        exception=assessment.exception_noted_on is not None,
    )
    tally.add(
        "no_plan_notice",
        assessment.no_plan_due_on,
        assessment.no_plan_notified_on,
        cancelled=assessment.draft_served_on is not None or plan is not None,
    )
    for advice in assessment.advice:
        tally.add("advice", advice.due_on, advice.received_on)
    window_end = assessment.comment_window_ends_on
    if window_end is not None:
        tally.window("draft_comments", window_end)
    if plan is None:
        return
    review = assessment.review
    tally.add(
        "annual_review",
        _review_due(plan.issued_on),
        review.held_on if review is not None else None,
    )
    if review is None:
        return
    tally.add("review_notice", review.papers_due_on, review.papers_sent_on)
    tally.add(
        "agency_referrals",
        review.referrals_due_on,
        review.referrals_made_on,
        cancelled=review.referrals_made_on is None and review.held_on is not None,
    )
    if review.held_on is None:
        return
    ceased = review.ceased_on is not None
    tally.add("annual_review", _review_due(review.held_on), cancelled=ceased)
    report_due = weeks_after(review.held_on, REVIEW_REPORT_WEEKS)
    decision_due = weeks_after(review.held_on, REVIEW_DECISION_WEEKS)
    tally.add("review_report", report_due, review.report_received_on)
    tally.add("review_decision", decision_due, review.decision_notified_on)
    amended_due = review.amended_plan_due_on
    if amended_due is not None and review.decision_notified_on is not None:
        tally.window(
            "amendment_comments",
            review.decision_notified_on + timedelta(days=COMMENT_WINDOW_DAYS - 1),
        )
        tally.add("final_amended_plan", amended_due, review.amended_on)


@dataclass(frozen=True, slots=True)
class Timeliness:
    """New plans within 20 weeks and reviews decided within 4 weeks, as the DfE
    counts them: plans issued, with and without exceptions to the limit; reviews
    held (and held within their 12 months); decisions made, and within 4 weeks."""

    plans_issued: int
    plans_within_20_weeks: int
    plans_issued_excl_exceptions: int
    plans_within_20_weeks_excl_exceptions: int
    reviews_held: int
    reviews_held_in_time: int
    review_decisions: int
    review_decisions_within_4_weeks: int

    @property
    def within_20_weeks_share(self) -> float | None:
        return _share(self.plans_within_20_weeks, self.plans_issued)

    @property
    def within_20_weeks_share_excl_exceptions(self) -> float | None:
        return _share(
            self.plans_within_20_weeks_excl_exceptions,
            self.plans_issued_excl_exceptions,
        )

    @property
    def within_4_weeks_share(self) -> float | None:
        return _share(self.review_decisions_within_4_weeks, self.review_decisions)

    def differences(self, other: Timeliness, theirs: str) -> list[str]:
        """Each count that differs from ``other``'s, which are ``theirs``."""
        return [
            f"{name.replace('_', ' ')}: {mine} here, {getattr(other, name)} {theirs}"
            for name, mine in asdict(self).items()
            if mine != getattr(other, name)
        ]


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def planned_timeliness(cases: Iterable[PlannedCase]) -> Timeliness:
    """The timeliness figures the plan intends for the simulated period."""
    plans: list[PlannedAssessment] = []
    reviews: list[PlannedReview] = []
    for case in cases:
        assessment = case.assessment
        if assessment is None or assessment.plan is None:
            continue
        plans.append(assessment)
        if assessment.review is not None and assessment.review.held_on is not None:
            reviews.append(assessment.review)
    plain = [a for a in plans if a.exception_noted_on is None]
    decided = [r for r in reviews if r.decision_notified_on is not None]
    return Timeliness(
        plans_issued=len(plans),
        plans_within_20_weeks=sum(a.plan_within_20_weeks is True for a in plans),
        plans_issued_excl_exceptions=len(plain),
        plans_within_20_weeks_excl_exceptions=sum(
            a.plan_within_20_weeks is True for a in plain
        ),
        reviews_held=len(reviews),
        reviews_held_in_time=sum(r.held_in_time is True for r in reviews),
        review_decisions=len(decided),
        review_decisions_within_4_weeks=sum(r.decided_in_time is True for r in decided),
    )


# Summaries and files


@dataclass(frozen=True, slots=True)
class CaseloadSummary:
    """Counts over a planned caseload, to compare with the figures it was shaped on."""

    requests: int
    agreed: int
    refused: int
    withdrawn: int
    decided_within_6_weeks: int
    decided_late: int
    exceptions: int
    outstanding_at_year_end: int
    received_out_of_hours: int
    recorded_after_notified: int

    @property
    def decided(self) -> int:
        return self.agreed + self.refused

    @property
    def within_6_weeks_share(self) -> float:
        return self.decided_within_6_weeks / self.decided if self.decided else 0.0

    def describe(self) -> str:
        return (
            f"{self.requests} requests: {self.agreed} agreed, {self.refused} refused, "
            f"{self.withdrawn} withdrawn; {self.decided_within_6_weeks} of "
            f"{self.decided} decisions within 6 weeks "
            f"({self.within_6_weeks_share:.1%}), "
            f"{self.decided_late} late ({self.exceptions} with an exception); "
            f"{self.outstanding_at_year_end} undecided on 31 December; "
            f"{self.received_out_of_hours} received out of office hours; "
            f"{self.recorded_after_notified} recorded after the day notified"
        )


def summarise(cases: Iterable[PlannedCase]) -> CaseloadSummary:
    planned = list(cases)
    return CaseloadSummary(
        requests=len(planned),
        agreed=sum(c.outcome == "agreed" for c in planned),
        refused=sum(c.outcome == "refused" for c in planned),
        withdrawn=sum(c.outcome == "withdrawn" for c in planned),
        decided_within_6_weeks=sum(c.within_time is True for c in planned),
        decided_late=sum(c.within_time is False for c in planned),
        exceptions=sum(c.exception_reason is not None for c in planned),
        outstanding_at_year_end=sum(c.outstanding_at_year_end for c in planned),
        received_out_of_hours=sum(c.received_out_of_hours for c in planned),
        recorded_after_notified=sum(
            c.decision_notified_on is not None
            and london_date(c.outcome_recorded_at) > c.decision_notified_on
            for c in planned
        ),
    )


def write_staff_csv(
    path: Path | str, staff: Iterable[StaffMember] = DEMO_STAFF
) -> Path:
    """Write the staff directory CSV (``STAFF_CSV_COLUMNS``; SENCOs name a school)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(STAFF_CSV_COLUMNS)
        for member in staff:
            writer.writerow(
                (
                    member.staff_id,
                    member.name,
                    member.email,
                    member.role,
                    member.manager_id or "",
                    "" if member.school_urn is None else member.school_urn,
                    member.mobile or "",
                )
            )
    return target


def read_staff_csv(path: Path | str) -> list[StaffMember]:
    with Path(path).open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != STAFF_CSV_COLUMNS:
            raise DemoDataError(
                f"{path} must have the columns {', '.join(STAFF_CSV_COLUMNS)}, "
                "in that order"
            )
        members = []
        for row in reader:
            role = row["role"]
            roles: dict[str, Role] = {
                "coordinator": "coordinator",
                "manager": "manager",
                "senco": "senco",
            }
            if role not in roles:
                raise DemoDataError(
                    f"{path}: role {role!r} is not coordinator, manager or senco"
                )
            urn = row["school_urn"]
            members.append(
                StaffMember(
                    row["staff_id"],
                    row["name"],
                    row["email"],
                    roles[role],
                    row["manager_id"] or None,
                    int(urn) if urn else None,
                    row["mobile"] or None,
                )
            )
    return members


# -- phase transfers: the cohort, consultations, the panel, the amended plans ----------

TransferKind = Literal["school", "post16"]
SettingIdKind = Literal["urn", "ukprn"]
ConsultationOutcome = Literal["place_offered", "declined"]
PanelOutcome = Literal["setting_named", "deferred"]
TransferStepKind = Literal[
    "consulted", "answered", "submitted", "decided", "communicated", "amended"
]
TRANSFER_STEP_KINDS: tuple[TransferStepKind, ...] = (
    "consulted",
    "answered",
    "submitted",
    "decided",
    "communicated",
    "amended",
)
"""A transfer's commands to placement and plans, in the order they come on one day."""

# The transfers placement's default rules know (``placement.domain.phases``): the
# year a child leaves, the move, and its kind. Infant to junior (Year 2) is a council
# setting (PLACEMENT_INFANT_SCHOOLS) that make run leaves off, so it is not planned.
TRANSFER_RULES: Mapping[int, tuple[str, TransferKind]] = {
    -1: ("into_reception", "school"),
    6: ("primary_to_secondary", "school"),
    11: ("secondary_to_post16", "post16"),
}
CONSULTATION_DAYS = 15
UKPRN_OFFSET = 10_000_000
"""A demo college's synthetic UKPRN is this plus its URN (8 digits, 1xxxxxxx)."""

# Assumptions of the demo, not published figures: the DfE publishes nothing on school
# consultations, panels or phase-transfer timeliness, so these shares are synthetic
# (chosen so the demo shows each path), and are apportioned exactly over the cohort.
CONSULTATIONS_PER_CASE = (2, 3)
CONSULTATION_ANSWERS: Mapping[str, float] = {
    "within_15_days": 0.6,
    "after_15_days": 0.25,
    "never": 0.15,
}
PLACE_OFFERED_SHARE = 0.7
PANEL_DEFERRED_SHARE = 0.1
TRANSFER_NAMED_IN_TIME_SHARE = 0.75
LATE_NAMING_BY_AT_MOST = timedelta(days=45)
# The council identifies the year's cohort on the first working day of the school
# year, and again on the first working day of January for the plans issued since.
IDENTIFY_ON = ((9, 2), (1, 6))
TRANSFER_STEP_TIME = time(16, 0)
PANEL_AGENDA_CASES = 40
COUNCIL_ACTION_TIME = time(8, 30)
OPTION_COSTS_PENCE: Mapping[Phase, tuple[int, int, int]] = {
    "early_years": (1_200_000, 150_000, 0),
    "primary": (1_400_000, 150_000, 0),
    "secondary": (1_900_000, 200_000, 0),
    "special": (4_800_000, 600_000, 350_000),
    "college": (1_600_000, 100_000, 0),
}
"""Synthetic yearly costs of a place (education, health, social care), in pence."""


@dataclass(frozen=True, slots=True)
class PlannedConsultation:
    """A setting consulted about a child's next phase, and its answer, if any."""

    setting_id: int
    setting_id_kind: SettingIdKind
    setting_urn: int
    setting_type: SettingType
    phase: Phase
    sent_on: date
    answered_on: date | None
    outcome: ConsultationOutcome | None

    @property
    def due_on(self) -> date:
        """The 15 days of good practice: the deadlines rules' ``sent_on + 15``."""
        return self.sent_on + timedelta(days=CONSULTATION_DAYS)

    @property
    def answered_in_time(self) -> bool | None:
        if self.answered_on is None:
            return None
        return self.answered_on <= self.due_on


@dataclass(frozen=True, slots=True)
class PlannedTransfer:
    """One child's phase transfer, from identification to the plan naming the setting.

    ``panels`` are the panel days the case is on, with ``outcomes`` (a deferral, then
    the setting named); every fact after the period's end, or after the plan ends, is
    left out (None or missing).
    """

    sequence: int
    phase: str
    transfer: TransferKind
    transfer_year: int
    leaving_year: int
    identified_on: date
    consultations: tuple[PlannedConsultation, ...]
    submitted_on: date | None
    panels: tuple[date, ...]
    outcomes: tuple[PanelOutcome, ...]
    named: PlannedConsultation | None
    communicated_on: date | None
    amended_on: date | None
    plan_ends_on: date | None

    @property
    def due_on(self) -> date:
        """14 February of the transfer year, or 30 March for post-16 (Reg 18(1))."""
        if self.transfer == "post16":
            return date(self.transfer_year, 3, 30)
        return date(self.transfer_year, 2, 14)

    @property
    def named_in_time(self) -> bool | None:
        if self.amended_on is None:
            return None
        return self.amended_on <= self.due_on

    def state_by(self, until: date) -> str:
        """How the transfer's clock ends by ``until``: met, late, cancelled, overdue
        or open (a clock state of the deadlines service)."""
        if self.named_in_time is not None:
            return "met" if self.named_in_time else "late"
        if self.plan_ends_on is not None and self.plan_ends_on <= until:
            return "cancelled"
        return "overdue" if until > self.due_on else "open"

    def steps(self) -> tuple[TransferStep, ...]:
        """The transfer's commands in order, each at its moment (16:00 London on)."""
        facts: list[tuple[date, TransferStepKind, int]] = []
        for index, consulted in enumerate(self.consultations):
            facts.append((consulted.sent_on, "consulted", index))
            if consulted.answered_on is not None:
                facts.append((consulted.answered_on, "answered", index))
        if self.submitted_on is not None:
            facts.append((self.submitted_on, "submitted", 0))
        facts += [(on, "decided", index) for index, on in enumerate(self.panels)]
        if self.communicated_on is not None:
            facts.append((self.communicated_on, "communicated", len(self.panels) - 1))
        if self.amended_on is not None:
            facts.append((self.amended_on, "amended", 0))
        order = {kind: number for number, kind in enumerate(TRANSFER_STEP_KINDS)}
        facts.sort(key=lambda fact: (fact[0], order[fact[1]], fact[2]))
        steps: list[TransferStep] = []
        same_day = 0
        for on, kind, index in facts:
            same_day = same_day + 1 if steps and steps[-1].on == on else 0
            minutes = TRANSFER_STEP_TIME.hour * 60 + _STEP_GAP_MINUTES * same_day
            at = _local(on, time(minutes // 60, minutes % 60))
            steps.append(TransferStep(kind, on, at, index))
        return tuple(steps)

    def step_body(self, step: TransferStep) -> dict[str, Any]:
        """The JSON body of ``step``'s command to placement or plans."""
        if step not in self.steps():
            raise DemoDataError(
                f"transfer step {step.kind} on {step.on} is not case {self.sequence}'s"
            )
        if step.kind == "consulted":
            consulted = self.consultations[step.index]
            return {
                "setting_id": consulted.setting_id,
                "setting_id_kind": consulted.setting_id_kind,
                "sent_on": consulted.sent_on.isoformat(),
            }
        if step.kind == "answered":
            consulted = self.consultations[step.index]
            body: dict[str, Any] = {
                "outcome": consulted.outcome,
                "answered_on": step.on.isoformat(),
            }
            if consulted.outcome == "declined":
                body["reasons"] = (
                    "Synthetic demo: the setting says it cannot meet the needs "
                    "set out in the plan."
                )
            return body
        if step.kind == "submitted":
            return {
                "prepared_on": step.on.isoformat(),
                "options": [_option(c) for c in self.consultations],
                "family_views": "Synthetic demo: the family's views on the options.",
                "setting_views": "Synthetic demo: the settings' answers in brief.",
            }
        if step.kind == "decided":
            if self.outcomes[step.index] == "deferred":
                return {
                    "outcome": "deferred",
                    "reasons": "Synthetic demo: the panel asked for more information.",
                }
            named = self._named()
            return {
                "outcome": "setting_named",
                "setting_id": named.setting_id,
                "setting_id_kind": named.setting_id_kind,
                "reasons": "Synthetic demo: the setting can meet the needs.",
            }
        if step.kind == "communicated":
            return {"communicated_on": step.on.isoformat()}
        named = self._named()
        return {
            "issued_on": step.on.isoformat(),
            "changes": ["I"],
            "setting_urn": named.setting_urn,
            "setting_type": named.setting_type,
            "summary": "Synthetic demo: section I names the setting for the next "
            "phase.",
        }

    def _named(self) -> PlannedConsultation:
        if self.named is None:
            raise DemoDataError(f"case {self.sequence}'s panel named no setting")
        return self.named

    def step_service(self, step: TransferStep) -> Literal["placement", "plans"]:
        return "plans" if step.kind == "amended" else "placement"


@dataclass(frozen=True, slots=True)
class TransferStep:
    """One command of a transfer: what, the date of the fact, when it is recorded.

    ``index`` is the consultation an ``consulted`` or ``answered`` step belongs to,
    and the panel (of the transfer's ``panels``) a ``decided`` or ``communicated``
    one does.
    """

    kind: TransferStepKind
    on: date
    at: datetime
    index: int = 0


@dataclass(frozen=True, slots=True)
class PlannedPanel:
    """A meeting of the SEND placement panel for one team's cases.

    The agenda is recorded ``listed_on`` by the team's manager (a manager lists only
    their own team's cases), a week before the panel meets.
    """

    panel_on: date
    listed_on: date
    manager_id: str
    sequences: tuple[int, ...]

    @property
    def listed_at(self) -> datetime:
        return _local(self.listed_on, COUNCIL_ACTION_TIME)


@dataclass(frozen=True, slots=True)
class TransferPlan:
    """A year's phase transfers: who is identified when, and what follows for each."""

    transfer_year: int
    identifications: tuple[date, ...]
    cohorts: tuple[tuple[int, ...], ...]
    """The case sequences each identification (same index) finds new."""
    transfers: tuple[PlannedTransfer, ...]
    panels: tuple[PlannedPanel, ...]
    identifier_id: str

    def identified_at(self, index: int) -> datetime:
        return _local(self.identifications[index], COUNCIL_ACTION_TIME)

    @property
    def cohort(self) -> int:
        return len(self.transfers)

    def transfer_of(self, sequence: int) -> PlannedTransfer | None:
        return next((t for t in self.transfers if t.sequence == sequence), None)

    def figures(self, until: date) -> dict[str, int]:
        """What the demo must report: consultations, panels, deadlines, by ``until``."""
        counts: Counter[str] = Counter()
        counts["cohort"] = self.cohort
        for transfer in self.transfers:
            counts[f"cohort_{transfer.transfer}"] += 1
            for consulted in transfer.consultations:
                counts["consultations"] += 1
                if consulted.answered_in_time is True:
                    counts["answered_within_15_days"] += 1
                elif consulted.answered_in_time is False:
                    counts["answered_after_15_days"] += 1
                elif until > consulted.due_on:
                    counts["unanswered_after_15_days"] += 1
                else:
                    counts["unanswered_within_15_days"] += 1
                if consulted.outcome is not None:
                    counts[consulted.outcome] += 1
            for outcome in transfer.outcomes:
                counts[f"panel_{outcome}"] += 1
            counts["communicated"] += transfer.communicated_on is not None
            counts["plans_amended"] += transfer.amended_on is not None
            state = transfer.state_by(until)
            counts[f"deadline_{state}"] += 1
        counts["panels"] = len({p.panel_on for p in self.panels})
        counts["panel_agendas"] = len(self.panels)
        return dict(counts)

    def clocks(self, until: date) -> dict[str, dict[str, int]]:
        """How the consultation and phase-transfer clocks must end by ``until``."""
        rows: dict[str, Counter[str]] = {}

        def add(clock: str, state: str) -> None:
            row = rows.setdefault(clock, Counter())
            row["set"] += 1
            row[state] += 1

        for transfer in self.transfers:
            for consulted in transfer.consultations:
                if consulted.answered_in_time is not None:
                    state = "met" if consulted.answered_in_time else "late"
                else:
                    state = "overdue" if until > consulted.due_on else "open"
                add("school_consultation", state)
            add(f"phase_transfer_{transfer.transfer}", transfer.state_by(until))
        return {
            clock: {state: row[state] for state in CLOCK_STATES}
            for clock, row in sorted(rows.items())
        }


def _option(consulted: PlannedConsultation) -> dict[str, Any]:
    education, health, social_care = OPTION_COSTS_PENCE[consulted.phase]
    return {
        "setting_id": consulted.setting_id,
        "setting_id_kind": consulted.setting_id_kind,
        "education_pence": education,
        "health_pence": health,
        "social_care_pence": social_care,
    }


def transfer_year_of(year: int) -> int:
    """The September a caseload of ``year``'s requests has its transfers in."""
    return year + 1


def curriculum_year_in(case: PlannedCase, school_year: int) -> int:
    """The child's year in the school year starting in September ``school_year``.

    As placement counts it: the year stated at the request, one more each September.
    """
    at_request = case.received_on.year - (case.received_on.month < 9)
    return case.curriculum_year + (school_year - at_request)


def plan_transfers(
    cases: Sequence[PlannedCase],
    transfer_year: int,
    until: date,
    seed: int = DEFAULT_SEED,
    schools: Sequence[School] = DEMO_SCHOOLS,
) -> TransferPlan:
    """The phase transfers of September ``transfer_year`` among ``cases``' plans.

    A child is in the cohort when their plan was issued before an identification day
    (``IDENTIFY_ON``, in the school year before the move) and they are then in a year
    ``TRANSFER_RULES`` names. The shares of answers, offers, deferrals and plans named
    in time are apportioned over the cohort (``CONSULTATION_ANSWERS`` and the rest).
    """
    rng = random.Random(f"transfers-{seed}-{transfer_year}")
    calendar = _WorkingDays(transfer_year - 1, transfer_year + 1)
    identifications = tuple(
        day
        for month, day_of_month in IDENTIFY_ON
        if (
            day := _on_or_after_working(
                date(transfer_year - (month >= 9), month, day_of_month)
            )
        )
        <= until
    )
    found: list[tuple[PlannedCase, date, int]] = []
    cohorts: list[tuple[int, ...]] = []
    taken: set[int] = set()
    for day in identifications:
        new: list[int] = []
        for case in cases:
            assessment = case.assessment
            plan = assessment.plan if assessment is not None else None
            if plan is None or case.sequence in taken or plan.issued_on >= day:
                continue
            ends = _plan_ends_on(case)
            if ends is not None and ends < day:
                continue
            year = curriculum_year_in(case, transfer_year - 1)
            if year in TRANSFER_RULES:
                taken.add(case.sequence)
                new.append(case.sequence)
                found.append((case, day, year))
        cohorts.append(tuple(new))

    drafts = [
        _draft_transfer(rng, calendar, c, d, y, schools) | {"year": transfer_year}
        for c, d, y in found
    ]
    consultations = [c for draft in drafts for c in draft["consultations"]]
    answers = _shuffled_labels(rng, CONSULTATION_ANSWERS, len(consultations))
    answered = [a for a in answers if a != "never"]
    offers = _shuffled_labels(
        rng,
        {"place_offered": PLACE_OFFERED_SHARE, "declined": 1 - PLACE_OFFERED_SHARE},
        len(answered),
    )
    answer_of = iter(answers)
    offer_of = iter(offers)
    for draft in drafts:
        draft["consultations"] = [
            _answer(rng, calendar, consulted, next(answer_of), offer_of, until)
            for consulted in draft["consultations"]
        ]
    deferred = set(
        rng.sample(range(len(drafts)), _count_of(PANEL_DEFERRED_SHARE, len(drafts)))
    )
    panel_days = _panel_days(transfer_year)
    in_time = _count_of(TRANSFER_NAMED_IN_TIME_SHARE, len(drafts))
    transfers: list[PlannedTransfer] = []
    for index, draft in enumerate(drafts):
        transfers.append(
            _finish_transfer(
                rng,
                calendar,
                draft,
                panel_days,
                deferred=index in deferred,
                until=until,
            )
        )
    transfers = _name_in_time(rng, calendar, transfers, in_time, found, until)
    panels = _panels_of(transfers, {c.sequence: c for c, _, _ in found})
    managers = sorted({m.staff_id for m in DEMO_STAFF if m.role == "manager"})
    return TransferPlan(
        transfer_year=transfer_year,
        identifications=identifications,
        cohorts=tuple(cohorts),
        transfers=tuple(transfers),
        panels=panels,
        identifier_id=managers[0],
    )


def _on_or_after_working(day: date) -> date:
    return day if is_working_day(day) else _next_working_day(day)


def _plan_ends_on(case: PlannedCase) -> date | None:
    review = case.assessment.review if case.assessment is not None else None
    if review is None or review.decision != "cease":
        return None
    return review.ceased_on or date.max


def _shuffled_labels(
    rng: random.Random, weights: Mapping[str, float], total: int
) -> list[str]:
    labels = [k for k, n in apportion(weights, total).items() for _ in range(n)]
    rng.shuffle(labels)
    return labels


def _count_of(share: float, total: int) -> int:
    """``share`` of ``total``, but at least one either way when there are two."""
    count = round(share * total)
    if total >= 2:
        count = min(max(count, 1), total - 1)
    return count


def _settings_for(
    leaving_year: int, case: PlannedCase, schools: Sequence[School]
) -> list[School]:
    plan = case.assessment.plan if case.assessment is not None else None
    special = plan is not None and plan.setting_type.startswith("special")
    next_phases: Mapping[int, Phase] = {-1: "primary", 6: "secondary"}
    wanted: Phase = next_phases.get(leaving_year, "college")
    pool = [s for s in schools if s.phase == wanted]
    specials = [s for s in schools if s.phase == "special"]
    if special and specials:
        return [specials[case.sequence % len(specials)], *pool]
    return pool


def _draft_transfer(
    rng: random.Random,
    calendar: _WorkingDays,
    case: PlannedCase,
    identified_on: date,
    leaving_year: int,
    schools: Sequence[School],
) -> dict[str, Any]:
    phase, kind = TRANSFER_RULES[leaving_year]
    settings = _settings_for(leaving_year, case, schools)
    count = min(len(settings), rng.randint(*CONSULTATIONS_PER_CASE))
    # The family's preference (a special school for a child at one) comes first.
    chosen = [settings[0], *rng.sample(settings[1:], count - 1)]
    sent_on = rng.choice(
        calendar.between(
            identified_on + timedelta(days=1), identified_on + timedelta(days=14)
        )
    )
    consultations = []
    for school in chosen:
        ukprn = school.phase == "college"
        consultations.append(
            PlannedConsultation(
                setting_id=UKPRN_OFFSET + school.urn if ukprn else school.urn,
                setting_id_kind="ukprn" if ukprn else "urn",
                setting_urn=school.urn,
                setting_type=_transfer_setting_type(school),
                phase=school.phase,
                sent_on=sent_on,
                answered_on=None,
                outcome=None,
            )
        )
    return {
        "case": case,
        "phase": phase,
        "kind": kind,
        "leaving_year": leaving_year,
        "identified_on": identified_on,
        "consultations": consultations,
    }


def _transfer_setting_type(school: School) -> SettingType:
    types: Mapping[Phase, SettingType] = {
        "early_years": "early_years",
        "primary": "mainstream_maintained",
        "secondary": "mainstream_academy",
        "special": "special_maintained",
        "college": "further_education",
    }
    return types[school.phase]


def _answer(
    rng: random.Random,
    calendar: _WorkingDays,
    consulted: PlannedConsultation,
    answer: str,
    offers: Iterator[str],
    until: date,
) -> PlannedConsultation:
    if answer == "never":
        return consulted
    if answer == "within_15_days":
        first, last = 2, CONSULTATION_DAYS - 1
    else:
        first, last = CONSULTATION_DAYS + 1, CONSULTATION_DAYS + 20
    days = calendar.between(
        consulted.sent_on + timedelta(days=first),
        consulted.sent_on + timedelta(days=last),
    )
    outcome: ConsultationOutcome = (
        "place_offered" if next(offers) == "place_offered" else "declined"
    )
    answered_on = rng.choice(days)
    if answered_on > until:
        return consulted
    return replace(consulted, answered_on=answered_on, outcome=outcome)


def _panel_days(transfer_year: int) -> list[date]:
    """The panel meets on the first and third Wednesday of each month but August."""
    days: list[date] = []
    for year, month in itertools.product(
        (transfer_year - 1, transfer_year), range(1, 13)
    ):
        if month == 8:
            continue
        first = date(year, month, 1)
        wednesday = first + timedelta(days=(2 - first.weekday()) % 7)
        for day in (wednesday, wednesday + timedelta(days=14)):
            if is_working_day(day):
                days.append(day)
    return sorted(days)


def _finish_transfer(
    rng: random.Random,
    calendar: _WorkingDays,
    draft: dict[str, Any],
    panel_days: Sequence[date],
    *,
    deferred: bool,
    until: date,
) -> PlannedTransfer:
    case: PlannedCase = draft["case"]
    consultations: list[PlannedConsultation] = draft["consultations"]
    ends = _plan_ends_on(case)
    base = PlannedTransfer(
        sequence=case.sequence,
        phase=draft["phase"],
        transfer=draft["kind"],
        transfer_year=draft["year"],
        leaving_year=draft["leaving_year"],
        identified_on=draft["identified_on"],
        consultations=(),
        submitted_on=None,
        panels=(),
        outcomes=(),
        named=None,
        communicated_on=None,
        amended_on=None,
        plan_ends_on=ends,
    )
    if ends is not None:
        # A plan the review decided to cease is not taken to a panel for a move.
        return base
    # The submission follows the consultations' 15 days, whoever has answered.
    window_ends = max(c.due_on for c in consultations)
    submitted = rng.choice(
        calendar.between(
            window_ends + timedelta(days=1), window_ends + timedelta(days=6)
        )
    )
    first = next(day for day in panel_days if _listing_day(day) > submitted)
    panels = [first]
    outcomes: list[PanelOutcome] = ["setting_named"]
    if deferred:
        panels.append(next(day for day in panel_days if _listing_day(day) > first))
        outcomes = ["deferred", "setting_named"]
    offered = [c for c in consultations if c.outcome == "place_offered"]
    # The council may name a school that objected (CFA 2014 s.39(4)) when none offered.
    named = offered[0] if offered else consultations[0]
    told = rng.choice(
        calendar.between(panels[-1] + timedelta(days=1), panels[-1] + timedelta(days=6))
    )
    base = replace(
        base, consultations=tuple(c for c in consultations if c.sent_on <= until)
    )
    if submitted > until:
        return base
    kept = [day for day in panels if _listing_day(day) <= until and day <= until]
    return replace(
        base,
        submitted_on=submitted,
        panels=tuple(kept),
        outcomes=tuple(outcomes[: len(kept)]),
        named=named,
        communicated_on=told if len(kept) == len(panels) and told <= until else None,
    )


def _listing_day(panel_on: date) -> date:
    """The agenda is recorded a week ahead, on a working day."""
    return _previous_working_day(panel_on - timedelta(days=7))


def _name_in_time(
    rng: random.Random,
    calendar: _WorkingDays,
    transfers: list[PlannedTransfer],
    in_time: int,
    found: Sequence[tuple[PlannedCase, date, int]],
    until: date,
) -> list[PlannedTransfer]:
    """Give each transfer its amended plan: ``in_time`` of them by the due date.

    Only a transfer whose family was told before its due date can be named in time;
    the others are late whatever the share says. An amendment falling inside a
    review's own amendment (its notice sent, its amended plan not yet issued) moves
    after it, or before the notice, so the review's clocks end as planned.
    """
    cases = {case.sequence: case for case, _, _ in found}
    possible = [
        i
        for i, t in enumerate(transfers)
        if t.communicated_on is not None and t.communicated_on < t.due_on
    ]
    on_time = set(rng.sample(possible, min(in_time, len(possible))))
    named: list[PlannedTransfer] = []
    for index, transfer in enumerate(transfers):
        told = transfer.communicated_on
        if told is None or not transfer.outcomes or transfer.outcomes[-1] == "deferred":
            named.append(transfer)
            continue
        if index in on_time:
            days = calendar.between(
                told + timedelta(days=1),
                min(told + timedelta(days=20), transfer.due_on),
            )
        else:
            start = max(told, transfer.due_on) + timedelta(days=1)
            days = calendar.between(start, start + LATE_NAMING_BY_AT_MOST)
        amended: date | None = rng.choice(days) if days else None
        amended = _clear_of_review(cases[transfer.sequence], amended, told)
        if amended is not None and amended > until:
            amended = None
        named.append(replace(transfer, amended_on=amended))
    return named


def _clear_of_review(
    case: PlannedCase, amended: date | None, told: date
) -> date | None:
    review = case.assessment.review if case.assessment is not None else None
    if amended is None or review is None or review.decision != "amend":
        return amended
    notice, issued = review.decision_notified_on, review.amended_on
    if notice is None or notice > amended:
        return amended
    if issued is not None and issued < amended:
        return amended
    if issued is not None:
        return _next_working_day(issued)
    before = _previous_working_day(notice - timedelta(days=1))
    return before if before > told else None


def _panels_of(
    transfers: Sequence[PlannedTransfer], cases: Mapping[int, PlannedCase]
) -> tuple[PlannedPanel, ...]:
    agendas: dict[tuple[date, str], list[int]] = {}
    for transfer in transfers:
        manager = cases[transfer.sequence].manager_id
        for day in transfer.panels:
            agendas.setdefault((day, manager), []).append(transfer.sequence)
    # A panel's agenda holds at most PANEL_AGENDA_CASES (placement takes 60 at once).
    return tuple(
        PlannedPanel(
            panel_on=day,
            listed_on=_listing_day(day),
            manager_id=manager,
            sequences=tuple(sequences[start : start + PANEL_AGENDA_CASES]),
        )
        for (day, manager), sequences in sorted(agendas.items())
        for start in range(0, len(sequences), PANEL_AGENDA_CASES)
    )


def write_cases_jsonl(path: Path | str, cases: Iterable[PlannedCase]) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8") as handle:
        for case in cases:
            handle.write(json.dumps(case.as_json()) + "\n")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.demo_data",
        description="Plan a synthetic year of requests shaped like a council's.",
    )
    parser.add_argument("--la", default="825", help="old local authority code")
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--until",
        type=date.fromisoformat,
        default=None,
        help="the last simulated day (default: 31 July of the next year)",
    )
    parser.add_argument("--staff-csv", type=Path, help="write the staff directory here")
    parser.add_argument("--jsonl", type=Path, help="write the planned cases here")
    args = parser.parse_args(argv)
    until = args.until or default_period_end(args.year)
    try:
        figures = load_la_figures(args.la, args.year)
        cases = generate_caseload(
            figures, args.year, args.scale, args.seed, until=until
        )
    except DemoDataError as error:
        print(f"demo data: {error}")
        return 2
    print(figures.describe())
    print(
        f"planned (scale {args.scale}, seed {args.seed}): {summarise(cases).describe()}"
    )
    later = planned_timeliness(cases)
    print(
        f"to {until.isoformat()}: {later.plans_issued} plans issued, "
        f"{later.plans_within_20_weeks} within 20 weeks; {later.reviews_held} first "
        f"reviews held, {later.review_decisions} decided, "
        f"{later.review_decisions_within_4_weeks} within 4 weeks"
    )
    moves = plan_transfers(cases, transfer_year_of(args.year), until, args.seed)
    numbers = moves.figures(until)
    print(
        f"phase transfers into September {moves.transfer_year}: cohort "
        f"{moves.cohort}, {numbers.get('consultations', 0)} consultations "
        f"({numbers.get('answered_within_15_days', 0)} answered within 15 days), "
        f"deadlines met {numbers.get('deadline_met', 0)}, late "
        f"{numbers.get('deadline_late', 0)}"
    )
    if args.staff_csv:
        staff = (*DEMO_STAFF, *DEMO_SENCOS)
        print(f"staff directory: {write_staff_csv(args.staff_csv, staff)}")
    if args.jsonl:
        print(f"planned cases: {write_cases_jsonl(args.jsonl, cases)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
