"""The access-control settings a service's settings class inherits.

``class IntakeSettings(ServiceSettings, AuthSettings)`` gives the service these names,
unprefixed and the same in every service:

=============================  ===========  ========================================
Environment name               Default      Meaning
=============================  ===========  ========================================
AUTH_MODE                      on           ``on`` verifies every bearer token;
                                            ``off`` (SEND_ENV=development only)
                                            does not
AUTH_ISSUER                    (none)       the OpenID Connect issuer, exactly as
                                            the tokens' ``iss`` claim names it
AUTH_AUDIENCE                  (none)       the ``aud`` every token must carry
AUTH_JWKS_URL                  (none)       the issuer's keys; empty: discovered at
                                            ``<issuer>/.well-known/openid-
                                            configuration``
AUTH_ALGORITHMS                RS256,ES256  signature algorithms accepted
AUTH_LEEWAY_SECONDS            30           clock skew allowed on exp, nbf and iat
AUTH_JWKS_TTL_SECONDS          900          how long fetched keys are used as they
                                            are
AUTH_JWKS_MIN_REFRESH_SECONDS  30           least time between two fetches of keys
AUTH_HTTP_TIMEOUT_SECONDS      5            timeout of one discovery or JWKS fetch
AUTH_ROLES_CLAIM               roles        claim of the roles (list or string)
AUTH_STAFF_ID_CLAIM            sub          claim of the pseudonymous staff id
                                            (``oid`` on Microsoft Entra ID)
AUTH_SCHOOLS_CLAIM             school_urns  claim of a SENCO's school URNs
AUTH_TEAM_CLAIM                team         claim of the member's team
AUTH_ROLE_NAMES                {}           JSON: the provider's role values mapped
                                            to the role names here
AUTH_TEAM_MEMBERS              {}           JSON: staff id to team, for staff whose
                                            token has no team and for coordinators
AUTH_DEFAULT_TEAM              send         the team of everyone the map omits
=============================  ===========  ========================================

A claim name may be a dotted path into nested claims (``realm_access.roles``); a name
that exists as it stands is taken as it stands first. Nothing here is specific to one
provider: Microsoft Entra ID is ``AUTH_ISSUER=https://login.microsoftonline.com/<tenant
id>/v2.0``, ``AUTH_AUDIENCE=<application id URI or client id>``,
``AUTH_STAFF_ID_CLAIM=oid``, with app roles named as the roles here (or mapped with
``AUTH_ROLE_NAMES``).

The settings refuse ``AUTH_MODE=off`` outside ``SEND_ENV=development``, and in
production a missing issuer or audience, or an issuer or key URL that is not https.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sendkit.settings import Environment, SettingsError

AuthMode = Literal["on", "off"]

SUPPORTED_ALGORITHMS = ("RS256", "ES256")
"""The only signature algorithms ever accepted: never ``none``, never an HMAC one."""

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _env(name: str) -> AliasChoices:
    # An alias bypasses the service's env_prefix: AUTH_* are the same everywhere.
    return AliasChoices(name, name.lower())


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` names this machine (plain http is allowed only there)."""
    return (urlsplit(url).hostname or "") in LOOPBACK_HOSTS


class AuthSettings(BaseSettings):
    """How bearer tokens are verified and read; a mixin of each service's settings."""

    model_config = SettingsConfigDict(
        env_prefix="", extra="ignore", populate_by_name=True, frozen=True
    )

    send_env: Environment = Field(
        default="development",
        validation_alias=_env("SEND_ENV"),
        description="development, test or production; production refuses placeholders.",
    )
    auth_mode: AuthMode = Field(
        default="on",
        validation_alias=_env("AUTH_MODE"),
        description="on: verify bearer tokens; off: only with SEND_ENV=development.",
    )
    auth_issuer: str = Field(
        default="",
        validation_alias=_env("AUTH_ISSUER"),
        description="The OpenID Connect issuer, exactly as tokens' iss names it.",
    )
    auth_audience: str = Field(
        default="",
        validation_alias=_env("AUTH_AUDIENCE"),
        description="The audience (aud) every token must carry.",
    )
    auth_jwks_url: str = Field(
        default="",
        validation_alias=_env("AUTH_JWKS_URL"),
        description="The issuer's JWKS; empty: discovered from the issuer.",
    )
    auth_algorithms: str = Field(
        default="RS256,ES256",
        validation_alias=_env("AUTH_ALGORITHMS"),
        description="Comma-separated signature algorithms: RS256 and/or ES256.",
    )
    auth_leeway_seconds: int = Field(
        default=30,
        ge=0,
        le=300,
        validation_alias=_env("AUTH_LEEWAY_SECONDS"),
        description="Clock skew allowed on exp, nbf and iat, in seconds.",
    )
    auth_jwks_ttl_seconds: int = Field(
        default=900,
        ge=10,
        validation_alias=_env("AUTH_JWKS_TTL_SECONDS"),
        description="How long fetched keys are used before they are fetched again.",
    )
    auth_jwks_min_refresh_seconds: int = Field(
        default=30,
        ge=0,
        validation_alias=_env("AUTH_JWKS_MIN_REFRESH_SECONDS"),
        description="Least time between two fetches (an unknown key id refetches).",
    )
    auth_http_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        validation_alias=_env("AUTH_HTTP_TIMEOUT_SECONDS"),
        description="Timeout of one discovery or JWKS request, in seconds.",
    )
    auth_roles_claim: str = Field(
        default="roles",
        min_length=1,
        validation_alias=_env("AUTH_ROLES_CLAIM"),
        description="The claim holding the roles (a list or a space-separated string).",
    )
    auth_staff_id_claim: str = Field(
        default="sub",
        min_length=1,
        validation_alias=_env("AUTH_STAFF_ID_CLAIM"),
        description="The claim holding the pseudonymous staff id (oid on Entra ID).",
    )
    auth_schools_claim: str = Field(
        default="school_urns",
        min_length=1,
        validation_alias=_env("AUTH_SCHOOLS_CLAIM"),
        description="The claim holding a SENCO's school URNs.",
    )
    auth_team_claim: str = Field(
        default="team",
        min_length=1,
        validation_alias=_env("AUTH_TEAM_CLAIM"),
        description="The claim holding the member's team.",
    )
    auth_role_names: dict[str, str] = Field(
        default_factory=dict,
        validation_alias=_env("AUTH_ROLE_NAMES"),
        description="JSON: the provider's role values mapped to this service's roles.",
    )
    auth_team_members: dict[str, str] = Field(
        default_factory=dict,
        validation_alias=_env("AUTH_TEAM_MEMBERS"),
        description="JSON: staff id to team (coordinators, and tokens with no team).",
    )
    auth_default_team: str = Field(
        default="send",
        min_length=1,
        validation_alias=_env("AUTH_DEFAULT_TEAM"),
        description="The team of every member of staff AUTH_TEAM_MEMBERS omits.",
    )

    @field_validator("auth_algorithms")
    @classmethod
    def _supported_algorithms(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        unsupported = [name for name in names if name not in SUPPORTED_ALGORITHMS]
        if not names or unsupported:
            raise ValueError(
                f"AUTH_ALGORITHMS {value!r} must name only RS256 and/or ES256 "
                "(asymmetric signatures; none and HMAC algorithms are never accepted)"
            )
        return ",".join(names)

    @model_validator(mode="after")
    def _auth_mode_fits_the_environment(self) -> AuthSettings:
        if self.auth_mode == "off" and self.send_env != "development":
            raise SettingsError(
                f"AUTH_MODE=off is refused with SEND_ENV={self.send_env}: token "
                "verification may be turned off only with SEND_ENV=development; set "
                "AUTH_MODE=on with AUTH_ISSUER and AUTH_AUDIENCE"
            )
        if self.send_env == "production" and self.auth_mode == "on":
            missing = [
                name
                for name, value in (
                    ("AUTH_ISSUER", self.auth_issuer),
                    ("AUTH_AUDIENCE", self.auth_audience),
                )
                if not value.strip()
            ]
            if missing:
                raise SettingsError(
                    "SEND_ENV=production needs "
                    + " and ".join(missing)
                    + ": name the OpenID Connect issuer and this API's audience"
                )
            for name, url in (
                ("AUTH_ISSUER", self.auth_issuer),
                ("AUTH_JWKS_URL", self.auth_jwks_url),
            ):
                if url and not url.startswith("https://") and not is_loopback_url(url):
                    raise SettingsError(
                        f"{name} {url!r} must be an https URL in production: keys "
                        "fetched in the clear could be replaced on the way"
                    )
        return self

    @property
    def algorithms(self) -> tuple[str, ...]:
        """``AUTH_ALGORITHMS`` as a tuple."""
        return tuple(self.auth_algorithms.split(","))
