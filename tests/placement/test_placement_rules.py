"""Every placement rule, through the application layer with the in-memory store."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from placement_support import (
    COLLEGE_UKPRN,
    SCHOOL,
    SECONDARY,
    FixedClock,
    feed,
    known_case,
    plan_ceased,
    received,
)

from placement.application.service import PlacementService, new_id
from placement.domain import (
    AnswerConsultation,
    CaseNotFound,
    CommunicateDecision,
    ConsultationNotFound,
    ConsultSetting,
    DecidePanel,
    DecideTransport,
    ImpossibleTransition,
    InvalidCommand,
    NotListed,
    OptionInput,
    PanelNotFound,
    PrepareSubmission,
    ProposePost16Move,
    ReferTransport,
    RequestSetting,
)
from sendkit.store import InMemoryEventStore
from sendkit.subscriber import Unprocessable
from store_backends import DURABLE

STORE_BACKENDS = DURABLE
"""Each test that uses the store runs on SQLite and on PostgreSQL (conftest.py)."""

SPECIAL = 145678


def fields_of(error: pytest.ExceptionInfo[InvalidCommand]) -> list[str]:
    return [field for field, _ in error.value.field_errors]


def names(store: InMemoryEventStore, case_id: str) -> list[str]:
    return [event.type.split(".")[2] for event in store.read_stream(case_id)]


def consult(
    service: PlacementService,
    case_id: str,
    setting_id: int = SECONDARY,
    kind: str = "urn",
    sent_on: date = date(2025, 9, 22),
) -> str:
    consultation_id = new_id()
    service.handle(ConsultSetting(case_id, consultation_id, setting_id, kind, sent_on))
    return consultation_id


def option(setting_id: int = SECONDARY, kind: str = "urn", **costs: int) -> OptionInput:
    return OptionInput(
        setting_id,
        kind,
        costs.get("education", 1_200_000),
        costs.get("health", 150_000),
        costs.get("social_care", 0),
    )


def submit(
    service: PlacementService, case_id: str, *options: OptionInput, **changes: Any
) -> str:
    submission_id = new_id()
    values: dict[str, Any] = {
        "prepared_on": date(2025, 10, 1),
        "family_views": "we would like the school near grandma",
    } | changes
    service.handle(
        PrepareSubmission(
            case_id, submission_id, options=options or (option(),), **values
        )
    )
    return submission_id


def ready_for_panel(service: PlacementService, store: InMemoryEventStore) -> str:
    case_id = known_case(store)
    consult(service, case_id)
    consult(service, case_id, SPECIAL)
    submit(service, case_id, option(), option(SPECIAL, education=4_500_000))
    return case_id


def panel_on(service: PlacementService, *case_ids: str, day: str = "2025-10-02") -> str:
    answer = service.schedule_panel(date.fromisoformat(day), case_ids)
    panel_id: str = answer.body["panel_id"]
    return panel_id


# Knowing the case ---------------------------------------------------------------------


def test_a_case_neither_intake_nor_plans_has_sent_is_not_found(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    with pytest.raises(CaseNotFound, match="retry shortly"):
        consult(service, str(uuid.uuid4()))
    assert store.read_all() == []


def test_the_follower_keeps_the_facts_and_ignores_other_events(
    store: InMemoryEventStore, service: PlacementService
) -> None:
    case_id = known_case(store, curriculum_year=4)
    feed(
        store,
        received(
            "send.intake.CoordinatorAssigned.v1",
            {"case_id": case_id, "coordinator_id": "ehcco-3"},
        ),
    )

    view = service.case(case_id)

    assert view.facts is not None
    assert view.facts.curriculum_year == 4
    assert view.facts.year_recorded_in == 2024
    assert view.facts.received_on == date(2025, 1, 6)
    assert str(view.facts.plan_status) == "issued"
    assert view.facts.setting_urn == SCHOOL
    assert view.events == []


def test_an_event_naming_another_case_than_its_subject_is_unprocessable(
    store: InMemoryEventStore,
) -> None:
    event = received(
        "send.plans.PlanCeased.v1",
        {"case_id": str(uuid.uuid4()), "ceased_on": "2025-09-01", "reason": "other"},
    )
    mislabelled = replace(event, subject=str(uuid.uuid4()))

    with pytest.raises(Unprocessable, match="subject"):
        feed(store, mislabelled)
    with store.transaction() as tx:
        assert tx.list_documents("case_facts") == []


# Requests for a setting ---------------------------------------------------------------


def test_a_request_for_a_named_setting_keeps_the_views_private(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    case_id = known_case(store)

    service.handle(
        RequestSetting(
            case_id,
            new_id(),
            "parent",
            "named_setting",
            SECONDARY,
            "urn",
            date(2025, 9, 30),
            views="she wants to go with her friends",
        )
    )

    (event,) = store.read_stream(case_id)
    assert event.data["setting_id"] == SECONDARY
    assert "views" not in event.data
    assert event.private == {"views": "she wants to go with her friends"}


def test_a_change_of_setting_needs_an_issued_plan(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    case_id = known_case(store, plan=False)

    with pytest.raises(ImpossibleTransition, match="no issued plan"):
        service.handle(
            RequestSetting(
                case_id,
                new_id(),
                "young_person",
                "change_of_setting",
                COLLEGE_UKPRN,
                "ukprn",
                date(2025, 9, 30),
            )
        )
    assert store.read_all() == []


def test_the_same_request_twice_is_refused(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    case_id = known_case(store)
    command = RequestSetting(
        case_id, new_id(), "parent", "named_setting", SECONDARY, "urn", date(2025, 9, 3)
    )
    service.handle(command)

    with pytest.raises(ImpossibleTransition, match="already recorded"):
        service.handle(command)


def test_every_bad_field_of_a_request_is_named_at_once(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    case_id = known_case(store)

    with pytest.raises(InvalidCommand) as refused:
        service.handle(
            RequestSetting(
                case_id,
                new_id(),
                "grandparent",
                "any_school",
                123456,
                "ukprn",
                date(2025, 10, 7),
                views="   ",
            )
        )

    assert fields_of(refused) == [
        "requested_by",
        "request_kind",
        "setting_id",
        "requested_on",
        "views",
    ]
    assert store.read_all() == []


# Consultations ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting_id", "kind", "message"),
    [
        (12345, "urn", "6 digits"),
        (COLLEGE_UKPRN, "urn", "6 digits"),
        (SECONDARY, "ukprn", "8 digits"),
        (20000000, "ukprn", "8 digits"),
    ],
)
def test_a_setting_number_must_fit_its_kind(
    service: PlacementService,
    store: InMemoryEventStore,
    setting_id: int,
    kind: str,
    message: str,
) -> None:
    case_id = known_case(store)

    with pytest.raises(InvalidCommand, match=message) as refused:
        consult(service, case_id, setting_id, kind)
    assert fields_of(refused) == ["setting_id"]


def test_consulting_a_school_and_a_college(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    case_id = known_case(store)

    school = consult(service, case_id)
    college = consult(service, case_id, COLLEGE_UKPRN, "ukprn")

    consultations = service.case(case_id).case.consultations
    assert [c.consultation_id for c in consultations] == [school, college]
    assert [c.setting.kind for c in consultations] == ["urn", "ukprn"]
    assert all(c.is_open for c in consultations)


def test_a_setting_is_not_consulted_again_while_it_has_not_answered(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    case_id = known_case(store)
    first = consult(service, case_id)

    with pytest.raises(ImpossibleTransition, match="has not answered"):
        consult(service, case_id)

    service.handle(
        AnswerConsultation(case_id, first, "declined", date(2025, 9, 30), "full")
    )
    consult(service, case_id, sent_on=date(2025, 10, 1))
    assert names(store, case_id).count("SettingConsulted") == 2


def test_consulting_a_setting_for_a_ceased_plan_is_refused(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    case_id = known_case(store)
    feed(store, plan_ceased(case_id))

    with pytest.raises(ImpossibleTransition, match="ceased"):
        consult(service, case_id)
    assert store.read_stream(case_id) == []


def test_a_consultation_is_dated_between_the_request_and_today(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    case_id = known_case(store, received_at="2025-03-03T10:00:00Z")

    with pytest.raises(InvalidCommand, match="2025-03-03"):
        consult(service, case_id, sent_on=date(2025, 3, 2))
    with pytest.raises(InvalidCommand, match="future"):
        consult(service, case_id, sent_on=date(2025, 10, 7))


def test_an_answer_is_recorded_once(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    case_id = known_case(store)
    consultation_id = consult(service, case_id)
    answer = AnswerConsultation(
        case_id, consultation_id, "place_offered", date(2025, 10, 1)
    )
    service.handle(answer)

    with pytest.raises(ImpossibleTransition, match="already answered"):
        service.handle(answer)
    found = service.case(case_id).case.consultation(consultation_id)
    assert found is not None
    assert (found.outcome, found.answered_on) == ("place_offered", date(2025, 10, 1))


def test_answering_an_unknown_consultation_is_refused(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    case_id = known_case(store)
    consult(service, case_id)

    with pytest.raises(ConsultationNotFound):
        service.handle(
            AnswerConsultation(case_id, new_id(), "place_offered", date(2025, 10, 1))
        )
    assert names(store, case_id) == ["SettingConsulted"]


def test_a_declined_place_needs_its_reasons_and_an_answer_follows_the_consultation(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    case_id = known_case(store)
    consultation_id = consult(service, case_id, sent_on=date(2025, 9, 22))

    with pytest.raises(InvalidCommand) as refused:
        service.handle(
            AnswerConsultation(case_id, consultation_id, "declined", date(2025, 9, 21))
        )

    assert fields_of(refused) == ["answered_on", "reasons"]


def test_the_reasons_of_a_decline_stay_private(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    case_id = known_case(store)
    consultation_id = consult(service, case_id)

    service.handle(
        AnswerConsultation(
            case_id,
            consultation_id,
            "declined",
            date(2025, 9, 29),
            reasons="cannot meet the sensory needs",
        )
    )

    event = store.read_stream(case_id)[-1]
    assert event.data == {
        "case_id": case_id,
        "consultation_id": consultation_id,
        "answered_on": "2025-09-29",
        "outcome": "declined",
    }
    assert event.private == {"reasons": "cannot meet the sensory needs"}


# Panel submissions --------------------------------------------------------------------


def test_a_submission_compares_the_consulted_settings_by_cost(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    case_id = known_case(store)
    consult(service, case_id)
    consult(service, case_id, SPECIAL)

    submit(
        service,
        case_id,
        option(education=1_000_000, health=200_000, social_care=50_000),
        option(SPECIAL, education=4_000_000, health=300_000, social_care=0),
    )

    event = store.read_stream(case_id)[-1]
    assert [o["annual_cost_pence"] for o in event.data["options"]] == [
        1_250_000,
        4_300_000,
    ]
    assert event.private == {"family_views": "we would like the school near grandma"}


def test_every_option_must_be_a_different_consulted_setting_with_whole_pence(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    case_id = known_case(store)
    consult(service, case_id)

    with pytest.raises(InvalidCommand) as refused:
        submit(
            service,
            case_id,
            option(),
            option(),
            option(SPECIAL),
            option(education=-1),
        )

    assert fields_of(refused) == [
        "options.1.setting_id",
        "options.2.setting_id",
        "options.3.education_pence",
    ]
    assert names(store, case_id) == ["SettingConsulted"]


def test_a_submission_needs_one_to_ten_options(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    case_id = known_case(store)

    with pytest.raises(InvalidCommand, match="1 to 10"):
        service.handle(PrepareSubmission(case_id, new_id(), date(2025, 10, 1), ()))


def test_a_submission_is_not_replaced_while_the_case_waits_on_a_panel(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    case_id = ready_for_panel(service, store)
    panel_on(service, case_id)

    with pytest.raises(ImpossibleTransition, match="listed for panel"):
        submit(service, case_id)


# Panels -------------------------------------------------------------------------------


def test_scheduling_a_panel_lists_every_case_on_it(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    first, second = ready_for_panel(service, store), ready_for_panel(service, store)

    answer = service.schedule_panel(date(2025, 10, 9), [first, second], actor="chair")

    panel_id = answer.body["panel_id"]
    for case_id in (first, second):
        event = store.read_stream(case_id)[-1]
        assert event.type == "send.placement.CaseListedForPanel.v1"
        assert event.data == {
            "case_id": case_id,
            "panel_id": panel_id,
            "panel_on": "2025-10-09",
        }
        assert event.metadata.actor == "chair"
    view = service.panel(panel_id)
    assert [case for case, _ in view.cases] == sorted([first, second])


def test_a_panel_lists_all_its_cases_or_none(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    ready = ready_for_panel(service, store)
    unready = known_case(store)
    before = len(store.read_all())

    with pytest.raises(ImpossibleTransition, match="no panel submission"):
        service.schedule_panel(date(2025, 10, 9), [ready, unready])

    assert len(store.read_all()) == before


def test_unknown_and_repeated_cases_of_a_panel_are_named(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    ready = ready_for_panel(service, store)

    with pytest.raises(InvalidCommand) as refused:
        service.schedule_panel(date(2025, 10, 9), [ready, ready])
    assert fields_of(refused) == ["case_ids.1"]

    with pytest.raises(InvalidCommand) as refused:
        service.schedule_panel(date(2025, 10, 9), [ready, str(uuid.uuid4())])
    assert fields_of(refused) == ["case_ids.1"]


def test_a_case_is_on_one_panel_at_a_time_and_a_panel_meets_after_the_submission(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    case_id = ready_for_panel(service, store)

    with pytest.raises(InvalidCommand) as refused:
        service.schedule_panel(date(2025, 9, 30), [case_id])
    assert fields_of(refused) == ["case_ids.0.panel_on"]

    panel_on(service, case_id)
    with pytest.raises(ImpossibleTransition, match="already listed"):
        panel_on(service, case_id, day="2025-11-06")


def test_more_cases_join_a_panel_on_its_date(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    first, second = ready_for_panel(service, store), ready_for_panel(service, store)
    panel_id = panel_on(service, first, day="2025-10-16")

    service.schedule_panel(None, [second], panel_id=panel_id)

    assert store.read_stream(second)[-1].data["panel_on"] == "2025-10-16"
    with pytest.raises(PanelNotFound):
        service.schedule_panel(None, [second], panel_id=new_id())


def test_the_panel_decides_a_case_once(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    case_id = ready_for_panel(service, store)
    panel_id = panel_on(service, case_id)
    decision = DecidePanel(case_id, panel_id, "setting_named", SPECIAL, "urn")
    service.handle(decision)

    with pytest.raises(ImpossibleTransition, match="decides a case once"):
        service.handle(decision)

    event = store.read_stream(case_id)[-1]
    assert event.data == {
        "case_id": case_id,
        "panel_id": panel_id,
        "outcome": "setting_named",
        "decided_on": "2025-10-02",
        "setting_id": SPECIAL,
        "setting_id_kind": "urn",
    }


def test_a_panel_decides_only_once_it_has_met(
    service: PlacementService, store: InMemoryEventStore, clock: FixedClock
) -> None:
    case_id = ready_for_panel(service, store)
    panel_id = panel_on(service, case_id, day="2025-10-16")

    with pytest.raises(ImpossibleTransition, match="meets on 2025-10-16"):
        service.handle(DecidePanel(case_id, panel_id, "deferred"))

    clock.now = datetime(2025, 10, 16, 15, 0, tzinfo=UTC)
    service.handle(DecidePanel(case_id, panel_id, "deferred"))


def test_a_named_setting_must_be_an_option_and_a_decline_needs_reasons(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    case_id = ready_for_panel(service, store)
    panel_id = panel_on(service, case_id)

    with pytest.raises(InvalidCommand, match="not one of the options"):
        service.handle(DecidePanel(case_id, panel_id, "setting_named", 199999, "urn"))
    with pytest.raises(InvalidCommand) as refused:
        service.handle(DecidePanel(case_id, panel_id, "declined", SECONDARY, "urn"))
    assert fields_of(refused) == ["setting_id", "reasons"]
    with pytest.raises(InvalidCommand) as refused:
        service.handle(DecidePanel(case_id, panel_id, "setting_named"))
    assert fields_of(refused) == ["setting_id"]


def test_a_case_not_on_the_panel_cannot_be_decided_there(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    listed, other = ready_for_panel(service, store), ready_for_panel(service, store)
    panel_id = panel_on(service, listed)

    with pytest.raises(NotListed):
        service.handle(DecidePanel(other, panel_id, "deferred"))


def test_a_deferred_case_goes_to_another_panel_a_decided_one_needs_a_new_submission(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    case_id = ready_for_panel(service, store)
    first = panel_on(service, case_id, day="2025-10-02")
    service.handle(DecidePanel(case_id, first, "deferred", reasons="need EP advice"))

    second = panel_on(service, case_id, day="2025-10-03")
    service.handle(
        DecidePanel(case_id, second, "declined", reasons="needs met in mainstream")
    )

    with pytest.raises(ImpossibleTransition, match="new submission"):
        panel_on(service, case_id, day="2025-10-06")
    submit(service, case_id, prepared_on=date(2025, 10, 6))
    panel_on(service, case_id, day="2025-10-06")
    assert names(store, case_id).count("CaseListedForPanel") == 3


def test_the_family_is_told_of_a_decision_once_after_it_is_made(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    case_id = ready_for_panel(service, store)
    panel_id = panel_on(service, case_id)
    told = CommunicateDecision(case_id, panel_id, date(2025, 10, 3))

    with pytest.raises(ImpossibleTransition, match="not decided"):
        service.handle(told)
    service.handle(DecidePanel(case_id, panel_id, "setting_named", SECONDARY, "urn"))
    with pytest.raises(InvalidCommand, match="when the panel met"):
        service.handle(CommunicateDecision(case_id, panel_id, date(2025, 10, 1)))
    service.handle(told)
    with pytest.raises(ImpossibleTransition, match="already told"):
        service.handle(told)


# Post-16 moves ------------------------------------------------------------------------


def test_a_post16_move_is_for_a_future_day_in_year_12_or_later(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    year12 = known_case(store, curriculum_year=11)  # Year 11 in Jan 2025: now 12
    year9 = known_case(store, curriculum_year=8)

    service.handle(ProposePost16Move(year12, date(2026, 4, 20)))

    assert store.read_stream(year12)[-1].data == {
        "case_id": year12,
        "move_on": "2026-04-20",
    }
    with pytest.raises(ImpossibleTransition, match="year 9"):
        service.handle(ProposePost16Move(year9, date(2026, 4, 20)))
    with pytest.raises(InvalidCommand, match="after today"):
        service.handle(ProposePost16Move(year12, date(2025, 10, 6)))
    with pytest.raises(ImpossibleTransition, match="already proposed"):
        service.handle(ProposePost16Move(year12, date(2026, 4, 20)))
    with pytest.raises(InvalidCommand, match="at most three years ahead"):
        service.handle(ProposePost16Move(year12, date(9999, 12, 31)))


# Transport ----------------------------------------------------------------------------


def test_a_referral_needs_an_eligible_decision_and_names_the_setting(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    case_id = ready_for_panel(service, store)
    panel_id = panel_on(service, case_id)
    service.handle(DecidePanel(case_id, panel_id, "setting_named", SPECIAL, "urn"))

    with pytest.raises(ImpossibleTransition, match="eligible"):
        service.handle(ReferTransport(case_id, date(2025, 10, 3)))
    service.handle(DecideTransport(case_id, False, date(2025, 10, 3)))
    with pytest.raises(ImpossibleTransition, match="eligible"):
        service.handle(ReferTransport(case_id, date(2025, 10, 3)))

    service.handle(DecideTransport(case_id, True, date(2025, 10, 4), "over 3 miles"))
    service.handle(ReferTransport(case_id, date(2025, 10, 4), notes="needs a ramp"))

    event = store.read_stream(case_id)[-1]
    assert event.data == {
        "case_id": case_id,
        "referred_on": "2025-10-04",
        "setting_id": SPECIAL,
        "setting_id_kind": "urn",
    }
    assert event.private == {"notes": "needs a ramp"}
    with pytest.raises(ImpossibleTransition, match="was referred"):
        service.handle(ReferTransport(case_id, date(2025, 10, 5)))


def test_without_a_panel_decision_the_referral_names_the_plans_setting(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    case_id = known_case(store)
    service.handle(DecideTransport(case_id, True, date(2025, 10, 1)))

    service.handle(ReferTransport(case_id, date(2025, 10, 2)))

    assert store.read_stream(case_id)[-1].data["setting_id"] == SCHOOL


def test_the_same_transport_decision_again_records_nothing(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    case_id = known_case(store)
    service.handle(DecideTransport(case_id, True, date(2025, 10, 1)))

    again = service.handle(DecideTransport(case_id, True, date(2025, 10, 1)))

    assert again.recorded == []
    with pytest.raises(InvalidCommand, match="decision it replaces"):
        service.handle(DecideTransport(case_id, False, date(2025, 9, 30)))
    assert names(store, case_id) == ["TransportEligibilityDecided"]


def test_nothing_is_arranged_for_a_ceased_plan(
    service: PlacementService, store: InMemoryEventStore
) -> None:
    case_id = ready_for_panel(service, store)
    panel_id = panel_on(service, case_id)
    feed(store, plan_ceased(case_id))
    before = names(store, case_id)

    for command in (
        DecidePanel(case_id, panel_id, "deferred"),
        DecideTransport(case_id, True, date(2025, 10, 3)),
        ProposePost16Move(case_id, date(2026, 4, 1)),
    ):
        with pytest.raises(ImpossibleTransition, match="ceased"):
            service.handle(command)
    assert names(store, case_id) == before
