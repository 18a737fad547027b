"""Real servers for notify's channel tests: the mail catcher, the local GOV.UK Notify
stand-in, and notify's own API served over HTTP (for Notify's callbacks).

``wired`` builds a whole notify runtime on a real SQLite file (or the ``database_url``
given) whose SMTP provider is the mail catcher and whose GOV.UK Notify provider is the
stand-in, reached through the official client; the clock is the test's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from devstack.mailbox import StoredMessage
from devstack.notify_stub import (
    DEFAULT_API_KEY,
    DEFAULT_EMAIL_TEMPLATE_ID,
    DEFAULT_SMS_TEMPLATE_ID,
    NotifyStub,
)
from devstack.smtp import MailCatcher
from notify.bootstrap import NotifyRuntime, build_runtime
from notify.settings import NotifySettings

CALLBACK_TOKEN = "callback-token-for-tests-7f3a9c"
LINK_BASE = "https://send.council.example/cases"


def settings_for(
    tmp_path: Path, catcher: MailCatcher, stub: NotifyStub | None, **changes: Any
) -> NotifySettings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'notify.db'}",
        "directory_csv": None,
        "smtp_host": "127.0.0.1",
        "smtp_port": catcher.port,
        "smtp_timeout_seconds": 10,
        "from_address": "send-alerts@council.example",
        "retry_base_seconds": 10,
        "retry_cap_seconds": 60,
        "max_attempts": 4,
        "case_link_base": LINK_BASE,
        "govuk_callback_token": CALLBACK_TOKEN,
        "govuk_timeout_seconds": 10,
    }
    if stub is not None:
        values.update(
            govuk_api_key=DEFAULT_API_KEY,
            govuk_base_url=stub.base_url,
            govuk_email_template_id=DEFAULT_EMAIL_TEMPLATE_ID,
            govuk_sms_template_id=DEFAULT_SMS_TEMPLATE_ID,
        )
    values.update(changes)
    return NotifySettings(**values)


@contextmanager
def wired(
    tmp_path: Path,
    catcher: MailCatcher,
    stub: NotifyStub | None,
    clock: Callable[[], datetime],
    **changes: Any,
) -> Iterator[NotifyRuntime]:
    runtime = build_runtime(settings_for(tmp_path, catcher, stub, **changes), now=clock)
    try:
        yield runtime
    finally:
        runtime.db.close()


class ApiServer:
    """A FastAPI app served by uvicorn on a thread, on a loopback port."""

    def __init__(self, app: FastAPI, port: int) -> None:
        self.port = port
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=port,
                log_config=None,
                access_log=False,
                lifespan="off",
            )
        )
        self._thread = threading.Thread(
            target=self.server.run, name="notify-api-under-test", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ApiServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the API server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(30)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def text_of(catcher: MailCatcher, message: StoredMessage) -> str:
    """A received email as a person reads it: its main headers, then its body."""
    return catcher.store.text(message.id)
