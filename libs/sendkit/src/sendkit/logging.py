"""Structured logs and the correlation id that ties one request's work together.

A correlation id is held in a context variable. The HTTP middleware sets it from the
``X-Correlation-ID`` request header (or generates one) and echoes it on the response;
command handlers read it with ``current_correlation_id()`` so the events they append
carry it in ``Metadata.correlation_id``; the outbox relay writes it to Kafka as the
CloudEvents extension header ``ce_correlationid``; a consumer restores it with
``correlation_from_kafka_headers`` so its own logs and events continue the same thread.

Every log record gets ``correlation_id`` and ``service`` fields. Log lazily, with
%-style arguments and structured fields in ``extra``::

    log.info("request received", extra={"case_id": case_id, "channel": channel})
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

CORRELATION_HEADER = "X-Correlation-ID"
"""The HTTP header a caller may send, and every response carries."""

KAFKA_CORRELATION_HEADER = "ce_correlationid"
"""The Kafka header (a CloudEvents extension attribute) carrying the correlation id."""

KAFKA_CAUSATION_HEADER = "ce_causationid"
"""The Kafka header carrying the id of the event or command that caused an event."""

# An id from outside is echoed into logs and headers, so only plain tokens are taken:
# anything else (newlines, very long values) is replaced by a fresh id.
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")

_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
_service_name: str = "send"


def new_correlation_id() -> str:
    return str(uuid.uuid4())


def acceptable_correlation_id(value: str | None) -> str | None:
    """``value`` if it is safe to adopt as a correlation id, otherwise ``None``."""
    if value is not None and _ACCEPTABLE_ID.match(value):
        return value
    return None


def get_correlation_id() -> str | None:
    """The correlation id of the work in progress, if one has been set."""
    return _correlation_id.get()


def current_correlation_id() -> str:
    """The correlation id in effect, or a new one when this work has none.

    A new id is not remembered: code that starts a unit of work outside a request or
    a consumed record opens ``correlation_scope()`` so every event and log line of
    that work shares one id, and work that follows gets its own.
    """
    return _correlation_id.get() or new_correlation_id()


@contextmanager
def correlation_scope(correlation_id: str | None = None) -> Iterator[str]:
    """Run a block under ``correlation_id`` (a new one if ``None``), then restore."""
    value = acceptable_correlation_id(correlation_id) or new_correlation_id()
    token = _correlation_id.set(value)
    try:
        yield value
    finally:
        _correlation_id.reset(token)


def _header_value(
    headers: Sequence[tuple[str, bytes | None]] | Mapping[str, bytes | None] | None,
    name: str,
) -> str | None:
    if not headers:
        return None
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        if key.lower() == name and value is not None:
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                return None
    return None


def correlation_from_kafka_headers(
    headers: Sequence[tuple[str, bytes | None]] | Mapping[str, bytes | None] | None,
) -> str | None:
    """The correlation id a Kafka record carries in ``ce_correlationid``, if valid."""
    return acceptable_correlation_id(_header_value(headers, KAFKA_CORRELATION_HEADER))


@contextmanager
def kafka_correlation_scope(
    headers: Sequence[tuple[str, bytes | None]] | Mapping[str, bytes | None] | None,
) -> Iterator[str]:
    """Handle one consumed record under the correlation id its headers carry."""
    with correlation_scope(correlation_from_kafka_headers(headers)) as value:
        yield value


def correlation_kafka_headers(correlation_id: str | None) -> list[tuple[str, bytes]]:
    """The Kafka header that carries ``correlation_id`` (none if there is no id)."""
    if not correlation_id:
        return []
    return [(KAFKA_CORRELATION_HEADER, correlation_id.encode("utf-8"))]


class ContextFilter(logging.Filter):
    """Adds the correlation id and the service name to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn adds an ANSI-coloured copy of its message for terminals.
        record.__dict__.pop("color_message", None)
        if not hasattr(record, "correlation_id"):
            record.correlation_id = _correlation_id.get()
        if not hasattr(record, "service"):
            record.service = _service_name
        return True


class TextFormatter(logging.Formatter):
    """A one-line human format that still shows the ``extra`` fields."""

    _standard = frozenset(
        set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__)
        | {"message", "asctime", "correlation_id", "service", "taskName"}
    )

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)-7s %(name)s [%(correlation_id)s] %(message)s"
        )

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {k: v for k, v in record.__dict__.items() if k not in self._standard}
        if extras:
            line += " " + " ".join(f"{k}={v!r}" for k, v in sorted(extras.items()))
        return line


def json_formatter() -> logging.Formatter:
    """One JSON object a line: time, level, logger, message, context and extras."""
    return JsonFormatter(
        "%(levelname)s %(name)s %(message)s %(correlation_id)s %(service)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
    )


def configure_logging(
    service: str,
    *,
    log_format: str = "json",
    level: str | int = "INFO",
    stream: Any = None,
) -> None:
    """Send the root logger's records to ``stream`` (stderr) in the chosen format.

    Call once at process start, from an entry point; libraries only get loggers.
    """
    global _service_name
    _service_name = service

    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(json_formatter() if log_format == "json" else TextFormatter())

    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)

    # uvicorn's own access log would duplicate the request log the middleware writes.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
