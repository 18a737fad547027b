"""The app factory: probes, metrics, correlation ids and problem details."""

from __future__ import annotations

import uuid
from typing import Annotated

import pytest
from fastapi import APIRouter, FastAPI, HTTPException, Query
from fastapi.testclient import TestClient
from pydantic import AwareDatetime, BaseModel, Field

from sendkit.logging import get_correlation_id
from sendkit.problems import PROBLEM_MEDIA_TYPE, ErrorMap
from sendkit.web import create_app


class ThingError(Exception):
    """The test service's root error."""


class ThingGone(ThingError):
    """A subclass answered through its parent's rule."""


class ThingInvalid(ThingError):
    field_errors = (("size", "must be even"), ("colour", "is not a colour"))


class Part(BaseModel):
    size: Annotated[int, Field(ge=1, le=10)]


class Order(BaseModel):
    placed_at: AwareDatetime
    parts: list[Part]


def build_app(*, ready: dict[str, bool] | None = None) -> FastAPI:
    state = ready if ready is not None else {}

    def database() -> bool:
        return state.get("database", True)

    def broker() -> None:
        if not state.get("broker", True):
            raise ConnectionError("broker at 10.0.0.9:9092 refused the connection")

    errors = ErrorMap().register(ThingError, 409).register(ThingInvalid, 422)
    app = create_app(
        "things",
        readiness_checks={"database": database, "broker": broker},
        error_map=errors,
    )
    router = APIRouter(prefix="/v1")

    @router.get("/things/{thing_id}")
    def read_thing(thing_id: str) -> dict[str, str | None]:
        return {"id": thing_id, "correlation_id": get_correlation_id()}

    @router.post("/orders", status_code=201)
    def place_order(
        order: Order, limit: Annotated[int, Query(le=5)] = 1
    ) -> dict[str, int]:
        return {"parts": len(order.parts)}

    @router.get("/forbidden")
    def forbidden() -> None:
        raise HTTPException(403, "staff may not read this thing")

    @router.get("/gone")
    def gone() -> None:
        raise ThingGone("thing 7 was thrown away: order a new one")

    @router.get("/invalid")
    def invalid() -> None:
        raise ThingInvalid("the thing is not valid: fix size and colour")

    @router.get("/boom")
    def boom() -> None:
        raise RuntimeError("password=hunter2 at /srv/secret/path")

    @router.get("/async-correlation")
    async def async_correlation() -> dict[str, str | None]:
        return {"correlation_id": get_correlation_id()}

    app.include_router(router)
    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(build_app())


def assert_problem(response: object, status: int) -> dict[str, object]:
    assert response.status_code == status  # type: ignore[attr-defined]
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["status"] == status
    for member in ("type", "title", "detail", "instance"):
        assert isinstance(body[member], str), member
        assert body[member], member
    return body


def test_healthz_answers_while_the_process_is_up(client: TestClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "things"}


def test_readyz_is_200_when_every_check_passes(client: TestClient) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_readyz_is_503_naming_the_checks_that_failed() -> None:
    client = TestClient(build_app(ready={"database": False, "broker": False}))

    body = assert_problem(client.get("/readyz"), 503)

    assert body["checks"] == {"database": "failed", "broker": "failed: ConnectionError"}
    assert "database" in str(body["detail"])
    assert "broker" in str(body["detail"])
    # The exception text (an address) is logged, not shown.
    assert "10.0.0.9" not in str(body)


def test_readyz_names_only_the_failing_check() -> None:
    client = TestClient(build_app(ready={"broker": False}))

    body = assert_problem(client.get("/readyz"), 503)

    assert body["checks"] == {"database": "ok", "broker": "failed: ConnectionError"}


def test_metrics_count_requests_by_route_template_not_raw_path(
    client: TestClient,
) -> None:
    client.get("/v1/things/aaa")
    client.get("/v1/things/bbb")
    client.get("/no/such/path/123")

    text = client.get("/metrics").text

    assert (
        'http_requests_total{method="GET",route="/v1/things/{thing_id}",'
        'service="things",status="200"} 2.0' in text
    )
    assert 'route="<unmatched>",service="things",status="404"} 1.0' in text
    assert "aaa" not in text
    assert "/no/such/path" not in text
    assert "http_request_duration_seconds_bucket" in text


def test_metrics_are_prometheus_text(client: TestClient) -> None:
    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE http_requests_total counter" in response.text


def test_a_correlation_id_is_generated_and_echoed_when_absent(
    client: TestClient,
) -> None:
    response = client.get("/v1/things/1")

    echoed = response.headers["X-Correlation-ID"]
    assert str(uuid.UUID(echoed)) == echoed
    assert response.json()["correlation_id"] == echoed


def test_a_given_correlation_id_is_held_for_the_request_and_echoed(
    client: TestClient,
) -> None:
    headers = {"X-Correlation-ID": "req-1234.abc"}

    sync = client.get("/v1/things/1", headers=headers)
    in_async = client.get("/v1/async-correlation", headers=headers)

    assert sync.headers["X-Correlation-ID"] == "req-1234.abc"
    assert sync.json()["correlation_id"] == "req-1234.abc"
    assert in_async.json()["correlation_id"] == "req-1234.abc"


@pytest.mark.parametrize("unsafe", [b"has space", b"x" * 200, "caf\u00e9".encode()])
def test_an_unsafe_correlation_id_is_replaced(
    client: TestClient, unsafe: bytes
) -> None:
    response = client.get("/v1/things/1", headers={"X-Correlation-ID": unsafe})

    assert response.headers["X-Correlation-ID"].encode() != unsafe
    uuid.UUID(response.headers["X-Correlation-ID"])


def test_each_request_gets_its_own_correlation_id(client: TestClient) -> None:
    first = client.get("/v1/things/1").headers["X-Correlation-ID"]
    second = client.get("/v1/things/1").headers["X-Correlation-ID"]

    assert first != second


def test_validation_errors_name_each_bad_field(client: TestClient) -> None:
    response = client.post(
        "/v1/orders?limit=9",
        json={"placed_at": "2025-01-06T09:00:00", "parts": [{"size": 3}, {"size": 11}]},
    )

    body = assert_problem(response, 422)
    fields = {e["field"]: e["message"] for e in body["errors"]}  # type: ignore[attr-defined]
    assert set(fields) == {"placed_at", "parts.1.size", "query.limit"}
    assert "timezone" in fields["placed_at"]
    assert body["type"] == "/problems/validation-error"
    assert body["instance"] == "/v1/orders"
    assert "placed_at" in str(body["detail"])


def test_a_missing_field_is_named(client: TestClient) -> None:
    body = assert_problem(client.post("/v1/orders", json={"parts": []}), 422)

    assert body["errors"] == [{"field": "placed_at", "message": "Field required"}]


def test_a_body_that_is_not_json_is_a_problem(client: TestClient) -> None:
    response = client.post(
        "/v1/orders", content=b"{not json", headers={"content-type": "application/json"}
    )

    body = assert_problem(response, 422)
    assert body["errors"] == [
        {"field": "body", "message": "the body is not valid JSON"}
    ]


def test_http_exceptions_become_problems(client: TestClient) -> None:
    body = assert_problem(client.get("/v1/forbidden"), 403)

    assert body["title"] == "Forbidden"
    assert body["detail"] == "staff may not read this thing"
    assert body["type"] == "about:blank"


def test_unknown_routes_are_404_problems(client: TestClient) -> None:
    body = assert_problem(client.get("/nothing/here"), 404)

    assert body["title"] == "Not Found"
    assert body["instance"] == "/nothing/here"


def test_wrong_methods_are_405_problems_with_allow(client: TestClient) -> None:
    response = client.delete("/v1/orders")

    assert_problem(response, 405)
    assert response.headers["allow"] == "POST"


def test_domain_errors_answer_the_status_registered_for_their_class(
    client: TestClient,
) -> None:
    body = assert_problem(client.get("/v1/gone"), 409)

    assert body["type"] == "/problems/thing-error"
    assert body["detail"] == "thing 7 was thrown away: order a new one"


def test_a_subclass_rule_wins_and_names_the_fields(client: TestClient) -> None:
    body = assert_problem(client.get("/v1/invalid"), 422)

    assert body["type"] == "/problems/thing-invalid"
    assert body["errors"] == [
        {"field": "size", "message": "must be even"},
        {"field": "colour", "message": "is not a colour"},
    ]


def test_unhandled_errors_are_500_problems_without_internals(
    client: TestClient,
) -> None:
    response = client.get("/v1/boom", headers={"X-Correlation-ID": "trace-500"})

    body = assert_problem(response, 500)
    assert "hunter2" not in response.text
    assert "/srv" not in response.text
    assert "Traceback" not in response.text
    assert body["correlation_id"] == "trace-500"
    assert response.headers["X-Correlation-ID"] == "trace-500"

    metrics = client.get("/metrics").text
    assert 'route="/v1/boom",service="things",status="500"} 1.0' in metrics


def test_every_problem_carries_the_correlation_id(client: TestClient) -> None:
    response = client.get("/v1/gone", headers={"X-Correlation-ID": "abc-1"})

    assert response.json()["correlation_id"] == "abc-1"


def test_two_apps_in_one_process_keep_separate_metrics() -> None:
    first, second = TestClient(build_app()), TestClient(build_app())

    first.get("/v1/things/1")

    assert 'route="/v1/things/{thing_id}"' in first.get("/metrics").text
    assert 'route="/v1/things/{thing_id}"' not in second.get("/metrics").text


def test_aware_datetimes_are_accepted(client: TestClient) -> None:
    response = client.post(
        "/v1/orders",
        json={"placed_at": "2025-01-06T09:00:00Z", "parts": []},
    )

    assert response.status_code == 201
    assert response.json() == {"parts": 0}
