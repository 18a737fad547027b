"""The placement service's settings, read from the environment.

Besides the shared names of ``sendkit.settings.ServiceSettings``:

===============================  ===========================  ==========================
Environment name                 Default                      Meaning
===============================  ===========================  ==========================
PLACEMENT_DATABASE_URL           sqlite:///.run/placement.db  the event store
                                                              (sqlite, postgresql,
                                                              memory)
PLACEMENT_HOST                   127.0.0.1                    the address the server
                                                              binds
PLACEMENT_PORT                   8005                         the HTTP port
PLACEMENT_RELAY_ENABLED          false                        run the outbox relay in
                                                              the app
PLACEMENT_RELAY_POLL_SECONDS     0.2                          idle wait between polls
PLACEMENT_SUBSCRIBERS_ENABLED    false                        follow intake's and plans'
                                                              topics in the app
PLACEMENT_CONSUMER_GROUP         placement                    the subscribers' Kafka
                                                              group
PLACEMENT_INFANT_SCHOOLS         none                         Year 2 to 3 transfers:
                                                              none, all, or URNs
PLACEMENT_PHASE_TRANSFERS        (unset: the usual four)      the whole transfer table,
                                                              as JSON
===============================  ===========================  ==========================

``PLACEMENT_INFANT_SCHOOLS`` says where children move from an infant to a junior school
after Year 2: ``none`` (the council has primary schools only), ``all``, or the URNs of
the infant schools, comma-separated. A council with first, middle and upper schools
sets ``PLACEMENT_PHASE_TRANSFERS`` to its whole table instead, for example::

    [{"phase": "into_reception", "leaving_year": -1},
     {"phase": "first_to_middle", "leaving_year": 4, "schools": [131001, 131002]},
     {"phase": "middle_to_secondary", "leaving_year": 8, "schools": [131101]},
     {"phase": "primary_to_secondary", "leaving_year": 6, "except_schools": [131101]},
     {"phase": "secondary_to_post16", "leaving_year": 11}]

The access-control names of ``sendkit.auth.settings.AuthSettings`` (AUTH_ISSUER,
AUTH_AUDIENCE, AUTH_MODE, ...) apply here as in every service.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from placement.domain.phases import (
    INTO_RECEPTION,
    PHASE_TRANSFERS,
    PRIMARY_TO_SECONDARY,
    SECONDARY_TO_POST16,
    PhaseConfig,
    TransferRule,
    infant_to_junior,
)
from send_schemas import intake as intake_contract
from send_schemas import placement as contract
from sendkit.auth import AuthSettings
from sendkit.settings import ServiceSettings

SOURCE = "/send/placement"
"""The CloudEvents ``source`` of every placement event."""

CONSUMER_NAME = "placement"
"""Placement as a consumer: the scope of its processed ids, its dead-letter topics."""

Urn = Annotated[int, Field(ge=contract.URN_MIN, le=contract.URN_MAX)]


class TransferRuleSetting(BaseModel):
    """One row of ``PLACEMENT_PHASE_TRANSFERS``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    phase: contract.Phase
    leaving_year: intake_contract.CurriculumYear
    schools: list[Urn] | None = None
    except_schools: list[Urn] = Field(default_factory=list)

    def rule(self) -> TransferRule:
        return TransferRule(
            phase=self.phase,
            leaving_year=self.leaving_year,
            transfer=PHASE_TRANSFERS[self.phase],
            schools=None if self.schools is None else frozenset(self.schools),
            except_schools=frozenset(self.except_schools),
        )


class PlacementSettings(ServiceSettings, AuthSettings):
    """Settings of the placement service's HTTP app, relay and subscribers."""

    model_config = SettingsConfigDict(env_prefix="PLACEMENT_")

    database_url: str = Field(
        default="sqlite:///.run/placement.db",
        description="The event store: sqlite:///<path>, postgresql://... or memory://.",
    )
    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds.")
    port: int = Field(default=8005, ge=1, le=65535, description="The HTTP port.")
    relay_enabled: bool = Field(
        default=False,
        description="Run the outbox relay as a thread of the HTTP app.",
    )
    relay_poll_seconds: float = Field(
        default=0.2,
        gt=0,
        description="How long the relay waits before looking again when idle.",
    )
    subscribers_enabled: bool = Field(
        default=False,
        description="Follow send.intake.events and send.plans.events as threads of "
        "the HTTP app.",
    )
    consumer_group: str = Field(
        default=CONSUMER_NAME,
        min_length=1,
        description="The Kafka consumer group of the subscribers.",
    )
    infant_schools: Annotated[str, NoDecode] = Field(
        default="none",
        description="Year 2 to 3 transfers: none, all, or the infant schools' URNs.",
    )
    phase_transfers: list[TransferRuleSetting] | None = Field(
        default=None,
        description="The council's whole phase-transfer table as JSON; unset keeps "
        "into Reception, primary to secondary and secondary to post-16.",
    )

    @field_validator("infant_schools")
    @classmethod
    def _infant_schools_readable(cls, value: str) -> str:
        text = value.strip().lower()
        if text in ("none", "all"):
            return text
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if not parts or not all(
            part.isdigit() and contract.URN_MIN <= int(part) <= contract.URN_MAX
            for part in parts
        ):
            raise ValueError(
                "PLACEMENT_INFANT_SCHOOLS must be none, all, or school URNs (6 digits) "
                "separated by commas, such as 123456,123457"
            )
        return ",".join(parts)

    @model_validator(mode="after")
    def _one_way_to_say_it(self) -> PlacementSettings:
        if self.phase_transfers is not None and self.infant_schools != "none":
            raise ValueError(
                "set PLACEMENT_INFANT_SCHOOLS or PLACEMENT_PHASE_TRANSFERS, not both: "
                "with a whole table, list the infant_to_junior row in it"
            )
        return self

    def phase_config(self) -> PhaseConfig:
        """The council's phase transfers, as the domain applies them."""
        if self.phase_transfers is not None:
            return PhaseConfig(tuple(row.rule() for row in self.phase_transfers))
        rules = [INTO_RECEPTION]
        if self.infant_schools == "all":
            rules.append(infant_to_junior(None))
        elif self.infant_schools != "none":
            urns = frozenset(int(part) for part in self.infant_schools.split(","))
            rules.append(infant_to_junior(urns))
        rules += [PRIMARY_TO_SECONDARY, SECONDARY_TO_POST16]
        return PhaseConfig(tuple(rules))
