"""Schemathesis against each adopted service's OpenAPI: with a token, and without one.

For every operation of intake, plans, reviews and placement, schemathesis generates
requests from the published document (a few examples each, derandomised, so the run is
short and the same every time). With a valid token no answer may be a server error,
and no refusal a bare ``about:blank`` problem. Without one, or with a token that does
not verify, no answer may carry data: each is a problem, 401 (or 422 for a body that
is not JSON at all, refused before anything is read), never 2xx, never 5xx.

Every operation that takes a body is also sent the bodies the kernel refuses before a
route reads them (nested too deeply, not UTF-8, malformed, a NUL, too long without a
length); each must be refused with the platform's own problem kind naming ``body``,
the same on every route.

The operations are driven through schemathesis' strategies with hypothesis directly,
because its pytest plugin does not run under this pytest (9.x) yet.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from auth_support import (
    headers_of,
    intake_app,
    intake_case,
    intake_store,
    new_case_id,
    placement_app,
    placement_case,
    placement_store,
    plans_app,
    plans_case,
    plans_store,
    reviews_app,
    reviews_case,
    reviews_store,
)
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from devstack.issuer import LocalIssuer, new_signing_key
from sendkit.settings import HttpLimits

MAX_EXAMPLES = 4
PATH_PARAMETER = re.compile(r"\{[^}]+\}")
PROBLEM_KEYS = {
    "type",
    "title",
    "status",
    "detail",
    "instance",
    "errors",
    "reason",
    "correlation_id",
}


def _intake(issuer: LocalIssuer) -> Any:
    store = intake_store()
    intake_case(store)
    return intake_app(issuer, store)


def _plans(issuer: LocalIssuer) -> Any:
    app = plans_app(issuer, plans_store())
    plans_case(app)
    return app


def _reviews(issuer: LocalIssuer) -> Any:
    app = reviews_app(issuer, reviews_store())
    reviews_case(app)
    return app


def _placement(issuer: LocalIssuer) -> Any:
    app = placement_app(issuer, placement_store())
    placement_case(app)
    return app


APPS: dict[str, Callable[[LocalIssuer], Any]] = {
    "intake": _intake,
    "plans": _plans,
    "reviews": _reviews,
    "placement": _placement,
}
Check = Callable[[Any], None]


def fuzz_every_operation(app: Any, check: Check) -> list[str]:
    """Run ``check`` on generated cases of each operation; the operations run."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    ran = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            check(case)

        run()
        ran.append(f"{operation.method.upper()} {operation.path}")
    return ran


@pytest.mark.parametrize("service", sorted(APPS))
def test_with_a_token_no_operation_answers_a_server_error(
    local_issuer: LocalIssuer, service: str
) -> None:
    headers = headers_of(local_issuer, "mgr_team")

    def check(case: Any) -> None:
        response = case.call(headers=headers)
        where = (case.method, case.formatted_path, response.status_code)
        assert response.status_code < 500, where
        # Every refusal has one of the platform's kinds, never a bare about:blank.
        if response.status_code >= 400:
            assert json.loads(response.content)["type"] != "about:blank", where

    ran = fuzz_every_operation(APPS[service](local_issuer), check)

    assert "GET /access-log" in ran
    assert len(ran) >= 10


@pytest.mark.parametrize("service", sorted(APPS))
def test_without_a_valid_token_no_operation_gives_data(
    local_issuer: LocalIssuer, service: str
) -> None:
    forged = local_issuer.mint(
        "mgr-north", ["team_manager"], signing_key=new_signing_key()
    )

    def check(case: Any) -> None:
        case.headers = {
            name: value
            for name, value in (case.headers or {}).items()
            if name.lower() != "authorization"
        }
        for headers in ({}, {"Authorization": f"Bearer {forged}"}):
            response = case.call(headers=headers)
            where = (case.method, case.formatted_path, response.status_code)
            # A body or path the kernel refuses before any route runs (NUL
            # characters: 400; too large: 413) or that fails validation (422) is
            # answered before the token is looked at, with problem details only.
            assert response.status_code in (400, 401, 413, 422), where
            assert set(json.loads(response.content)) <= PROBLEM_KEYS, where
            if response.status_code == 401:
                assert any(n.lower() == "www-authenticate" for n in response.headers)

    ran = fuzz_every_operation(APPS[service](local_issuer), check)

    assert len(ran) >= 10


def _chunked(size: int) -> Callable[[], Iterator[bytes]]:
    """A body of ``size`` bytes sent in chunks, with no Content-Length."""

    def chunks() -> Iterator[bytes]:
        sent = 0
        while sent < size:
            step = min(CHUNK, size - sent)
            yield b" " * step
            sent += step

    return chunks


CHUNK = 64 * 1024
REFUSED_BODIES: dict[str, tuple[Callable[[], Any], int, str]] = {
    "nested too deeply": (lambda: b"[" * 100_000, 422, "/problems/validation-error"),
    "not utf-8": (lambda: b'{"note": "\xff\xfe"}', 422, "/problems/validation-error"),
    "malformed": (lambda: b'{"note": ', 422, "/problems/validation-error"),
    "nul escape": (lambda: b'{"note": "\\u0000"}', 400, "/problems/nul-character"),
    "chunked too long": (
        _chunked(HttpLimits().max_body_bytes + CHUNK),
        413,
        "/problems/body-too-large",
    ),
}


def operations_with_a_body(app: Any) -> list[tuple[str, str]]:
    """Each operation of the app's OpenAPI document that takes a request body."""
    return [
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
        if "requestBody" in operation
    ]


@pytest.mark.parametrize("service", sorted(APPS))
def test_every_body_route_refuses_a_bad_body_with_the_platforms_problem(
    local_issuer: LocalIssuer, service: str
) -> None:
    app = APPS[service](local_issuer)
    headers = {
        **headers_of(local_issuer, "mgr_team"),
        "Content-Type": "application/json",
    }
    operations = operations_with_a_body(app)

    with TestClient(app) as client:
        for method, template in operations:
            path = PATH_PARAMETER.sub(new_case_id(), template)
            for name, (body, status, kind) in REFUSED_BODIES.items():
                response = client.request(method, path, content=body(), headers=headers)
                where = (name, method, template, response.status_code)
                assert response.status_code == status, where
                problem = json.loads(response.content)
                assert problem["type"] == kind, where
                assert [e["field"] for e in problem["errors"]] == ["body"], where

    assert len(operations) >= 3
