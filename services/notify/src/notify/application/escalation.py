"""Telling a manager when an alert did not reach the person it was for.

An alert that failed for good (a provider refused it, retries ran out, or GOV.UK
Notify reported it undelivered) is followed by an email to the manager of its
recipient, carrying the alert, so a missed statutory deadline still reaches someone.
An escalation that fails itself is not escalated further; its ``NotificationFailed``
and the error log are what an operator sees. The escalation's id is derived from the
failed alert and the manager, so a repeated failure report records it once.
"""

from __future__ import annotations

import logging
from datetime import datetime

from notify.application.ports import (
    AlertRecord,
    NotifyTransaction,
    TransactionDirectory,
)
from notify.application.records import Routing, escalation_for
from notify.domain.alerts import AlertKind

log = logging.getLogger(__name__)


def escalate(
    tx: NotifyTransaction,
    failed: AlertRecord,
    reason: str,
    *,
    now: datetime,
    routing: Routing,
) -> str | None:
    """Record the escalation of ``failed``; its id, or ``None`` if there is none."""
    if failed.kind is AlertKind.ESCALATION or failed.staff_id is None:
        log.error(
            "an undelivered alert cannot be escalated further",
            extra={"alert_id": failed.alert_id, "kind": failed.kind.value},
        )
        return None

    directory = TransactionDirectory(tx)
    manager = directory.manager_of(failed.staff_id)
    if manager is None or manager.staff_id == failed.staff_id:
        log.error(
            "alert not delivered and its recipient has no manager to tell",
            extra={"alert_id": failed.alert_id, "staff_id": failed.staff_id},
        )
        return None

    person = directory.get(failed.staff_id)
    label = f"{person.name} ({failed.staff_id})" if person else failed.staff_id
    escalation = escalation_for(
        failed,
        manager,
        recipient_label=label,
        reason=reason,
        now=now,
        routing=routing,
    )
    if not tx.add_alert(escalation):
        return None
    log.warning(
        "undelivered alert escalated to the manager",
        extra={
            "alert_id": failed.alert_id,
            "escalation_id": escalation.alert_id,
            "manager_id": manager.staff_id,
        },
    )
    return escalation.alert_id
