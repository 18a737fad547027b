"""``make run`` end to end, in its short form: the real command, broker, services, SMTP.

The short form is 5% of the year's requests, each agreed assessment carried through
plans and reviews to the end of the period: the test checks the requests' decision
clocks, every later clock the plan predicts, and the DfE's 20-week and review figures.

``python -m devstack.run --short --exit-after-demo`` runs as a subprocess with free
ports and its own run directory, launching its own Kafka from the jars (the shared
test broker is not used: the demo's clock starts in January 2024, and ticks a shared
broker already holds from other tests would have moved the processor's time past it).
It runs as ``make run`` does by default, until Ctrl-C: once the summary is printed, the
subscriber of ``docs/subscribing.md`` (its kafka-python example, as written) reads every
event of the domain, deadlines and notify topics from the run's broker, and then the
test sends SIGINT. The test then reads what it left: the summary it wrote (with
notify's closing note), the emails in its mail folder, the texts the local GOV.UK
Notify was sent, and ``/proc``, which must hold no process of the run any more.

A second test starts the platform without the demo, sees a request posted over HTTP
arrive on the topic, and stops everything with SIGINT, as Ctrl-C in a terminal does.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from devstack.demo_data import (
    CHILD_FAMILY_NAME,
    DEMO_SENCOS,
    DEMO_STAFF,
    default_period_end,
    generate_caseload,
    planned_clocks,
    planned_timeliness,
)
from devstack.dfe import load_la_figures
from devstack.kafka import repo_root
from devstack.notify_stub import normalise_uk_mobile
from devstack.run import SHORT_SCALE

pytestmark = pytest.mark.kafka

DEMO_TIMEOUT_S = 1200
START_TIMEOUT_S = 300
STOP_TIMEOUT_S = 120
DECISION_BASIS = "SEND Regulations 2014 reg 5(1)-(2)"
LONG_DATE = re.compile(
    r"(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday) \d{1,2} "
    r"(January|February|March|April|May|June|July|August|September|October|"
    r"November|December) 20\d\d"
)
SHOWN_ON_TOPIC = re.compile(
    r"answered 201 for case (?P<case>[0-9a-f-]{36}); read back from "
    r"send\.intake\.events .*ce_type=send\.intake\.RequestReceived\.v1 "
    r"key=(?P<key>[0-9a-f-]{36})"
)
JVM_PID = re.compile(r"Kafka JVM pid (\d+)")
KAFKA_ADDRESS = re.compile(r"^  Kafka +(\S+)", re.MULTILINE)
SUBSCRIBER_TIMEOUT_S = 300
DEMO_TOPICS = (
    "send.intake.events",
    "send.plans.events",
    "send.reviews.events",
    "send.placement.events",
    "send.deadlines.events",
    "send.notify.events",
)


def run_env() -> dict[str, str]:
    env = dict(os.environ)
    # The run must launch its own broker; see the module docstring.
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    env.pop("KAFKA_PORT", None)
    env.pop("KAFKA_RUN_DIR", None)
    return env


def make_run(run_dir: Path, *options: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "devstack.run",
        "--free-ports",
        "--run-dir",
        str(run_dir),
        *options,
    ]


def processes_of(run_dir: Path) -> list[str]:
    """Every live process whose command line or environment names ``run_dir``."""
    marker = str(run_dir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in cmdline or marker in environ:
            shown = cmdline.replace(b"\0", b" ")[:200].decode(errors="replace")
            found.append(f"{entry.name}: {shown}")
    return found


def is_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def read_mail(folder: Path) -> list[EmailMessage]:
    messages = []
    for path in sorted(folder.glob("*.eml")):
        parsed = email.message_from_bytes(
            path.read_bytes(), policy=email.policy.default
        )
        assert isinstance(parsed, EmailMessage)
        messages.append(parsed)
    return messages


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, f"no text part in {message['Subject']}"
    return str(part.get_content())


def check_numbers_add_up(summary: dict[str, Any]) -> None:
    """The summary's arithmetic, redone here rather than trusting its own flags."""
    for row in summary["clocks"]:
        parts = row["met"] + row["late"] + row["cancelled"] + row["overdue"]
        assert row["set"] == parts + row["open"], row
        assert row["exception"] <= row["set"], row


@dataclass(frozen=True)
class Subscribed:
    """What the documented subscriber did with the run's topics."""

    status: int
    stderr: str
    handled: list[str]
    set_aside: list[str]
    on_the_topics: set[str]


def subscribing_example() -> str:
    """The kafka-python example of ``docs/subscribing.md``, as written."""
    text = (repo_root() / "docs" / "subscribing.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- test: kafka-python -->\n```python\n(.*?)\n```", text, re.S)
    assert found is not None, "docs/subscribing.md has no kafka-python example"
    return found.group(1)


def event_ids_on(bootstrap: str) -> set[str]:
    """The ce_id of every record of the demo's topics on the broker at ``bootstrap``."""
    consumer = KafkaConsumer(bootstrap_servers=[bootstrap], enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(topic, number)
            for topic in DEMO_TOPICS
            for number in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        ids: set[str] = set()
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for records in consumer.poll(timeout_ms=1000).values():
                for record in records:
                    headers = dict(record.headers or [])
                    if headers.get("ce_id") is not None:
                        ids.add(headers["ce_id"].decode())
        return ids
    finally:
        consumer.close()


def subscribe(bootstrap: str, folder: Path) -> Subscribed:
    # What is on the topics now; the subscriber, started after, must read it all.
    on_the_topics = event_ids_on(bootstrap)
    script = folder / "subscriber.py"
    script.write_text(subscribing_example(), encoding="utf-8")
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "GROUP_ID": "demo-e2e-subscriber",
        "STOP_WHEN_IDLE_MS": "20000",
    }
    finished = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBSCRIBER_TIMEOUT_S,
        check=False,
    )
    lines = [json.loads(line) for line in finished.stdout.splitlines() if line]
    set_aside = [
        line for line in finished.stderr.splitlines() if line.startswith('{"set_aside"')
    ]
    return Subscribed(
        finished.returncode,
        finished.stderr[-4000:],
        [line["id"] for line in lines if "id" in line],
        set_aside,
        on_the_topics,
    )


@dataclass(frozen=True)
class ShortDemo:
    run_dir: Path
    output: str
    status: int
    subscribed: Subscribed | None


@pytest.fixture(scope="module")
def short_demo_run(tmp_path_factory: pytest.TempPathFactory) -> ShortDemo:
    """One short ``make run``, read by the documented subscriber, then Ctrl-C."""
    run_dir = tmp_path_factory.mktemp("make-run")
    log_path = run_dir.parent / f"{run_dir.name}.out"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            make_run(run_dir, "--short"),
            env=run_env(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    subscribed: Subscribed | None = None
    try:
        deadline = time.monotonic() + DEMO_TIMEOUT_S
        while "press Ctrl-C" not in log_path.read_text():
            if process.poll() is not None:
                break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"make run --short did not finish in {DEMO_TIMEOUT_S} s:\n"
                    f"{log_path.read_text()}"
                )
            time.sleep(1.0)
        address = KAFKA_ADDRESS.search(log_path.read_text())
        if process.poll() is None and address is not None:
            subscribed = subscribe(address.group(1), run_dir.parent)
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        status = process.wait(STOP_TIMEOUT_S)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return ShortDemo(run_dir, log_path.read_text(), status, subscribed)


@pytest.fixture(scope="module")
def short_demo(short_demo_run: ShortDemo) -> tuple[Path, str, int]:
    """The run directory, output and exit status of one short ``make run``."""
    return short_demo_run.run_dir, short_demo_run.output, short_demo_run.status


@pytest.mark.timeout(DEMO_TIMEOUT_S + 120)
def test_the_short_demo_reconciles(short_demo: tuple[Path, str, int]) -> None:
    run_dir, output, status = short_demo
    assert status == 0, output
    summary = json.loads((run_dir / "summary.json").read_text())
    planned = generate_caseload(load_la_figures(), 2024, SHORT_SCALE)

    # Every planned request went in, and its decision clock ended as the plan says.
    assert summary["reconciles"] is True, summary["problems"]
    assert summary["requests"] == len(planned)
    assert summary["assignments"] == len(planned)
    decided = summary["agreed"] + summary["refused"]
    assert decided + summary["withdrawn"] == len(planned)
    check_numbers_add_up(summary)
    decision = next(row for row in summary["clocks"] if row["clock"] == "decision")
    assert decision["set"] == len(planned)
    assert decision["met"] == sum(case.within_time is True for case in planned)
    assert decision["late"] == sum(case.within_time is False for case in planned)
    assert decision["cancelled"] == summary["withdrawn"]
    assert decision["overdue"] == decision["open"] == 0
    assert decision["late"] > 0, "the short caseload should hold late decisions"

    # Each decision clock went overdue exactly when the plan says it should have.
    timeline = summary["timeline"]
    assert timeline["in_time_overdue"] == timeline["late_never_overdue"] == 0
    assert timeline["late_overdue_first"] == decision["late"]

    # The deadlines read API's own counts agree with the topic's.
    assert "agrees" in summary["read_model"], summary["read_model"]

    # The later stages: every clock they start ended as the plan says, plans were
    # issued and reviews decided, and the DfE's figures are the plan's.
    intended = planned_clocks(planned, default_period_end(2024))
    rows = {row["clock"]: row for row in summary["clocks"]}
    for name, row in intended.items():
        counted = {state: rows.get(name, {}).get(state, 0) for state in row}
        assert counted == row, name
    figures = summary["timeliness"]
    expected = planned_timeliness(planned)
    assert figures["plans_issued"] == expected.plans_issued > 0
    assert figures["plans_within_20_weeks"] == expected.plans_within_20_weeks > 0
    assert figures["plans_issued"] > figures["plans_within_20_weeks"]
    assert (
        figures["plans_within_20_weeks_excl_exceptions"]
        == expected.plans_within_20_weeks_excl_exceptions
    )
    assert figures["review_decisions"] == expected.review_decisions > 0
    assert (
        figures["review_decisions_within_4_weeks"]
        == expected.review_decisions_within_4_weeks
    )
    posted = summary["later_posted"]
    assert posted["final_plan"] == expected.plans_issued
    assert posted["review_decided"] == expected.review_decisions
    assert posted["no_plan_notice"] >= 1

    # Every email is accounted for by a NotificationSent event, and the other way (a
    # digest is one email for the alerts it carries, each with its event).
    mail = read_mail(run_dir / "mail")
    assert len(mail) == summary["emails_in_catcher"] == summary["email_messages"]
    notify = summary["notify"]
    assert summary["notifications_sent"] == (
        len(mail) - notify["digests"] + notify["digest_alerts"]
    )
    assert summary["notifications_failed"] == 0
    assert "The numbers reconcile." in output


@pytest.mark.timeout(DEMO_TIMEOUT_S + 120)
def test_the_short_demo_texts_and_digests_follow_the_preferences(
    short_demo: tuple[Path, str, int],
) -> None:
    run_dir, output, status = short_demo
    assert status == 0, output
    summary = json.loads((run_dir / "summary.json").read_text())
    notify = summary["notify"]
    assert notify["problems"] == []
    texts = [
        m
        for m in json.loads((run_dir / "govuk-notify.json").read_text())
        if m["type"] == "sms"
    ]
    assert notify["texts_sent"] == len(texts) > 0
    # Every message the local GOV.UK Notify took came back as delivered, and notify
    # took the receipt.
    assert notify["receipts_accepted"] == {"delivered": len(texts)}
    assert {m["status"] for m in texts} == {"delivered"}

    # A manager got a text for a missed deadline, as managers chose; so did the
    # coordinator who chose texts; no SENCO did.
    by_pair = notify["texts_by_kind_and_role"]
    assert by_pair["overdue/manager"] > 0
    assert not {pair for pair in by_pair if pair.endswith("/senco")}
    managers = {
        normalise_uk_mobile(s.mobile)
        for s in DEMO_STAFF
        if s.role == "manager" and s.mobile
    }
    overdue_to_managers = [
        m
        for m in texts
        if m["phone_number"] in managers and m["body"].startswith("SEND OVERDUE")
    ]
    assert overdue_to_managers, [m["body"] for m in texts[:5]]
    texting = next(s for s in DEMO_STAFF if s.staff_id == "STAFF-102")
    assert texting.mobile is not None
    assert any(m["phone_number"] == normalise_uk_mobile(texting.mobile) for m in texts)
    sencos = {normalise_uk_mobile(s.mobile) for s in DEMO_SENCOS if s.mobile}
    assert not [m for m in texts if m["phone_number"] in sencos]

    # No text names a child: every demo child's family name is the same word.
    assert not [m["body"] for m in texts if CHILD_FAMILY_NAME in m["body"]]

    # The digest coordinator got one digest per demo day it had alerts for, dated by
    # the demo's calendar, not the wall clock's.
    mail = read_mail(run_dir / "mail")
    digests = [m for m in mail if "Daily digest" in m["Subject"]]
    days = [" ".join(str(m["Subject"]).split()).split(":")[0] for m in digests]
    assert len(digests) == notify["digests"] > 1
    assert len(set(days)) == len(days), "two digests for one day"
    assert all(re.search(r" 202[45]$", day) for day in days), days
    digester = next(s for s in DEMO_STAFF if s.staff_id == "STAFF-101")
    assert {str(m["To"]) for m in digests} == {digester.email}
    assert "Notify's closing note" in output


@pytest.mark.timeout(DEMO_TIMEOUT_S + 120)
def test_the_documented_subscriber_reads_every_event_of_the_demo(
    short_demo_run: ShortDemo,
) -> None:
    assert short_demo_run.status == 0, short_demo_run.output
    subscribed = short_demo_run.subscribed
    assert subscribed is not None, short_demo_run.output
    assert subscribed.status == 0, subscribed.stderr
    assert subscribed.set_aside == []
    assert len(subscribed.handled) == len(set(subscribed.handled))
    assert len(subscribed.on_the_topics) > 1000
    assert subscribed.on_the_topics <= set(subscribed.handled)


@pytest.mark.timeout(DEMO_TIMEOUT_S + 120)
def test_the_short_demo_emails_say_what_is_due_when_and_why(
    short_demo: tuple[Path, str, int],
) -> None:
    run_dir, output, status = short_demo
    assert status == 0, output
    mail = read_mail(run_dir / "mail")
    decision_mail = [m for m in mail if "Decision whether to assess" in m["Subject"]]
    approaching = [m for m in decision_mail if m["Subject"].startswith("[SEND] Due ")]
    overdue = [m for m in decision_mail if "Overdue" in m["Subject"]]
    assert approaching, "no approaching email for the decision clock"
    assert overdue, "no overdue email for the decision clock"

    for message in (approaching[0], overdue[0]):
        body = body_of(message)
        assert LONG_DATE.search(body), body
        assert f"Legal basis: {DECISION_BASIS}" in body, body
        assert "Case reference: " in body, body

    # An overdue decision that no exception covers reaches the coordinator's manager.
    managers = {s.email for s in DEMO_STAFF if s.role == "manager"}
    assert any(str(m["To"]) in managers for m in overdue)

    # No email names a child: every demo child's family name is the same word.
    assert not [m["Subject"] for m in mail if CHILD_FAMILY_NAME in body_of(m)]

    # The 20-week clock's alerts went out, and a review's reached the school's SENCO.
    assert any("Final EHC plan" in m["Subject"] for m in mail)
    sencos = {s.email for s in DEMO_SENCOS}
    assert any(str(m["To"]) in sencos for m in mail)


@pytest.mark.timeout(DEMO_TIMEOUT_S + 120)
def test_the_short_demo_leaves_no_process_running(
    short_demo: tuple[Path, str, int],
) -> None:
    run_dir, output, _ = short_demo
    jvm = JVM_PID.search(output)
    assert jvm is not None, output
    assert not is_alive(int(jvm.group(1))), "the Kafka JVM outlived make run"
    assert processes_of(run_dir) == []


@pytest.mark.timeout(START_TIMEOUT_S + STOP_TIMEOUT_S + 60)
def test_ctrl_c_stops_everything_after_a_request_reaches_the_topic(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    log_path = tmp_path / "make-run.out"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            make_run(run_dir, "--no-demo"),
            env=run_env(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # Wait for the platform to be up and the request seen on the topic.
        deadline = time.monotonic() + START_TIMEOUT_S
        while "press Ctrl-C" not in log_path.read_text():
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.5)
        output = log_path.read_text()
        shown = SHOWN_ON_TOPIC.search(output)
        assert shown is not None, output
        assert shown["key"] == shown["case"]
        assert len(processes_of(run_dir)) >= 7, "expected Kafka, its JVM and services"

        # Ctrl-C: SIGINT to make run alone; its children run in sessions of their own.
        process.send_signal(signal.SIGINT)
        status = process.wait(STOP_TIMEOUT_S)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    output = log_path.read_text()
    assert status == 0, output
    stopped = re.search(r"^Stopped (.*) in [\d.]+ s\.$", output, re.MULTILINE)
    assert stopped is not None, output
    names = stopped.group(1).split(", ")
    # Everything, in the reverse of the order it started: Kafka last.
    assert {
        "notify-worker",
        "notify-api",
        "notify-stub",
        "plans-api",
        "reviews-api",
        "intake-relay",
    } <= set(names)
    assert names[-1] == "kafka"
    jvm = JVM_PID.search(output)
    assert jvm is not None, output
    assert not is_alive(int(jvm.group(1)))
    assert processes_of(run_dir) == []
