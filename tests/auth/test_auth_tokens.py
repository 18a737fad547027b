"""Token verification: what is accepted, what is refused and why, and key rotation.

Each test signs with a local issuer of its own (``devstack.issuer``) served on
loopback, so the keys really are fetched over HTTP, from the JWKS or by discovery.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from auth_support import SCHOOL, auth_fields, intake_app, intake_case, intake_store
from fastapi.testclient import TestClient

from devstack.issuer import LocalIssuer, new_signing_key
from sendkit.auth import (
    AuthConfigError,
    AuthSettings,
    JwksCache,
    NotAuthenticated,
    Role,
    TokenVerifier,
)
from sendkit.auth.tokens import KeysUnavailable, fetch_json


class FakeClock:
    """Monotonic seconds that move only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer(audience="api://send-test") as own:
        yield own


def settings_for(issuer: LocalIssuer, **changes: Any) -> AuthSettings:
    fields = {
        "auth_issuer": issuer.url,
        "auth_audience": issuer.audience,
        "auth_jwks_url": issuer.jwks_url,
        "send_env": "test",
        **changes,
    }
    return AuthSettings(**fields)


def verifier_for(
    issuer: LocalIssuer, clock: FakeClock | None = None, **changes: Any
) -> TokenVerifier:
    settings = settings_for(issuer, **changes)
    keys = JwksCache(
        issuer=settings.auth_issuer,
        jwks_url=settings.auth_jwks_url,
        ttl_s=settings.auth_jwks_ttl_seconds,
        min_refresh_s=settings.auth_jwks_min_refresh_seconds,
        clock=clock or FakeClock(),
    )
    return TokenVerifier(settings, keys)


def refusal(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(NotAuthenticated) as refused:
        verifier.verify(token)
    return refused.value.reason


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def handmade(header: dict[str, Any], claims: dict[str, Any], key: bytes = b"") -> str:
    """A JWT assembled by hand, signed with HMAC-SHA256 under ``key`` if any."""
    signing_input = (
        f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    )
    signature = (
        _b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())
        if key
        else ""
    )
    return f"{signing_input}.{signature}"


# Accepted ---------------------------------------------------------------------------


def test_a_valid_token_gives_its_staff_id_roles_schools_and_team(
    issuer: LocalIssuer,
) -> None:
    token = issuer.mint(
        "senco-7", ["senco", "other-app-role"], school_urns=[SCHOOL], team="west"
    )

    principal = verifier_for(issuer).verify(token)

    assert principal.staff_id == "senco-7"
    assert principal.roles == {Role.SENCO}
    assert principal.school_urns == {SCHOOL}
    assert principal.team == "west"
    assert principal.verified is True


def test_an_es256_token_verifies_as_well(issuer: LocalIssuer) -> None:
    issuer.rotate("ES256")

    principal = verifier_for(issuer).verify(issuer.mint("co-1", ["ehc_coordinator"]))

    assert principal.roles == {Role.EHC_COORDINATOR}


def test_the_keys_are_found_by_discovery_when_no_jwks_url_is_set(
    issuer: LocalIssuer,
) -> None:
    verifier = TokenVerifier(settings_for(issuer, auth_jwks_url=""))

    assert verifier.verify(issuer.mint("co-1", ["ehc_coordinator"])).staff_id == "co-1"


def test_claim_names_are_configurable_for_any_provider(issuer: LocalIssuer) -> None:
    # Entra-like: the staff id in oid; Keycloak-like: roles nested; a provider's own
    # role value mapped to ours; schools as one space-separated string.
    token = issuer.mint(
        "ignored-sub",
        extra={
            "oid": "00000000-0000-4000-8000-00000000abcd",
            "realm_access": {"roles": ["SEND.Manager"]},
            "urns": "990001 990002 not-a-urn",
            "group": "east",
        },
    )
    verifier = verifier_for(
        issuer,
        auth_staff_id_claim="oid",
        auth_roles_claim="realm_access.roles",
        auth_schools_claim="urns",
        auth_team_claim="group",
        auth_role_names={"SEND.Manager": "team_manager"},
    )

    principal = verifier.verify(token)

    assert principal.staff_id == "00000000-0000-4000-8000-00000000abcd"
    assert principal.roles == {Role.TEAM_MANAGER}
    assert principal.school_urns == {990001, 990002}
    assert principal.team == "east"


def test_a_token_without_a_team_claim_takes_the_team_from_the_settings(
    issuer: LocalIssuer,
) -> None:
    verifier = verifier_for(
        issuer, auth_team_members={"co-1": "north"}, auth_default_team="county"
    )

    assert verifier.verify(issuer.mint("co-1", ["ehc_coordinator"])).team == "north"
    assert verifier.verify(issuer.mint("co-2", ["ehc_coordinator"])).team == "county"


def test_a_token_expired_within_the_leeway_is_still_accepted(
    issuer: LocalIssuer,
) -> None:
    issued = datetime.now(UTC) - timedelta(minutes=10, seconds=-20)
    token = issuer.mint("co-1", issued_at=issued, lifetime=timedelta(minutes=10))

    assert verifier_for(issuer, auth_leeway_seconds=60).verify(token).staff_id == "co-1"


# Refused ----------------------------------------------------------------------------


def test_an_expired_token_is_refused(issuer: LocalIssuer) -> None:
    issued = datetime.now(UTC) - timedelta(hours=2)
    token = issuer.mint("co-1", issued_at=issued, lifetime=timedelta(hours=1))

    assert refusal(verifier_for(issuer), token) == "expired"


def test_a_token_for_another_audience_is_refused(issuer: LocalIssuer) -> None:
    token = issuer.mint("co-1", audience="api://another-service")

    assert refusal(verifier_for(issuer), token) == "wrong_audience"


def test_a_token_from_another_issuer_is_refused(issuer: LocalIssuer) -> None:
    token = issuer.mint("co-1", issuer="https://login.example.org/other/v2.0")

    assert refusal(verifier_for(issuer), token) == "wrong_issuer"


def test_a_token_with_a_wrong_signature_is_refused(issuer: LocalIssuer) -> None:
    # The header names the issuer's real key id; the signature is another key's.
    token = issuer.mint("co-1", signing_key=new_signing_key("RS256"))

    assert refusal(verifier_for(issuer), token) == "bad_signature"


def test_a_token_altered_after_signing_is_refused(issuer: LocalIssuer) -> None:
    header, claims, signature = issuer.mint("co-1", ["senco"]).split(".")
    forged = json.loads(base64.urlsafe_b64decode(claims + "=="))
    forged["roles"] = ["service_admin"]
    token = f"{header}.{_b64(json.dumps(forged).encode())}.{signature}"

    assert refusal(verifier_for(issuer), token) == "bad_signature"


def test_a_token_with_an_unknown_key_id_is_refused(issuer: LocalIssuer) -> None:
    token = issuer.mint(
        "co-1", kid="never-published", signing_key=new_signing_key("RS256")
    )

    assert refusal(verifier_for(issuer), token) == "unknown_key"


@pytest.mark.parametrize(
    "header",
    [{"alg": "none", "typ": "JWT"}, {"alg": "HS256", "typ": "JWT"}],
    ids=["none", "hs256"],
)
def test_unsigned_and_hmac_tokens_are_refused_whatever_their_key(
    issuer: LocalIssuer, header: dict[str, Any]
) -> None:
    # The HMAC one is keyed with the issuer's public key, the classic confusion.
    public = json.dumps(issuer.jwks()["keys"][0]).encode()
    claims = {
        "iss": issuer.url,
        "aud": issuer.audience,
        "sub": "admin-1",
        "exp": int((datetime.now(UTC) + timedelta(hours=1)).timestamp()),
        "roles": ["service_admin"],
    }
    header = {**header, "kid": issuer.current_kid}
    token = handmade(header, claims, key=public if header["alg"] == "HS256" else b"")

    assert refusal(verifier_for(issuer), token) == "algorithm_refused"


def test_an_es256_header_on_an_rsa_key_is_refused(issuer: LocalIssuer) -> None:
    rsa_kid = issuer.current_kid
    issuer.rotate("ES256")
    token = issuer.mint("co-1", kid=rsa_kid, signing_key=issuer_key(issuer))

    assert refusal(verifier_for(issuer), token) == "algorithm_refused"


def issuer_key(issuer: LocalIssuer) -> Any:
    # The current (EC) private key: signing with it under the RSA key's id.
    return issuer._keys[-1].private


@pytest.mark.parametrize(
    ("token", "reason"),
    [("not-a-jwt", "malformed"), ("a.b.c", "malformed")],
)
def test_garbage_is_refused_as_malformed(
    issuer: LocalIssuer, token: str, reason: str
) -> None:
    assert refusal(verifier_for(issuer), token) == reason


def test_a_token_without_a_key_id_is_refused(issuer: LocalIssuer) -> None:
    header, claims, signature = issuer.mint("co-1").split(".")
    bare = json.loads(base64.urlsafe_b64decode(header + "=="))
    del bare["kid"]
    token = f"{_b64(json.dumps(bare).encode())}.{claims}.{signature}"

    assert refusal(verifier_for(issuer), token) == "no_key_id"


def test_a_token_without_an_expiry_is_refused(issuer: LocalIssuer) -> None:
    token = issuer.mint("co-1", extra={"exp": None})

    assert refusal(verifier_for(issuer), token) in ("missing_claim", "invalid")


def test_a_staff_id_that_is_not_a_pseudonym_is_refused(issuer: LocalIssuer) -> None:
    assert refusal(verifier_for(issuer), issuer.mint("Jane Smith")) == "no_staff_id"


def test_no_keys_at_all_refuses_every_token_as_unavailable(
    issuer: LocalIssuer,
) -> None:
    verifier = verifier_for(issuer, auth_jwks_url="http://127.0.0.1:9/jwks")

    assert refusal(verifier, issuer.mint("co-1")) == "keys_unavailable"


# Rotation, caching and rate limits --------------------------------------------------


def test_a_rotated_key_is_picked_up_at_its_first_token(issuer: LocalIssuer) -> None:
    clock = FakeClock()
    verifier = verifier_for(issuer, clock)
    verifier.verify(issuer.mint("co-1"))
    fetched = issuer.jwks_requests

    new_kid = issuer.rotate()
    clock.now += 60  # past the minimum interval between fetches
    principal = verifier.verify(issuer.mint("co-1"))

    assert principal.staff_id == "co-1"
    assert new_kid in verifier.keys.key_ids
    assert issuer.jwks_requests == fetched + 1


def test_known_keys_are_served_from_the_cache(issuer: LocalIssuer) -> None:
    verifier = verifier_for(issuer)
    token = issuer.mint("co-1")

    for _ in range(5):
        verifier.verify(token)

    assert issuer.jwks_requests == 1


def test_unknown_key_ids_refetch_at_most_once_an_interval(
    issuer: LocalIssuer,
) -> None:
    clock = FakeClock()
    verifier = verifier_for(issuer, clock, auth_jwks_min_refresh_seconds=30)
    verifier.verify(issuer.mint("co-1"))
    stranger = new_signing_key("RS256")

    for n in range(20):
        token = issuer.mint("co-1", kid=f"made-up-{n}", signing_key=stranger)
        assert refusal(verifier, token) == "unknown_key"
    clock.now += 31
    assert refusal(verifier, issuer.mint("co-1", kid="x", signing_key=stranger))

    assert issuer.jwks_requests == 2


def test_a_retired_key_stops_working_when_the_keys_are_refreshed(
    issuer: LocalIssuer,
) -> None:
    clock = FakeClock()
    verifier = verifier_for(issuer, clock, auth_jwks_ttl_seconds=600)
    old_kid = issuer.current_kid
    old_token = issuer.mint("co-1")
    verifier.verify(old_token)

    issuer.rotate()
    issuer.retire(old_kid)
    clock.now += 601

    assert refusal(verifier, old_token) == "unknown_key"
    assert verifier.verify(issuer.mint("co-1")).staff_id == "co-1"


def test_a_failed_refresh_keeps_the_keys_already_held(issuer: LocalIssuer) -> None:
    clock = FakeClock()
    verifier = verifier_for(issuer, clock, auth_jwks_ttl_seconds=600)
    token = issuer.mint("co-1")
    verifier.verify(token)

    issuer.stop()
    clock.now += 601

    assert verifier.verify(token).staff_id == "co-1"


def test_discovery_naming_another_issuer_is_not_trusted(issuer: LocalIssuer) -> None:
    impostor = settings_for(issuer, auth_jwks_url="")
    verifier = TokenVerifier(
        AuthSettings(**{**impostor.model_dump(), "auth_issuer": issuer.url + "/"})
    )

    assert refusal(verifier, issuer.mint("co-1", issuer=issuer.url + "/")) == (
        "keys_unavailable"
    )


def test_keys_are_never_fetched_in_the_clear_from_another_host() -> None:
    with pytest.raises(KeysUnavailable, match="https"):
        fetch_json("http://keys.example.org/jwks", 1.0)


def test_verification_needs_an_issuer_and_an_audience() -> None:
    with pytest.raises(AuthConfigError, match="AUTH_ISSUER and AUTH_AUDIENCE"):
        TokenVerifier(AuthSettings(auth_issuer="", auth_audience=""))


# Through the HTTP API ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("mint_changes", "reason"),
    [
        (
            {
                "issued_at": datetime.now(UTC) - timedelta(hours=2),
                "lifetime": timedelta(hours=1),
            },
            "expired",
        ),
        ({"audience": "api://another-service"}, "wrong_audience"),
        ({"signing_key": new_signing_key("RS256")}, "bad_signature"),
        (
            {"kid": "never-published", "signing_key": new_signing_key("RS256")},
            "unknown_key",
        ),
    ],
    ids=["expired", "wrong-audience", "wrong-signature", "unknown-key-id"],
)
def test_the_api_answers_a_bad_token_401_with_a_challenge_and_no_data(
    issuer: LocalIssuer, mint_changes: dict[str, Any], reason: str
) -> None:
    store = intake_store()
    case_id = intake_case(store)
    token = issuer.mint("mgr-north", ["team_manager"], **mint_changes)

    with TestClient(intake_app(issuer, store)) as client:
        response = client.get(
            f"/cases/{case_id}", headers={"Authorization": f"Bearer {token}"}
        )

    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="intake", error="invalid_token"')
    body = response.json()
    assert body["reason"] == reason
    assert "child_reference" not in response.text
    assert "C-00000001" not in response.text


def test_the_api_picks_up_a_rotated_key(issuer: LocalIssuer) -> None:
    store = intake_store()
    case_id = intake_case(store)
    settings = dict(auth_fields(issuer), auth_jwks_min_refresh_seconds=0)

    from intake.entrypoints.http import create_app
    from intake.settings import IntakeSettings

    app = create_app(IntakeSettings(database_url="memory://", **settings), store=store)
    with TestClient(app) as client:
        before = client.get(
            f"/cases/{case_id}", headers=issuer.headers_for("mgr-north", ["auditor"])
        )
        issuer.rotate()
        after = client.get(
            f"/cases/{case_id}", headers=issuer.headers_for("mgr-north", ["auditor"])
        )

    assert before.status_code == after.status_code == 200
    assert after.json()["child_reference"] == "C-00000001"


def test_the_api_refuses_a_senco_of_another_school(issuer: LocalIssuer) -> None:
    store = intake_store()
    case_id = intake_case(store)

    with TestClient(intake_app(issuer, store)) as client:
        own = client.get(
            f"/cases/{case_id}",
            headers=issuer.headers_for("senco-1", ["senco"], school_urns=[SCHOOL]),
        )
        other = client.get(
            f"/cases/{case_id}",
            headers=issuer.headers_for("senco-2", ["senco"], school_urns=[990002]),
        )

    assert own.status_code == 200
    assert other.status_code == 403
    assert other.json()["type"] == "/problems/forbidden"
    assert "C-00000001" not in other.text
