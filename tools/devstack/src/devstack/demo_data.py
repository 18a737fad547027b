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

Each ``PlannedCase`` also gives the JSON bodies of the intake API's commands for it
(``receive_request_body``, ``assign_coordinator_body``, ``time_limit_exception_body``,
``outcome_body``); ``write_staff_csv`` writes the staff directory notify reads.

Only the first stage is planned: the request and the decision whether to assess. The
assessments, plans and reviews that follow (whose published figures ``devstack.dfe``
also reads) are not generated yet, so the demo exercises only the 6-week clock.

The generator's own due date (``sendkit.calendar.weeks_after`` the London date of
receipt, 6 weeks) only decides which cases it makes late; the deadlines service remains
the authority on statutory dates. Working days are the kernel's (``sendkit.calendar``),
so the demo and the clocks agree on every bank holiday.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import itertools
import json
import random
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

from devstack.dfe import DemoDataError, LaFigures, load_la_figures
from sendkit.calendar import LONDON, is_working_day, london_date, weeks_after

DEFAULT_SEED = 825
DECISION_WEEKS = 6
STAFF_DOMAIN = "send-demo.example.org"
STAFF_CSV_COLUMNS = ("staff_id", "name", "email", "role", "manager_id")
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
Role = Literal["coordinator", "manager"]
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
    """A synthetic member of the SEND team: a coordinator or their manager."""

    staff_id: str
    name: str
    email: str
    role: Role
    manager_id: str | None


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
    return StaffMember(staff_id, name, f"{local}@{STAFF_DOMAIN}", role, manager_id)


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


DEMO_STAFF = demo_staff()
DEMO_SCHOOLS = demo_schools()


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

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, date | datetime):
                data[key] = value.isoformat()
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
    """The working days of two years, searchable by range."""

    def __init__(self, first_year: int) -> None:
        start, end = date(first_year, 1, 1), date(first_year + 1, 12, 31)
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
) -> list[PlannedCase]:
    """Plan a synthetic year of requests in the shape of ``figures``, in arrival order.

    ``scale`` shrinks (or grows) the year: 0.05 plans about 90 of Buckinghamshire's
    1,782 requests. The same arguments always give the same cases.
    """
    if scale <= 0:
        raise DemoDataError(f"scale must be above 0, not {scale}")
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
    return cases


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
    """Write the staff directory CSV (staff_id, name, email, role, manager_id)."""
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
            if role not in ("coordinator", "manager"):
                raise DemoDataError(
                    f"{path}: role {role!r} is not coordinator or manager"
                )
            members.append(
                StaffMember(
                    row["staff_id"],
                    row["name"],
                    row["email"],
                    "coordinator" if role == "coordinator" else "manager",
                    row["manager_id"] or None,
                )
            )
    return members


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
    parser.add_argument("--staff-csv", type=Path, help="write the staff directory here")
    parser.add_argument("--jsonl", type=Path, help="write the planned cases here")
    args = parser.parse_args(argv)
    try:
        figures = load_la_figures(args.la, args.year)
        cases = generate_caseload(figures, args.year, args.scale, args.seed)
    except DemoDataError as error:
        print(f"demo data: {error}")
        return 2
    print(figures.describe())
    print(
        f"planned (scale {args.scale}, seed {args.seed}): {summarise(cases).describe()}"
    )
    if args.staff_csv:
        print(f"staff directory: {write_staff_csv(args.staff_csv)}")
    if args.jsonl:
        print(f"planned cases: {write_cases_jsonl(args.jsonl, cases)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
