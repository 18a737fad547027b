"""The mail catcher, through real SMTP conversations (smtplib) and its real HTTP page.

Every test starts its own catcher on free loopback ports with a fresh folder, so the
tests can run side by side and leave nothing behind.
"""

from __future__ import annotations

import email
import email.policy
import os
import signal
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from devstack.mailbox import MailCatcherError, MailStore
from devstack.smtp import FaultPlan, FaultSettingError, MailCatcher

SENDER = "alerts@send-demo.example.org"
COORDINATOR = "alex.example@send-demo.example.org"
MANAGER = "casey.example@send-demo.example.org"


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[MailCatcher]:
    with MailCatcher("127.0.0.1", 0, tmp_path / "mail", http_port=0) as running:
        yield running


@pytest.fixture
def web(catcher: MailCatcher) -> Iterator[httpx.Client]:
    assert catcher.http_url is not None
    with httpx.Client(base_url=catcher.http_url, timeout=10) as client:
        yield client


def alert(
    subject: str = "Decision due in 5 working days: case C-12345678",
    message_id: str = "<alert-1@send-demo.example.org>",
    to: str = COORDINATOR,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message["X-Alert-Id"] = "clock-decision-approaching-5"
    message.set_content(
        "The decision whether to assess is due on Mon 17 Feb 2025 "
        "(SEND Regulations 2014, reg 5(1)).\n"
    )
    return message


def send(catcher: MailCatcher, message: EmailMessage) -> None:
    with smtplib.SMTP(catcher.host, catcher.port, timeout=10) as client:
        client.send_message(message)


# Receiving and keeping


def test_a_message_is_kept_as_an_eml_file_with_its_headers(
    catcher: MailCatcher,
) -> None:
    send(catcher, alert())

    files = sorted(catcher.store.directory.glob("*.eml"))
    assert len(files) == 1
    kept = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert kept["Message-ID"] == "<alert-1@send-demo.example.org>"
    assert kept["X-Alert-Id"] == "clock-decision-approaching-5"
    assert kept["Subject"] == "Decision due in 5 working days: case C-12345678"
    assert kept["Return-Path"] == f"<{SENDER}>"
    assert kept["X-Envelope-To"] == f"<{COORDINATOR}>"
    body = kept.get_body()
    assert body is not None
    assert "Mon 17 Feb 2025" in body.get_content()


def test_the_json_listing_shows_each_message(
    catcher: MailCatcher, web: httpx.Client
) -> None:
    send(catcher, alert())

    listing = web.get("/api/messages").json()

    assert listing["count"] == 1
    (shown,) = listing["messages"]
    assert shown["message_id"] == "<alert-1@send-demo.example.org>"
    assert shown["from"] == SENDER
    assert shown["to"] == COORDINATOR
    assert shown["envelope_to"] == [COORDINATOR]
    assert shown["subject"].startswith("Decision due in 5 working days")
    assert Path(shown["path"]).is_file()
    text = web.get(shown["text_url"])
    assert text.headers["content-type"].startswith("text/plain")
    assert "reg 5(1)" in text.text
    raw = web.get(shown["raw_url"])
    assert raw.headers["content-type"] == "message/rfc822"
    assert b"Message-ID: <alert-1@send-demo.example.org>" in raw.content


def test_the_listing_filters_by_recipient_and_message_id(
    catcher: MailCatcher, web: httpx.Client
) -> None:
    send(catcher, alert(message_id="<one@x.example.org>", to=COORDINATOR))
    send(catcher, alert(message_id="<two@x.example.org>", to=MANAGER))

    to_manager = web.get("/api/messages", params={"to": MANAGER}).json()
    by_id = web.get("/api/messages", params={"message_id": "one@x.example.org"}).json()

    assert [m["message_id"] for m in to_manager["messages"]] == ["<two@x.example.org>"]
    assert [m["to"] for m in by_id["messages"]] == [COORDINATOR]


def test_file_names_sort_in_arrival_order(catcher: MailCatcher) -> None:
    for number in range(1, 6):
        send(catcher, alert(subject=f"alert {number}", message_id=f"<{number}@x.test>"))

    names = sorted(p.name for p in catcher.store.directory.glob("*.eml"))
    subjects = [
        email.message_from_bytes((catcher.store.directory / name).read_bytes())[
            "Subject"
        ]
        for name in names
    ]

    assert subjects == [f"alert {number}" for number in range(1, 6)]


def test_non_ascii_subjects_are_listed_decoded_and_the_page_escapes_them(
    catcher: MailCatcher, web: httpx.Client
) -> None:
    send(catcher, alert(subject="Révision <b>due</b> for Zoë"))

    listed = web.get("/api/messages").json()["messages"][0]
    page = web.get("/").text

    assert listed["subject"] == "Révision <b>due</b> for Zoë"
    assert "Révision &lt;b&gt;due&lt;/b&gt; for Zoë" in page
    assert "<b>due</b>" not in page


def test_a_restarted_catcher_lists_what_it_kept_before(tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    with MailCatcher(port=0, maildir=folder) as first:
        send(first, alert(message_id="<before@x.test>"))

    with MailCatcher(port=0, maildir=folder) as second:
        send(second, alert(message_id="<after@x.test>"))
        kept = [m.message_id for m in second.messages()]

    assert kept == ["<before@x.test>", "<after@x.test>"]
    assert len({m.id for m in MailStore(folder).messages()}) == 2


def test_clearing_deletes_the_files(catcher: MailCatcher, web: httpx.Client) -> None:
    send(catcher, alert())

    web.delete("/api/messages")

    assert web.get("/api/messages").json()["count"] == 0
    assert list(catcher.store.directory.glob("*.eml")) == []


def test_wait_for_messages_returns_once_they_arrive(catcher: MailCatcher) -> None:
    send(catcher, alert(message_id="<a@x.test>"))
    send(catcher, alert(message_id="<b@x.test>"))

    arrived = catcher.wait_for_messages(2, timeout=10)

    assert [m.message_id for m in arrived] == ["<a@x.test>", "<b@x.test>"]


# Failures on demand


def test_the_next_messages_get_a_temporary_451_then_one_is_accepted(
    catcher: MailCatcher,
) -> None:
    catcher.faults.fail_next(2, code=451)
    codes = []

    for _ in range(3):
        try:
            send(catcher, alert())
            codes.append(250)
        except smtplib.SMTPDataError as error:
            codes.append(error.smtp_code)

    assert codes == [451, 451, 250]
    assert len(catcher.messages()) == 1
    refused = catcher.rejections()
    assert [(r.stage, r.code) for r in refused] == [("DATA", 451), ("DATA", 451)]
    # A retry that keeps its Message-ID can be recognised by the receiving system.
    assert {r.message_id for r in refused} == {"<alert-1@send-demo.example.org>"}


def test_a_permanent_failure_of_a_message_is_a_5xx(catcher: MailCatcher) -> None:
    catcher.faults.fail_next(1, code=554)

    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(catcher, alert())

    assert refused.value.smtp_code == 554
    assert catcher.messages() == []


def test_a_rejected_recipient_gets_550_and_others_still_get_the_message(
    catcher: MailCatcher,
) -> None:
    catcher.faults.reject_recipient(MANAGER, code=550)

    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(catcher, alert(to=MANAGER))
    with smtplib.SMTP(catcher.host, catcher.port, timeout=10) as client:
        partly = client.sendmail(SENDER, [COORDINATOR, MANAGER], alert().as_bytes())

    assert refused.value.recipients[MANAGER][0] == 550
    assert partly[MANAGER][0] == 550
    (kept,) = catcher.messages()
    assert kept.envelope_to == (COORDINATOR,)


def test_a_recipient_can_be_refused_temporarily_a_number_of_times(
    catcher: MailCatcher,
) -> None:
    catcher.faults.reject_recipient(COORDINATOR, code=450, count=1)

    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(catcher, alert())
    send(catcher, alert())

    assert refused.value.recipients[COORDINATOR][0] == 450
    assert len(catcher.messages()) == 1


def test_faults_are_set_and_cleared_over_http(
    catcher: MailCatcher, web: httpx.Client
) -> None:
    web.post("/api/faults/fail-next", json={"count": 1, "code": 451}).raise_for_status()
    web.post("/api/faults/reject", json={"address": MANAGER}).raise_for_status()
    plan = web.get("/api/faults").json()

    with pytest.raises(smtplib.SMTPDataError) as temporary:
        send(catcher, alert())
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        send(catcher, alert(to=MANAGER))
    web.delete("/api/faults").raise_for_status()
    send(catcher, alert(to=MANAGER))

    assert plan == {
        "fail_next": [451],
        "reject": [{"address": MANAGER, "code": 550, "count": None}],
    }
    assert temporary.value.smtp_code == 451
    rejections = web.get("/api/rejections").json()["rejections"]
    assert [(r["stage"], r["code"]) for r in rejections] == [
        ("DATA", 451),
        ("RCPT", 550),
    ]
    assert len(catcher.messages()) == 1


def test_a_fault_with_a_success_code_is_refused_with_a_problem(
    web: httpx.Client,
) -> None:
    answer = web.post("/api/faults/fail-next", json={"count": 1, "code": 250})

    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert "4xx" in answer.json()["detail"]


def test_fault_codes_are_checked_in_python_too() -> None:
    plan = FaultPlan()

    with pytest.raises(FaultSettingError):
        plan.fail_next(1, code=250)
    with pytest.raises(FaultSettingError):
        plan.reject_recipient("not-an-address")


def test_an_unknown_message_is_a_404(web: httpx.Client) -> None:
    assert web.get("/messages/20240101T000000.000000Z-000001").status_code == 404
    assert web.get("/messages/..%2F..%2Fetc%2Fpasswd").status_code == 404


# Where it listens


def test_it_refuses_to_listen_beyond_loopback(tmp_path: Path) -> None:
    with pytest.raises(MailCatcherError, match="loopback"):
        MailCatcher("0.0.0.0", 0, tmp_path)  # noqa: S104 - the address being refused


def test_a_port_in_use_is_a_clear_error(catcher: MailCatcher, tmp_path: Path) -> None:
    second = MailCatcher("127.0.0.1", catcher.port, tmp_path / "other")

    with pytest.raises(MailCatcherError, match="choose another port"):
        second.start()


def test_the_command_line_serves_until_terminated(tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devstack.smtp",
            "--port",
            "0",
            "--http-port",
            "0",
            "--dir",
            str(folder),
            "--fail-next",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        port = int(banner.split("SMTP on 127.0.0.1:")[1].split(",")[0])
        url = banner.split("page at ")[1].strip()

        with (
            pytest.raises(smtplib.SMTPDataError) as first,
            smtplib.SMTP("127.0.0.1", port, timeout=10) as client,
        ):
            client.send_message(alert())
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.send_message(alert())
        listing = httpx.get(f"{url}api/messages", timeout=10).json()
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)

    assert first.value.smtp_code == 451
    assert listing["count"] == 1
    assert len(list(folder.glob("*.eml"))) == 1
    assert code == 0
