"""Plans' HTTP API: each command, each kind of error, idempotency, the case query."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from plans_support import (
    EARLIEST_FINAL_ON,
    FixedClock,
    agreement,
    final_plan_body,
    intake_event,
    new_case_id,
    open_assessment,
    request_received,
    types_of,
)
from prometheus_client import CollectorRegistry

from auth_fixtures import Mint
from plans.application.reactions import IntakeReactions
from plans.entrypoints.http import create_app
from plans.settings import PlansSettings
from sendkit.background import BackgroundLoop
from sendkit.store import EventStore, InMemoryEventStore
from store_backends import DURABLE

STORE_BACKENDS = DURABLE
"""Each test that uses the store runs on SQLite and on PostgreSQL (conftest.py)..."""
TABLES_IN_MEMORY = True
"""...but the tables of invalid requests, refused before the store, run in memory."""

PROBLEM = "application/problem+json"


def problem(response: Response, status: int, kind: str) -> list[str]:
    """Check a problem answer; the fields it names."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["type"] == f"/problems/{kind}"
    assert body["detail"]
    return [error["field"] for error in body.get("errors", [])]


def ok(response: Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    answer: dict[str, Any] = response.json()
    return answer


class Api:
    """One case driven through the HTTP API."""

    def __init__(self, client: TestClient, case_id: str) -> None:
        self.client = client
        self.id = case_id

    def post(self, path: str, body: dict[str, Any], **headers: str) -> Response:
        return self.client.post(f"/cases/{self.id}/{path}", json=body, headers=headers)

    def read(self) -> dict[str, Any]:
        return ok(self.client.get(f"/cases/{self.id}"))

    def draft(self, served_on: str = "2026-03-02") -> dict[str, Any]:
        return ok(self.post("draft-plans", {"served_on": served_on}))

    def issue(self, **changes: Any) -> dict[str, Any]:
        return ok(self.post("final-plan", final_plan_body(**changes)))

    def cease(self) -> dict[str, Any]:
        body = {"ceased_on": "2026-05-01", "reason": "needs_met"}
        return ok(self.post("cessation", body))


@pytest.fixture
def reactions(clock: FixedClock) -> IntakeReactions:
    return IntakeReactions(clock=clock)


@pytest.fixture
def case(
    client: TestClient, store: InMemoryEventStore, reactions: IntakeReactions
) -> Api:
    return Api(client, open_assessment(store, reactions))


@pytest.fixture
def issued(case: Api) -> Api:
    case.draft()
    case.issue()
    return case


# Advice -------------------------------------------------------------------------------


def test_requesting_advice_answers_with_its_new_advice_id(
    case: Api, store: InMemoryEventStore, mint: Mint
) -> None:
    answer = ok(
        case.post(
            "advice-requests",
            {
                "body": "educational_psychology",
                "received_by_body_on": "2025-10-08",
                "professional": "Dr Example Psychologist",
            },
            **mint("ehcco-9"),
        )
    )

    assert answer["status"] == "assessing"
    assert answer["version"] == 2
    assert [e["type"] for e in answer["events"]] == ["send.plans.AdviceRequested.v1"]
    event = store.read_stream(case.id)[-1]
    assert event.data["advice_id"] == answer["advice_id"]
    assert event.metadata.actor == "ehcco-9"


def test_recording_advice_received(case: Api) -> None:
    advice_id = ok(
        case.post(
            "advice-requests", {"body": "health", "received_by_body_on": "2025-10-08"}
        )
    )["advice_id"]

    ok(case.post(f"advice-requests/{advice_id}/receipt", {"received_on": "2025-11-10"}))

    assert case.read()["advice"] == [
        {
            "advice_id": advice_id,
            "body": "health",
            "received_by_body_on": "2025-10-08",
            "professional": None,
            "received_on": "2025-11-10",
        }
    ]


def test_advice_for_an_unknown_request_is_404(case: Api) -> None:
    response = case.post(
        f"advice-requests/{new_case_id()}/receipt", {"received_on": "2025-11-10"}
    )

    problem(response, 404, "advice-not-found")


def test_a_request_for_advice_from_an_unknown_body_names_the_field(case: Api) -> None:
    response = case.post(
        "advice-requests", {"body": "astrology", "received_by_body_on": "2025-10-08"}
    )

    assert problem(response, 422, "validation-error") == ["body"]


def test_a_malformed_advice_id_in_the_path_is_422(case: Api) -> None:
    response = case.post("advice-requests/A-1/receipt", {"received_on": "2025-11-10"})

    assert problem(response, 422, "validation-error") == ["path.advice_id"]


# The assessment's outcome -------------------------------------------------------------


def test_deciding_not_to_issue_a_plan(case: Api) -> None:
    answer = ok(
        case.post(
            "no-plan-notice",
            {"notified_on": "2026-01-19", "reasons": "needs can be met at SEN support"},
        )
    )

    assert answer["status"] == "no_plan"
    assert case.read()["no_plan"] == {
        "notified_on": "2026-01-19",
        "reasons": "needs can be met at SEN support",
    }


def test_a_no_plan_notice_without_reasons_names_the_field(case: Api) -> None:
    response = case.post("no-plan-notice", {"notified_on": "2026-01-19"})

    assert problem(response, 422, "validation-error") == ["reasons"]


def test_issuing_a_draft_opens_the_comment_window(case: Api) -> None:
    answer = case.draft()

    assert answer["status"] == "draft_issued"
    assert case.read()["draft"] == {
        "served_on": "2026-03-02",
        "drafts_served": ["2026-03-02"],
        "comment_window_ends_on": "2026-03-16",
        "early_final_plan_agreed_on": None,
    }


def test_a_draft_on_a_case_never_opened_is_404(client: TestClient) -> None:
    response = client.post(
        f"/cases/{new_case_id()}/draft-plans", json={"served_on": "2026-03-02"}
    )

    problem(response, 404, "case-not-found")
    assert "agreement to assess" in response.json()["detail"]


def test_a_draft_dated_tomorrow_is_422(case: Api) -> None:
    response = case.post("draft-plans", {"served_on": "2026-06-02"})

    assert problem(response, 422, "validation-error") == ["served_on"]


def test_recording_comments_a_preference_and_a_meeting_request(case: Api) -> None:
    case.draft()

    ok(
        case.post(
            "draft-comments",
            {
                "received_on": "2026-03-09",
                "respondent": "parent",
                "comments": "we would like more speech therapy",
                "preferred_setting_urn": 654321,
                "meeting_requested": True,
            },
        )
    )

    (comments,) = case.read()["comments"]
    assert comments == {
        "draft": 1,
        "received_on": "2026-03-09",
        "respondent": "parent",
        "comments": "we would like more speech therapy",
        "preferred_setting_urn": 654321,
        "meeting_requested": True,
        "agreed_to_early_final_plan": False,
    }


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"respondent": "aunt"}, ["respondent"]),
        ({"meeting_requested": "yes"}, ["meeting_requested"]),
        ({"preferred_setting_urn": 12}, ["preferred_setting_urn"]),
        ({"comment": "misspelt"}, ["comment"]),
        ({"received_on": "9 March"}, ["received_on"]),
    ],
)
def test_comments_with_bad_values_name_each_field(
    case: Api, body: dict[str, Any], fields: list[str]
) -> None:
    case.draft()
    valid = {"received_on": "2026-03-09", "respondent": "parent"}

    response = case.post("draft-comments", {**valid, **body})

    assert problem(response, 422, "validation-error") == fields


# The final plan -----------------------------------------------------------------------


def test_a_final_plan_inside_the_comment_window_is_409_and_writes_nothing(
    case: Api, store: InMemoryEventStore
) -> None:
    case.draft()
    before = len(store.read_stream(case.id))

    response = case.post("final-plan", final_plan_body(issued_on="2026-03-16"))

    assert problem(response, 409, "comment-window-open") == ["issued_on"]
    assert "2026-03-17" in response.json()["detail"]
    assert len(store.read_stream(case.id)) == before


def test_the_final_plan_after_the_window_or_with_written_agreement(
    client: TestClient, store: InMemoryEventStore, reactions: IntakeReactions
) -> None:
    after = Api(client, open_assessment(store, reactions))
    after.draft()
    agreed = Api(client, open_assessment(store, reactions))
    agreed.draft()
    ok(
        agreed.post(
            "draft-comments",
            {
                "received_on": "2026-03-05",
                "respondent": "young_person",
                "agreed_to_early_final_plan": True,
            },
        )
    )

    first = after.issue(issued_on=EARLIEST_FINAL_ON.isoformat())
    second = agreed.issue(issued_on="2026-03-06", start_date="2026-03-06")

    assert first["status"] == second["status"] == "plan_maintained"
    assert after.read()["final_plan"] == {
        "issued_on": "2026-03-17",
        "setting_urn": 123456,
        "setting_type": "mainstream_academy",
        "start_date": "2026-09-01",
        "primary_need": "SLCN",
        "secondary_need": "ASD",
    }


def test_a_second_final_plan_is_409(issued: Api) -> None:
    response = issued.post("final-plan", final_plan_body(issued_on="2026-04-01"))

    problem(response, 409, "impossible-transition")
    assert "one final plan" in response.json()["detail"]


def test_a_final_plan_with_several_bad_values_names_every_one(case: Api) -> None:
    case.draft()

    response = case.post(
        "final-plan",
        final_plan_body(
            setting_type="boarding", primary_need="XYZ", start_date="September"
        ),
    )

    assert problem(response, 422, "validation-error") == [
        "setting_type",
        "start_date",
        "primary_need",
    ]


def test_a_school_setting_without_its_urn_is_422(case: Api) -> None:
    case.draft()

    response = case.post("final-plan", final_plan_body(setting_urn=None))

    assert problem(response, 422, "validation-error") == ["setting_urn"]


# Amending, ceasing, transfers ---------------------------------------------------------


def test_proposing_and_issuing_an_amendment(issued: Api) -> None:
    ok(
        issued.post(
            "amendment-notices",
            {"notice_sent_on": "2026-04-01", "proposals": "add physiotherapy"},
        )
    )
    ok(
        issued.post(
            "amendments",
            {
                "issued_on": "2026-04-20",
                "changes": ["F", "I"],
                "setting_urn": 654321,
                "setting_type": "special_academy",
                "summary": "add weekly physiotherapy to section F",
            },
        )
    )

    state = issued.read()
    assert state["amendment_notices"] == [
        {
            "notice_sent_on": "2026-04-01",
            "proposals": "add physiotherapy",
            "review_id": None,
        }
    ]
    assert state["amendment_pending_since"] is None
    assert state["amendments"][0]["changes"] == ["F", "I"]


def test_an_amendment_notice_before_the_final_plan_is_409(case: Api) -> None:
    response = case.post(
        "amendment-notices", {"notice_sent_on": "2026-04-01", "proposals": "x"}
    )

    problem(response, 409, "impossible-transition")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"changes": []}, ["changes"]),
        ({"changes": ["Z"]}, ["changes.0"]),
        ({"changes": ["F"], "setting_urn": 654321}, ["setting_type", "changes"]),
    ],
)
def test_an_amendment_with_bad_values_names_each_field(
    issued: Api, body: dict[str, Any], fields: list[str]
) -> None:
    response = issued.post("amendments", {"issued_on": "2026-04-20", **body})

    assert problem(response, 422, "validation-error") == fields


def test_an_amendment_to_a_ceased_plan_is_409(issued: Api) -> None:
    issued.cease()

    response = issued.post("amendments", {"issued_on": "2026-05-20", "changes": ["F"]})

    problem(response, 409, "impossible-transition")
    assert "ceased plan cannot be amended" in response.json()["detail"]


def test_ceasing_a_plan(issued: Api) -> None:
    answer = issued.cease()

    assert answer["status"] == "ceased"
    assert issued.read()["cessation"] == {
        "ceased_on": "2026-05-01",
        "reason": "needs_met",
        "note": None,
    }


def test_ceasing_for_a_reason_sen2_does_not_know_is_422(issued: Api) -> None:
    response = issued.post("cessation", {"ceased_on": "2026-05-01", "reason": "bored"})

    assert problem(response, 422, "validation-error") == ["reason"]


def test_transferring_a_plan_out_after_the_move_is_notified(issued: Api) -> None:
    early = issued.post("transfer-out", {"transferred_on": "2026-04-30"})
    problem(early, 409, "impossible-transition")

    ok(
        issued.post(
            "transfer-out-notice",
            {
                "learned_on": "2026-04-01",
                "move_on": "2026-04-30",
                "to_council": "Sampleton Borough Council",
            },
        )
    )
    answer = ok(issued.post("transfer-out", {"transferred_on": "2026-04-30"}))

    assert answer["status"] == "transferred_out"
    assert issued.read()["transfer_out"] == {
        "learned_on": "2026-04-01",
        "move_on": "2026-04-30",
        "to_council": "Sampleton Borough Council",
        "transferred_on": "2026-04-30",
    }


def test_a_transfer_notice_naming_no_council_is_422(issued: Api) -> None:
    response = issued.post("transfer-out-notice", {"learned_on": "2026-04-01"})

    assert problem(response, 422, "validation-error") == ["to_council"]


def test_taking_a_plan_in_makes_a_case_and_the_new_councils_notice_follows(
    client: TestClient, store: InMemoryEventStore
) -> None:
    response = client.post(
        "/transfers-in",
        json={
            "transferred_on": "2026-02-02",
            "from_council": "Exampleshire County Council",
        },
    )
    answer = ok(response, 201)
    taken = Api(client, answer["case_id"])
    assert response.headers["location"] == f"/cases/{taken.id}"

    ok(taken.post("new-council-notice", {"notified_on": "2026-03-02"}))

    state = taken.read()
    assert state["status"] == "plan_maintained"
    assert state["transfer_in"] == {
        "transferred_on": "2026-02-02",
        "from_council": "Exampleshire County Council",
        "note": None,
        "new_council_notified_on": "2026-03-02",
        "new_council_note": None,
    }
    assert types_of(store, taken.id) == ["PlanTransferredIn", "NewCouncilNoticeSent"]


def test_a_transfer_in_dated_tomorrow_is_422(client: TestClient) -> None:
    response = client.post(
        "/transfers-in",
        json={"transferred_on": "2026-06-02", "from_council": "Exampleshire"},
    )

    assert problem(response, 422, "validation-error") == ["transferred_on"]


def test_a_transfer_in_dated_before_ehc_plans_existed_is_422(
    client: TestClient,
) -> None:
    response = client.post(
        "/transfers-in",
        json={"transferred_on": "0001-01-01", "from_council": "Exampleshire"},
    )

    assert problem(response, 422, "validation-error") == ["transferred_on"]
    assert "2014-09-01" in response.text


def test_the_new_councils_notice_on_a_plan_not_transferred_in_is_409(
    issued: Api,
) -> None:
    response = issued.post("new-council-notice", {"notified_on": "2026-04-01"})

    problem(response, 409, "impossible-transition")


# Re-assessment and exceptions ---------------------------------------------------------


def test_requesting_and_deciding_a_reassessment(issued: Api) -> None:
    ok(issued.post("reassessment-requests", {"requested_on": "2026-04-01"}))
    ok(
        issued.post(
            "reassessment-decision", {"notified_on": "2026-04-14", "agreed": True}
        )
    )

    (reassessment,) = issued.read()["reassessments"]
    assert reassessment["agreed"] is True
    assert reassessment["notified_on"] == "2026-04-14"
    assert reassessment["concluded_on"] is None


def test_a_reassessment_decision_without_a_request_is_409(issued: Api) -> None:
    response = issued.post(
        "reassessment-decision", {"notified_on": "2026-04-14", "agreed": False}
    )

    problem(response, 409, "impossible-transition")


def test_a_reassessment_decision_that_is_not_true_or_false_is_422(
    issued: Api,
) -> None:
    ok(issued.post("reassessment-requests", {"requested_on": "2026-04-01"}))

    response = issued.post(
        "reassessment-decision", {"notified_on": "2026-04-14", "agreed": "maybe"}
    )

    assert problem(response, 422, "validation-error") == ["agreed"]


def test_recording_a_time_limit_exception_to_the_advice_clock(case: Api) -> None:
    advice_id = ok(
        case.post(
            "advice-requests", {"body": "health", "received_by_body_on": "2025-10-08"}
        )
    )["advice_id"]

    ok(
        case.post(
            "time-limit-exceptions",
            {
                "clock": "advice",
                "reason": "c",
                "evidence": "missed the appointment",
                "advice_id": advice_id,
            },
        )
    )
    wrong = case.post(
        "time-limit-exceptions",
        {"clock": "advice", "reason": "d", "evidence": "away"},
    )

    assert case.read()["time_limit_exceptions"] == [
        {
            "clock": "advice",
            "reason": "c",
            "advice_id": advice_id,
            "evidence": "missed the appointment",
        }
    ]
    assert problem(wrong, 422, "validation-error") == ["reason"]


# Queries ------------------------------------------------------------------------------


def test_reading_a_case_shows_its_plan_state_and_history_with_private_parts(
    issued: Api,
) -> None:
    state = issued.read()

    assert state["case_id"] == issued.id
    assert state["status"] == "plan_maintained"
    assert state["assessment_agreed_on"] == "2025-10-06"
    assert [e["type"].split(".")[2] for e in state["history"]] == [
        "AssessmentOpened",
        "DraftPlanIssued",
        "PlanIssued",
    ]
    assert state["history"][-1]["private"] == {
        "primary_need": "SLCN",
        "secondary_need": "ASD",
    }
    assert [e["version"] for e in state["history"]] == [1, 2, 3]


def test_reading_an_unknown_case_is_404_and_a_malformed_id_422(
    client: TestClient,
) -> None:
    problem(client.get(f"/cases/{new_case_id()}"), 404, "case-not-found")
    assert problem(client.get("/cases/CASE-1"), 422, "validation-error") == [
        "path.case_id"
    ]


# Idempotency, correlation, probes ----------------------------------------------------


def test_a_retried_command_with_its_key_gets_the_first_answer_and_writes_once(
    case: Api, store: InMemoryEventStore
) -> None:
    body = {"body": "social_care", "received_by_body_on": "2025-10-08"}
    key = {"Idempotency-Key": "advice-1"}

    first = case.post("advice-requests", body, **key)
    again = case.post("advice-requests", body, **key)
    other = case.post(
        "advice-requests", {**body, "received_by_body_on": "2025-10-09"}, **key
    )

    assert ok(again) == ok(first)
    assert again.headers["idempotent-replayed"] == "true"
    assert types_of(store, case.id) == ["AssessmentOpened", "AdviceRequested"]
    assert problem(other, 422, "idempotency-key") == ["header.idempotency-key"]


def test_the_correlation_id_of_the_request_reaches_the_events(
    case: Api, store: InMemoryEventStore
) -> None:
    response = case.post(
        "draft-plans", {"served_on": "2026-03-02"}, **{"X-Correlation-ID": "web-9"}
    )

    assert response.headers["x-correlation-id"] == "web-9"
    assert store.read_stream(case.id)[-1].metadata.correlation_id == "web-9"


class _Idle:
    """A stand-in background loop: alive until stopped."""

    def __init__(self) -> None:
        self.loop = BackgroundLoop("idle", lambda stop: stop.wait(60) and None)
        self.loop.start()

    def is_alive(self) -> bool:
        return self.loop.is_alive()

    def stop(self, timeout_s: float | None = None) -> None:
        self.loop.stop(timeout_s)


def test_the_relay_and_subscriber_run_from_start_up_to_shutdown(
    store: InMemoryEventStore, clock: FixedClock, auth_env: dict[str, str]
) -> None:
    started: dict[str, _Idle] = {}
    handlers: list[object] = []

    def relay(
        settings: PlansSettings, store: EventStore, registry: CollectorRegistry
    ) -> _Idle:
        started["relay"] = _Idle()
        return started["relay"]

    def subscriber(
        settings: PlansSettings,
        store: EventStore,
        handler: object,
        registry: CollectorRegistry,
    ) -> _Idle:
        handlers.append(handler)
        started["subscriber"] = _Idle()
        return started["subscriber"]

    settings = PlansSettings(
        database_url="memory://", relay_enabled=True, subscriber_enabled=True
    )
    app = create_app(
        settings,
        store=store,
        clock=clock,
        relay_factory=relay,
        subscriber_factory=subscriber,
    )
    with TestClient(app) as client:
        ready = client.get("/readyz").json()
        assert ready["checks"] == {
            "event_store": "ok",
            "outbox_relay": "ok",
            "intake_subscriber": "ok",
            "kafka_bootstrapped": "ok",
        }
        started["subscriber"].stop()
        assert client.get("/readyz").status_code == 503

    assert not started["relay"].is_alive()
    assert isinstance(handlers[0], IntakeReactions)


def test_the_app_on_a_sqlite_file_keeps_a_case_across_restarts(
    tmp_path: Path,
    clock: FixedClock,
    auth_env: dict[str, str],
    manager_headers: dict[str, str],
) -> None:
    settings = PlansSettings(database_url=f"sqlite:///{tmp_path / 'plans.db'}")
    case_id = new_case_id()

    with TestClient(
        create_app(settings, clock=clock), headers=manager_headers
    ) as client:
        app_store = client.app.state.store  # type: ignore[attr-defined]
        reactions = client.app.state.reactions  # type: ignore[attr-defined]
        with app_store.transaction() as tx:
            reactions(request_received(case_id), tx)
            reactions(agreement(case_id), tx)
        ok(
            client.post(
                f"/cases/{case_id}/draft-plans", json={"served_on": "2026-03-02"}
            )
        )

    with TestClient(
        create_app(settings, clock=clock), headers=manager_headers
    ) as client:
        state = ok(client.get(f"/cases/{case_id}"))

    assert state["status"] == "draft_issued"
    assert state["draft"]["served_on"] == date(2026, 3, 2).isoformat()


def test_a_step_of_an_assessment_whose_request_was_withdrawn_is_409(
    client: TestClient, store: InMemoryEventStore, reactions: IntakeReactions
) -> None:
    case = Api(client, open_assessment(store, reactions))
    assert case.read()["request_closed"] is None
    withdrawn = intake_event(
        case.id,
        "send.intake.RequestWithdrawn.v1",
        {"case_id": case.id, "withdrawn_on": "2025-11-03"},
    )
    with store.transaction() as tx:
        reactions(withdrawn, tx)

    for path, body in [
        ("draft-plans", {"served_on": "2026-03-02"}),
        ("final-plan", final_plan_body()),
        (
            "advice-requests",
            {"body": "health", "received_by_body_on": "2025-11-10"},
        ),
        ("no-plan-notice", {"notified_on": "2026-01-05", "reasons": "Synthetic"}),
    ]:
        response = case.post(path, body)
        problem(response, 409, "impossible-transition")
        assert "withdrawn on 2025-11-03" in response.json()["detail"]

    assert types_of(store, case.id) == ["AssessmentOpened"]
    assert case.read()["request_closed"] == {
        "outcome": "withdrawn",
        "closed_on": "2025-11-03",
    }
