"""Timeliness for a period, counted from the read model as the DfE publishes it.

The Department for Education's release "Education, health and care plans" has two
tables a council compares itself with, and ``timeliness`` answers both for any period
of whole days from the clock events the read model keeps:

- ``timeliness_20_week.csv``: EHC plans issued in the period, how many within 20 weeks
  of the request, between 20 and 52 weeks, and after 52 weeks, each counted including
  and excluding the plans an exception to the time limit applied to (the DfE's ``_ex``
  columns drop those plans from the numerator and the denominator alike);
- ``requests.csv``: requests for an EHC needs assessment received in the period with
  their outcome as known now (decided to assess, decided not to, no decision yet,
  withdrawn), and the decisions made in the period within and after 6 weeks.

The column names are the DfE's own, spelling and case included
(``PC_plans_issued_20_weeks_ex`` beside ``pc_plans_issued_within_20_weeks``), so a
council's figures line up with the published file's columns for its own code.

How each figure is counted, from the clocks of ``deadlines.domain.rules``:

- a plan issued is a ``final_plan`` clock stopped (met or late) on a day in the
  period; met is within 20 weeks; a late one stopped no later than 52 weeks after the
  day the clock counts from (the request) is between 20 and 52 weeks, any later one
  after 52 weeks; an exception applies when the clock records one;
- a request received is a ``decision`` clock that started on a day in the period; its
  outcome is what stopped it (``AssessmentAgreed`` or ``AssessmentRefused``), a
  cancellation (the withdrawal is the only fact that cancels that clock), or nothing
  yet (still running);
- a decision made in the period is a ``decision`` clock stopped on a day in it: within
  6 weeks when met, after 6 weeks when late. Like the DfE's, these counts include
  decisions on requests received before the period, so they need not add up to the
  outcomes of the requests received in it.

Percentages are rounded half up to one decimal place, as published; where the
denominator is nought the JSON has null and the CSV the DfE's ``z`` (not applicable).

Known limits: ``requests_rya`` (requests for a child in relevant youth accommodation)
and the mediation and tribunal columns of ``requests.csv`` are not counted, because no
clock event carries those facts; the outcomes of the requests received in a period are
as the read model knows them when asked, not as they stood at the DfE's census date;
a plan whose final_plan clock was set under a case the read model has no ClockSet for
(it started before the read model followed the topic) is not counted.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from deadlines.application.readmodel import CANCELLED, LATE, MET
from sendkit.calendar import weeks_after

FINAL_PLAN = "final_plan"
DECISION = "decision"
ASSESSMENT_AGREED = "send.intake.AssessmentAgreed.v1"
ASSESSMENT_REFUSED = "send.intake.AssessmentRefused.v1"

NOT_APPLICABLE = "z"
"""The DfE's mark for a percentage of nothing."""

TIMELINESS_20_WEEK_COUNTS = (
    "plans_issued_den",
    "plans_issued_den_ex",
    "plans_issued_within_20_weeks",
    "plans_issued_20_weeks_ex",
    "plans_issued_gt20weeks_ltYear",
    "plans_issued_gt20weeks_ltYear_ex",
    "plans_issued_gt_1_year",
    "plans_issued_gt_1_year_ex",
)
"""The counts of ``timeliness_20_week.csv``, by its column names."""

TIMELINESS_20_WEEK_SHARES = (
    ("pc_plans_issued_within_20_weeks", "plans_issued_within_20_weeks", "den"),
    ("PC_plans_issued_20_weeks_ex", "plans_issued_20_weeks_ex", "den_ex"),
    ("pc_plans_issued_gt20weeks_ltYear", "plans_issued_gt20weeks_ltYear", "den"),
    (
        "PC_plans_issued_gt20weeks_ltYear_ex",
        "plans_issued_gt20weeks_ltYear_ex",
        "den_ex",
    ),
    ("pc_plans_issued_gt_1_year", "plans_issued_gt_1_year", "den"),
    ("PC_plans_issued_gt_1_year_ex", "plans_issued_gt_1_year_ex", "den_ex"),
)
"""Each percentage column, its count, and which denominator it divides by."""

TIMELINESS_20_WEEK_COLUMNS = (
    "plans_issued_den",
    "plans_issued_den_ex",
    "plans_issued_within_20_weeks",
    "plans_issued_20_weeks_ex",
    "pc_plans_issued_within_20_weeks",
    "PC_plans_issued_20_weeks_ex",
    "plans_issued_gt20weeks_ltYear",
    "plans_issued_gt20weeks_ltYear_ex",
    "pc_plans_issued_gt20weeks_ltYear",
    "PC_plans_issued_gt20weeks_ltYear_ex",
    "plans_issued_gt_1_year",
    "plans_issued_gt_1_year_ex",
    "pc_plans_issued_gt_1_year",
    "PC_plans_issued_gt_1_year_ex",
)
"""The measure columns of ``timeliness_20_week.csv`` in the published order."""

REQUESTS_COLUMNS = (
    "requests_received_in_year",
    "requests_decided_to_assess",
    "requests_decided_not_to_assess",
    "requests_decision_not_made",
    "requests_withdrawn",
    "request_assess_pc",
    "request_not_assess_pc",
    "request_outstanding_pc",
    "request_withdrawn_pc",
    "request_outcome_six_weeks",
    "request_outcome_over_6_weeks",
    "request_outcome_six_weeks_pc",
    "request_outcome_over_6_weeks_pc",
)
"""The measure columns of ``requests.csv`` counted here, in the published order."""

# Each band of time to issue: its column including and excluding exceptions. The DfE
# names the first one's excluding column without "within"; mirrored as published.
_WITHIN_20_WEEKS = ("plans_issued_within_20_weeks", "plans_issued_20_weeks_ex")
_WITHIN_A_YEAR = ("plans_issued_gt20weeks_ltYear", "plans_issued_gt20weeks_ltYear_ex")
_AFTER_A_YEAR = ("plans_issued_gt_1_year", "plans_issued_gt_1_year_ex")

_OUTCOME_SHARES = (
    ("request_assess_pc", "requests_decided_to_assess"),
    ("request_not_assess_pc", "requests_decided_not_to_assess"),
    ("request_outstanding_pc", "requests_decision_not_made"),
    ("request_withdrawn_pc", "requests_withdrawn"),
)


@dataclass(frozen=True, slots=True)
class Timeliness:
    """The two tables' figures for one period (both days included)."""

    first: date
    last: date
    cases: int
    timeliness_20_week: dict[str, int | float | None]
    requests: dict[str, int | float | None]

    def as_json(self) -> dict[str, Any]:
        return {
            "from": self.first.isoformat(),
            "to": self.last.isoformat(),
            "cases": self.cases,
            "timeliness_20_week": dict(self.timeliness_20_week),
            "requests": dict(self.requests),
        }

    def as_csv(self) -> str:
        """One header line and one row: the period, then both tables' columns."""
        header = ["period_from", "period_to", *TIMELINESS_20_WEEK_COLUMNS]
        header += REQUESTS_COLUMNS
        row = [self.first.isoformat(), self.last.isoformat()]
        row += [_cell(self.timeliness_20_week[c]) for c in TIMELINESS_20_WEEK_COLUMNS]
        row += [_cell(self.requests[c]) for c in REQUESTS_COLUMNS]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerow(row)
        return out.getvalue()


def _cell(value: int | float | None) -> str:
    return NOT_APPLICABLE if value is None else str(value)


def percent(part: int, whole: int) -> float | None:
    """``part`` of ``whole`` as a percentage to one decimal, half up; None of 0."""
    if whole == 0:
        return None
    exact = Decimal(100 * part) / Decimal(whole)
    return float(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _day(value: object) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else None


def _counts_from(clock: Mapping[str, Any]) -> date | None:
    started = clock.get("started") or {}
    return _day(clock.get("counts_from")) or _day(started.get("on"))


def _plan_counts(clock: Mapping[str, Any], first: date, last: date) -> Counter[str]:
    counts: Counter[str] = Counter()
    stopped = clock.get("stopped") or {}
    issued_on = _day(stopped.get("on"))
    if clock["status"] not in (MET, LATE) or issued_on is None:
        return counts
    if not first <= issued_on <= last:
        return counts
    if clock["status"] == MET:
        band = _WITHIN_20_WEEKS
    else:
        start = _counts_from(clock)
        within_year = start is not None and issued_on <= weeks_after(start, 52)
        band = _WITHIN_A_YEAR if within_year else _AFTER_A_YEAR
    including, excluding = band
    counts["plans_issued_den"] += 1
    counts[including] += 1
    if not clock.get("exception"):
        counts["plans_issued_den_ex"] += 1
        counts[excluding] += 1
    return counts


def _request_counts(clock: Mapping[str, Any], first: date, last: date) -> Counter[str]:
    counts: Counter[str] = Counter()
    status = clock["status"]
    started = _day((clock.get("started") or {}).get("on"))
    if started is not None and first <= started <= last:
        counts["requests_received_in_year"] += 1
        stopped_by = (clock.get("stopped") or {}).get("by")
        if status in (MET, LATE) and stopped_by == ASSESSMENT_AGREED:
            counts["requests_decided_to_assess"] += 1
        elif status in (MET, LATE) and stopped_by == ASSESSMENT_REFUSED:
            counts["requests_decided_not_to_assess"] += 1
        elif status == CANCELLED:
            counts["requests_withdrawn"] += 1
        else:
            counts["requests_decision_not_made"] += 1
    decided_on = _day((clock.get("stopped") or {}).get("on"))
    if status in (MET, LATE) and decided_on is not None and first <= decided_on <= last:
        key = (
            "request_outcome_six_weeks"
            if status == MET
            else "request_outcome_over_6_weeks"
        )
        counts[key] += 1
    return counts


def timeliness(
    docs: Iterable[Mapping[str, Any]], *, first: date, last: date
) -> Timeliness:
    """Both tables' figures for the period from ``first`` to ``last`` (included)."""
    plans: Counter[str] = Counter()
    requests: Counter[str] = Counter()
    cases = 0
    for doc in docs:
        cases += 1
        for clock in doc["clocks"].values():
            if clock.get("started") is None:
                continue
            if clock["clock"] == FINAL_PLAN:
                plans.update(_plan_counts(clock, first, last))
            elif clock["clock"] == DECISION:
                requests.update(_request_counts(clock, first, last))

    twenty: dict[str, int | float | None] = {
        c: plans[c] for c in TIMELINESS_20_WEEK_COUNTS
    }
    for column, count, denominator in TIMELINESS_20_WEEK_SHARES:
        twenty[column] = percent(plans[count], plans[f"plans_issued_{denominator}"])
    received = requests["requests_received_in_year"]
    decided = (
        requests["request_outcome_six_weeks"] + requests["request_outcome_over_6_weeks"]
    )
    shares: dict[str, int | float | None] = {
        column: percent(requests[count], received) for column, count in _OUTCOME_SHARES
    }
    for column in ("request_outcome_six_weeks", "request_outcome_over_6_weeks"):
        shares[f"{column}_pc"] = percent(requests[column], decided)
    found = {c: shares[c] if c in shares else requests[c] for c in REQUESTS_COLUMNS}
    return Timeliness(
        first=first,
        last=last,
        cases=cases,
        timeliness_20_week={c: twenty[c] for c in TIMELINESS_20_WEEK_COLUMNS},
        requests=found,
    )
