"""The local GOV.UK Notify server answers the official client as Notify does: its JWT
rules, its validation and error shapes, search by reference, callbacks; and its
command line serves until SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import jwt
import pytest
from notifications_python_client.errors import HTTPError
from notifications_python_client.notifications import NotificationsAPIClient

from devstack.kafka_config import free_port
from devstack.notify_stub import (
    DEFAULT_API_KEY,
    DEFAULT_EMAIL_TEMPLATE_ID,
    DEFAULT_SECRET,
    DEFAULT_SERVICE_ID,
    DEFAULT_SMS_TEMPLATE_ID,
    NotifyStub,
    NotifyStubError,
)


@pytest.fixture
def stub() -> Iterator[NotifyStub]:
    with NotifyStub(deliver_after_s=0.05) as running:
        yield running


@pytest.fixture
def client(stub: NotifyStub) -> NotificationsAPIClient:
    return NotificationsAPIClient(DEFAULT_API_KEY, base_url=stub.base_url, timeout=10)


def error_of(call: object) -> tuple[int, list[dict[str, str]]]:
    assert callable(call)
    with pytest.raises(HTTPError) as raised:
        call()
    message = raised.value.message
    assert isinstance(message, list)
    return raised.value.status_code, message


def token(
    *, secret: str = DEFAULT_SECRET, iat: float | None = None, **claims: object
) -> str:
    payload = {"iss": DEFAULT_SERVICE_ID, "iat": int(iat or time.time()), **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


def test_the_official_client_sends_and_finds_messages(
    stub: NotifyStub, client: NotificationsAPIClient
) -> None:
    sent = client.send_sms_notification(
        "07700 900123",
        DEFAULT_SMS_TEMPLATE_ID,
        personalisation={"body": "Annual review due"},
        reference="alert-1",
    )
    client.send_email_notification(
        "a.b@council.example",
        DEFAULT_EMAIL_TEMPLATE_ID,
        personalisation={"subject": "S", "body": "B"},
        reference="alert-2",
    )

    assert sent["content"] == {"body": "Annual review due", "from_number": "SEND"}
    found = client.get_all_notifications(reference="alert-1")["notifications"]
    assert [(n["id"], n["phone_number"]) for n in found] == [
        (sent["id"], "+447700900123")
    ]
    assert client.get_all_notifications(reference="nothing")["notifications"] == []
    assert (
        client.get_all_notifications(template_type="email")["notifications"][0][
            "subject"
        ]
        == "S"
    )
    time.sleep(0.3)
    assert client.get_notification_by_id(sent["id"])["status"] == "delivered"


def test_tokens_are_checked_as_notify_checks_them(stub: NotifyStub) -> None:
    url = f"{stub.base_url}/v2/notifications"

    def answer(header: str | None) -> tuple[int, str]:
        headers = {"Authorization": header} if header else {}
        response = httpx.get(url, headers=headers)
        body = response.json()
        assert body["status_code"] == response.status_code
        [error] = body["errors"]
        assert error["error"] == "AuthError"
        return response.status_code, error["message"]

    assert answer(None)[0] == 401
    assert answer("Basic abc")[0] == 401
    assert answer(f"Bearer {token(iat=time.time() - 31)}") == (
        403,
        "Error: Your system clock must be accurate to within 30 seconds",
    )
    assert answer(f"Bearer {token(iat=time.time() + 31)}")[0] == 403
    assert answer(f"Bearer {token(secret='0' * 36)}") == (
        403,
        "Invalid token: API key not found",
    )
    other_service = jwt.encode(
        {"iss": "7a1f0b3c-0000-4000-8000-000000000000", "iat": int(time.time())},
        DEFAULT_SECRET,
        algorithm="HS256",
    )
    assert answer(f"Bearer {other_service}")[1] == "Invalid token: service not found"
    no_issuer = jwt.encode({"iat": int(time.time())}, DEFAULT_SECRET, algorithm="HS256")
    assert answer(f"Bearer {no_issuer}")[1] == "Invalid token: iss field not provided"
    wrong_alg = jwt.encode(
        {"iss": DEFAULT_SERVICE_ID, "iat": int(time.time())},
        DEFAULT_SECRET,
        algorithm="HS512",
    )
    assert (
        answer(f"Bearer {wrong_alg}")[1] == "Invalid token: algorithm used is not HS256"
    )
    ok = httpx.get(url, headers={"Authorization": f"Bearer {token()}"})
    assert ok.status_code == 200


def test_sends_are_validated_with_notify_s_errors(
    client: NotificationsAPIClient,
) -> None:
    body = {"body": "x"}
    cases = [
        (
            lambda: client.send_sms_notification(
                "020 7946 0000", DEFAULT_SMS_TEMPLATE_ID, body
            ),
            ("ValidationError", "phone_number Not a UK mobile number"),
        ),
        (
            lambda: client.send_sms_notification(
                "07700 9001", DEFAULT_SMS_TEMPLATE_ID, body
            ),
            ("ValidationError", "phone_number Not enough digits"),
        ),
        (
            lambda: client.send_email_notification(
                "nope", DEFAULT_EMAIL_TEMPLATE_ID, body
            ),
            ("ValidationError", "email_address Not a valid email address"),
        ),
        (
            lambda: client.send_sms_notification("07700900123", "not-a-uuid", body),
            ("ValidationError", "template_id is not a valid UUID"),
        ),
        (
            lambda: client.send_sms_notification(
                "07700900123", "8c3d1e2f-0000-4000-8000-000000000000", body
            ),
            ("BadRequestError", "Template not found"),
        ),
        (
            lambda: client.send_sms_notification(
                "07700900123", DEFAULT_SMS_TEMPLATE_ID
            ),
            ("BadRequestError", "Missing personalisation: body"),
        ),
        (
            lambda: client.send_sms_notification(
                "07700900123", DEFAULT_SMS_TEMPLATE_ID, body, reference="r" * 1001
            ),
            (
                "ValidationError",
                "reference must be a string of at most 1000 characters",
            ),
        ),
    ]
    for call, (kind, message) in cases:
        status, errors = error_of(call)
        assert (status, errors) == (400, [{"error": kind, "message": message}])
    status, errors = error_of(lambda: client.post("/v2/notifications/sms", {"x": 1}))
    assert status == 400
    assert (
        "Additional properties are not allowed (x was unexpected)"
        in errors[0]["message"]
    )
    status, errors = error_of(
        lambda: client.get_notification_by_id("2b1c0d9e-0000-4000-8000-000000000000")
    )
    assert (status, errors[0]["error"]) == (404, "NoResultFound")


def test_faults_answer_as_notify_fails(
    stub: NotifyStub, client: NotificationsAPIClient
) -> None:
    stub.fail_next(1, 429)
    stub.fail_next(1, 500)

    def send() -> object:
        return client.send_sms_notification(
            "07700900123", DEFAULT_SMS_TEMPLATE_ID, {"body": "x"}
        )

    assert error_of(send)[1][0]["error"] == "RateLimitError"
    assert error_of(send)[1] == [
        {"error": "Exception", "message": "Internal server error"}
    ]
    send()
    stub.reject("07700900123")
    assert error_of(send)[0] == 400
    stub.clear_faults()
    send()
    assert len(stub.notifications()) == 2
    with pytest.raises(NotifyStubError, match="error status"):
        stub.fail_next(1, 200)


def test_it_binds_and_calls_back_loopback_only() -> None:
    with pytest.raises(NotifyStubError, match="loopback"):
        NotifyStub(host="0.0.0.0")  # noqa: S104
    with pytest.raises(NotifyStubError, match="loopback"):
        NotifyStub(callback_url="https://callbacks.council.example/notify")


def test_the_command_line_serves_until_sigterm() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.notify_stub", "--port", str(port)],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        line = process.stdout.readline() if process.stdout else b""
        while line and b"notify stub ready" not in line:
            line = process.stdout.readline() if process.stdout else b""
        assert f"http://127.0.0.1:{port}".encode() in line
        client = NotificationsAPIClient(
            DEFAULT_API_KEY, base_url=f"http://127.0.0.1:{port}"
        )
        sent = client.send_sms_notification(
            "07700900123", DEFAULT_SMS_TEMPLATE_ID, {"body": "x"}, reference="r-1"
        )
        assert sent["reference"] == "r-1"
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    assert code == 0
