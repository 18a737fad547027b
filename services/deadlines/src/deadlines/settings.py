"""The deadlines service's settings, read from the environment.

Besides the shared names of ``sendkit.settings.ServiceSettings``
(``KAFKA_BOOTSTRAP_SERVERS``, ``SEND_ENV``, ``LOG_FORMAT``, ``LOG_LEVEL``):

==============================  ===========================  =======================
Environment name                Default                      Meaning
==============================  ===========================  =======================
DEADLINES_APP_ID                send-deadlines               faust app id: group id
                                                             and changelog prefix
DEADLINES_WORKER_WEB_PORT       (unset: no web server)       faust's web server port
DEADLINES_REPLICATION_FACTOR    1                            of topics faust creates
DEADLINES_MAX_WAIT_SECONDS      30                           longest wait for an
                                                             input's turn
DEADLINES_LEAD_WORKING_DAYS     (unset: each rule's own)     alert leads, e.g. 10,5,0
DEADLINES_TERM_DATES            (empty: no terms)            school terms as first/
                                                             last day, comma-separated
DEADLINES_TERM_DATES_FILE       (unset)                      a CSV of terms (starts_on,
                                                             ends_on), added to them
DEADLINES_LOCAL_TARGETS         (empty: the table's own)     local targets' amounts, or
                                                             off, comma-separated
DEADLINES_HOST                  127.0.0.1                    the read API's address
DEADLINES_PORT                  8003                         the read API's port
DEADLINES_DATABASE_URL          sqlite:///.run/deadlines.db  read model: sqlite:///,
                                                             postgresql:// (several
                                                             API replicas) or memory://
DEADLINES_PROJECTOR_ENABLED     true                         build the read model in
                                                             the API process
DEADLINES_TICK_EVERY_SECONDS    60                           the ticker's interval
DEADLINES_TOPIC_PREFIX          (empty)                      put before every topic
                                                             name read or written
==============================  ===========================  =======================

The council's own settings for the clocks (``council()``, which the worker's engine is
built with) are the term dates (``2025-09-03/2025-12-19,2026-01-05/2026-03-27``), the
local targets (``local_area_surgery=4,agency_referrals=off``) and the lead times. The
term dates are read by ``sendkit.terms``, the parser notify uses for
``NOTIFY_TERM_DATES``: give both services the same terms, or SENCOs are sent lists for
terms the deadlines clocks do not know. ``DEADLINES_LOCAL_TARGETS`` names only rows of
the table marked local: a statutory time limit is the law's and no setting changes it,
and a local target whose amount is changed stays a local target (never shown as
statutory). A value that cannot be read stops the process at start-up with a message
naming the variable and saying how to write it; the term dates file is read only by
the worker, when it builds its engine, so the read API runs without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from deadlines.domain.council import CouncilConfig, Term
from deadlines.domain.errors import RulesError
from deadlines.domain.model import Authority, ClockRule, Offset
from deadlines.domain.rules import RULESETS
from send_schemas.topics import (
    CLOCK_TICKS,
    DEADLINES,
    INTAKE,
    PLACEMENT,
    PLANS,
    REVIEWS,
)
from sendkit.auth import AuthSettings
from sendkit.settings import ServiceSettings, SettingsError
from sendkit.terms import (
    TermDates,
    check_term_dates,
    parse_term_dates,
    parse_term_dates_csv,
)

DOMAIN_TOPICS: tuple[str, ...] = (INTAKE.name, PLANS.name, REVIEWS.name, PLACEMENT.name)
"""The topics whose events the clock rules read, in the registry's spelling."""

OFF: Final = "off"
"""The value of ``DEADLINES_LOCAL_TARGETS`` that switches a local target off."""
LOCAL_TARGETS_EXAMPLE = "local_area_surgery=4,agency_referrals=off"

LocalTarget = int | Literal["off"]
"""A local target's new amount, in its rule's own unit, or ``off``."""


def _local_rules() -> dict[str, ClockRule]:
    # The newest version's row wins: the settings apply to clocks set from now on.
    return {
        rule.name: rule
        for rules in RULESETS
        for rule in rules.rules
        if rule.authority is Authority.LOCAL
    }


def _statutory_names() -> set[str]:
    return {
        rule.name
        for rules in RULESETS
        for rule in rules.rules
        if rule.authority is not Authority.LOCAL
    }


def describe_local_targets() -> str:
    """Each local target, and what its amount counts (for messages and the README)."""
    parts = []
    for name, rule in sorted(_local_rules().items()):
        if rule.configurable and isinstance(rule.due, Offset):
            parts.append(
                f"{name}=N (due '{rule.due.count.value}', the table's N is "
                f"{rule.due.amount}) or {name}={OFF}"
            )
        else:
            parts.append(f"{name}={OFF} only")
    return "; ".join(parts)


def parse_local_targets(text: str) -> dict[str, LocalTarget]:
    """``local_area_surgery=4,agency_referrals=off`` as a mapping (empty: none).

    Raises ``ValueError`` naming ``DEADLINES_LOCAL_TARGETS`` for anything else.
    """
    found: dict[str, LocalTarget] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, equals, value = (piece.strip() for piece in part.partition("="))
        if not equals or not name or not value:
            raise ValueError(
                f"DEADLINES_LOCAL_TARGETS: {part.strip()!r} is not name=amount or "
                f"name={OFF}; write, for example, {LOCAL_TARGETS_EXAMPLE}"
            )
        if name in found:
            raise ValueError(
                f"DEADLINES_LOCAL_TARGETS names {name} twice: give each local target "
                "once"
            )
        if value.lower() == OFF:
            found[name] = OFF
            continue
        try:
            found[name] = int(value)
        except ValueError:
            raise ValueError(
                f"DEADLINES_LOCAL_TARGETS: {name}={value} is neither a whole number "
                f"nor {OFF}; write, for example, {LOCAL_TARGETS_EXAMPLE}"
            ) from None
    return check_local_targets(found)


def check_local_targets(targets: Mapping[str, LocalTarget]) -> dict[str, LocalTarget]:
    """``targets`` if each names a local target and sets what it can; else
    ``ValueError`` naming ``DEADLINES_LOCAL_TARGETS`` and saying what is allowed."""
    local = _local_rules()
    for name, value in targets.items():
        if name in _statutory_names() and name not in local:
            raise ValueError(
                f"DEADLINES_LOCAL_TARGETS names {name}, a statutory or guidance time "
                "limit: the law sets it and no setting changes it; name only local "
                f"targets: {describe_local_targets()}"
            )
        rule = local.get(name)
        if rule is None:
            raise ValueError(
                f"DEADLINES_LOCAL_TARGETS names {name}, which is no clock of the "
                f"table; the local targets are: {describe_local_targets()}"
            )
        if isinstance(value, str):
            if value != OFF:
                raise ValueError(
                    f"DEADLINES_LOCAL_TARGETS: {name}={value} is neither a whole "
                    f"number nor {OFF}; write, for example, {LOCAL_TARGETS_EXAMPLE}"
                )
            continue
        if not rule.configurable or not isinstance(rule.due, Offset):
            raise ValueError(
                f"DEADLINES_LOCAL_TARGETS: {name} has no amount to set (its due date "
                f"comes from the term dates); it can only be switched off with "
                f"{name}={OFF}"
            )
        if value < 1:
            raise ValueError(
                f"DEADLINES_LOCAL_TARGETS: {name}={value} must be a whole number of 1 "
                f"or more ('{rule.due.count.value}'), or {OFF} to switch it off"
            )
    return dict(targets)


class DeadlinesSettings(ServiceSettings):
    """Settings of the deadlines worker, ticker and read API."""

    model_config = SettingsConfigDict(env_prefix="DEADLINES_")

    app_id: str = Field(
        default="send-deadlines",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
        description="The faust app id: the consumer group and the prefix of the "
        "table's changelog topic. A new id replays every input from offset 0.",
    )
    worker_web_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port of faust's web server in the worker; unset disables it.",
    )
    replication_factor: int = Field(
        default=1, ge=1, description="Replication factor of the topics faust creates."
    )
    max_wait_seconds: float = Field(
        default=30.0,
        gt=0,
        description="The longest an input waits for its replay-safe turn before it is "
        "applied anyway (with a warning).",
    )
    max_queued: int = Field(
        default=600,
        ge=1,
        description="Records of one input topic partition held for their replay-safe "
        "turn past which the worker pauses fetching it, until half are applied.",
    )
    state_cache_cases: int = Field(
        default=2048,
        ge=1,
        description="How many cases' decoded states the worker keeps in memory; the "
        "others are kept only as their compact JSON and decoded when an event or "
        "tick needs them.",
    )
    lead_working_days: Annotated[tuple[int, ...] | None, NoDecode] = Field(
        default=None,
        description="Working days before a due date to alert at, for every clock: "
        "comma-separated, such as 10,5,0. Unset keeps each rule's own.",
    )
    term_dates: Annotated[TermDates, NoDecode] = Field(
        default=(),
        description="The council's school terms, each as its first and last day, "
        "comma-separated: 2025-09-03/2025-12-19,2026-01-05/2026-03-27. The termly "
        "SENCO list target (senco_review_list) sets no clock without them. The same "
        "format as NOTIFY_TERM_DATES, which must hold the same terms.",
    )
    term_dates_file: Path | None = Field(
        default=None,
        description="A CSV of terms (header starts_on,ends_on), added to "
        "DEADLINES_TERM_DATES; read by the worker at start-up. Unset or empty: none.",
    )
    local_targets: Annotated[dict[str, LocalTarget], NoDecode] = Field(
        default_factory=dict,
        description="The council's own amounts of its local targets, or off to switch "
        f"one off, comma-separated: {LOCAL_TARGETS_EXAMPLE}. Amounts are in the "
        "target's own unit (Local Area Surgery: weeks after the request; agency "
        "referrals: weeks before the review meeting). Statutory limits cannot be "
        "named. Empty: the table's own.",
    )
    host: str = Field(default="127.0.0.1", description="Address the read API binds.")
    port: int = Field(default=8003, ge=1, le=65535, description="The read API's port.")
    database_url: str = Field(
        default="sqlite:///.run/deadlines.db",
        description="The read model's store: sqlite:///<path> for one API process, "
        "postgresql://user:password@host:5432/database for several replicas sharing "
        "it, or memory://.",
    )
    projector_enabled: bool = Field(
        default=True,
        description="Follow send.deadlines.events and send.intake.events into the read "
        "model from a thread of the API process.",
    )
    tick_every_seconds: float = Field(
        default=60.0, gt=0, description="How often the ticker sends a round of ticks."
    )
    topic_prefix: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]{0,100}$",
        description="Put before the name of every topic the service reads or writes "
        "(the registry's names stay as they are): a shared cluster's namespace, or an "
        "isolated test's.",
    )

    def council(self) -> CouncilConfig:
        """The council's settings for the clocks, with the term dates file read.

        Raises ``SettingsError`` naming the variable when the file cannot be read or
        its terms clash with ``DEADLINES_TERM_DATES``.
        """
        terms = list(self.term_dates)
        if self.term_dates_file is not None:
            where = f"DEADLINES_TERM_DATES_FILE {self.term_dates_file}"
            try:
                text = self.term_dates_file.read_text(encoding="utf-8")
            except OSError as error:
                raise SettingsError(
                    f"cannot read {where} ({error.strerror}): point it at a CSV file "
                    "with the header starts_on,ends_on, or leave it empty"
                ) from error
            terms += parse_term_dates_csv(text, where)
        pairs = check_term_dates(
            terms, "DEADLINES_TERM_DATES with DEADLINES_TERM_DATES_FILE"
        )
        try:
            return CouncilConfig(
                terms=tuple(Term(first, last) for first, last in pairs),
                local_amounts={
                    name: value
                    for name, value in self.local_targets.items()
                    if value != OFF and isinstance(value, int)
                },
                disabled=frozenset(
                    name for name, value in self.local_targets.items() if value == OFF
                ),
                default_lead_working_days=self.lead_working_days,
            )
        except RulesError as error:
            raise SettingsError(f"the council settings do not fit: {error}") from error

    def topic(self, name: str) -> str:
        """The name a registry topic has in this deployment."""
        return f"{self.topic_prefix}{name}"

    @property
    def domain_topics(self) -> tuple[str, ...]:
        return tuple(self.topic(name) for name in DOMAIN_TOPICS)

    @property
    def ticks_topic(self) -> str:
        return self.topic(CLOCK_TICKS.name)

    @property
    def clocks_topic(self) -> str:
        return self.topic(DEADLINES.name)

    @property
    def intake_topic(self) -> str:
        return self.topic(INTAKE.name)

    @field_validator("lead_working_days", mode="before")
    @classmethod
    def _leads_from_text(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            try:
                leads = tuple(int(part) for part in parts)
            except ValueError:
                raise ValueError(
                    "DEADLINES_LEAD_WORKING_DAYS must be whole numbers separated by "
                    "commas, such as 10,5,0"
                ) from None
            if not leads or any(lead < 0 for lead in leads):
                raise ValueError(
                    "DEADLINES_LEAD_WORKING_DAYS needs at least one lead time, none "
                    "negative, such as 10,5,0"
                )
            return leads
        return value

    @field_validator("term_dates", mode="before")
    @classmethod
    def _terms_from_text(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_term_dates(value, "DEADLINES_TERM_DATES")
        return value

    @field_validator("term_dates")
    @classmethod
    def _terms_in_order(cls, value: TermDates) -> TermDates:
        return check_term_dates(value, "DEADLINES_TERM_DATES")

    @field_validator("term_dates_file", mode="before")
    @classmethod
    def _empty_path_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("local_targets", mode="before")
    @classmethod
    def _targets_from_text(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_local_targets(value)
        return value

    @field_validator("local_targets")
    @classmethod
    def _targets_are_local(
        cls, value: dict[str, LocalTarget]
    ) -> dict[str, LocalTarget]:
        return check_local_targets(value)


class DeadlinesApiSettings(DeadlinesSettings, AuthSettings):
    """The read API's settings: the service's own and how bearer tokens are verified."""

    # Set again: the merged config would take AuthSettings' empty prefix last.
    model_config = SettingsConfigDict(
        env_prefix="DEADLINES_", extra="ignore", populate_by_name=True, frozen=True
    )
