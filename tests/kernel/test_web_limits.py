"""The app factory's request limits: body size, NUL characters, correlation ids."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from pydantic import BaseModel

from sendkit.web import create_app

LIMIT = 1024


class Note(BaseModel):
    """A body with one free-text field, as the services' command bodies have."""

    text: str


def make_client(max_body_bytes: int | None = LIMIT) -> tuple[TestClient, list[str]]:
    app = create_app("limits-test", max_body_bytes=max_body_bytes)
    seen: list[str] = []
    router = APIRouter()

    @router.post("/notes")
    def add_note(note: Note) -> dict[str, str]:
        seen.append(note.text)
        return {"text": note.text}

    @router.get("/notes")
    def find_notes(text: str = "") -> dict[str, str]:
        seen.append(text)
        return {"text": text}

    app.include_router(router)
    return TestClient(app), seen


@pytest.fixture
def client() -> Iterator[tuple[TestClient, list[str]]]:
    made, seen = make_client()
    with made:
        yield made, seen


def test_a_body_within_the_limit_is_taken(
    client: tuple[TestClient, list[str]],
) -> None:
    http, seen = client
    response = http.post("/notes", json={"text": "a" * 100})

    assert response.status_code == 200
    assert seen == ["a" * 100]


def test_a_declared_length_over_the_limit_is_answered_413_before_reading(
    client: tuple[TestClient, list[str]],
) -> None:
    http, seen = client
    response = http.post("/notes", json={"text": "a" * (LIMIT + 10)})

    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 413
    assert problem["type"].endswith("body-too-large")
    assert str(LIMIT) in problem["detail"]
    assert problem["correlation_id"] == response.headers["X-Correlation-ID"]
    assert seen == []


def test_a_body_sent_without_a_length_is_cut_off_at_the_limit(
    client: tuple[TestClient, list[str]],
) -> None:
    http, seen = client

    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(4):
            yield b"a" * (LIMIT // 2)
        yield b'"}'

    response = http.post(
        "/notes", content=chunks(), headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 413
    assert str(LIMIT) in response.json()["detail"]
    assert seen == []


def test_the_limit_is_read_from_send_max_body_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEND_MAX_BODY_BYTES", "64")
    made, seen = make_client(max_body_bytes=None)
    with made as http:
        small = http.post("/notes", json={"text": "a"})
        large = http.post("/notes", json={"text": "a" * 100})

    assert small.status_code == 200
    assert large.status_code == 413
    assert seen == ["a"]


def test_a_nul_escape_in_a_json_body_is_refused_with_400(
    client: tuple[TestClient, list[str]],
) -> None:
    http, seen = client
    response = http.post(
        "/notes",
        content=b'{"text": "Synthetic\\u0000Name"}',
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 400
    problem = response.json()
    assert "NUL" in problem["detail"]
    assert "the body" in problem["detail"]
    assert seen == []


def test_an_escaped_backslash_before_u0000_is_no_nul_and_is_taken(
    client: tuple[TestClient, list[str]],
) -> None:
    http, seen = client
    response = http.post(
        "/notes",
        content=b'{"text": "C:\\\\u0000"}',
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 200
    assert seen == ["C:\\u0000"]


def test_a_nul_in_the_query_string_is_refused_with_400(
    client: tuple[TestClient, list[str]],
) -> None:
    http, seen = client
    response = http.get("/notes?text=a%00b")

    assert response.status_code == 400
    assert response.json()["type"].endswith("nul-character")
    assert "query string" in response.json()["detail"]
    assert seen == []


@pytest.mark.parametrize(
    "refused",
    [
        "a" * 129,
        "has space",
        "-starts-with-a-dash",
        "semi;colon",
        'quote"d',
    ],
)
def test_an_unsafe_correlation_id_is_replaced_by_a_fresh_one(
    client: tuple[TestClient, list[str]],
    refused: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    http, _ = client
    caplog.set_level(logging.WARNING, logger="sendkit.web")
    response = http.get("/notes", headers={"X-Correlation-ID": refused})

    echoed = response.headers["X-Correlation-ID"]
    assert response.status_code == 200
    assert echoed != refused
    uuid.UUID(echoed)
    assert f"({len(refused)} characters" in caplog.text
    assert refused not in caplog.text


def test_a_correlation_id_of_128_safe_characters_is_adopted(
    client: tuple[TestClient, list[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    http, _ = client
    given = "A1._:-" + "b" * 122
    response = http.get("/notes", headers={"X-Correlation-ID": given})

    assert len(given) == 128
    assert response.headers["X-Correlation-ID"] == given
    assert "refused" not in caplog.text


def _chunked_over_the_limit() -> Iterator[bytes]:
    yield b'{"text": "'
    for _ in range(4):
        yield b"a" * (LIMIT // 2)
    yield b'"}'


# Every way the kernel refuses a body before a route reads it: the platform's own
# problem type (never about:blank) and the field at fault, however the body came.
REFUSED_BODIES = {
    "declared too long": (
        lambda: b'{"text": "' + b"a" * LIMIT + b'"}',
        413,
        "/problems/body-too-large",
    ),
    "chunked too long": (_chunked_over_the_limit, 413, "/problems/body-too-large"),
    "nul escape": (
        lambda: b'{"text": "a\\u0000b"}',
        400,
        "/problems/nul-character",
    ),
    "malformed json": (lambda: b'{"text": ', 422, "/problems/validation-error"),
    "nested too deeply": (
        lambda: b"[" * 100_000,
        422,
        "/problems/validation-error",
    ),
    "not utf-8": (lambda: b'{"text": "\xff\xfe"}', 422, "/problems/validation-error"),
}


@pytest.mark.parametrize("case", sorted(REFUSED_BODIES))
def test_a_refused_body_is_answered_with_the_platforms_problem_and_field(
    case: str,
) -> None:
    body, status, kind = REFUSED_BODIES[case]
    # A high limit for the nested body (100 kB): the nesting, not the size, is at
    # fault there.
    made, seen = make_client(LIMIT if "too long" in case else 1024 * 1024)
    with made as http:
        response = http.post(
            "/notes", content=body(), headers={"Content-Type": "application/json"}
        )

    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"] == kind
    assert problem["type"] != "about:blank"
    assert [e["field"] for e in problem["errors"]] == ["body"]
    assert problem["correlation_id"] == response.headers["X-Correlation-ID"]
    assert seen == []


def test_a_bare_http_status_such_as_a_wrong_method_is_still_about_blank(
    client: tuple[TestClient, list[str]],
) -> None:
    # A status with no kind of its own keeps RFC 9457's about:blank.
    http, _ = client
    response = http.delete("/notes")

    assert response.status_code == 405
    assert response.json()["type"] == "about:blank"
    assert "errors" not in response.json()
