"""A local SMTP server that keeps every message it receives, for the demo and the tests.

``MailCatcher`` is a real SMTP server (aiosmtpd) on loopback. Each accepted message is
written to a folder as an ``.eml`` file (see ``devstack.mailbox``), listed on a small
HTML page, viewable as text, and served as JSON at ``/api/messages`` so a test can poll
for it. A sender's retry and failure paths are tested against it with a ``FaultPlan``:
answer a temporary (4xx) or permanent (5xx) failure to the next N messages, or refuse
a given recipient at ``RCPT TO``. Faults are set from Python, from the command line, or
over HTTP (``POST /api/faults/fail-next``, ``POST /api/faults/reject``,
``DELETE /api/faults``); every refused attempt is recorded with its ``Message-ID`` at
``/api/rejections``, so a test can check that a retry carried the same id.

Run it alone with::

    python -m devstack.smtp --port 1025 --dir .run/mail --http-port 8025

It binds only loopback addresses: the fault controls and the mail are unauthenticated,
so nothing else may reach them. It offers no STARTTLS and no AUTH; a sender configured
to log in must be told not to when it talks to the catcher.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import html
import ipaddress
import json
import logging
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.smtp import SMTP, Envelope, Session

from devstack.mailbox import MailCatcherError, MailStore, StoredMessage, is_message_id
from sendkit.logging import configure_logging

log = logging.getLogger(__name__)

DEFAULT_SMTP_PORT = 1025
DEFAULT_HTTP_PORT = 8025
DEFAULT_MAIL_DIR = Path(".run/mail")
SERVER_HOSTNAME = "mailcatcher.localhost"
_START_TIMEOUT_S = 10.0


class FaultSettingError(MailCatcherError, ValueError):
    """A fault was asked for with a reply code the catcher cannot give."""


def _check_code(code: int) -> int:
    # 421 means "closing the connection", which the catcher does not do.
    if not (400 <= code <= 599) or code == 421:
        raise FaultSettingError(
            f"reply code {code} is not a failure the catcher can give: use a 4xx code "
            "(temporary, such as 451) or a 5xx code (permanent, such as 550)"
        )
    return code


def _message_reply(code: int) -> str:
    if code < 500:
        return f"{code} 4.3.0 Temporary failure (mail catcher fault plan); try later"
    return f"{code} 5.3.0 Message refused (mail catcher fault plan)"


def _recipient_reply(code: int, address: str) -> str:
    if code < 500:
        return f"{code} 4.2.0 <{address}>: mailbox busy (mail catcher fault plan)"
    return f"{code} 5.1.1 <{address}>: mailbox unavailable (mail catcher fault plan)"


@dataclass(slots=True)
class _RecipientRule:
    code: int
    remaining: int | None


@dataclass(frozen=True, slots=True)
class Rejection:
    """One attempt the catcher refused because of its fault plan."""

    at: datetime
    stage: str
    code: int
    reply: str
    envelope_from: str
    recipients: tuple[str, ...]
    message_id: str

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "stage": self.stage,
            "code": self.code,
            "reply": self.reply,
            "envelope_from": self.envelope_from,
            "recipients": list(self.recipients),
            "message_id": self.message_id,
        }


class FaultPlan:
    """The failures the catcher answers instead of accepting. Thread-safe.

    ``fail_next(n, code)`` refuses the next ``n`` messages at the end of ``DATA`` (calls
    queue up: ``fail_next(2)`` then ``fail_next(1, 554)`` refuses two with 451, then one
    with 554). ``reject_recipient(address, code, count)`` refuses that address at
    ``RCPT TO``, ``count`` times or, with ``count=None``, until cleared.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._message_codes: deque[int] = deque()
        self._recipients: dict[str, _RecipientRule] = {}

    def fail_next(self, count: int, code: int = 451) -> None:
        if count < 0:
            raise FaultSettingError(f"count must be 0 or more, not {count}")
        _check_code(code)
        with self._lock:
            self._message_codes.extend([code] * count)

    def reject_recipient(
        self, address: str, code: int = 550, count: int | None = None
    ) -> None:
        if count is not None and count < 1:
            raise FaultSettingError(
                f"count must be 1 or more (or None for always), not {count}"
            )
        _check_code(code)
        key = address.strip().strip("<>").lower()
        if "@" not in key:
            raise FaultSettingError(f"{address!r} is not an email address")
        with self._lock:
            self._recipients[key] = _RecipientRule(code, count)

    def clear(self) -> None:
        with self._lock:
            self._message_codes.clear()
            self._recipients.clear()

    def take_message_failure(self) -> int | None:
        """The code to refuse the message now being received with, if any."""
        with self._lock:
            return self._message_codes.popleft() if self._message_codes else None

    def take_recipient_failure(self, address: str) -> int | None:
        """The code to refuse ``address`` with at ``RCPT TO``, if any."""
        key = address.strip().strip("<>").lower()
        with self._lock:
            rule = self._recipients.get(key)
            if rule is None:
                return None
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining == 0:
                    del self._recipients[key]
            return rule.code

    def as_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "fail_next": list(self._message_codes),
                "reject": [
                    {"address": address, "code": rule.code, "count": rule.remaining}
                    for address, rule in sorted(self._recipients.items())
                ],
            }


def _message_id_of(content: bytes) -> str:
    headers = email.message_from_bytes(content, policy=email.policy.compat32)
    return str(headers.get("Message-ID", "")).strip()


class _CatchingHandler:
    """The aiosmtpd handler: apply the fault plan, otherwise store the message."""

    def __init__(
        self, store: MailStore, faults: FaultPlan, record: Callable[[Rejection], None]
    ) -> None:
        self.store = store
        self.faults = faults
        self.record = record

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        code = self.faults.take_recipient_failure(address)
        if code is not None:
            reply = _recipient_reply(code, address)
            self.record(
                Rejection(
                    at=datetime.now(UTC),
                    stage="RCPT",
                    code=code,
                    reply=reply,
                    envelope_from=envelope.mail_from or "",
                    recipients=(address,),
                    message_id="",
                )
            )
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        code = self.faults.take_message_failure()
        if code is not None:
            reply = _message_reply(code)
            self.record(
                Rejection(
                    at=datetime.now(UTC),
                    stage="DATA",
                    code=code,
                    reply=reply,
                    envelope_from=envelope.mail_from or "",
                    recipients=tuple(envelope.rcpt_tos),
                    message_id=_message_id_of(content),
                )
            )
            return reply

        stored = self.store.save(content, envelope.mail_from or "", envelope.rcpt_tos)
        log.info(
            "mail stored",
            extra={
                "message_file": str(stored.path),
                "message_id": stored.message_id,
                "recipients": list(stored.envelope_to),
            },
        )
        return f"250 2.0.0 OK: stored as {stored.id}"


def _require_loopback(host: str) -> str:
    if host == "localhost":
        return host
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise MailCatcherError(
            f"the mail catcher binds only loopback addresses, not {host!r}: use "
            "127.0.0.1 (its mail and fault controls have no authentication)"
        )
    return host


class MailCatcher:
    """An SMTP server on loopback that stores every message it accepts.

    ``port=0`` (and ``http_port=0``) pick free ports, read back from ``port`` and
    ``http_port`` after ``start()``; ``http_port=None`` runs no web page. Use it as a
    context manager, or call ``start()`` and ``stop()``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_SMTP_PORT,
        maildir: Path | str = DEFAULT_MAIL_DIR,
        *,
        http_port: int | None = None,
        faults: FaultPlan | None = None,
    ) -> None:
        self.host = _require_loopback(host)
        self.port = port
        self.http_port = http_port
        self.store = MailStore(maildir)
        self.faults = faults or FaultPlan()
        self._rejections: list[Rejection] = []
        self._rejections_lock = threading.Lock()
        self._handler = _CatchingHandler(
            self.store, self.faults, self._record_rejection
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._smtp_thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: OSError | None = None
        self._http: _CatcherHTTPServer | None = None
        self._http_thread: threading.Thread | None = None

    # Starting and stopping

    def start(self) -> MailCatcher:
        if self._smtp_thread is not None:
            return self
        self._ready.clear()
        self._start_error = None
        self._smtp_thread = threading.Thread(
            target=self._serve_smtp, name="mailcatcher-smtp", daemon=True
        )
        self._smtp_thread.start()
        if not self._ready.wait(_START_TIMEOUT_S):
            raise MailCatcherError("the SMTP server did not start within 10 seconds")
        if self._start_error is not None:
            self._smtp_thread.join()
            self._smtp_thread = None
            raise MailCatcherError(
                f"cannot listen for SMTP on {self.host}:{self.port}: "
                f"{self._start_error}; choose another port (or 0 for any free one)"
            ) from self._start_error

        if self.http_port is not None:
            try:
                self._http = _CatcherHTTPServer((self.host, self.http_port), self)
            except OSError as error:
                self.stop()
                raise MailCatcherError(
                    f"cannot serve the mail page on {self.host}:{self.http_port}: "
                    f"{error}; choose another --http-port (or 0 for any free one)"
                ) from error
            self.http_port = self._http.server_address[1]
            self._http_thread = threading.Thread(
                target=self._http.serve_forever, name="mailcatcher-http", daemon=True
            )
            self._http_thread.start()

        log.info(
            "mail catcher started",
            extra={
                "smtp": f"{self.host}:{self.port}",
                "http_url": self.http_url,
                "maildir": str(self.store.directory),
            },
        )
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            if self._http_thread is not None:
                self._http_thread.join()
            self._http = None
            self._http_thread = None
        if self._smtp_thread is not None:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._smtp_thread.join()
            self._smtp_thread = None
            log.info("mail catcher stopped", extra={"smtp": f"{self.host}:{self.port}"})

    def __enter__(self) -> MailCatcher:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve_smtp(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop

        def protocol() -> SMTP:
            return SMTP(
                self._handler,
                hostname=SERVER_HOSTNAME,
                ident="SEND devstack mail catcher",
                enable_SMTPUTF8=True,
                loop=loop,
            )

        try:
            server = loop.run_until_complete(
                loop.create_server(protocol, host=self.host, port=self.port)
            )
        except OSError as error:
            self._start_error = error
            loop.close()
            self._loop = None
            self._ready.set()
            return
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            loop.run_until_complete(server.wait_closed())
            # Sessions still open when the catcher stops are cut off, not awaited.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(
                    asyncio.gather(*pending, return_exceptions=True)
                )
            loop.close()
            self._loop = None

    # What it received

    @property
    def http_url(self) -> str | None:
        if self._http is None:
            return None
        return f"http://{self.host}:{self.http_port}/"

    def messages(self) -> list[StoredMessage]:
        return self.store.messages()

    def wait_for_messages(
        self, count: int, timeout: float = 10.0
    ) -> list[StoredMessage]:
        """The stored messages once there are ``count`` of them (or when time is up)."""
        return self.store.wait_for(count, timeout)

    def rejections(self) -> list[Rejection]:
        with self._rejections_lock:
            return list(self._rejections)

    def clear(self) -> None:
        """Forget every stored message and refused attempt (the fault plan stays)."""
        self.store.clear()
        with self._rejections_lock:
            self._rejections.clear()

    def _record_rejection(self, rejection: Rejection) -> None:
        with self._rejections_lock:
            self._rejections.append(rejection)
        log.info(
            "mail refused by fault plan",
            extra={
                "stage": rejection.stage,
                "code": rejection.code,
                "message_id": rejection.message_id,
                "recipients": list(rejection.recipients),
            },
        )


# The web page and JSON API


class _CatcherHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], catcher: MailCatcher) -> None:
        self.catcher = catcher
        super().__init__(address, _CatcherRequestHandler)


class _HTTPProblem(Exception):
    def __init__(self, status: HTTPStatus, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _matches(message: StoredMessage, query: dict[str, list[str]]) -> bool:
    for to in query.get("to", []):
        wanted = to.lower()
        if wanted not in (a.lower() for a in message.envelope_to) and (
            wanted not in message.to_header.lower()
        ):
            return False
    for message_id in query.get("message_id", []):
        if message.message_id.strip("<>") != message_id.strip("<>"):
            return False
    return all(s.lower() in message.subject.lower() for s in query.get("subject", []))


def _int_field(body: dict[str, Any], name: str, default: int | None) -> int | None:
    value = body.get(name, default)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise _HTTPProblem(HTTPStatus.BAD_REQUEST, f"{name!r} must be a whole number")


class _CatcherRequestHandler(BaseHTTPRequestHandler):
    server: _CatcherHTTPServer
    server_version = "SENDMailCatcher/1"

    @property
    def catcher(self) -> MailCatcher:
        return self.server.catcher

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("mail page request", extra={"request": format % args})

    # Dispatch

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        query = parse_qs(url.query)
        try:
            self._route(method, parts, query)
        except _HTTPProblem as problem:
            self._send_problem(problem.status, problem.detail)
        except MailCatcherError as error:
            status = (
                HTTPStatus.BAD_REQUEST
                if isinstance(error, FaultSettingError)
                else HTTPStatus.NOT_FOUND
            )
            self._send_problem(status, str(error))

    def _route(
        self, method: str, parts: list[str], query: dict[str, list[str]]
    ) -> None:
        match method, parts:
            case "GET", []:
                self._send(
                    HTTPStatus.OK, "text/html; charset=utf-8", self._index_page()
                )
            case "GET", ["healthz"]:
                self._send_json({"status": "ok"})
            case "GET", ["messages", name] if name.endswith(".eml"):
                raw = self.catcher.store.raw(
                    self._message_key(name.removesuffix(".eml"))
                )
                self._send(HTTPStatus.OK, "message/rfc822", raw)
            case "GET", ["messages", name]:
                text = self.catcher.store.text(self._message_key(name))
                self._send(HTTPStatus.OK, "text/plain; charset=utf-8", text.encode())
            case "GET", ["api", "messages"]:
                listing = [
                    self._message_json(m)
                    for m in self.catcher.messages()
                    if _matches(m, query)
                ]
                self._send_json({"count": len(listing), "messages": listing})
            case "GET", ["api", "messages", name]:
                key = self._message_key(name)
                detail = self._message_json(self.catcher.store.get(key))
                detail["text"] = self.catcher.store.text(key)
                self._send_json(detail)
            case "DELETE", ["api", "messages"]:
                self.catcher.clear()
                self._send_json({"deleted": True})
            case "GET", ["api", "rejections"]:
                rejected = [r.as_json() for r in self.catcher.rejections()]
                self._send_json({"count": len(rejected), "rejections": rejected})
            case "GET", ["api", "faults"]:
                self._send_json(self.catcher.faults.as_json())
            case "POST", ["api", "faults", "fail-next"]:
                body = self._read_json()
                count = _int_field(body, "count", 1)
                code = _int_field(body, "code", 451)
                self.catcher.faults.fail_next(
                    1 if count is None else count, 451 if code is None else code
                )
                self._send_json(self.catcher.faults.as_json())
            case "POST", ["api", "faults", "reject"]:
                body = self._read_json()
                address = body.get("address")
                if not isinstance(address, str):
                    raise _HTTPProblem(HTTPStatus.BAD_REQUEST, "'address' is required")
                code = _int_field(body, "code", 550)
                count = _int_field(body, "count", None)
                self.catcher.faults.reject_recipient(
                    address, 550 if code is None else code, count
                )
                self._send_json(self.catcher.faults.as_json())
            case "DELETE", ["api", "faults"]:
                self.catcher.faults.clear()
                self._send_json(self.catcher.faults.as_json())
            case _:
                raise _HTTPProblem(
                    HTTPStatus.NOT_FOUND,
                    f"nothing at {method} {self.path}; see / for the message list",
                )

    # Pieces

    @staticmethod
    def _message_key(name: str) -> str:
        if not is_message_id(name):
            raise _HTTPProblem(HTTPStatus.NOT_FOUND, f"{name!r} is not a message id")
        return name

    def _message_json(self, message: StoredMessage) -> dict[str, Any]:
        listing = message.as_json()
        listing["text_url"] = f"/messages/{message.id}"
        listing["raw_url"] = f"/messages/{message.id}.eml"
        return listing

    def _read_json(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if length == 0:
            return {}
        try:
            body = json.loads(self.rfile.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise _HTTPProblem(
                HTTPStatus.BAD_REQUEST, f"body is not JSON: {error}"
            ) from error
        if not isinstance(body, dict):
            raise _HTTPProblem(HTTPStatus.BAD_REQUEST, "body must be a JSON object")
        return body

    def _index_page(self) -> bytes:
        rows = []
        for message in reversed(self.catcher.messages()):
            rows.append(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td><a href='{}'>{}</a></td>"
                "<td><code>{}</code></td><td><a href='{}'>.eml</a></td></tr>".format(
                    html.escape(message.received_at.strftime("%Y-%m-%d %H:%M:%S UTC")),
                    html.escape(message.from_header or message.envelope_from),
                    html.escape(message.to_header or ", ".join(message.envelope_to)),
                    html.escape(f"/messages/{message.id}", quote=True),
                    html.escape(message.subject or "(no subject)"),
                    html.escape(message.message_id),
                    html.escape(f"/messages/{message.id}.eml", quote=True),
                )
            )
        faults = html.escape(json.dumps(self.catcher.faults.as_json()))
        page = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta http-equiv='refresh' content='10'>"
            "<title>Mail catcher</title><style>"
            "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
            "td,th{border-bottom:1px solid #ccc;padding:.3em .6em;text-align:left}"
            "</style></head><body>"
            f"<h1>Mail catcher</h1><p>{len(rows)} message(s) in "
            f"<code>{html.escape(str(self.catcher.store.directory))}</code>. "
            f"Fault plan: <code>{faults}</code>. JSON: <a href='/api/messages'>"
            "/api/messages</a>.</p><table><tr><th>Received</th><th>From</th><th>To</th>"
            "<th>Subject</th><th>Message-ID</th><th>File</th></tr>"
            + "".join(rows)
            + "</table></body></html>"
        )
        return page.encode()

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, payload: dict[str, Any]) -> None:
        self._send(HTTPStatus.OK, "application/json", json.dumps(payload).encode())

    def _send_problem(self, status: HTTPStatus, detail: str) -> None:
        problem = {
            "type": "about:blank",
            "title": status.phrase,
            "status": int(status),
            "detail": detail,
        }
        self._send(status, "application/problem+json", json.dumps(problem).encode())


# Command line


def _parse_reject(value: str) -> tuple[str, int]:
    address, _, code = value.partition("=")
    try:
        return address, int(code) if code else 550
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"--reject takes ADDRESS or ADDRESS=CODE, such as a@example.org=550, "
            f"not {value!r}"
        ) from error


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.smtp",
        description="A local SMTP server that keeps every message it receives.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=DEFAULT_SMTP_PORT, help="SMTP port")
    parser.add_argument(
        "--dir", type=Path, default=DEFAULT_MAIL_DIR, help="mail folder"
    )
    parser.add_argument(
        "--http-port",
        type=int,
        default=DEFAULT_HTTP_PORT,
        help="port of the message page and JSON API; -1 for none",
    )
    parser.add_argument(
        "--fail-next", type=int, default=0, help="refuse the next N messages"
    )
    parser.add_argument(
        "--fail-code", type=int, default=451, help="the code --fail-next answers"
    )
    parser.add_argument(
        "--reject",
        type=_parse_reject,
        action="append",
        default=[],
        metavar="ADDRESS[=CODE]",
        help="always refuse this recipient at RCPT TO (default code 550); repeatable",
    )
    return parser.parse_args(argv)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {
        sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    configure_logging("mailcatcher", log_format="text")
    faults = FaultPlan()
    try:
        faults.fail_next(args.fail_next, args.fail_code)
        for address, code in args.reject:
            faults.reject_recipient(address, code)
        catcher = MailCatcher(
            args.host,
            args.port,
            args.dir,
            http_port=None if args.http_port < 0 else args.http_port,
            faults=faults,
        ).start()
    except MailCatcherError as error:
        print(f"mail catcher: {error}")
        return 2

    stop = threading.Event()
    with _stop_on_signals(stop):
        print(
            f"mail catcher: SMTP on {catcher.host}:{catcher.port}, "
            f"messages in {catcher.store.directory}, page at {catcher.http_url or '-'}",
            flush=True,
        )
        stop.wait()
    catcher.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
