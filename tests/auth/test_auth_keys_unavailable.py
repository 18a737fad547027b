"""When the issuer's keys cannot be fetched, a request with a token is told to try
again (503 with Retry-After), not that its token is bad (401): the fault is ours."""

from __future__ import annotations

from auth_support import auth_fields, headers_of, intake_store
from fastapi.testclient import TestClient

from devstack.issuer import LocalIssuer
from devstack.kafka_config import free_port
from intake.entrypoints.http import create_app as create_intake_app
from intake.settings import IntakeSettings


def test_a_token_met_while_the_keys_cannot_be_fetched_is_told_to_retry(
    local_issuer: LocalIssuer,
) -> None:
    fields = auth_fields(local_issuer)
    # Nothing listens there: every fetch of the keys fails.
    fields["auth_jwks_url"] = f"http://127.0.0.1:{free_port()}/jwks"
    settings = IntakeSettings(database_url="memory://", **fields)
    app = create_intake_app(settings, store=intake_store())

    with TestClient(app) as client:
        with_token = client.get(
            "/cases/00000000-0000-4000-8000-000000000000",
            headers=headers_of(local_issuer, "mgr_team"),
        )
        without = client.get("/cases/00000000-0000-4000-8000-000000000000")

    assert with_token.status_code == 503
    assert with_token.headers["retry-after"] == "5"
    assert with_token.json()["reason"] == "keys_unavailable"
    assert "try again" in with_token.json()["detail"]
    assert without.status_code == 401  # no token is still the caller's to fix
