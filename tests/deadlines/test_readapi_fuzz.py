"""Schemathesis against the deadlines read API's OpenAPI: with a token, and without.

For every operation of the document, schemathesis generates requests (a few examples
each, derandomised, so the run is short and the same every time). With a manager's
token no answer may be a server error, and no refusal may be a bare ``about:blank``
problem (ADR 003: the platform's own kinds); without a token, or with one whose
signature does not verify, every answer is a 401 or 422 problem and none carries
data. The operations are driven through schemathesis' strategies with hypothesis
directly, as ``tests/auth/test_auth_openapi_fuzz.py`` does for the other services.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from test_readapi_queries import Case, fold

from auth_fixtures import Mint
from deadlines.application.processor import SOURCE
from deadlines.entrypoints.api import create_app
from deadlines.settings import DeadlinesSettings
from devstack.issuer import LocalIssuer, new_signing_key
from sendkit.store import open_store

MAX_EXAMPLES = 6
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
OPERATIONS = {
    "GET /cases/{case_id}/timeline",
    "GET /due",
    "GET /summary",
    "GET /timeliness",
    "GET /access-log",
}


@pytest.fixture
def app(tmp_path: Path, auth_env: dict[str, str]) -> Iterator[FastAPI]:
    store = open_store(f"sqlite:///{tmp_path / 'deadlines.db'}", SOURCE)
    case = Case("fuzz/one", 100031, "ehcco-1")
    case.request("2025-01-06T10:00:00Z")
    fold(store, [case])
    yield create_app(DeadlinesSettings(), store=store, projector=False)
    store.close()


def fuzz_every_operation(app: FastAPI, check: Callable[[Any], None]) -> set[str]:
    """Run ``check`` on generated cases of each operation; the operations run."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    ran = set()
    for result in schema.get_all_operations():
        # An Err here would be a document schemathesis cannot read: .ok() raises.
        operation = cast(Any, result).ok()

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
        ran.add(f"{operation.method.upper()} {operation.path}")
    return ran


def test_with_a_token_no_operation_answers_a_server_error(
    app: FastAPI, mint: Mint
) -> None:
    headers = mint("mgr-1", ["team_manager", "auditor"])

    def check(case: Any) -> None:
        response = case.call(headers=headers)
        where = (case.method, case.formatted_path, response.status_code)
        assert response.status_code < 500, where
        # Every refusal has one of the platform's kinds (an unknown case id is
        # case-not-found, as in intake), never a bare about:blank.
        if response.status_code >= 400:
            assert json.loads(response.content)["type"] != "about:blank", where

    assert fuzz_every_operation(app, check) == OPERATIONS


def test_without_a_valid_token_no_operation_gives_data(
    app: FastAPI, local_issuer: LocalIssuer
) -> None:
    forged = local_issuer.mint("mgr-1", ["auditor"], signing_key=new_signing_key())

    def check(case: Any) -> None:
        case.headers = {
            name: value
            for name, value in (case.headers or {}).items()
            if name.lower() != "authorization"
        }
        for headers in ({}, {"Authorization": f"Bearer {forged}"}):
            response = case.call(headers=headers)
            where = (case.method, case.formatted_path, response.status_code)
            assert response.status_code in (401, 422), where
            assert set(json.loads(response.content)) <= PROBLEM_KEYS, where

    assert fuzz_every_operation(app, check) == OPERATIONS


def test_a_due_range_from_the_end_of_the_calendar_is_a_422_problem(
    app: FastAPI, mint: Mint
) -> None:
    client = TestClient(app, headers=mint("mgr-1", ["team_manager"]))

    answer = client.get("/due", params={"from": "9999-12-31"})

    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["query.from"]
