"""An alert's life in the ledger, and the retry rule for failed sends.

An alert is recorded as ``pending`` before anything is sent. A sender claims it
(``sending``, one more attempt counted) just before it talks to the provider, and
records the answer after: ``sent``, back to ``pending`` with a later attempt time (a
retryable failure), or ``failed`` (a permanent failure, or retries used up). An alert
that is withdrawn before it goes out becomes ``withdrawn`` and is never sent.

An approaching alert for a person who takes a daily digest is ``held`` until the
digest gathers it; from then on, and for the items of a termly SENCO list, it is
``bundled``: it goes out inside that message and ends as the message ends.

A claim that was never answered (the process died mid-send) is found again. A provider
that can be asked (GOV.UK Notify, by ``reference`` = alert id) is asked before anything
is sent again; SMTP cannot be asked, so the email is resent with the same Message-ID,
and the mail system can drop the copy if the first one did arrive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum


class AlertStatus(StrEnum):
    """Where an alert is in its delivery."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    WITHDRAWN = "withdrawn"
    HELD = "held"
    BUNDLED = "bundled"

    @property
    def final(self) -> bool:
        return self in (AlertStatus.SENT, AlertStatus.FAILED, AlertStatus.WITHDRAWN)


class FailureKind(StrEnum):
    """Why an alert ended as failed; published in ``NotificationFailed.failure``."""

    PERMANENT = "permanent"
    RETRIES_EXHAUSTED = "retries_exhausted"
    NO_RECIPIENT = "no_recipient"


class DeliveryStatus(StrEnum):
    """The final statuses GOV.UK Notify reports in a delivery receipt."""

    DELIVERED = "delivered"
    PERMANENT_FAILURE = "permanent-failure"
    TEMPORARY_FAILURE = "temporary-failure"
    TECHNICAL_FAILURE = "technical-failure"

    @property
    def failed(self) -> bool:
        return self is not DeliveryStatus.DELIVERED


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Capped exponential backoff: base, 2 x base, 4 x base, ... up to ``max_delay``."""

    max_attempts: int = 8
    base_delay: timedelta = timedelta(seconds=2)
    max_delay: timedelta = timedelta(minutes=5)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1 (the first try counts)")
        if self.base_delay <= timedelta(0) or self.max_delay < self.base_delay:
            raise ValueError("base_delay must be positive and at most max_delay")

    def delay_after(self, attempts: int) -> timedelta:
        """How long to wait after the ``attempts``-th failed attempt."""
        exponent = max(attempts - 1, 0)
        # Compare before multiplying, so a large attempt count cannot overflow.
        if exponent >= 32:
            return self.max_delay
        return min(self.base_delay * (1 << exponent), self.max_delay)

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts
