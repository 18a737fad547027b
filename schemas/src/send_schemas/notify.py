"""Events the notify service publishes on ``send.notify.events``.

Each alert notify sends ends in exactly one of ``NotificationSent`` (the provider
accepted it: for SMTP email, the server's 250; for GOV.UK Notify, its 201) and
``NotificationFailed`` (it never will be sent: a permanent refusal, retries used up,
or nobody to send it to). A message sent through GOV.UK Notify may then get one
delivery receipt: ``NotificationDelivered`` (it reached the phone or inbox) or
``NotificationDeliveryFailed`` (Notify gave up on it). An alert carried inside a daily
digest or a termly SENCO list has events of its own, naming the message that carried
it in ``bundle_id``. The subject (and Kafka key) is the case id. Recipients are named
by role and pseudonymous staff id, never by address or number, and no event carries a
child's details.

These are producer models (``extra="forbid"``): a subscriber should read them with a
tolerant model of its own that ignores unknown fields and maps unknown values of the
open text fields (``alert_kind``, ``recipient_role``, ``failure``) to "other".
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from send_schemas.intake import CaseId, StaffId, UtcTimestamp

OWNER = "notify"
TOPIC = "send.notify.events"

NotificationChannel = Literal["email", "sms"]
"""``email`` is SMTP or GOV.UK Notify email; ``sms`` is GOV.UK Notify."""

NotificationProvider = Literal["smtp", "govuk_notify"]

DeliveryFailure = Literal["permanent-failure", "temporary-failure", "technical-failure"]

_KIND = (
    "What the alert told its recipient: approaching, overdue, correction (takes "
    "back an alert whose facts were corrected), review_list (the case was on its "
    "school SENCO's termly list of reviews) or escalation (tells a manager an alert "
    "was not delivered). Open: read unknown values as other."
)
_ROLE = (
    "Why the recipient was told: coordinator (of the case), manager (of the "
    "coordinator, or of a person an alert did not reach) or senco (of the child's "
    "school). Open: read unknown values as other."
)


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
    provider: NotificationProvider | None = Field(
        default=None,
        description="Who carried it: smtp or govuk_notify (null: never handed over).",
    )
    bundle_id: str | None = Field(
        default=None,
        description=(
            "For an alert carried inside a daily digest or a termly SENCO list: the id "
            "of that message, the same on the events of every alert it carried."
        ),
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


class NotificationDelivered(NotifyEvent):
    """GOV.UK Notify reported that a message it accepted reached the phone or inbox."""

    EVENT_TYPE: ClassVar[str] = "send.notify.NotificationDelivered.v1"

    notification_id: str = Field(
        description="GOV.UK Notify's id of the message (not personal data)."
    )
    completed_at: UtcTimestamp | None = Field(
        default=None, description="When Notify saw it delivered, if it said."
    )


class NotificationDeliveryFailed(NotifyEvent):
    """GOV.UK Notify gave up on a message it had accepted: a person must act on it.

    ``permanent-failure``: the address or number does not exist;
    ``temporary-failure``: the inbox was full or the phone off for 72 hours;
    ``technical-failure``: a fault between Notify and its providers.
    """

    EVENT_TYPE: ClassVar[str] = "send.notify.NotificationDeliveryFailed.v1"

    notification_id: str = Field(
        description="GOV.UK Notify's id of the message (not personal data)."
    )
    status: DeliveryFailure = Field(description="Notify's final status.")
    completed_at: UtcTimestamp | None = Field(
        default=None, description="When Notify gave up, if it said."
    )


EVENT_MODELS: tuple[type[NotifyEvent], ...] = (
    NotificationSent,
    NotificationFailed,
    NotificationDelivered,
    NotificationDeliveryFailed,
)
EVENTS_BY_TYPE: dict[str, type[NotifyEvent]] = {m.EVENT_TYPE: m for m in EVENT_MODELS}
