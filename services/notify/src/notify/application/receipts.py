"""GOV.UK Notify's delivery receipts: recorded on the alert, published as events.

Notify posts a receipt when a message reaches its final status. The receipt names the
message by Notify's id and by our ``reference`` (the alert id). ``delivered`` becomes
``NotificationDelivered``; a failure status becomes ``NotificationDeliveryFailed`` and
an escalation to the recipient's manager. A receipt repeated by Notify (it retries a
callback that was not answered in time) changes nothing the second time, and a
receipt with another final status than the one recorded is logged and ignored: the
first final status stands.

A receipt may arrive before the delivery has recorded Notify's answer to the send
(they race on a fast provider, and a crash may sit between them). It is then kept on
the alert and published when the send is recorded, so subscribers always see
``NotificationSent`` first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from notify.application.escalation import escalate
from notify.application.ports import AlertRecord, NotifyDatabase, NotifyTransaction
from notify.application.records import Routing, receipt_builder, report
from notify.domain.delivery import AlertStatus, DeliveryStatus
from sendkit.events import utcnow

log = logging.getLogger(__name__)


class ReceiptOutcome(StrEnum):
    """What a receipt did."""

    RECORDED = "recorded"
    KEPT_FOR_LATER = "kept_for_later"
    DUPLICATE = "duplicate"
    UNKNOWN = "unknown"
    NOT_FINAL = "not_final"
    CONTRADICTED = "contradicted"


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery receipt as Notify sends it (the fields notify uses)."""

    notification_id: str
    reference: str | None
    status: str
    completed_at: datetime | None = None


def publish_receipt(
    tx: NotifyTransaction,
    alert: AlertRecord,
    status: DeliveryStatus,
    completed_at: datetime | None,
    *,
    now: datetime,
    routing: Routing,
) -> None:
    """Publish the receipt of a sent alert and escalate a failure."""
    report(tx, alert, receipt_builder(status, alert.provider_id or "", completed_at))
    if status.failed:
        escalate(
            tx,
            alert,
            f"GOV.UK Notify reported {status.value}",
            now=now,
            routing=routing,
        )


class Receipts:
    """Records the receipts the callback endpoint receives."""

    def __init__(
        self,
        db: NotifyDatabase,
        *,
        routing: Routing | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._routing = routing or Routing()
        self._now = now

    def record(self, receipt: Receipt) -> ReceiptOutcome:
        try:
            status = DeliveryStatus(receipt.status)
        except ValueError:
            # created, sending, pending: not final; Notify sends those only on request.
            return ReceiptOutcome.NOT_FINAL

        now = self._now()
        with self._db.transaction() as tx:
            alert = self._find(tx, receipt)
            if alert is None:
                log.warning(
                    "delivery receipt for a message notify does not know",
                    extra={
                        "notification_id": receipt.notification_id,
                        "reference": receipt.reference,
                    },
                )
                return ReceiptOutcome.UNKNOWN
            if alert.delivery_status == status.value:
                return ReceiptOutcome.DUPLICATE
            if alert.delivery_status is not None:
                # Every status here is final, so the first one stands: a later,
                # different one (a failure after delivered) would escalate a message
                # that arrived.
                log.warning(
                    "delivery receipt contradicts the final status already recorded",
                    extra={
                        "alert_id": alert.alert_id,
                        "recorded": alert.delivery_status,
                        "received": status.value,
                    },
                )
                return ReceiptOutcome.CONTRADICTED

            updated = alert.evolve(
                delivery_status=status.value,
                provider_id=alert.provider_id or receipt.notification_id,
                updated_at=now,
            )
            tx.save_alert(updated)
            if updated.status is not AlertStatus.SENT:
                return ReceiptOutcome.KEPT_FOR_LATER
            publish_receipt(
                tx,
                updated,
                status,
                receipt.completed_at,
                now=now,
                routing=self._routing,
            )
            if updated.covers == updated.alert_id:
                for item in tx.bundle_items(updated.alert_id):
                    tx.save_alert(item.evolve(delivery_status=status.value))

        log.info(
            "delivery receipt recorded",
            extra={
                "alert_id": alert.alert_id,
                "status": status.value,
                "kind": alert.kind.value,
            },
        )
        return ReceiptOutcome.RECORDED

    @staticmethod
    def _find(tx: NotifyTransaction, receipt: Receipt) -> AlertRecord | None:
        alert = tx.get_alert(receipt.reference) if receipt.reference else None
        if alert is None:
            alert = tx.alert_by_provider_id(receipt.notification_id)
        return alert
