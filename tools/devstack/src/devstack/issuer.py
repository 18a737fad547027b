"""A local OpenID Connect issuer, so the real token verification runs everywhere.

``LocalIssuer`` serves, on loopback only:

- ``GET /.well-known/openid-configuration``: the discovery document (issuer, jwks_uri);
- ``GET /jwks``: the public keys, each with its ``kid``;
- ``POST /token`` with JSON ``{"staff_id": ..., "roles": [...], "school_urns": [...],
  "team": ...}``: a signed access token (roles default to the demo staff member's);
- ``GET /healthz``.

It mints tokens in Python too (``mint``, ``headers_for``), including the wrong ones the
tests need: expired, for another audience or issuer, signed by a key it does not
publish, naming a key id it does not hold. ``rotate()`` adds a new signing key (the old
one stays published until ``retire(kid)``), so key rotation can be played end to end.

The demo's staff (``devstack.demo_data.DEMO_STAFF``) get their roles from the staff
list: coordinators ``ehc_coordinator``, managers ``team_manager``, each in the team of
their manager (``demo_team_members()`` is the matching ``AUTH_TEAM_MEMBERS``).

Run it alone with ``python -m devstack.issuer --port 8009``: it prints the AUTH_*
settings a service needs, then serves until Ctrl-C. Its keys live in memory, so each
start has new ones (services fetch them again at the first unknown key id).

It is for development and tests only: ``POST /token`` signs whatever it is asked, with
no login, which is why it binds nothing but a loopback address.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from devstack.demo_data import DEMO_STAFF, StaffMember

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
DEFAULT_AUDIENCE = "send-casework"
DEFAULT_LIFETIME = timedelta(minutes=30)
Algorithm = Literal["RS256", "ES256"]
SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

DEMO_ROLES = {"coordinator": "ehc_coordinator", "manager": "team_manager"}


class IssuerError(Exception):
    """The local issuer cannot do what was asked; the message says what to change."""


@dataclass(frozen=True, slots=True)
class _Key:
    kid: str
    algorithm: Algorithm
    private: SigningKey

    def public_jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.algorithm}


def new_signing_key(algorithm: Algorithm = "RS256") -> SigningKey:
    """A fresh private key for ``algorithm`` (RSA 2048 or P-256)."""
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def demo_team(member: StaffMember) -> str:
    """The demo team of a member of staff: their manager's (a manager's own)."""
    return f"team-{(member.manager_id or member.staff_id).lower()}"


def demo_team_members(staff: Iterable[StaffMember] = DEMO_STAFF) -> dict[str, str]:
    """``AUTH_TEAM_MEMBERS`` for the demo staff: staff id to team."""
    return {member.staff_id: demo_team(member) for member in staff}


class LocalIssuer:
    """An OpenID Connect issuer on loopback that signs whatever tokens it is asked."""

    def __init__(
        self,
        *,
        audience: str = DEFAULT_AUDIENCE,
        host: str = LOOPBACK,
        port: int = 0,
        algorithm: Algorithm = "RS256",
        staff: Sequence[StaffMember] = DEMO_STAFF,
    ) -> None:
        if host not in LOOPBACK_HOSTS:
            raise IssuerError(
                f"the local issuer signs tokens for anyone who asks, so it binds only "
                f"loopback; {host!r} is not one (use 127.0.0.1)"
            )
        self.audience = audience
        self.algorithm: Algorithm = algorithm
        self._host = host
        self._port = port
        self._staff = {member.staff_id: member for member in staff}
        self._keys: list[_Key] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._staff_tokens: dict[str, tuple[str, datetime]] = {}
        self.jwks_requests = 0
        """How many times the JWKS was fetched (to see caching and rate limits)."""
        self.rotate()

    # --- serving ------------------------------------------------------------------

    def start(self) -> LocalIssuer:
        """Serve in a background thread; returns self."""
        if self._server is not None:
            return self
        self._server = ThreadingHTTPServer((self._host, self._port), _handler(self))
        self._server.daemon_threads = True
        self._port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="local-issuer", daemon=True
        )
        self._thread.start()
        log.info("local issuer serving at %s", self.url, extra={"issuer": self.url})
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> LocalIssuer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The issuer identifier (the ``iss`` of its tokens)."""
        if self._server is None:
            raise IssuerError("the issuer is not serving: call start() first")
        return f"http://{self._host}:{self._port}"

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/jwks"

    def env(self) -> dict[str, str]:
        """The AUTH_* settings of a service that trusts this issuer."""
        return {
            "AUTH_MODE": "on",
            "AUTH_ISSUER": self.url,
            "AUTH_AUDIENCE": self.audience,
            "AUTH_JWKS_URL": self.jwks_url,
        }

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": self.jwks_url,
            "token_endpoint": f"{self.url}/token",
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.algorithm],
        }

    # --- keys ---------------------------------------------------------------------

    def rotate(self, algorithm: Algorithm | None = None) -> str:
        """Sign with a new key from now on; the old ones stay published. Its kid."""
        chosen: Algorithm = algorithm or self.algorithm
        key = _Key(f"local-{uuid.uuid4().hex[:12]}", chosen, new_signing_key(chosen))
        with self._lock:
            self._keys.append(key)
        return key.kid

    def retire(self, kid: str) -> None:
        """Stop publishing the key ``kid`` (tokens it signed then stop verifying)."""
        with self._lock:
            kept = [key for key in self._keys if key.kid != kid]
            if len(kept) == len(self._keys):
                raise IssuerError(f"no key {kid!r} to retire: keys are {self.kids}")
            if not kept:
                raise IssuerError("rotate() before retiring the last key")
            self._keys = kept

    @property
    def kids(self) -> list[str]:
        with self._lock:
            return [key.kid for key in self._keys]

    @property
    def current_kid(self) -> str:
        with self._lock:
            return self._keys[-1].kid

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            return {"keys": [key.public_jwk() for key in self._keys]}

    # --- tokens -------------------------------------------------------------------

    def mint(
        self,
        staff_id: str,
        roles: Iterable[str] = (),
        *,
        school_urns: Iterable[int] = (),
        team: str | None = None,
        lifetime: timedelta = DEFAULT_LIFETIME,
        issued_at: datetime | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        kid: str | None = None,
        signing_key: SigningKey | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """A signed access token for ``staff_id``; the keywords make the wrong ones.

        ``kid`` names the key id in the header (by default the current key's);
        ``signing_key`` signs with another key than the one ``kid`` names.
        """
        now = issued_at or datetime.now(UTC)
        claims: dict[str, Any] = {
            "iss": issuer or self.url,
            "aud": audience or self.audience,
            "sub": staff_id,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int((now + lifetime).timestamp()),
            "jti": uuid.uuid4().hex,
            "roles": list(roles),
        }
        urns = list(school_urns)
        if urns:
            claims["school_urns"] = urns
        if team is not None:
            claims["team"] = team
        claims.update(extra or {})
        with self._lock:
            current = self._keys[-1]
            named = next((k for k in self._keys if k.kid == kid), current)
        key = signing_key or named.private
        algorithm: Algorithm = (
            "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        )
        return jwt.encode(
            claims, key, algorithm=algorithm, headers={"kid": kid or current.kid}
        )

    def mint_for_staff(self, staff_id: str, **changes: Any) -> str:
        """A token for a demo member of staff, with their role and team."""
        member = self._staff.get(staff_id)
        if member is None:
            raise IssuerError(
                f"{staff_id!r} is not one of the demo staff; pass roles to mint()"
            )
        changes.setdefault("team", demo_team(member))
        return self.mint(staff_id, [DEMO_ROLES[member.role]], **changes)

    def staff_headers(self, staff_id: str) -> dict[str, str]:
        """``Authorization`` for a demo member of staff, minted once and reused.

        A token is reused until five minutes before it expires, so a long demo run
        asks the issuer for one token per member of staff every half hour. Its shape
        is ``devstack.demo.StaffHeaders``: the demo's way to say who acts.
        """
        now = datetime.now(UTC)
        with self._lock:
            held = self._staff_tokens.get(staff_id)
        if held is None or held[1] - now < timedelta(minutes=5):
            held = (self.mint_for_staff(staff_id), now + DEFAULT_LIFETIME)
            with self._lock:
                self._staff_tokens[staff_id] = held
        return {"Authorization": f"Bearer {held[0]}"}

    def headers_for(
        self, staff_id: str, roles: Iterable[str] = (), **kw: Any
    ) -> dict[str, str]:
        """``Authorization: Bearer <token>`` for ``staff_id`` with ``roles``."""
        return {"Authorization": f"Bearer {self.mint(staff_id, roles, **kw)}"}

    def token_from_request(self, body: Mapping[str, Any]) -> str:
        """The token ``POST /token`` answers for its JSON body."""
        staff_id = body.get("staff_id")
        if not isinstance(staff_id, str) or not staff_id:
            raise IssuerError("POST /token needs a JSON body with a staff_id")
        roles = body.get("roles")
        school_urns = [int(urn) for urn in body.get("school_urns", ())]
        team = body.get("team")
        if roles is None:
            return self.mint_for_staff(staff_id, school_urns=school_urns)
        return self.mint(
            staff_id,
            [str(role) for role in roles],
            school_urns=school_urns,
            team=str(team) if team is not None else None,
        )


def _handler(issuer: LocalIssuer) -> type[BaseHTTPRequestHandler]:
    class IssuerHandler(BaseHTTPRequestHandler):
        server_version = "devstack-issuer"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/.well-known/openid-configuration":
                self._json(HTTPStatus.OK, issuer.discovery())
            elif path == "/jwks":
                issuer.jwks_requests += 1
                self._json(HTTPStatus.OK, issuer.jwks())
            elif path == "/healthz":
                self._json(HTTPStatus.OK, {"status": "ok"})
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"nothing at {path}"})

        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] != "/token":
                self._json(HTTPStatus.NOT_FOUND, {"error": f"nothing at {self.path}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                token = issuer.token_from_request(body)
            except (IssuerError, ValueError, TypeError) as error:
                self._json(HTTPStatus.BAD_REQUEST, {"error": str(error)})
                return
            self._json(
                HTTPStatus.OK,
                {
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": int(DEFAULT_LIFETIME.total_seconds()),
                },
            )

        def _json(self, status: HTTPStatus, body: Mapping[str, Any]) -> None:
            payload = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("issuer answered: %s", format % args)

    return IssuerHandler


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.issuer",
        description="A local OpenID Connect issuer for development (loopback only).",
    )
    parser.add_argument("--port", type=int, default=8009)
    parser.add_argument("--audience", default=DEFAULT_AUDIENCE)
    parser.add_argument("--algorithm", choices=["RS256", "ES256"], default="RS256")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with LocalIssuer(
        audience=arguments.audience, port=arguments.port, algorithm=arguments.algorithm
    ) as issuer:
        for name, value in issuer.env().items():
            print(f"{name}={value}")
        print(
            f"AUTH_TEAM_MEMBERS='{json.dumps(demo_team_members())}'\n"
            f"a token: curl -s -X POST {issuer.url}/token "
            '-d \'{"staff_id": "STAFF-101"}\'',
            flush=True,
        )
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
