"""The council's settings for the clocks, from the environment to the worker's clocks.

``DEADLINES_TERM_DATES`` (and ``DEADLINES_TERM_DATES_FILE``) and
``DEADLINES_LOCAL_TARGETS`` are read into the ``CouncilConfig`` the worker's engine is
built with; a value that cannot be used is refused at start-up with a message naming
the variable. The last tests run the processor as the worker does (the pipeline of
``test_processor_clocks``, with the engine configuration ``ClocksWorker`` builds from
the settings): the terms start the termly SENCO list target and a council's own
surgery amount moves that target's due date, which stays local, never statutory.

The term dates are a synthetic English school year: autumn 3 Sep to 19 Dec 2025,
spring 5 Jan to 27 Mar 2026, summer 13 Apr to 22 Jul 2026, autumn 2 Sep to 18 Dec 2026.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError
from test_processor_clocks import Harness, Log, case_id, only

from deadlines.__main__ import main
from deadlines.domain.council import CouncilConfig, Term
from deadlines.entrypoints.worker import ClocksWorker, engine_config, log_council
from deadlines.settings import DeadlinesSettings
from notify.domain.terms import parse_terms
from sendkit.settings import SettingsError
from sendkit.terms import (
    TermDatesError,
    parse_term_dates,
    parse_term_dates_csv,
)

YEAR = (
    "2025-09-03/2025-12-19, 2026-01-05/2026-03-27,"
    "2026-04-13/2026-07-22,2026-09-02/2026-12-18"
)
SPRING = Term(date(2026, 1, 5), date(2026, 3, 27))


@pytest.fixture(autouse=True)
def _no_council_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # The settings under test come from each test's own environment only.
    for name in (
        "DEADLINES_TERM_DATES",
        "DEADLINES_TERM_DATES_FILE",
        "DEADLINES_LOCAL_TARGETS",
        "DEADLINES_LEAD_WORKING_DAYS",
    ):
        monkeypatch.delenv(name, raising=False)


# Reading the settings -----------------------------------------------------------------


def test_term_dates_and_local_targets_become_the_councils_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    later = tmp_path / "terms.csv"
    later.write_text(
        "name,starts_on,ends_on\nspring 2027,2027-01-05,2027-03-26\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("DEADLINES_TERM_DATES", YEAR)
    monkeypatch.setenv("DEADLINES_TERM_DATES_FILE", str(later))
    monkeypatch.setenv(
        "DEADLINES_LOCAL_TARGETS", " local_area_surgery=4 , agency_referrals=OFF"
    )

    council = DeadlinesSettings().council()

    assert [t.starts_on.isoformat() for t in council.terms] == [
        "2025-09-03",
        "2026-01-05",
        "2026-04-13",
        "2026-09-02",
        "2027-01-05",
    ]
    assert council.terms[1] == SPRING
    assert dict(council.local_amounts) == {"local_area_surgery": 4}
    assert council.disabled == frozenset({"agency_referrals"})


def test_unset_and_empty_settings_keep_the_tables_own_targets_and_no_terms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEADLINES_TERM_DATES", "")
    monkeypatch.setenv("DEADLINES_TERM_DATES_FILE", "")
    monkeypatch.setenv("DEADLINES_LOCAL_TARGETS", "")

    council = DeadlinesSettings().council()

    assert council == CouncilConfig()


def test_notify_and_deadlines_read_the_same_term_dates_the_same_way() -> None:
    notify_terms = parse_terms(YEAR)
    deadlines_terms = DeadlinesSettings(term_dates=YEAR).council().terms

    assert [(t.starts_on, t.ends_on) for t in notify_terms] == [
        (t.starts_on, t.ends_on) for t in deadlines_terms
    ]
    assert len(deadlines_terms) == 4


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("DEADLINES_TERM_DATES", "2025-09-03/2025-12-19,2026-01-05", "first and last"),
        ("DEADLINES_TERM_DATES", "2025-09-03/19 December", "YYYY-MM-DD/YYYY-MM-DD"),
        ("DEADLINES_TERM_DATES", "2025-12-19/2025-09-03", "before it starts"),
        (
            "DEADLINES_TERM_DATES",
            "2025-09-03/2025-12-19,2025-12-15/2026-03-27",
            "overlap",
        ),
        ("DEADLINES_LOCAL_TARGETS", "local_area_surgery", "name=amount"),
        ("DEADLINES_LOCAL_TARGETS", "local_area_surgery=six", "whole number"),
        ("DEADLINES_LOCAL_TARGETS", "local_area_surgery=0", "1 or more"),
        (
            "DEADLINES_LOCAL_TARGETS",
            "local_area_surgery=4,local_area_surgery=5",
            "twice",
        ),
        ("DEADLINES_LOCAL_TARGETS", "final_plan=22", "the law sets it"),
        ("DEADLINES_LOCAL_TARGETS", "decision=off", "the law sets it"),
        ("DEADLINES_LOCAL_TARGETS", "surgery=4", "no clock of the table"),
        ("DEADLINES_LOCAL_TARGETS", "senco_review_list=2", "senco_review_list=off"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable_and_the_fix(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError) as refused:
        DeadlinesSettings()

    assert name in str(refused.value)
    assert says in str(refused.value)


def test_the_worker_refuses_to_start_with_a_bad_value_and_says_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEADLINES_LOCAL_TARGETS", "final_plan=22")
    monkeypatch.setenv("DEADLINES_TERM_DATES", "2025-09-03/soon")

    status = main(["worker"])

    lines = capsys.readouterr().err.splitlines()
    assert status == 2
    assert len(lines) == 2
    assert all(line.startswith("deadlines: cannot start: ") for line in lines)
    assert any("DEADLINES_TERM_DATES: '2025-09-03/soon'" in line for line in lines)
    assert any("DEADLINES_LOCAL_TARGETS names final_plan" in line for line in lines)


def test_a_term_dates_file_that_is_missing_or_clashes_stops_the_worker(
    tmp_path: Path,
) -> None:
    missing = DeadlinesSettings(term_dates_file=tmp_path / "absent.csv")
    clashing_file = tmp_path / "terms.csv"
    clashing_file.write_text(
        "starts_on,ends_on\n2026-03-01,2026-04-30\n", encoding="utf-8"
    )
    clashing = DeadlinesSettings(term_dates=YEAR, term_dates_file=clashing_file)

    with pytest.raises(SettingsError, match="cannot read DEADLINES_TERM_DATES_FILE"):
        engine_config(missing)
    with pytest.raises(SettingsError, match="overlap") as clash:
        engine_config(clashing)
    assert "DEADLINES_TERM_DATES with DEADLINES_TERM_DATES_FILE" in str(clash.value)


def test_the_shared_parser_names_the_file_and_line_of_a_bad_csv_term() -> None:
    assert parse_term_dates("", "X") == ()
    assert parse_term_dates_csv(
        "starts_on,ends_on\n2026-01-05,2026-03-27\n", "terms.csv"
    ) == ((SPRING.starts_on, SPRING.ends_on),)
    with pytest.raises(TermDatesError, match=r"terms\.csv line 3: .*'5 Jan 2027'"):
        parse_term_dates_csv(
            "starts_on,ends_on\n2026-01-05,2026-03-27\n5 Jan 2027,2027-03-26\n",
            "terms.csv",
        )
    with pytest.raises(TermDatesError, match="header row naming starts_on and ends_on"):
        parse_term_dates_csv("first,last\n2026-01-05,2026-03-27\n", "terms.csv")


# Through the processor, as the worker runs it -----------------------------------------


def _worker_harness(log: Log, settings: DeadlinesSettings) -> Harness:
    # The engine configuration the worker itself builds from its settings.
    return Harness(log, config=ClocksWorker(settings).config)


async def _one_case(harness: Harness, log: Log, name: str) -> str:
    case = case_id(name)
    await harness.deliver(
        [
            log.request(case, "2025-01-06T10:00:00Z"),
            log.event(case, "PlanIssued", {"issued_on": "2025-01-31"}, service="plans"),
            log.event(
                case,
                "ReviewArranged",
                {"review_id": "R1", "meeting_on": "2026-01-28"},
                service="reviews",
            ),
        ]
    )
    return case


async def test_configured_terms_start_the_senco_list_clock_and_the_surgery_moves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEADLINES_TERM_DATES", YEAR)
    monkeypatch.setenv(
        "DEADLINES_LOCAL_TARGETS", "local_area_surgery=4,agency_referrals=off"
    )
    log = Log()
    harness = _worker_harness(log, DeadlinesSettings(app_id="council-settings"))

    case = await _one_case(harness, log, "council-settings")

    # The first review is due by Fri 30 Jan 2026, in the spring term: its list is due
    # the day before that term starts.
    listing = only(harness.outputs(case), "ClockSet", "senco_review_list")
    assert listing.data["due_on"] == "2026-01-04"
    assert (listing.data["statutory"], listing.data["authority"]) == (False, "local")
    # Mon 6 Jan 2025 + 4 weeks, the council's own amount, not the table's 6.
    surgery = only(harness.outputs(case), "ClockSet", "local_area_surgery")
    assert surgery.data["due_on"] == "2025-02-03"
    assert surgery.data["statutory"] is False
    assert surgery.data["authority"] == "local"
    assert surgery.data["escalate"] is False
    assert surgery.data["legal_basis"].startswith("Local practice standard")
    clocks = {event.data["clock_id"] for event in harness.outputs(case)}
    assert "agency_referrals[review_id=R1]" not in clocks
    assert "review_notice[review_id=R1]" in clocks
    # A statutory clock of the same request is as the law says.
    decision = only(harness.outputs(case), "ClockSet", "decision")
    assert decision.data["due_on"] == "2025-02-17"


async def test_without_council_settings_the_same_case_has_the_tables_targets() -> None:
    log = Log()
    harness = _worker_harness(log, DeadlinesSettings(app_id="council-defaults"))

    case = await _one_case(harness, log, "council-defaults")

    clocks = {event.data["clock_id"] for event in harness.outputs(case)}
    assert "senco_review_list" not in clocks
    assert "agency_referrals[review_id=R1]" in clocks
    surgery = only(harness.outputs(case), "ClockSet", "local_area_surgery")
    assert surgery.data["due_on"] == "2025-02-17"


def test_the_worker_warns_when_the_terms_run_out_within_a_year(
    caplog: pytest.LogCaptureFixture,
) -> None:
    year = DeadlinesSettings(term_dates=YEAR).council()
    off = DeadlinesSettings(local_targets="senco_review_list=off").council()

    with caplog.at_level(logging.INFO, logger="deadlines.entrypoints.worker"):
        log_council(year, date(2025, 9, 1))
        log_council(year, date(2026, 1, 5))
        log_council(CouncilConfig(), date(2026, 1, 5))
        log_council(off, date(2026, 1, 5))

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "the term dates end on 2026-12-18, within a year" in warnings[0]
    assert warnings[1].startswith("no term dates")
    settings_logged = [
        r for r in caplog.records if r.getMessage() == "council settings"
    ]
    assert len(settings_logged) == 4
