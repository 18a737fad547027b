"""Bearer tokens verified against the issuer's published keys, and read as a Principal.

``TokenVerifier.verify(token)`` accepts a JWT only when all of these hold: its header
names an algorithm among ``AUTH_ALGORITHMS`` (RS256 and ES256 at most: never ``none``,
never an HMAC algorithm, so a public key can never be used as a shared secret) and a key
id (``kid``) the issuer's JWKS holds, with a key of the matching type; its signature is
valid under that key; ``iss`` is ``AUTH_ISSUER``; ``aud`` holds ``AUTH_AUDIENCE``;
``exp`` is present and not past (``nbf`` and ``iat`` not in the future), each with
``AUTH_LEEWAY_SECONDS`` of leeway; and it names a staff id that is a pseudonymous
reference. Anything else raises ``NotAuthenticated`` with a short reason code that is
safe to log and to answer (nothing of the token itself).

``JwksCache`` holds the issuer's keys by key id. It fetches them on first use (from
``AUTH_JWKS_URL``, or the ``jwks_uri`` of the issuer's discovery document), again once
``AUTH_JWKS_TTL_SECONDS`` have passed, and again when a token names a key id it does
not hold, but never twice within ``AUTH_JWKS_MIN_REFRESH_SECONDS``: a flood of tokens
with made-up key ids costs the issuer one request per interval. So a rotated key is
picked up at its first token, and a retired key stops working at the next refresh.
When a refresh fails the keys already held stay in use and the failure is logged; with
no keys at all every token is refused as ``keys_unavailable``.

Known limits: a token without a ``kid`` is refused even when the JWKS holds one key (the
providers councils use always send one); revocation before expiry is not checked (keep
tokens short-lived at the provider); the fetch is synchronous and runs under a lock, so
requests wait on a slow issuer for at most ``AUTH_HTTP_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.error import URLError

import jwt
from jwt import PyJWK

from sendkit.auth.policy import Principal, Role, Teams
from sendkit.auth.settings import SUPPORTED_ALGORITHMS, AuthSettings, is_loopback_url

log = logging.getLogger(__name__)

STAFF_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_URN = re.compile(r"^[0-9]{6}$")
_KEY_TYPE_OF = {"RS256": "RSA", "ES256": "EC"}
DISCOVERY_PATH = "/.well-known/openid-configuration"

Fetch = Callable[[str, float], Mapping[str, Any]]
"""Reads a JSON document from a URL within a timeout (seconds)."""


class AuthError(Exception):
    """Root of access control's errors."""


class AuthConfigError(AuthError):
    """The settings cannot verify tokens as they stand; the message says what to set."""


class NotAuthenticated(AuthError):
    """The request carries no token, or one that cannot be trusted (answered 401)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class KeysUnavailable(AuthError):
    """The issuer's keys could not be fetched."""


def fetch_json(url: str, timeout: float) -> Mapping[str, Any]:
    """GET ``url`` and parse its JSON body; https only, or plain http on loopback."""
    if not url.startswith("https://") and not (
        url.startswith("http://") and is_loopback_url(url)
    ):
        raise KeysUnavailable(
            f"refusing to fetch keys from {url!r}: use an https URL (plain http is "
            "allowed only for an issuer on this machine)"
        )
    # The scheme is checked above: only https, or http to this machine.
    request = urllib.request.Request(  # noqa: S310
        url, headers={"Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            body = json.loads(answer.read().decode("utf-8"))
    except (URLError, OSError, ValueError) as error:
        raise KeysUnavailable(f"could not read {url}: {error}") from error
    if not isinstance(body, dict):
        raise KeysUnavailable(f"{url} did not answer a JSON object")
    return body


class JwksCache:
    """The issuer's signing keys by key id, refreshed on a TTL and on unknown ids."""

    def __init__(
        self,
        *,
        issuer: str,
        jwks_url: str = "",
        ttl_s: float = 900.0,
        min_refresh_s: float = 30.0,
        timeout_s: float = 5.0,
        fetch: Fetch = fetch_json,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self._jwks_url = jwks_url
        self._ttl_s = ttl_s
        self._min_refresh_s = min_refresh_s
        self._timeout_s = timeout_s
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = threading.Lock()
        self.fetches = 0
        """How many times the keys were fetched (for tests and metrics)."""

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def key(self, kid: str) -> PyJWK | None:
        """The key ``kid``, refreshing first when the keys are stale or lack it."""
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self._ttl_s
            if (stale or kid not in self._keys) and self._may_fetch(now):
                self._refresh(now)
            return self._keys.get(kid)

    def _may_fetch(self, now: float) -> bool:
        return (
            self._attempted_at is None
            or now - self._attempted_at >= self._min_refresh_s
        )

    def _refresh(self, now: float) -> None:
        self._attempted_at = now
        try:
            keys = self._load()
        except KeysUnavailable as error:
            log.warning(
                "could not refresh the issuer's keys: %s",
                error,
                extra={"issuer": self.issuer, "keys_held": len(self._keys)},
            )
            return
        self._keys = keys
        self._fetched_at = now
        self.fetches += 1
        log.info(
            "issuer keys fetched: %d key(s)",
            len(keys),
            extra={"issuer": self.issuer, "kids": sorted(keys)},
        )

    def _load(self) -> dict[str, PyJWK]:
        url = self._jwks_url or self._discover()
        document = self._fetch(url, self._timeout_s)
        entries = document.get("keys")
        if not isinstance(entries, list):
            raise KeysUnavailable(f"{url} holds no 'keys' list: is it a JWKS?")
        keys: dict[str, PyJWK] = {}
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            kid = entry.get("kid")
            if not isinstance(kid, str) or not kid:
                continue
            try:
                keys[kid] = PyJWK.from_dict(entry)
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
                # An unusable key (an unsupported type) is skipped, not fatal: the
                # JWKS of a real provider may list keys for other purposes.
                log.warning(
                    "skipped an unusable key in the JWKS",
                    extra={"kid": kid, "kty": entry.get("kty")},
                )
        return keys

    def _discover(self) -> str:
        url = self.issuer.rstrip("/") + DISCOVERY_PATH
        document = self._fetch(url, self._timeout_s)
        if document.get("issuer") != self.issuer:
            raise KeysUnavailable(
                f"the discovery document at {url} names issuer "
                f"{document.get('issuer')!r}, not {self.issuer!r}: check AUTH_ISSUER"
            )
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise KeysUnavailable(f"the discovery document at {url} has no jwks_uri")
        return jwks_uri


class TokenVerifier:
    """Verifies bearer tokens and reads the principal they describe."""

    def __init__(self, settings: AuthSettings, keys: JwksCache | None = None) -> None:
        if not settings.auth_issuer.strip() or not settings.auth_audience.strip():
            raise AuthConfigError(
                "AUTH_MODE=on needs AUTH_ISSUER and AUTH_AUDIENCE: name the OpenID "
                "Connect issuer and this API's audience (for a local one, run "
                "python -m devstack.issuer), or in development set AUTH_MODE=off"
            )
        self.settings = settings
        self.algorithms = tuple(
            name for name in settings.algorithms if name in SUPPORTED_ALGORITHMS
        )
        self.keys = keys or JwksCache(
            issuer=settings.auth_issuer,
            jwks_url=settings.auth_jwks_url,
            ttl_s=settings.auth_jwks_ttl_seconds,
            min_refresh_s=settings.auth_jwks_min_refresh_seconds,
            timeout_s=settings.auth_http_timeout_seconds,
        )
        self.teams = teams_of(settings)

    def verify(self, token: str) -> Principal:
        """The principal of a valid ``token``; ``NotAuthenticated`` otherwise."""
        claims = self.claims(token)
        return principal_from_claims(claims, self.settings, self.teams)

    def claims(self, token: str) -> dict[str, Any]:
        """The verified claims of ``token``; ``NotAuthenticated`` otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise NotAuthenticated(
                "malformed", "the bearer token is not a JWT"
            ) from None
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise NotAuthenticated(
                "algorithm_refused",
                "the token is signed with an algorithm this service does not accept "
                f"(accepted: {', '.join(self.algorithms)})",
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise NotAuthenticated("no_key_id", "the token's header names no key id")
        key = self.keys.key(kid)
        if key is None:
            if not self.keys.key_ids:
                raise NotAuthenticated(
                    "keys_unavailable",
                    "the issuer's keys could not be fetched; try again shortly",
                )
            raise NotAuthenticated(
                "unknown_key", "the token is signed with a key the issuer does not list"
            )
        if key.key_type != _KEY_TYPE_OF[algorithm]:
            raise NotAuthenticated(
                "algorithm_refused",
                f"the token's algorithm {algorithm} does not fit its key's type",
            )

        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[algorithm],
                audience=self.settings.auth_audience,
                issuer=self.settings.auth_issuer,
                leeway=self.settings.auth_leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise NotAuthenticated("expired", "the token has expired") from None
        except jwt.InvalidAudienceError:
            raise NotAuthenticated(
                "wrong_audience", "the token is not meant for this service"
            ) from None
        except jwt.InvalidIssuerError:
            raise NotAuthenticated(
                "wrong_issuer", "the token is from another issuer"
            ) from None
        except jwt.ImmatureSignatureError:
            raise NotAuthenticated(
                "not_yet_valid", "the token is not valid yet"
            ) from None
        except jwt.InvalidSignatureError:
            raise NotAuthenticated(
                "bad_signature", "the token's signature does not verify"
            ) from None
        except jwt.MissingRequiredClaimError as error:
            raise NotAuthenticated(
                "missing_claim", f"the token has no {error.claim!r} claim"
            ) from None
        except jwt.InvalidTokenError:
            raise NotAuthenticated("invalid", "the token is not valid") from None
        return claims


def teams_of(settings: AuthSettings) -> Teams:
    return Teams(dict(settings.auth_team_members), settings.auth_default_team)


def claim(claims: Mapping[str, Any], name: str) -> Any:
    """The claim ``name``, or the value at its dotted path (``realm_access.roles``)."""
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [part for part in re.split(r"[\s,]+", value) if part]
    if isinstance(value, Iterable) and not isinstance(value, Mapping | bytes):
        return [str(item) for item in value if isinstance(item, str | int)]
    if isinstance(value, int) and not isinstance(value, bool):
        return [str(value)]
    return []


def principal_from_claims(
    claims: Mapping[str, Any], settings: AuthSettings, teams: Teams
) -> Principal:
    """The principal the verified ``claims`` describe, as the settings read them."""
    staff_id = claim(claims, settings.auth_staff_id_claim)
    if not isinstance(staff_id, str) or not STAFF_ID_PATTERN.match(staff_id):
        raise NotAuthenticated(
            "no_staff_id",
            f"the token's {settings.auth_staff_id_claim!r} claim is not a pseudonymous "
            "staff id (letters, digits, '.', '_' or '-', at most 64)",
        )
    names = settings.auth_role_names
    roles: set[Role] = set()
    for value in _strings(claim(claims, settings.auth_roles_claim)):
        try:
            roles.add(Role(names.get(value, value)))
        except ValueError:
            continue  # a role of another application in the same token
    schools = frozenset(
        int(value)
        for value in _strings(claim(claims, settings.auth_schools_claim))
        if _URN.match(value)
    )
    team_claim = claim(claims, settings.auth_team_claim)
    team = (
        team_claim
        if isinstance(team_claim, str) and team_claim
        else teams.team_of(staff_id)
    )
    return Principal(
        staff_id=staff_id, roles=frozenset(roles), team=team, school_urns=schools
    )
