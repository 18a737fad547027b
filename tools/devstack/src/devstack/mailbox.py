"""A folder of received emails, one RFC 5322 ``.eml`` file per message.

File names start with the UTC time of receipt and a sequence number
(``20240115T093012.123456Z-000042.eml``), so a directory listing sorts in the order
the messages arrived and any mail client or text editor opens them. The envelope
(``MAIL FROM`` and ``RCPT TO``) is kept by prepending ``Return-Path`` and
``X-Envelope-To`` header lines; the message itself is stored byte for byte as it
was received, so headers such as ``Message-ID`` are exactly what the sender wrote.

The store keeps an index in memory, rebuilt from the folder when it is opened, so a
restarted catcher still lists what an earlier run received.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

_NAME_PATTERN = re.compile(r"^(\d{8}T\d{6}\.\d{6})Z-(\d{6,})$")
_TIME_FORMAT = "%Y%m%dT%H%M%S.%f"


class MailCatcherError(Exception):
    """Root of every error raised by ``devstack.mailbox`` and ``devstack.smtp``."""


class MailStoreError(MailCatcherError):
    """The mail folder cannot be used, or a message asked for is not in it."""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One received message: where its file is and the facts a listing shows."""

    id: str
    path: Path
    received_at: datetime
    envelope_from: str
    envelope_to: tuple[str, ...]
    from_header: str
    to_header: str
    subject: str
    message_id: str
    size: int

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "received_at": self.received_at.isoformat(),
            "envelope_from": self.envelope_from,
            "envelope_to": list(self.envelope_to),
            "from": self.from_header,
            "to": self.to_header,
            "subject": self.subject,
            "message_id": self.message_id,
            "size": self.size,
            "path": str(self.path),
        }


def is_message_id(value: str) -> bool:
    """Whether ``value`` has the shape of an id this store gives (safe in a path)."""
    return _NAME_PATTERN.match(value) is not None


def _header_text(message: Message, name: str) -> str:
    raw = message.get(name)
    if raw is None:
        return ""
    # Encoded words (=?utf-8?...?=) are decoded so the listing shows what a person
    # would read; a header that cannot be decoded is shown as it came.
    try:
        return str(make_header(decode_header(str(raw)))).strip()
    except (ValueError, LookupError):
        return str(raw).strip()


def _envelope_lines(envelope_from: str, envelope_to: Iterable[str]) -> bytes:
    lines = [f"Return-Path: <{envelope_from}>"]
    lines += [f"X-Envelope-To: <{address}>" for address in envelope_to]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8", errors="surrogateescape")


class MailStore:
    """A folder of ``.eml`` files with an index of what is in it. Thread-safe."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise MailStoreError(
                f"cannot create the mail folder {self.directory}: {error}; "
                "choose a writable directory (the demo uses .run/mail)"
            ) from error
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._index: dict[str, StoredMessage] = {}
        self._sequence = 0
        self._load()

    def _load(self) -> None:
        for path in sorted(self.directory.glob("*.eml")):
            match = _NAME_PATTERN.match(path.stem)
            if match is None:
                continue
            self._index[path.stem] = self._describe(path)
            self._sequence = max(self._sequence, int(match.group(2)))

    def _describe(self, path: Path) -> StoredMessage:
        raw = path.read_bytes()
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
        match = _NAME_PATTERN.match(path.stem)
        if match is None:
            raise MailStoreError(f"{path.name} is not a file this store wrote")
        received_at = datetime.strptime(match.group(1), _TIME_FORMAT).replace(
            tzinfo=UTC
        )
        return StoredMessage(
            id=path.stem,
            path=path,
            received_at=received_at,
            envelope_from=_header_text(message, "Return-Path").strip("<>"),
            envelope_to=tuple(
                str(value).strip().strip("<>")
                for value in message.get_all("X-Envelope-To") or ()
            ),
            from_header=_header_text(message, "From"),
            to_header=_header_text(message, "To"),
            subject=_header_text(message, "Subject"),
            message_id=_header_text(message, "Message-ID"),
            size=len(raw),
        )

    def save(
        self,
        content: bytes,
        envelope_from: str,
        envelope_to: Iterable[str],
        received_at: datetime | None = None,
    ) -> StoredMessage:
        """Write one message to the folder and index it; return what was stored."""
        when = (received_at or datetime.now(UTC)).astimezone(UTC)
        data = _envelope_lines(envelope_from, envelope_to) + content
        with self._lock:
            self._sequence += 1
            stem = f"{when.strftime(_TIME_FORMAT)}Z-{self._sequence:06d}"
            path = self.directory / f"{stem}.eml"
            # Written under another name and renamed, so a reader of the folder never
            # sees half a message.
            partial = self.directory / f".{stem}.part"
            partial.write_bytes(data)
            os.replace(partial, path)
            stored = self._describe(path)
            self._index[stem] = stored
            self._arrived.notify_all()
        return stored

    def messages(self) -> list[StoredMessage]:
        """Every stored message, oldest first."""
        with self._lock:
            return [self._index[key] for key in sorted(self._index)]

    def get(self, message_id: str) -> StoredMessage:
        with self._lock:
            stored = self._index.get(message_id)
        if stored is None:
            raise MailStoreError(
                f"no message {message_id!r} in {self.directory}; "
                "list them at /api/messages"
            )
        return stored

    def raw(self, message_id: str) -> bytes:
        return self.get(message_id).path.read_bytes()

    def parsed(self, message_id: str) -> EmailMessage:
        return email.message_from_bytes(
            self.raw(message_id), policy=email.policy.default
        )

    def text(self, message_id: str) -> str:
        """The message as a person reads it: main headers, then the text body."""
        message = self.parsed(message_id)
        lines = [
            f"{name}: {message.get(name, '')}"
            for name in ("Date", "From", "To", "Cc", "Subject", "Message-ID")
            if message.get(name) is not None
        ]
        body = message.get_body(preferencelist=("plain", "html"))
        if body is None:
            content = "(this message has no text part)"
        else:
            try:
                content = str(body.get_content())
            except (LookupError, ValueError):
                payload = body.get_payload(decode=True)
                content = (
                    payload.decode("utf-8", errors="replace")
                    if isinstance(payload, bytes)
                    else str(payload)
                )
        return "\n".join(lines) + "\n\n" + content

    def clear(self) -> int:
        """Delete every stored message; return how many were deleted."""
        with self._lock:
            count = len(self._index)
            for stored in self._index.values():
                stored.path.unlink(missing_ok=True)
            self._index.clear()
        return count

    def wait_for(self, count: int, timeout: float) -> list[StoredMessage]:
        """Wait until at least ``count`` messages are stored or ``timeout`` passes.

        Returns the messages held at that point, which a caller checks; waiting is
        not a timed assertion, it only saves polling.
        """
        with self._arrived:
            self._arrived.wait_for(lambda: len(self._index) >= count, timeout=timeout)
            return [self._index[key] for key in sorted(self._index)]
