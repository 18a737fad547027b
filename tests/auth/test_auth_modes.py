"""AUTH_MODE and the settings: verification off only in development, and loudly.

Also the local issuer's own HTTP face (discovery, JWKS, the token endpoint) and its
refusal to bind anything but loopback.
"""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from devstack.issuer import IssuerError, LocalIssuer, demo_team_members
from intake.entrypoints.http import create_app as create_intake_app
from intake.settings import IntakeSettings
from plans.settings import PlansSettings
from reviews.settings import ReviewsSettings
from sendkit.auth import AUTH_MODE_HEADER, AuthConfigError, AuthSettings

BODY = {
    "requester_type": "parent",
    "child_reference": "C-00000002",
    "date_of_birth": "2016-05-14",
    "school_urn": 990001,
    "curriculum_year": 3,
    "channel": "email",
    "received_at": "2025-01-06T09:30:00Z",
}


@pytest.mark.parametrize(
    "settings_class", [IntakeSettings, PlansSettings, ReviewsSettings]
)
@pytest.mark.parametrize("environment", ["test", "production"])
def test_auth_mode_off_is_refused_outside_development(
    settings_class: type[AuthSettings], environment: str
) -> None:
    with pytest.raises(ValidationError, match="AUTH_MODE=off is refused"):
        settings_class(database_url="memory://", send_env=environment, auth_mode="off")


def test_auth_mode_off_is_refused_from_the_environment_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEND_ENV", "production")
    monkeypatch.setenv("AUTH_MODE", "off")

    with pytest.raises(ValidationError, match="SEND_ENV=development"):
        IntakeSettings()


def test_production_needs_an_issuer_and_an_audience() -> None:
    with pytest.raises(ValidationError, match="AUTH_ISSUER and AUTH_AUDIENCE"):
        AuthSettings(send_env="production")


def test_production_refuses_keys_over_plain_http_from_another_host() -> None:
    with pytest.raises(ValidationError, match="https"):
        AuthSettings(
            send_env="production",
            auth_issuer="http://login.example.org/tenant/v2.0",
            auth_audience="api://send",
        )


def test_production_accepts_an_entra_like_configuration() -> None:
    settings = AuthSettings(
        send_env="production",
        auth_issuer="https://login.microsoftonline.com/0000-tenant/v2.0",
        auth_audience="api://send-casework",
        auth_staff_id_claim="oid",
    )

    assert settings.auth_mode == "on"
    assert settings.algorithms == ("RS256", "ES256")


@pytest.mark.parametrize("algorithms", ["HS256", "none", "RS256,HS512", ""])
def test_only_asymmetric_algorithms_are_accepted(algorithms: str) -> None:
    with pytest.raises(ValidationError, match="RS256 and/or ES256"):
        AuthSettings(auth_algorithms=algorithms)


def test_an_app_with_auth_on_and_no_issuer_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AUTH_ISSUER", "AUTH_AUDIENCE", "AUTH_MODE"):
        monkeypatch.delenv(name, raising=False)

    with pytest.raises(AuthConfigError, match="AUTH_MODE=off"):
        create_intake_app(IntakeSettings(database_url="memory://"))


def test_auth_off_in_development_is_announced_and_marks_every_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = IntakeSettings(
        database_url="memory://", send_env="development", auth_mode="off"
    )

    with caplog.at_level(logging.WARNING, logger="sendkit.auth.web"):
        app = create_intake_app(settings)
    with TestClient(app) as client:
        created = client.post("/cases", json=BODY, headers={"X-Staff-Id": "dev-1"})
        health = client.get("/healthz")
        case = client.get(f"/cases/{created.json()['case_id']}").json()

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("AUTHENTICATION IS OFF" in r.getMessage() for r in warnings)
    assert created.status_code == 201
    assert created.headers[AUTH_MODE_HEADER] == "off"
    assert health.headers[AUTH_MODE_HEADER] == "off"
    assert case["history"][0]["actor"] == "dev-1"


def test_with_auth_on_answers_carry_no_off_marker(
    local_issuer: LocalIssuer, auth_env: dict[str, str]
) -> None:
    with TestClient(create_intake_app(IntakeSettings(database_url="memory://"))) as c:
        answer = c.get("/healthz")

    assert answer.status_code == 200
    assert AUTH_MODE_HEADER not in answer.headers


def test_with_auth_on_the_staff_id_header_names_nobody(
    local_issuer: LocalIssuer, auth_env: dict[str, str]
) -> None:
    app = create_intake_app(IntakeSettings(database_url="memory://"))
    token = local_issuer.headers_for("mgr-9", ["team_manager"])

    with TestClient(app) as client:
        spoofed = client.post("/cases", json=BODY, headers={"X-Staff-Id": "mgr-9"})
        created = client.post(
            "/cases", json=BODY, headers={**token, "X-Staff-Id": "someone-else"}
        )
        case = client.get(f"/cases/{created.json()['case_id']}", headers=token).json()

    assert spoofed.status_code == 401
    assert case["history"][0]["actor"] == "mgr-9"


def test_the_openapi_document_declares_the_bearer_scheme(
    local_issuer: LocalIssuer, auth_env: dict[str, str]
) -> None:
    with TestClient(create_intake_app(IntakeSettings(database_url="memory://"))) as c:
        document = c.get("/openapi.json").json()

    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": (
            "An OpenID Connect access token (JWT) from the council's issuer."
        ),
    }
    assert document["paths"]["/cases/{case_id}"]["get"]["security"] == [{"bearer": []}]


# The local issuer -------------------------------------------------------------------


def test_the_issuer_serves_discovery_keys_and_tokens(local_issuer: LocalIssuer) -> None:
    discovery = httpx.get(f"{local_issuer.url}/.well-known/openid-configuration")
    keys = httpx.get(discovery.json()["jwks_uri"])
    minted = httpx.post(f"{local_issuer.url}/token", json={"staff_id": "STAFF-101"})

    assert discovery.json()["issuer"] == local_issuer.url
    assert {key["kid"] for key in keys.json()["keys"]} == set(local_issuer.kids)
    assert all("d" not in key for key in keys.json()["keys"])
    assert minted.status_code == 200
    assert minted.json()["token_type"] == "Bearer"


def test_the_issuer_gives_demo_staff_their_role_and_team() -> None:
    with LocalIssuer() as issuer:
        settings = AuthSettings(**{k.lower(): v for k, v in issuer.env().items()})
        from sendkit.auth import TokenVerifier

        verifier = TokenVerifier(settings)
        coordinator = verifier.verify(issuer.mint_for_staff("STAFF-101"))
        manager = verifier.verify(issuer.mint_for_staff("STAFF-001"))

    assert [str(role) for role in coordinator.roles] == ["ehc_coordinator"]
    assert [str(role) for role in manager.roles] == ["team_manager"]
    assert coordinator.team == manager.team == demo_team_members()["STAFF-101"]


def test_the_issuer_binds_only_loopback() -> None:
    with pytest.raises(IssuerError, match="loopback"):
        LocalIssuer(host="0.0.0.0")  # noqa: S104


def test_the_issuer_refuses_a_token_request_without_a_staff_id(
    local_issuer: LocalIssuer,
) -> None:
    answer = httpx.post(f"{local_issuer.url}/token", json={"roles": ["auditor"]})

    assert answer.status_code == 400
    assert "staff_id" in answer.json()["error"]


def test_the_issuer_reuses_a_demo_staff_members_token(
    local_issuer: LocalIssuer,
) -> None:
    first = local_issuer.staff_headers("STAFF-102")
    again = local_issuer.staff_headers("STAFF-102")
    other = local_issuer.staff_headers("STAFF-001")

    assert first == again
    assert first != other
    assert first["Authorization"].startswith("Bearer ")
