"""The reviews HTTP API: each command and query, each error, idempotent retries."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from reviews_support import (
    AMEND_BODY,
    HELD_BODY,
    OTHER_SETTING,
    SETTING,
    arrange_body,
    assign_coordinator,
    end_plan,
    issue_plan,
    new_case_id,
)

from auth_fixtures import Mint
from reviews.application.service import ReviewsService
from sendkit.store import InMemoryEventStore
from store_backends import DURABLE

STORE_BACKENDS = DURABLE
"""Each test that uses the store runs on SQLite and on PostgreSQL (conftest.py)..."""
TABLES_IN_MEMORY = True
"""...but the tables of invalid requests, refused before the store, run in memory."""

PROBLEM = "application/problem+json"


def problem_fields(response: Response, status: int) -> list[str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    return [error["field"] for error in body.get("errors", [])]


def arrange(client: TestClient, case_id: str, **changes: Any) -> str:
    response = client.post(f"/cases/{case_id}/reviews", json=arrange_body(**changes))
    assert response.status_code == 201, response.text
    review_id: str = response.json()["review_id"]
    return review_id


def post(client: TestClient, path: str, body: dict[str, Any]) -> Response:
    response: Response = client.post(path, json=body)
    return response


def held_review(client: TestClient, service: ReviewsService) -> tuple[str, str]:
    case_id = issue_plan(service)
    review_id = arrange(client, case_id)
    response = post(client, f"/cases/{case_id}/reviews/{review_id}/meeting", HELD_BODY)
    assert response.status_code == 200, response.text
    return case_id, review_id


# Commands -----------------------------------------------------------------------------


def test_arranging_a_review_answers_201_with_its_id_and_location(
    client: TestClient,
    app_service: ReviewsService,
    store: InMemoryEventStore,
    mint: Mint,
) -> None:
    case_id = issue_plan(app_service)

    response = client.post(
        f"/cases/{case_id}/reviews",
        json=arrange_body(),
        headers={**mint("ehcco-3"), "X-Correlation-ID": "web-1"},
    )

    assert response.status_code == 201
    body = response.json()
    review_id = body["review_id"]
    assert response.headers["location"] == f"/cases/{case_id}/reviews/{review_id}"
    assert body["review_status"] == "arranged"
    assert body["plan_status"] == "active"
    assert [e["type"] for e in body["events"]] == ["send.reviews.ReviewArranged.v1"]
    event = store.read_stream(case_id)[-1]
    assert (event.metadata.actor, event.metadata.correlation_id) == ("ehcco-3", "web-1")


def test_a_review_carried_through_every_step(
    client: TestClient, app_service: ReviewsService
) -> None:
    case_id = issue_plan(app_service)
    review_id = arrange(client, case_id)
    base = f"/cases/{case_id}/reviews/{review_id}"

    steps = [
        ("referrals", {"made_on": "2026-01-06"}, "arranged"),
        ("papers", {"sent_on": "2026-02-17"}, "arranged"),
        ("meeting", HELD_BODY, "held"),
        ("report", {"received_on": "2026-03-12"}, "held"),
        ("decision", AMEND_BODY, "decided"),
    ]
    for path, body, status in steps:
        response = post(client, f"{base}/{path}", body)
        assert response.status_code == 200, (path, response.text)
        assert response.json()["review_status"] == status

    case = client.get(f"/cases/{case_id}").json()
    (review,) = case["reviews"]
    assert review["papers_due_on"] == "2026-02-18"
    assert review["papers_sent_on"] == "2026-02-17"
    assert review["referrals_made_on"] == "2026-01-06"
    assert review["held_on"] == "2026-03-04"
    assert review["attendee_roles"] == ["parent", "child", "senco"]
    assert review["recommendations"] == HELD_BODY["recommendations"]
    assert review["report_received_on"] == "2026-03-12"
    assert review["decision"] == "amend"
    assert review["proposed_amendments"] == AMEND_BODY["proposed_amendments"]
    assert case["next_review_due_on"] == "2027-03-03"
    assert [e["type"].split(".")[2] for e in case["history"]] == [
        "ReviewCycleStarted",
        "ReviewArranged",
        "AgencyReferralsMade",
        "ReviewPapersSent",
        "ReviewHeld",
        "ReviewReportReceived",
        "ReviewDecided",
    ]


def test_moving_a_meeting(client: TestClient, app_service: ReviewsService) -> None:
    case_id = issue_plan(app_service)
    review_id = arrange(client, case_id)

    response = post(
        client,
        f"/cases/{case_id}/reviews/{review_id}/rearrangement",
        {"meeting_on": "2026-04-29", "reason": "Synthetic: the SENCO is unwell"},
    )

    assert response.status_code == 200, response.text
    review = client.get(f"/cases/{case_id}").json()["reviews"][0]
    assert (review["meeting_on"], review["times_arranged"]) == ("2026-04-29", 2)
    assert review["papers_due_on"] == "2026-04-15"


def test_requesting_an_interim_review_and_arranging_it(
    client: TestClient, app_service: ReviewsService
) -> None:
    case_id = issue_plan(app_service)

    response = post(
        client,
        f"/cases/{case_id}/interim-review-requests",
        {"requested_on": "2026-03-16", "reason": "needs_changed", "details": "x"},
    )
    review_id = arrange(
        client,
        case_id,
        kind="interim",
        meeting_on="2026-04-01",
        arranged_on="2026-03-17",
    )

    assert response.status_code == 201, response.text
    case = client.get(f"/cases/{case_id}").json()
    assert case["interim_requests"] == [
        {
            "requested_on": "2026-03-16",
            "reason": "needs_changed",
            "details": "x",
            "review_id": review_id,
        }
    ]
    assert case["reviews"][0]["kind"] == "interim"


def test_recording_the_list_sent_to_a_senco(
    client: TestClient, app_service: ReviewsService
) -> None:
    listed = issue_plan(app_service, issued_on=date(2025, 5, 1))
    issue_plan(app_service, issued_on=date(2025, 5, 1), setting_urn=OTHER_SETTING)

    response = post(
        client,
        f"/schools/{SETTING}/review-lists",
        {"term_start": "2026-04-13", "term_end": "2026-07-22", "sent_on": "2026-03-20"},
    )

    assert response.status_code == 200, response.text
    assert response.json()["cases"] == [
        {"case_id": listed, "review_due_on": "2026-04-30", "recorded": True}
    ]
    rows = client.get(
        f"/schools/{SETTING}/upcoming-reviews",
        params={"term_start": "2026-04-13", "term_end": "2026-07-22"},
    ).json()["reviews"]
    assert [row["listed_on"] for row in rows] == ["2026-03-20"]


def test_a_retried_arrangement_answers_the_same_review_once(
    client: TestClient, app_service: ReviewsService, store: InMemoryEventStore
) -> None:
    case_id = issue_plan(app_service)
    headers = {"Idempotency-Key": "arrange-once-1"}

    first = client.post(
        f"/cases/{case_id}/reviews", json=arrange_body(), headers=headers
    )
    again = client.post(
        f"/cases/{case_id}/reviews", json=arrange_body(), headers=headers
    )
    other = client.post(
        f"/cases/{case_id}/reviews",
        json=arrange_body(meeting_on="2026-03-05"),
        headers=headers,
    )

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert len(store.read_stream(case_id)) == 2
    assert problem_fields(other, 422) == ["header.idempotency-key"]


# Queries ------------------------------------------------------------------------------


def test_a_schools_termly_list_has_the_reviews_due_in_the_term_soonest_first(
    client: TestClient, app_service: ReviewsService
) -> None:
    # Issued 10 May 2025 -> due Sat 9 May 2026 (act by Fri 8 May).
    late_in_term = issue_plan(app_service, issued_on=date(2025, 5, 10))
    early_in_term = issue_plan(app_service, issued_on=date(2025, 4, 14))
    issue_plan(app_service, issued_on=date(2025, 9, 1))  # due after the term
    issue_plan(app_service, issued_on=date(2025, 5, 1), setting_urn=OTHER_SETTING)
    ceased = issue_plan(app_service, issued_on=date(2025, 5, 1))
    end_plan(app_service, ceased, date(2026, 1, 5))
    overdue = issue_plan(app_service, issued_on=date(2025, 3, 1))
    arranged = arrange(client, early_in_term, meeting_on="2026-04-20")

    response = client.get(
        f"/schools/{SETTING}/upcoming-reviews",
        params={"term_start": "2026-04-13", "term_end": "2026-07-22"},
    )
    with_overdue = client.get(
        f"/schools/{SETTING}/upcoming-reviews",
        params={
            "term_start": "2026-04-13",
            "term_end": "2026-07-22",
            "include_overdue": "true",
        },
    ).json()

    assert response.status_code == 200, response.text
    listed = response.json()
    assert (listed["first_day"], listed["last_day"]) == ("2026-04-13", "2026-07-22")
    assert [row["case_id"] for row in listed["reviews"]] == [
        early_in_term,
        late_in_term,
    ]
    first, second = listed["reviews"]
    assert first["due_on"] == "2026-04-13"
    assert first["meeting"] == {
        "review_id": arranged,
        "kind": "annual",
        "status": "arranged",
        "meeting_on": "2026-04-20",
    }
    assert (second["due_on"], second["act_by"]) == ("2026-05-09", "2026-05-08")
    assert (second["based_on"], second["base_on"]) == ("plan_issued", "2025-05-10")
    assert "recommendations" not in second
    held = post(
        client,
        f"/cases/{early_in_term}/reviews/{arranged}/meeting",
        {**HELD_BODY, "held_on": "2026-03-20"},
    )
    assert held.status_code == 200, held.text
    after_meeting = client.get(
        f"/schools/{SETTING}/upcoming-reviews",
        params={"term_start": "2027-03-01", "term_end": "2027-03-31"},
    ).json()["reviews"]
    assert [(row["case_id"], row["meeting"]) for row in after_meeting] == [
        (early_in_term, None)
    ]
    assert [row["case_id"] for row in with_overdue["reviews"]] == [
        overdue,
        early_in_term,
        late_in_term,
    ]


def test_a_coordinators_list_follows_intakes_assignments(
    client: TestClient, app_service: ReviewsService
) -> None:
    mine = issue_plan(app_service, issued_on=date(2025, 6, 2))
    moved_away = issue_plan(app_service, issued_on=date(2025, 6, 3))
    assign_coordinator(app_service, mine, "ehcco-7")
    assign_coordinator(app_service, moved_away, "ehcco-7")
    assign_coordinator(app_service, moved_away, "ehcco-8")

    response = client.get(
        "/coordinators/ehcco-7/upcoming-reviews",
        params={"from": "2026-06-01", "to": "2026-06-30"},
    )

    assert response.status_code == 200, response.text
    rows = response.json()["reviews"]
    assert [(row["case_id"], row["due_on"]) for row in rows] == [(mine, "2026-06-01")]
    assert rows[0]["coordinator_id"] == "ehcco-7"


def test_an_unknown_case_is_404(client: TestClient) -> None:
    response = client.get(f"/cases/{new_case_id()}")

    problem_fields(response, 404)
    assert response.json()["type"] == "/problems/case-not-found"


# Errors: 422 naming each field, 409 for the case's state, nothing written -------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"invitee_roles": ["parent", "uncle"]}, "invitee_roles.1"),
        ({"invitee_roles": []}, "invitee_roles"),
        ({"invitee_roles": ["senco"]}, "invitee_roles"),
        ({"invitee_roles": ["parent", "parent"]}, "invitee_roles"),
        ({"meeting_on": "2026-02-30"}, "meeting_on"),
        ({"meeting_on": None}, "meeting_on"),
        ({"meeting_on": "2025-03-09"}, "meeting_on"),
        ({"meeting_on": "2027-03-21", "arranged_on": None}, "meeting_on"),
        ({"arranged_on": "2026-03-21"}, "arranged_on"),
        ({"setting_urn": 12345}, "setting_urn"),
        ({"kind": "emergency"}, "kind"),
        ({"child_name": "Synthetic Name"}, "child_name"),
    ],
)
def test_an_invalid_arrangement_is_422_naming_the_field(
    client: TestClient,
    app_service: ReviewsService,
    store: InMemoryEventStore,
    changes: dict[str, Any],
    field: str,
) -> None:
    case_id = issue_plan(app_service)
    before = store.last_position()

    response = client.post(f"/cases/{case_id}/reviews", json=arrange_body(**changes))

    assert problem_fields(response, 422) == [field]
    assert response.json()["type"] == "/problems/validation-error"
    assert store.last_position() == before


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("papers", {"sent_on": "2026-03-21"}, "sent_on"),
        ("papers", {}, "sent_on"),
        ("meeting", {**HELD_BODY, "held_on": "2026-03-21"}, "held_on"),
        ("meeting", {**HELD_BODY, "attendee_roles": ["dog"]}, "attendee_roles.0"),
        (
            "meeting",
            {**HELD_BODY, "child_views_gathered": None},
            "child_views_gathered",
        ),
        ("referrals", {"made_on": "2026-03-05"}, "made_on"),
        ("rearrangement", {"meeting_on": "2026-03-04"}, "meeting_on"),
        ("rearrangement", {"meeting_on": "2024-01-01"}, "meeting_on"),
    ],
)
def test_an_invalid_fact_of_an_arranged_review_is_422(
    client: TestClient,
    app_service: ReviewsService,
    store: InMemoryEventStore,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    case_id = issue_plan(app_service)
    review_id = arrange(client, case_id)
    before = store.last_position()

    response = post(client, f"/cases/{case_id}/reviews/{review_id}/{path}", body)

    assert problem_fields(response, 422) == [field]
    assert store.last_position() == before


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("report", {"received_on": "2026-03-03"}, "received_on"),
        (
            "decision",
            {"decision": "amend", "notified_on": "2026-03-18"},
            "proposed_amendments",
        ),
        (
            "decision",
            {"decision": "maintain", "notified_on": "2026-03-21"},
            "notified_on",
        ),
        ("decision", {**AMEND_BODY, "decision": "keep"}, "decision"),
        (
            "decision",
            {"decision": "maintain", "notified_on": "2026-03-03"},
            "notified_on",
        ),
        (
            "decision",
            {
                "decision": "cease",
                "notified_on": "2026-03-05",
                "proposed_amendments": "x",
            },
            "proposed_amendments",
        ),
    ],
)
def test_an_invalid_fact_after_the_meeting_is_422(
    client: TestClient,
    app_service: ReviewsService,
    store: InMemoryEventStore,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    case_id, review_id = held_review(client, app_service)
    before = store.last_position()

    response = post(client, f"/cases/{case_id}/reviews/{review_id}/{path}", body)

    assert problem_fields(response, 422) == [field]
    assert store.last_position() == before


def test_no_review_for_a_case_without_an_issued_plan_is_409(
    client: TestClient, store: InMemoryEventStore
) -> None:
    response = client.post(f"/cases/{new_case_id()}/reviews", json=arrange_body())

    problem_fields(response, 409)
    assert response.json()["type"] == "/problems/impossible-transition"
    assert "no issued EHC plan" in response.json()["detail"]
    assert store.last_position() == 0


def test_no_review_or_interim_request_for_a_ceased_plan_is_409(
    client: TestClient, app_service: ReviewsService, store: InMemoryEventStore
) -> None:
    case_id = issue_plan(app_service)
    end_plan(app_service, case_id, date(2026, 1, 5))
    before = store.last_position()

    arranged = client.post(f"/cases/{case_id}/reviews", json=arrange_body())
    requested = post(
        client,
        f"/cases/{case_id}/interim-review-requests",
        {"requested_on": "2026-03-16", "reason": "exclusion"},
    )

    problem_fields(arranged, 409)
    problem_fields(requested, 409)
    assert "ceased on 2026-01-05" in arranged.json()["detail"]
    assert store.last_position() == before


def test_no_decision_before_the_meeting_is_409(
    client: TestClient, app_service: ReviewsService, store: InMemoryEventStore
) -> None:
    case_id = issue_plan(app_service)
    review_id = arrange(client, case_id)
    before = store.last_position()

    response = post(
        client, f"/cases/{case_id}/reviews/{review_id}/decision", AMEND_BODY
    )

    problem_fields(response, 409)
    assert "no decision before the meeting" in response.json()["detail"]
    assert store.last_position() == before


def test_a_second_decision_is_409(
    client: TestClient, app_service: ReviewsService, store: InMemoryEventStore
) -> None:
    case_id, review_id = held_review(client, app_service)
    path = f"/cases/{case_id}/reviews/{review_id}/decision"
    assert post(client, path, AMEND_BODY).status_code == 200
    before = store.last_position()

    response = post(client, path, {"decision": "cease", "notified_on": "2026-03-19"})

    problem_fields(response, 409)
    assert "one decision per review" in response.json()["detail"]
    assert store.last_position() == before


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("papers", {"sent_on": "2026-02-17"}),
        ("meeting", HELD_BODY),
        ("report", {"received_on": "2026-03-12"}),
    ],
)
def test_recording_a_fact_twice_is_409(
    client: TestClient,
    app_service: ReviewsService,
    path: str,
    body: dict[str, Any],
) -> None:
    case_id, review_id = held_review(client, app_service)
    base = f"/cases/{case_id}/reviews/{review_id}"
    if path != "meeting":
        assert post(client, f"{base}/{path}", body).status_code == 200

    problem_fields(post(client, f"{base}/{path}", body), 409)


def test_a_report_before_the_meeting_is_409(
    client: TestClient, app_service: ReviewsService
) -> None:
    case_id = issue_plan(app_service)
    review_id = arrange(client, case_id)

    response = post(
        client,
        f"/cases/{case_id}/reviews/{review_id}/report",
        {"received_on": "2026-03-12"},
    )

    problem_fields(response, 409)


def test_a_second_review_while_one_is_in_progress_is_409(
    client: TestClient, app_service: ReviewsService
) -> None:
    case_id = issue_plan(app_service)
    arrange(client, case_id)

    response = client.post(
        f"/cases/{case_id}/reviews",
        json=arrange_body(meeting_on="2026-06-03", arranged_on=None),
    )

    problem_fields(response, 409)


def test_an_interim_review_without_a_request_is_409(
    client: TestClient, app_service: ReviewsService
) -> None:
    case_id = issue_plan(app_service)

    response = client.post(
        f"/cases/{case_id}/reviews", json=arrange_body(kind="interim")
    )

    problem_fields(response, 409)


def test_an_unknown_review_is_404(
    client: TestClient, app_service: ReviewsService
) -> None:
    case_id = issue_plan(app_service)

    response = post(
        client,
        f"/cases/{case_id}/reviews/{new_case_id()}/papers",
        {"sent_on": "2026-02-17"},
    )

    problem_fields(response, 404)
    assert response.json()["type"] == "/problems/review-not-found"


@pytest.mark.parametrize(
    ("path", "params", "fields"),
    [
        (
            f"/schools/{SETTING}/upcoming-reviews",
            {"term_start": "2026-07-22", "term_end": "2026-04-13"},
            ["query.term_end"],
        ),
        (
            f"/schools/{SETTING}/upcoming-reviews",
            {"term_start": "2026-04-13", "term_end": "2027-07-22"},
            ["query.term_end"],
        ),
        (
            f"/schools/{SETTING}/upcoming-reviews",
            {},
            ["query.term_start", "query.term_end"],
        ),
        (
            "/schools/12/upcoming-reviews",
            {"term_start": "2026-04-13", "term_end": "2026-07-22"},
            ["path.urn"],
        ),
        (
            "/coordinators/ehcco-1/upcoming-reviews",
            {"from": "2026-04-13", "to": "2026-04-12"},
            ["query.to"],
        ),
        (
            "/coordinators/ehcco-1/upcoming-reviews",
            {"from": "13/04/2026", "to": "2026-04-12"},
            ["query.from"],
        ),
    ],
)
def test_an_unanswerable_list_query_is_422_naming_the_parameter(
    client: TestClient, path: str, params: dict[str, str], fields: list[str]
) -> None:
    assert problem_fields(client.get(path, params=params), 422) == fields


def test_a_review_list_sent_in_the_future_is_422(client: TestClient) -> None:
    response = post(
        client,
        f"/schools/{SETTING}/review-lists",
        {"term_start": "2026-04-13", "term_end": "2026-07-22", "sent_on": "2026-03-21"},
    )

    assert problem_fields(response, 422) == ["sent_on"]


def test_a_review_list_with_its_term_the_wrong_way_round_is_422(
    client: TestClient,
) -> None:
    response = post(
        client,
        f"/schools/{SETTING}/review-lists",
        {"term_start": "2026-07-22", "term_end": "2026-04-13", "sent_on": "2026-03-20"},
    )

    assert problem_fields(response, 422) == ["term_end"]
