"""GOV.UK Notify as a provider of email and SMS, through its official Python client.

Every message is sent with one template per channel (``NOTIFY_GOVUK_EMAIL_TEMPLATE_ID``
and ``NOTIFY_GOVUK_SMS_TEMPLATE_ID``) and the personalisation notify builds for each
alert (``subject``, ``body``, ``case_reference``, ``what``, ``due_date``,
``regulation``, ``link``): a template of ``((subject))`` and ``((body))`` sends
notify's own wording, and a council may write its own from the parts. The alert id is
the ``reference``, so a message can be found again by it (it is never personal data).

Notify's answers are typed as the delivery needs them: 400 (``ValidationError``,
``BadRequestError``: a bad number or address, a trial-mode recipient) is permanent;
429 (rate limits), 5xx, and what the client reports as 503 (a timeout, a refused or
dropped connection) are retryable. 403 (``AuthError``: a wrong key or a clock more
than 30 seconds out) is retryable too, because it ends when an operator fixes the key
or the clock, and the alerts should then still go; it is logged as an error.

The client is not thread-safe; each provider keeps one client per thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from notifications_python_client.errors import APIError
from notifications_python_client.notifications import NotificationsAPIClient

from notify.application.ports import (
    MessageProvider,
    OutgoingMessage,
    PermanentSendFailure,
    ProviderReceipt,
    RetryableSendFailure,
    SendFailure,
)
from notify.domain.alerts import Channel, Provider
from notify.errors import ConfigurationError

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.notifications.service.gov.uk"
_API_KEY_TAIL = 74
"""A key ends ``-{service uuid}-{secret uuid}``: 1 + 36 + 1 + 36 characters."""


def check_api_key(api_key: str) -> str:
    """``api_key`` if it has GOV.UK Notify's shape ``{name}-{service id}-{secret}``."""
    key = api_key.strip()
    tail = key[-_API_KEY_TAIL:]
    parts = tail[1:].split("-")
    if len(key) <= _API_KEY_TAIL or tail[0] != "-" or len(parts) != 10:
        raise ConfigurationError(
            "NOTIFY_GOVUK_API_KEY is not a GOV.UK Notify API key: copy the whole key "
            "from Notify's API integration page (name-serviceid-secret)"
        )
    return key


def _errors_text(error: APIError) -> str:
    message = error.message
    if isinstance(message, list):
        return "; ".join(
            f"{item.get('error', 'Error')}: {item.get('message', '')}"
            if isinstance(item, dict)
            else str(item)
            for item in message
        )
    return str(message)


def typed_failure(error: APIError) -> SendFailure:
    """Notify's error answer as a retryable or permanent failure."""
    status = error.status_code
    text = f"GOV.UK Notify answered {status}: {_errors_text(error)}"
    if status == 403:
        log.error(
            "GOV.UK Notify refused the API key or the clock; check "
            "NOTIFY_GOVUK_API_KEY and that this host's clock is right",
            extra={"status": status},
        )
        return RetryableSendFailure(text, status)
    if status == 429 or status >= 500:
        return RetryableSendFailure(text, status)
    return PermanentSendFailure(text, status)


ClientFactory = Callable[..., NotificationsAPIClient]


class GovukNotifyProvider(MessageProvider):
    """Sends email and SMS through GOV.UK Notify and finds them by reference."""

    name = Provider.GOVUK_NOTIFY
    channels = frozenset({Channel.EMAIL, Channel.SMS})
    can_look_up = True

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        email_template_id: str | None = None,
        sms_template_id: str | None = None,
        timeout: float = 30.0,
        client_factory: ClientFactory = NotificationsAPIClient,
    ) -> None:
        self._api_key = check_api_key(api_key)
        self.base_url = base_url
        self.email_template_id = email_template_id
        self.sms_template_id = sms_template_id
        self._timeout = timeout
        self._factory = client_factory
        self._local = threading.local()

    def _client(self) -> Any:
        # Any: the client's methods carry no annotations.
        client: NotificationsAPIClient | None = getattr(self._local, "client", None)
        if client is None:
            client = self._factory(
                self._api_key, base_url=self.base_url, timeout=self._timeout
            )
            self._local.client = client
        return client

    def _template(self, channel: Channel) -> str:
        template = (
            self.sms_template_id if channel is Channel.SMS else self.email_template_id
        )
        if not template:
            setting = f"NOTIFY_GOVUK_{channel.value.upper()}_TEMPLATE_ID"
            raise PermanentSendFailure(
                f"no GOV.UK Notify template for {channel.value}: set {setting}"
            )
        return template

    def send(self, message: OutgoingMessage) -> ProviderReceipt:
        template = self._template(message.channel)
        try:
            if message.channel is Channel.SMS:
                answer = self._client().send_sms_notification(
                    phone_number=message.to,
                    template_id=template,
                    personalisation=message.personalisation,
                    reference=message.reference,
                )
            else:
                answer = self._client().send_email_notification(
                    email_address=message.to,
                    template_id=template,
                    personalisation=message.personalisation,
                    reference=message.reference,
                )
        except APIError as error:
            raise typed_failure(error) from error
        return ProviderReceipt(provider_id=_id_of(answer), status="created")

    def look_up(self, reference: str) -> ProviderReceipt | None:
        try:
            answer = self._client().get_all_notifications(reference=reference)
        except APIError as error:
            failure = typed_failure(error)
            # Not knowing is not a refusal of the message: try again later.
            raise RetryableSendFailure(
                f"could not ask GOV.UK Notify for reference {reference}: {failure}",
                failure.code,
            ) from error
        found = [
            n
            for n in (answer or {}).get("notifications") or []
            if isinstance(n, dict) and n.get("reference") == reference
        ]
        if not found:
            return None
        return ProviderReceipt(
            provider_id=str(found[0].get("id")), status=found[0].get("status")
        )


def _id_of(answer: Any) -> str | None:
    if isinstance(answer, dict) and answer.get("id"):
        return str(answer["id"])
    return None
