"""``POST /cases/{case_id}/corrections`` and an amendment notice's ``review_id``.

The case: draft served Mon 2 Mar 2026, final plan issued Tue 17 Mar 2026, "today"
Mon 1 Jun 2026.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from plans_support import new_case_id, open_assessment, types_of
from test_plans_api import Api, ok, problem

from auth_fixtures import Mint
from plans.application.reactions import IntakeReactions
from sendkit.store import InMemoryEventStore

REVIEW = "0c9e7f4a-1b2d-4c3e-8f5a-6b7c8d9e0f1a"


@pytest.fixture
def issued(
    client: TestClient, store: InMemoryEventStore, reactions: IntakeReactions
) -> Api:
    case = Api(client, open_assessment(store, reactions))
    case.draft()
    case.issue()
    return case


def _event_id(case: Api, short: str) -> str:
    for event in case.read()["history"]:
        if event["type"] == f"send.plans.{short}.v1":
            found: str = event["id"]
            return found
    raise AssertionError(f"no {short} in the history of case {case.id}")


def _correction(case: Api, **changes: Any) -> dict[str, Any]:
    body = {
        "event_id": _event_id(case, "PlanIssued"),
        "field": "issued_on",
        "new_value": "2026-03-20",
        "reason": "the date was mistyped from the covering letter",
    }
    return {**body, **changes}


def test_a_correction_is_recorded_and_the_plan_shows_the_right_date(
    issued: Api, store: InMemoryEventStore
) -> None:
    answer = ok(issued.post("corrections", _correction(issued)))

    assert [e["type"] for e in answer["events"]] == ["send.plans.PlanCorrected.v1"]
    assert answer["status"] == "plan_maintained"
    state = issued.read()
    assert state["final_plan"]["issued_on"] == "2026-03-20"
    last = state["history"][-1]
    assert last["type"] == "send.plans.PlanCorrected.v1"
    assert last["data"]["old_value"] == "2026-03-17"
    assert last["private"] == {
        "reason": "the date was mistyped from the covering letter"
    }


def test_a_field_no_event_has_is_a_422_naming_field(issued: Api) -> None:
    response = issued.post("corrections", _correction(issued, field="agreed_on"))

    assert problem(response, 422, "validation-error") == ["field"]


def test_a_field_of_another_event_is_a_422_naming_field(issued: Api) -> None:
    response = issued.post("corrections", _correction(issued, field="served_on"))

    assert problem(response, 422, "validation-error") == ["field"]
    assert "correct its issued_on" in response.json()["errors"][0]["message"]


def test_an_unknown_event_is_a_422_naming_event_id(issued: Api) -> None:
    response = issued.post("corrections", _correction(issued, event_id=new_case_id()))

    assert problem(response, 422, "validation-error") == ["event_id"]


def test_a_future_or_unchanged_or_out_of_order_date_is_a_422_naming_new_value(
    issued: Api, store: InMemoryEventStore
) -> None:
    for new_value in ("2026-06-02", "2026-03-17", "2026-03-10", "2026-02-27"):
        response = issued.post("corrections", _correction(issued, new_value=new_value))

        assert problem(response, 422, "validation-error") == ["new_value"], new_value
    assert types_of(store, issued.id)[-1] == "PlanIssued"


def test_a_correction_without_a_reason_is_a_422(issued: Api) -> None:
    body = _correction(issued)
    del body["reason"]

    assert problem(issued.post("corrections", body), 422, "validation-error") == [
        "reason"
    ]


def test_an_unknown_case_is_a_404(client: TestClient) -> None:
    response = client.post(
        f"/cases/{new_case_id()}/corrections",
        json={
            "event_id": new_case_id(),
            "field": "issued_on",
            "new_value": "2026-03-20",
            "reason": "typo",
        },
    )

    problem(response, 404, "case-not-found")


def test_a_retried_correction_with_its_key_is_recorded_once(
    issued: Api, store: InMemoryEventStore
) -> None:
    body = _correction(issued)
    key = {"Idempotency-Key": "correct-issue-date"}

    first = issued.post("corrections", body, **key)
    again = issued.post("corrections", body, **key)

    assert ok(again) == ok(first)
    assert again.headers["idempotent-replayed"] == "true"
    assert types_of(store, issued.id).count("PlanCorrected") == 1


def test_only_caseworkers_may_correct(issued: Api, mint: Mint) -> None:
    body = _correction(issued)

    auditor = issued.post("corrections", body, **mint("audit-1", ["auditor"]))
    senco = issued.post("corrections", body, **mint("senco-1", ["senco"]))

    assert auditor.status_code == 403, auditor.text
    assert senco.status_code == 403, senco.text


def test_an_amendment_notice_may_name_its_review(
    issued: Api, store: InMemoryEventStore
) -> None:
    ok(
        issued.post(
            "amendment-notices",
            {
                "notice_sent_on": "2026-04-15",
                "proposals": "add weekly physiotherapy to section F",
                "review_id": REVIEW,
            },
        )
    )

    assert store.read_stream(issued.id)[-1].data["review_id"] == REVIEW
    [notice] = issued.read()["amendment_notices"]
    assert notice["review_id"] == REVIEW


def test_an_amendment_notice_with_a_malformed_review_id_is_a_422(issued: Api) -> None:
    response = issued.post(
        "amendment-notices",
        {
            "notice_sent_on": "2026-04-15",
            "proposals": "add weekly physiotherapy to section F",
            "review_id": "REVIEW-1",
        },
    )

    assert problem(response, 422, "validation-error") == ["review_id"]
