"""One council's published EHC figures, read from the DfE release in place.

The Department for Education's release "Education, health and care plans" (reporting
year 2025) is a zip of CSV files; this module reads it with ``zipfile`` and ``csv``
without unpacking it, picks one geography (a local authority by its old three-digit
code, or England) and one calendar year, and returns the figures the demo caseload is
shaped on: requests for an assessment and their outcomes, the share decided within 6
weeks, the assessments completed and how many ended without a plan, new plans,
20-week timeliness, annual reviews and the January caseloads.
``LaFigures.columns_used`` names every file and column read, and
``python -m devstack.dfe`` prints the figures with them.

The release is cited as "Department for Education, Education, health and care plans
2025" (Open Government Licence v3.0). The annual-review file holds only the latest
calendar year and names some columns after it (``review_meeting_24``), so review
figures are ``None`` for any other year.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DATA_ZIP_ENV = "SEND_DFE_EHC_ZIP"
"""Environment variable naming the release zip, where it is not in the default place."""

BUCKINGHAMSHIRE = "825"
ZIP_NAME = "dfe-ehc-plans-2025.zip"
# The repository sits beside ``shared/``: tools/devstack/src/devstack/dfe.py is five
# levels below the repository root.
DEFAULT_ZIP = Path(__file__).resolve().parents[4].parent / "shared" / "data" / ZIP_NAME

_NOT_A_NUMBER = {"x", "z", "c", "u", "low", ""}


class DemoDataError(Exception):
    """Root of every error raised by ``devstack.dfe`` and ``devstack.demo_data``."""


class DfeDataError(DemoDataError):
    """The release zip is missing, or does not hold the rows or columns expected."""


@dataclass(frozen=True, slots=True)
class RequestFigures:
    """Requests for an EHC needs assessment received in the year and their outcomes."""

    received: int
    decided_to_assess: int
    decided_not_to_assess: int
    decision_not_made: int
    withdrawn: int
    decided_within_6_weeks: int
    decided_after_6_weeks: int
    published_within_6_weeks_pc: float | None
    published_not_assess_pc: float | None
    by_age: Mapping[str, int]

    @property
    def refused_share(self) -> float:
        """Requests refused an assessment, as a share of all requests."""
        return self.decided_not_to_assess / self.received

    @property
    def refused_share_of_decided(self) -> float:
        decided = self.decided_to_assess + self.decided_not_to_assess
        return self.decided_not_to_assess / decided

    @property
    def within_6_weeks_share(self) -> float:
        """Decisions made within 6 weeks, as a share of decisions made."""
        timed = self.decided_within_6_weeks + self.decided_after_6_weeks
        return self.decided_within_6_weeks / timed


@dataclass(frozen=True, slots=True)
class TimelinessFigures:
    """New plans issued in the year and how many within 20 weeks of the request."""

    plans_issued: int
    plans_issued_excl_exceptions: int
    within_20_weeks: int
    within_20_weeks_excl_exceptions: int
    published_within_20_weeks_pc: float | None
    published_within_20_weeks_excl_exceptions_pc: float | None
    # Of the plans issued after 20 weeks, those issued more than a year after the
    # request (including exceptions).
    after_1_year: int = 0

    @property
    def within_20_weeks_share_excl_exceptions(self) -> float:
        return self.within_20_weeks_excl_exceptions / self.plans_issued_excl_exceptions

    @property
    def after_1_year_share_of_late(self) -> float:
        """Plans issued after a year, as a share of those issued after 20 weeks."""
        late = self.plans_issued - self.within_20_weeks
        return self.after_1_year / late if late else 0.0


@dataclass(frozen=True, slots=True)
class AssessmentFigures:
    """EHC needs assessments completed in the year: plans issued, or none.

    ``no_plan_within_16_weeks`` and ``no_plan_after_16_weeks`` time the decisions not
    to issue a plan (the release's ``outcome_decision_*`` columns count only those).
    """

    completed: int
    plan_issued: int
    no_plan: int
    no_plan_within_16_weeks: int
    no_plan_after_16_weeks: int

    @property
    def no_plan_share(self) -> float:
        decided = self.plan_issued + self.no_plan
        return self.no_plan / decided if decided else 0.0

    @property
    def no_plan_within_16_weeks_share(self) -> float:
        timed = self.no_plan_within_16_weeks + self.no_plan_after_16_weeks
        return self.no_plan_within_16_weeks / timed if timed else 0.0


@dataclass(frozen=True, slots=True)
class ReviewFigures:
    """Annual reviews of plans in the year: meetings, outcomes, decisions in 4 weeks."""

    plans: int
    reviews_expected: int
    meetings_held: int
    outcome_amend: int
    outcome_maintain: int
    outcome_cease: int
    decisions_within_4_weeks: int
    decisions_after_4_weeks: int
    published_within_4_weeks_pc: float | None

    @property
    def within_4_weeks_share(self) -> float:
        timed = self.decisions_within_4_weeks + self.decisions_after_4_weeks
        return self.decisions_within_4_weeks / timed


@dataclass(frozen=True, slots=True)
class LaFigures:
    """One geography's figures for a calendar year, and the columns they came from."""

    geography: str
    old_la_code: str | None
    year: int
    requests: RequestFigures
    new_plans: int
    timeliness: TimelinessFigures
    reviews: ReviewFigures | None
    plans_in_january: Mapping[int, int]
    columns_used: tuple[tuple[str, str], ...] = field(default=())
    assessments: AssessmentFigures | None = None

    def describe(self) -> str:
        """The figures and the columns used, as lines a person reads."""
        r, t = self.requests, self.timeliness
        lines = [
            f"{self.geography} ({self.old_la_code or 'national'}), calendar year "
            f"{self.year}",
            f"  requests received          {r.received:>8,}",
            f"  agreed to assess           {r.decided_to_assess:>8,}",
            f"  refused to assess          {r.decided_not_to_assess:>8,}"
            f"  ({r.refused_share:.1%} of requests)",
            f"  ongoing at year end        {r.decision_not_made:>8,}",
            f"  withdrawn                  {r.withdrawn:>8,}",
            f"  decided within 6 weeks     {r.decided_within_6_weeks:>8,}"
            f"  ({r.within_6_weeks_share:.1%} of decisions; published "
            f"{r.published_within_6_weeks_pc}%)",
        ]
        if self.assessments is not None:
            a = self.assessments
            lines.append(
                f"  assessments, no plan       {a.no_plan:>8,}"
                f"  ({a.no_plan_share:.1%} of {a.plan_issued + a.no_plan:,} completed "
                f"with a decision; {a.no_plan_within_16_weeks:,} within 16 weeks)"
            )
        lines += [
            f"  new plans                  {self.new_plans:>8,}",
            f"  within 20 weeks (excl. ex) {t.within_20_weeks_excl_exceptions:>8,}"
            f"  ({t.within_20_weeks_share_excl_exceptions:.1%}; published "
            f"{t.published_within_20_weeks_excl_exceptions_pc}%)",
        ]
        if self.reviews is not None:
            v = self.reviews
            lines.append(
                f"  review decisions in 4 wks  {v.decisions_within_4_weeks:>8,}"
                f"  ({v.within_4_weeks_share:.1%}; published "
                f"{v.published_within_4_weeks_pc}%)"
            )
        for year, plans in sorted(self.plans_in_january.items()):
            lines.append(f"  plans in January {year}      {plans:>8,}")
        lines.append("columns used:")
        lines += [f"  {name}: {column}" for name, column in self.columns_used]
        return "\n".join(lines)


def data_zip_path() -> Path:
    """The release zip: ``$SEND_DFE_EHC_ZIP`` if set, else ``../shared/data/``."""
    configured = os.environ.get(DATA_ZIP_ENV)
    return Path(configured) if configured else DEFAULT_ZIP


class _Reader:
    """Rows of the release's CSV files, recording each column that is read."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self.used: list[tuple[str, str]] = []

    def rows(self, name: str) -> Iterator[dict[str, str]]:
        member = f"data/{name}"
        try:
            handle = self.archive.open(member)
        except KeyError as error:
            raise DfeDataError(
                f"{member} is not in {self.archive.filename}; is this the 2025 release "
                "of 'Education, health and care plans'?"
            ) from error
        with handle, io.TextIOWrapper(handle, encoding="utf-8-sig", newline="") as text:
            yield from csv.DictReader(text)

    def one_row(
        self,
        name: str,
        geography: Callable[[Mapping[str, str]], bool],
        period: str,
        topic: str,
    ) -> dict[str, str]:
        found = [
            row
            for row in self.rows(name)
            if geography(row)
            and row.get("time_period") == period
            and row.get("breakdown_topic") == topic
        ]
        if len(found) != 1:
            raise DfeDataError(
                f"expected one row in {name} for period {period} and breakdown "
                f"{topic!r}, found {len(found)}; check the local authority code and "
                "the year"
            )
        return found[0]

    def number(self, name: str, row: Mapping[str, str], column: str) -> int:
        value = self._cell(name, row, column)
        if value.lower() in _NOT_A_NUMBER:
            raise DfeDataError(f"{name} column {column} is {value!r} (not published)")
        return int(value.replace(",", ""))

    def percent(self, name: str, row: Mapping[str, str], column: str) -> float | None:
        value = self._cell(name, row, column)
        return None if value.lower() in _NOT_A_NUMBER else float(value)

    def _cell(self, name: str, row: Mapping[str, str], column: str) -> str:
        if column not in row:
            raise DfeDataError(f"{name} has no column {column!r}")
        if (name, column) not in self.used:
            self.used.append((name, column))
        return row[column].strip()


def _geography(old_la_code: str | None) -> Callable[[Mapping[str, str]], bool]:
    if old_la_code is None:
        return lambda row: row.get("geographic_level") == "National"
    return lambda row: (
        row.get("geographic_level") == "Local authority"
        and row.get("old_la_code") == old_la_code
    )


def _requests(
    reader: _Reader, where: Callable[[Mapping[str, str]], bool], period: str
) -> RequestFigures:
    name = "requests.csv"
    row = reader.one_row(name, where, period, "All requests for EHC needs assessments")
    by_age = {
        age_row["breakdown"]: reader.number(name, age_row, "requests_received_in_year")
        for age_row in reader.rows(name)
        if where(age_row)
        and age_row.get("time_period") == period
        and age_row.get("breakdown_topic") == "Child or young persons age"
    }
    return RequestFigures(
        received=reader.number(name, row, "requests_received_in_year"),
        decided_to_assess=reader.number(name, row, "requests_decided_to_assess"),
        decided_not_to_assess=reader.number(
            name, row, "requests_decided_not_to_assess"
        ),
        decision_not_made=reader.number(name, row, "requests_decision_not_made"),
        withdrawn=reader.number(name, row, "requests_withdrawn"),
        decided_within_6_weeks=reader.number(name, row, "request_outcome_six_weeks"),
        decided_after_6_weeks=reader.number(name, row, "request_outcome_over_6_weeks"),
        published_within_6_weeks_pc=reader.percent(
            name, row, "request_outcome_six_weeks_pc"
        ),
        published_not_assess_pc=reader.percent(name, row, "request_not_assess_pc"),
        by_age=by_age,
    )


def _timeliness(
    reader: _Reader, where: Callable[[Mapping[str, str]], bool], period: str
) -> TimelinessFigures:
    name = "timeliness_20_week.csv"
    row = reader.one_row(name, where, period, "All EHC plans issued")
    return TimelinessFigures(
        plans_issued=reader.number(name, row, "plans_issued_den"),
        plans_issued_excl_exceptions=reader.number(name, row, "plans_issued_den_ex"),
        within_20_weeks=reader.number(name, row, "plans_issued_within_20_weeks"),
        within_20_weeks_excl_exceptions=reader.number(
            name, row, "plans_issued_20_weeks_ex"
        ),
        published_within_20_weeks_pc=reader.percent(
            name, row, "pc_plans_issued_within_20_weeks"
        ),
        published_within_20_weeks_excl_exceptions_pc=reader.percent(
            name, row, "PC_plans_issued_20_weeks_ex"
        ),
        after_1_year=reader.number(name, row, "plans_issued_gt_1_year"),
    )


def _assessments(
    reader: _Reader, where: Callable[[Mapping[str, str]], bool], period: str
) -> AssessmentFigures:
    name = "assessments.csv"
    row = reader.one_row(name, where, period, "All EHC needs assessments")
    return AssessmentFigures(
        completed=reader.number(name, row, "assess_in_year"),
        plan_issued=reader.number(name, row, "assess_issued"),
        no_plan=reader.number(name, row, "assess_not_issued"),
        no_plan_within_16_weeks=reader.number(
            name, row, "outcome_decision_within_time"
        ),
        no_plan_after_16_weeks=reader.number(name, row, "outcome_decision_over_time"),
    )


def _reviews(
    reader: _Reader, where: Callable[[Mapping[str, str]], bool], year: int
) -> ReviewFigures | None:
    name = "annual_reviews.csv"
    rows = [
        row
        for row in reader.rows(name)
        if where(row)
        and row.get("time_period") == str(year)
        and row.get("breakdown_topic") == "All annual reviews"
    ]
    if not rows:
        return None
    row = rows[0]
    return ReviewFigures(
        plans=reader.number(name, row, "total_ehc_plans"),
        reviews_expected=reader.number(name, row, "review_expected"),
        meetings_held=reader.number(name, row, "total_review_meeting"),
        outcome_amend=reader.number(name, row, "outcome_amend"),
        outcome_maintain=reader.number(name, row, "outcome_maintan"),
        outcome_cease=reader.number(name, row, "outcome_cease"),
        # The release spells these two columns "decsion".
        decisions_within_4_weeks=reader.number(name, row, "number_decsion_4weeks"),
        decisions_after_4_weeks=reader.number(name, row, "number_decision_gt_4weeks"),
        published_within_4_weeks_pc=reader.percent(name, row, "pc_decsion_4weeks"),
    )


def _january_caseloads(
    reader: _Reader, where: Callable[[Mapping[str, str]], bool], year: int
) -> dict[int, int]:
    # Caseloads are counted in January and filed under the academic year around it:
    # January 2024 is period "202324".
    name = "caseload.csv"
    caseloads: dict[int, int] = {}
    for january in (year, year + 1):
        period = f"{january - 1}{january % 100:02d}"
        for row in reader.rows(name):
            if (
                where(row)
                and row.get("time_period") == period
                and row.get("breakdown_topic") == "All EHC plans"
            ):
                caseloads[january] = reader.number(name, row, "ehcplans")
    return caseloads


def load_la_figures(
    old_la_code: str | None = BUCKINGHAMSHIRE,
    year: int = 2024,
    zip_path: Path | str | None = None,
) -> LaFigures:
    """Read one local authority's figures (``old_la_code=None``: England's).

    Raises ``DfeDataError`` if the zip is missing or lacks the rows.
    """
    path = Path(zip_path) if zip_path is not None else data_zip_path()
    if not path.is_file():
        raise DfeDataError(
            f"the DfE release is not at {path}; put {ZIP_NAME} there or set "
            f"{DATA_ZIP_ENV} to its path"
        )
    where = _geography(old_la_code)
    period = str(year)

    with zipfile.ZipFile(path) as archive:
        reader = _Reader(archive)
        requests = _requests(reader, where, period)
        timeliness = _timeliness(reader, where, period)
        assessments = _assessments(reader, where, period)
        plans_row = reader.one_row("newplans.csv", where, period, "New EHC plans")
        new_plans = reader.number("newplans.csv", plans_row, "new_ehc_plans")
        reviews = _reviews(reader, where, year)
        caseloads = _january_caseloads(reader, where, year)
        area = "England" if old_la_code is None else plans_row.get("la_name", "")

    return LaFigures(
        geography=area,
        old_la_code=old_la_code,
        year=year,
        requests=requests,
        new_plans=new_plans,
        timeliness=timeliness,
        reviews=reviews,
        plans_in_january=caseloads,
        columns_used=tuple(reader.used),
        assessments=assessments,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.dfe",
        description="Print one council's figures from the DfE EHC plans release.",
    )
    parser.add_argument(
        "--la", default=BUCKINGHAMSHIRE, help="old LA code, or 'england'"
    )
    parser.add_argument("--year", type=int, default=2024)
    parser.add_argument(
        "--zip", type=Path, default=None, help="path of the release zip"
    )
    args = parser.parse_args(argv)
    code = None if args.la.lower() == "england" else args.la
    try:
        figures = load_la_figures(code, args.year, args.zip)
    except DfeDataError as error:
        print(f"dfe: {error}")
        return 2
    print(figures.describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
