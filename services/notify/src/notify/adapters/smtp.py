"""Sending email over SMTP with the standard library's ``smtplib``.

One connection per email: alerts are few, and a fresh connection cannot carry a
half-finished conversation from an earlier failure into the next send. The answer is
typed: SMTP 4xx replies, refused or dropped connections and timeouts are retryable;
5xx replies are permanent. Once the server has accepted the message (250 after
DATA), the send is "sent", and nothing that happens while saying goodbye turns it
into a failure, since a retry then would deliver a second copy.

Blocking by nature: the delivery calls it from its own thread.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from notify.application.ports import (
    EmailSender,
    EmailSenderProvider,
    OutgoingEmail,
    PermanentSendFailure,
    RetryableSendFailure,
    SendFailure,
)

log = logging.getLogger(__name__)

__all__ = ["SMTPEmailSender", "SMTPProvider", "build_message"]


def build_message(email: OutgoingEmail) -> EmailMessage:
    """The MIME message for ``email``: plain text, UTF-8, its own Message-ID."""
    message = EmailMessage()
    message["Message-ID"] = email.message_id
    message["Date"] = formatdate(usegmt=True)
    message["From"] = email.from_address
    message["To"] = email.to_address
    message["Subject"] = email.subject
    for name, value in email.headers.items():
        message[name] = value
    message.set_content(email.body, subtype="plain", charset="utf-8")
    return message


def _by_code(code: int, text: str) -> SendFailure:
    if 500 <= code < 600:
        return PermanentSendFailure(f"SMTP server refused the message: {text}", code)
    return RetryableSendFailure(f"SMTP server deferred the message: {text}", code)


def _reply_text(code: int, message: bytes | str) -> str:
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return f"{code} {message}".strip()


class SMTPEmailSender(EmailSender):
    """An ``EmailSender`` that talks to one SMTP server (a relay or a mail catcher)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float = 30.0,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.starttls = starttls
        self.username = username
        self.password = password

    def send(self, email: OutgoingEmail) -> None:
        message = build_message(email)
        smtp: smtplib.SMTP | None = None
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(
                message, from_addr=email.from_address, to_addrs=[email.to_address]
            )
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()), (550, b"refused"))
            raise _by_code(code, _reply_text(code, reply)) from error
        except smtplib.SMTPResponseException as error:
            raise _by_code(
                error.smtp_code, _reply_text(error.smtp_code, error.smtp_error)
            ) from error
        except smtplib.SMTPNotSupportedError as error:
            raise PermanentSendFailure(
                f"SMTP server {self.host}:{self.port} lacks a feature the settings "
                f"ask for ({error}): check NOTIFY_SMTP_STARTTLS and the credentials"
            ) from error
        except (OSError, smtplib.SMTPException) as error:
            # Refused or dropped connections, timeouts, TLS errors (SMTPException and
            # socket errors are both OSError): the server may be back in a moment.
            raise RetryableSendFailure(
                f"could not talk to SMTP server {self.host}:{self.port}: {error!r}"
            ) from error
        finally:
            if smtp is not None:
                self._quit(smtp)

    @staticmethod
    def _quit(smtp: smtplib.SMTP) -> None:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            log.debug("SMTP QUIT failed after the send; the answer stands")
            smtp.close()


class SMTPProvider(EmailSenderProvider):
    """SMTP as the email provider: an ``SMTPEmailSender`` behind the provider port."""
