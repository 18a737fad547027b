"""Events the notify service publishes on ``send.notify.events``.

Each alert notify sends ends in exactly one of these: ``NotificationSent`` when the
provider accepted it (for email, the SMTP server's 250), ``NotificationFailed`` when it
never will be (a permanent refusal, retries used up, or nobody to send it to). The
subject (and Kafka key) is the case id. Recipients are named by role and pseudonymous
staff id, never by address, and no event carries a child's details.

These are producer models (``extra="forbid"``): a subscriber should read them with a
tolerant model of its own that ignores unknown fields and maps unknown values of the
open text fields (``alert_kind``, ``recipient_role``, ``failure``) to "other".
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from send_schemas.intake import CaseId, StaffId

OWNER = "notify"
TOPIC = "send.notify.events"

NotificationChannel = Literal["email", "sms"]
"""``email`` is SMTP or GOV.UK Notify email; ``sms`` is reserved for GOV.UK Notify."""

_KIND = (
    "What the alert told its recipient: approaching, overdue or correction (a "
    "correction takes back an alert whose facts were corrected)."
)
_ROLE = "Why the recipient was told: coordinator (of the case) or manager (of it)."


class NotifyEvent(BaseModel):
    """The public data every notify event shares: which alert, about what, to whom."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    EVENT_TYPE: ClassVar[str]

    alert_id: str = Field(
        description="The alert's stable id (uuid5 of its cause and its recipient)."
    )
    clock_event_id: str | None = Field(
        description=(
            "The id (ce_id) of the send.deadlines event that raised the alert; "
            "for a correction, the AlertWithdrawn event."
        )
    )
    case_id: CaseId
    clock_id: str | None = Field(
        default=None, description="The clock the alert is about, if any."
    )
    alert_kind: str = Field(description=_KIND)
    channel: NotificationChannel = Field(description="How the alert was sent.")
    recipient_role: str = Field(description=_ROLE)
    recipient_staff_id: StaffId | None = Field(
        description=(
            "The recipient's pseudonymous staff id; null when nobody could be found "
            "for the role."
        )
    )
    attempts: int = Field(
        ge=0, description="How many times a send was attempted (0: never tried)."
    )


class NotificationSent(NotifyEvent):
    """An alert was accepted by the provider for delivery."""

    EVENT_TYPE: ClassVar[str] = "send.notify.NotificationSent.v1"

    corrects_alert_id: str | None = Field(
        default=None,
        description="For a correction, the alert it takes back.",
    )


class NotificationFailed(NotifyEvent):
    """An alert will not be delivered: a person must act on it."""

    EVENT_TYPE: ClassVar[str] = "send.notify.NotificationFailed.v1"

    failure: str = Field(
        description=(
            "permanent (the provider refused it for good), retries_exhausted "
            "(it kept failing) or no_recipient (no address for the role)."
        )
    )
    reason: str = Field(
        description="What went wrong, for an operator; recipient addresses removed."
    )
    status_code: int | None = Field(
        default=None,
        description="The provider's answer code (an SMTP reply code), if any.",
    )
    corrects_alert_id: str | None = Field(
        default=None,
        description="For a correction, the alert it takes back.",
    )


EVENT_MODELS: tuple[type[NotifyEvent], ...] = (NotificationSent, NotificationFailed)
EVENTS_BY_TYPE: dict[str, type[NotifyEvent]] = {m.EVENT_TYPE: m for m in EVENT_MODELS}
