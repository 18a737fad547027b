"""Phase transfers: the cohort of a September, its due dates, identifying, statuses."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from placement_support import (
    FixedClock,
    days,
    feed,
    known_case,
    plan_amended,
    plan_ceased,
    received,
)

from placement.application.service import CohortEntry, PlacementService
from placement.domain import CaseFacts, InvalidCommand
from placement.domain.phases import PhaseConfig, TransferStatus, infant_to_junior
from placement.settings import PlacementSettings
from send_schemas import placement as contract
from send_schemas import plans as plans_contract
from sendkit.store import InMemoryEventStore
from store_backends import DURABLE

STORE_BACKENDS = DURABLE
"""Each test that uses the store runs on SQLite and on PostgreSQL (conftest.py)."""

THIS_YEAR = "2025-09-15T09:00:00Z"
"""A request in school year 2025: the year stated is the year the child is in now."""

INFANT = 111111
JUNIOR_ELSEWHERE = 111112


def cohort_by_case(service: PlacementService, year: int) -> dict[str, CohortEntry]:
    return {entry.case_id: entry for entry in service.cohort(year).entries}


# The curriculum year ------------------------------------------------------------------


def test_the_curriculum_year_moves_up_each_september() -> None:
    # Year 5 on a request of January 2025 (school year 2024).
    facts = CaseFacts("c", curriculum_year=5, year_recorded_in=2024)

    assert facts.year_on(days("2025-08-31")) == 5
    assert facts.year_on(days("2025-09-01")) == 6
    assert facts.year_in(2030) == 11
    assert facts.year_in(2040) == 14  # past Year 13: "any year after", 19 to 25
    assert CaseFacts("n", curriculum_year=-2, year_recorded_in=2024).year_in(2023) is (
        None
    )
    assert CaseFacts("u").year_in(2025) is None


def test_the_year_counts_from_the_school_year_of_the_request(
    store: InMemoryEventStore, service: PlacementService
) -> None:
    # In Year 5 when intake received the request on 31 August 2025 (school year
    # 2024), so in Year 6 from 1 September 2025 and moving to secondary in 2026.
    august = known_case(store, curriculum_year=5, received_at="2025-08-31T10:00:00Z")
    # In Year 5 on 1 September 2025: still in Year 5 now, moving in 2027.
    september = known_case(store, curriculum_year=5, received_at="2025-09-01T10:00:00Z")

    assert set(cohort_by_case(service, 2026)) == {august}
    assert set(cohort_by_case(service, 2027)) == {september}


# The cohort ---------------------------------------------------------------------------


def test_the_2026_cohort_from_plans_with_known_curriculum_years(
    store: InMemoryEventStore, service: PlacementService
) -> None:
    nursery = known_case(store, curriculum_year=-1, received_at=THIS_YEAR)
    year2 = known_case(store, curriculum_year=2, received_at=THIS_YEAR)
    year5 = known_case(store, curriculum_year=5, received_at=THIS_YEAR)
    year6 = known_case(store, curriculum_year=6, received_at=THIS_YEAR)
    year11 = known_case(store, curriculum_year=11, received_at=THIS_YEAR)
    year12 = known_case(store, curriculum_year=12, received_at=THIS_YEAR)
    draft_only = known_case(store, curriculum_year=6, received_at=THIS_YEAR, plan=False)
    feed(
        store,
        received(
            plans_contract.DraftPlanIssued.EVENT_TYPE,
            {"case_id": draft_only, "served_on": "2025-09-20"},
        ),
    )
    ceased = known_case(store, curriculum_year=6, received_at=THIS_YEAR)
    feed(store, plan_ceased(ceased))
    transferred_in = str(uuid.uuid4())
    feed(
        store,
        received(
            plans_contract.PlanTransferredIn.EVENT_TYPE,
            {"case_id": transferred_in, "transferred_on": "2025-09-10"},
        ),
    )

    view = service.cohort(2026)

    entries = {entry.case_id: entry for entry in view.entries}
    assert set(entries) == {nursery, year6, year11}
    assert {case: entries[case].phase for case in entries} == {
        nursery: "into_reception",
        year6: "primary_to_secondary",
        year11: "secondary_to_post16",
    }
    assert view.year_unknown == [transferred_in]
    for left_out in (year2, year5, year12, draft_only, ceased):
        assert left_out not in entries

    # Year 6 to secondary in September 2026: before 15 February, so by Saturday 14
    # February; act by Friday 13 February. The Code's "by 15 February" beside it.
    secondary = entries[year6]
    assert (secondary.transfer, secondary.leaving_year) == ("school", 6)
    assert secondary.due_on == days("2026-02-14")
    assert secondary.act_by == days("2026-02-13")
    assert secondary.guidance_due_on == days("2026-02-15")
    assert secondary.status is TransferStatus.DUE
    # Year 11 to college: before 31 March, so by Monday 30 March, a working day.
    college = entries[year11]
    assert (college.transfer, college.leaving_year) == ("post16", 11)
    assert college.due_on == days("2026-03-30")
    assert college.act_by is None
    assert college.guidance_due_on is None
    assert entries[nursery].due_on == days("2026-02-14")


def test_infant_to_junior_only_where_the_council_has_infant_schools(
    store: InMemoryEventStore, clock: FixedClock
) -> None:
    at_infant = known_case(
        store, curriculum_year=2, received_at=THIS_YEAR, setting_urn=INFANT
    )
    at_primary = known_case(store, curriculum_year=2, received_at=THIS_YEAR)

    primary_only = PlacementService(store, clock=clock)
    everywhere = PlacementService(
        store,
        clock=clock,
        phases=PlacementSettings(infant_schools="all").phase_config(),
    )
    listed = PlacementService(
        store,
        clock=clock,
        phases=PlacementSettings(infant_schools=f"{INFANT}").phase_config(),
    )

    assert cohort_by_case(primary_only, 2026) == {}
    assert set(cohort_by_case(everywhere, 2026)) == {at_infant, at_primary}
    assert set(cohort_by_case(listed, 2026)) == {at_infant}


def test_a_three_tier_council_sets_its_whole_table(
    store: InMemoryEventStore, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, middle, primary = 131001, 131101, 131201
    table = [
        {"phase": "into_reception", "leaving_year": -1},
        {"phase": "first_to_middle", "leaving_year": 4, "schools": [first]},
        {"phase": "middle_to_secondary", "leaving_year": 8, "schools": [middle]},
        {
            "phase": "primary_to_secondary",
            "leaving_year": 6,
            "except_schools": [middle],
        },
        {"phase": "secondary_to_post16", "leaving_year": 11},
    ]
    monkeypatch.setenv("PLACEMENT_PHASE_TRANSFERS", json.dumps(table))
    service = PlacementService(
        store, clock=clock, phases=PlacementSettings().phase_config()
    )
    year4_first = known_case(
        store, curriculum_year=4, received_at=THIS_YEAR, setting_urn=first
    )
    year6_middle = known_case(
        store, curriculum_year=6, received_at=THIS_YEAR, setting_urn=middle
    )
    year8_middle = known_case(
        store, curriculum_year=8, received_at=THIS_YEAR, setting_urn=middle
    )
    year6_primary = known_case(
        store, curriculum_year=6, received_at=THIS_YEAR, setting_urn=primary
    )

    phases = {
        case: entry.phase for case, entry in cohort_by_case(service, 2026).items()
    }

    assert phases == {
        year4_first: "first_to_middle",
        year8_middle: "middle_to_secondary",
        year6_primary: "primary_to_secondary",
    }
    assert year6_middle not in phases


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PLACEMENT_INFANT_SCHOOLS", "some", "none, all, or school URNs"),
        ("PLACEMENT_INFANT_SCHOOLS", "12345", "none, all, or school URNs"),
        (
            "PLACEMENT_PHASE_TRANSFERS",
            '[{"phase": "year_6_leavers", "leaving_year": 6}]',
            "phase",
        ),
    ],
)
def test_a_transfer_table_that_cannot_be_read_stops_the_settings(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ValueError, match=message):
        PlacementSettings()


def test_infant_schools_and_a_whole_table_together_are_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        PlacementSettings(
            infant_schools="all",
            phase_transfers=[{"phase": "into_reception", "leaving_year": -1}],
        )


def test_the_first_rule_that_applies_wins() -> None:
    config = PhaseConfig((infant_to_junior(frozenset({INFANT})),))

    assert config.rule_for(2, INFANT) is not None
    assert config.rule_for(2, JUNIOR_ELSEWHERE) is None
    assert config.rule_for(3, INFANT) is None


# Identifying ----------------------------------------------------------------------


def test_identifying_records_one_transfer_per_child_and_again_nothing_new(
    store: InMemoryEventStore, service: PlacementService
) -> None:
    year6 = known_case(store, curriculum_year=6, received_at=THIS_YEAR)
    year11 = known_case(store, curriculum_year=11, received_at=THIS_YEAR)
    known_case(store, curriculum_year=9, received_at=THIS_YEAR)

    first = service.identify_transfers(2026, actor="ehcco-9")

    assert sorted(first.body["identified"]) == sorted([year6, year11])
    assert first.body["cohort"] == 2
    data = {event.stream_id: event.data for event in first.recorded}
    assert data[year6] == {
        "case_id": year6,
        "transfer": "school",
        "transfer_year": 2026,
        "phase": "primary_to_secondary",
        "leaving_year": 6,
    }
    assert data[year11]["transfer"] == "post16"
    assert {event.type for event in first.recorded} == {
        contract.PhaseTransferDue.EVENT_TYPE
    }
    assert {event.metadata.actor for event in first.recorded} == {"ehcco-9"}
    assert len({event.metadata.causation_id for event in first.recorded}) == 1

    again = service.identify_transfers(2026)

    assert again.recorded == []
    assert again.body["identified"] == []
    assert again.body["already_identified"] == 2
    assert len(store.read_all()) == 2


def test_a_child_who_joins_the_cohort_later_is_identified_on_the_next_run(
    store: InMemoryEventStore, service: PlacementService
) -> None:
    earlier = known_case(store, curriculum_year=6, received_at=THIS_YEAR)
    service.identify_transfers(2026)
    later = known_case(store, curriculum_year=6, received_at=THIS_YEAR)

    answer = service.identify_transfers(2026)

    assert answer.body["identified"] == [later]
    statuses = {
        case: entry.status for case, entry in cohort_by_case(service, 2026).items()
    }
    assert statuses == {
        earlier: TransferStatus.IDENTIFIED,
        later: TransferStatus.IDENTIFIED,
    }


@pytest.mark.parametrize("year", [2025, 2028])
def test_only_the_next_two_septembers_can_be_identified(
    service: PlacementService, store: InMemoryEventStore, year: int
) -> None:
    known_case(store, curriculum_year=6, received_at=THIS_YEAR)

    with pytest.raises(InvalidCommand, match="2026 or 2027") as refused:
        service.identify_transfers(year)

    assert refused.value.field_errors[0][0] == "path.year"
    assert store.read_all() == []


# Statuses -------------------------------------------------------------------------


def test_each_childs_status_follows_the_plan_and_the_date(
    store: InMemoryEventStore, service: PlacementService, clock: FixedClock
) -> None:
    on_time, late, overdue, ended, early = (
        known_case(store, curriculum_year=6, received_at=THIS_YEAR) for _ in range(5)
    )
    service.identify_transfers(2026)
    feed(store, plan_amended(on_time, "2026-01-20"))
    feed(store, plan_amended(late, "2026-02-20"))
    feed(store, plan_amended(overdue, "2026-01-10", setting_urn=None))  # section F
    feed(store, plan_ceased(ended, "2025-12-01"))
    # An amendment before the school year before the move does not name the next one.
    feed(store, plan_amended(early, "2025-08-20"))

    clock.now = datetime(2026, 2, 16, 9, 0, tzinfo=UTC)
    entries = {entry.case_id: entry for entry in service.cohort(2026).entries}

    assert entries[on_time].status is TransferStatus.NAMED
    assert entries[on_time].named_on == days("2026-01-20")
    assert entries[late].status is TransferStatus.NAMED_LATE
    assert entries[overdue].status is TransferStatus.OVERDUE
    assert entries[ended].status is TransferStatus.PLAN_ENDED
    assert entries[ended].identified_on == days("2025-10-06")
    assert entries[early].status is TransferStatus.OVERDUE


def test_before_the_due_date_an_unnamed_transfer_is_identified_not_overdue(
    store: InMemoryEventStore, service: PlacementService, clock: FixedClock
) -> None:
    case_id = known_case(store, curriculum_year=6, received_at=THIS_YEAR)
    service.identify_transfers(2026)

    # London keeps GMT in February: 23:00Z is still the 14th, 00:30Z the 15th.
    clock.now = datetime(2026, 2, 14, 23, 0, tzinfo=UTC)
    assert cohort_by_case(service, 2026)[case_id].status is (TransferStatus.IDENTIFIED)
    clock.now = datetime(2026, 2, 15, 0, 30, tzinfo=UTC)
    assert cohort_by_case(service, 2026)[case_id].status is (TransferStatus.OVERDUE)


def test_a_ceased_plan_is_not_identified(
    store: InMemoryEventStore, service: PlacementService
) -> None:
    ceased = known_case(store, curriculum_year=6, received_at=THIS_YEAR)
    feed(store, plan_ceased(ceased))

    answer = service.identify_transfers(2026)

    assert answer.body["cohort"] == 0
    assert store.read_all() == []


def test_an_amendment_in_the_window_before_the_transfer_was_identified_names_it(
    store: InMemoryEventStore, service: PlacementService
) -> None:
    # Amended on 20 September 2025, in the 12 months before the move; identified on
    # 6 October. The deadlines clock ends at the earliest-dated amendment in that
    # window wherever it was recorded, so the transfer stays named, on 20 September.
    case_id = known_case(store, curriculum_year=6, received_at=THIS_YEAR)
    feed(store, plan_amended(case_id, "2025-09-20"))
    assert cohort_by_case(service, 2026)[case_id].status is TransferStatus.NAMED

    service.identify_transfers(2026)

    entry = cohort_by_case(service, 2026)[case_id]
    assert entry.status is TransferStatus.NAMED
    assert entry.named_on == days("2025-09-20")
    feed(store, plan_amended(case_id, "2025-10-06"))
    assert cohort_by_case(service, 2026)[case_id].named_on == days("2025-09-20")


def test_an_amendment_before_the_window_does_not_name_the_transfer(
    store: InMemoryEventStore, service: PlacementService
) -> None:
    # Amended on 31 August 2025, the day before the 12 months before a September 2026
    # move begin: that amendment is not the phase-transfer review.
    case_id = known_case(store, curriculum_year=6, received_at=THIS_YEAR)
    feed(store, plan_amended(case_id, "2025-08-31"))

    service.identify_transfers(2026)

    entry = cohort_by_case(service, 2026)[case_id]
    assert entry.status is TransferStatus.IDENTIFIED
    assert entry.named_on is None
