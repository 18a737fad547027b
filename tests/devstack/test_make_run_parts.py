"""The pieces of ``make run`` that need no broker: the timeline, ports, files, tallies.

The clock tally is fed records built with the kernel's own envelope (``to_kafka``), as
the deadlines and notify services publish them, so what is counted here is what the
end-to-end test counts from the real topics.
"""

from __future__ import annotations

import io
import itertools
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devstack.demo import (
    Action,
    DemoDriver,
    DemoServices,
    DemoSettings,
    DemoSummary,
    Notification,
    PlatformStopped,
    TopicWatcher,
    check_timeline,
    compare_read_model,
    count_clocks,
    count_timeliness,
    demo_days,
    plan_actions,
    planned_decision_counts,
    reconcile,
    tick_moment,
)
from devstack.demo_data import (
    DEMO_SENCOS,
    DEMO_STAFF,
    PlannedCase,
    Timeliness,
    demo_preferences,
    generate_caseload,
)
from devstack.dfe import load_la_figures
from devstack.kafka_config import LOOPBACK, BrokerLayout, free_port
from devstack.notify_stub import DEFAULT_API_KEY, normalise_uk_mobile
from devstack.processes import (
    ManagedProcess,
    ProcessSpec,
    ProcessStartError,
    Stack,
    exit_status,
)
from devstack.run import (
    DIRECTORY,
    Platform,
    Ports,
    RunError,
    RunLayout,
    after_demo_note,
    choose_ports,
    count_notify,
    service_specs,
)
from send_schemas.topics import DEADLINES, INTAKE, NOTIFY
from sendkit.calendar import LONDON, london_date
from sendkit.envelope import to_kafka
from sendkit.events import Metadata, RecordedEvent


@pytest.fixture(scope="module")
def caseload() -> list[PlannedCase]:
    return generate_caseload(load_la_figures(), 2024, 0.05)


# The timeline -----------------------------------------------------------------------


def test_each_case_is_received_before_its_exception_its_outcome_and_its_steps(
    caseload: list[PlannedCase],
) -> None:
    actions = plan_actions(caseload)

    exceptions = sum(case.exception_reason is not None for case in caseload)
    steps = sum(len(case.steps()) for case in caseload)
    assert len(actions) == 2 * len(caseload) + exceptions + steps
    assert steps > len(caseload), "the agreed assessments should go on"
    assert [a.at for a in actions] == sorted(a.at for a in actions)
    order: dict[int, list[str]] = {}
    for action in actions:
        order.setdefault(action.case.sequence, []).append(action.kind)
    for case in caseload:
        expected = ["receive", "outcome"]
        if case.exception_reason is not None:
            expected.insert(1, "exception")
        expected += ["step"] * len(case.steps())
        assert order[case.sequence] == expected


def test_a_cases_steps_come_after_its_agreement_is_recorded_each_on_its_day(
    caseload: list[PlannedCase],
) -> None:
    by_case: dict[int, list[Action]] = {}
    for action in plan_actions(caseload):
        by_case.setdefault(action.case.sequence, []).append(action)

    for case in caseload:
        steps = [a for a in by_case[case.sequence] if a.step is not None]
        if case.outcome != "agreed":
            assert steps == []
            continue
        recorded = london_date(case.outcome_recorded_at)
        for action in steps:
            assert action.step is not None
            # Recorded on the fact's own day, in office hours, after the agreement's
            # record: the plans service knows the case by then.
            assert action.day == action.step.on > recorded
            assert 9 <= action.at.astimezone(LONDON).hour < 17


def test_the_demo_ticks_every_day_from_new_year_to_past_the_last_outcome(
    caseload: list[PlannedCase],
) -> None:
    actions = plan_actions(caseload)

    days = demo_days(actions, 2024, margin_days=10)

    assert days[0] == date(2024, 1, 1)
    assert days[-1] == actions[-1].day + timedelta(days=10)
    assert all(b - a == timedelta(days=1) for a, b in itertools.pairwise(days))


def test_the_demo_ticks_to_the_end_of_its_period_with_no_margin(
    caseload: list[PlannedCase],
) -> None:
    actions = plan_actions(caseload)

    days = demo_days(actions, 2024, margin_days=10, until=date(2025, 7, 31))

    assert days[0] == date(2024, 1, 1)
    assert days[-1] == date(2025, 7, 31)
    assert actions[-1].day <= days[-1]


def test_a_tick_is_eight_in_the_morning_london_time_in_winter_and_summer() -> None:
    assert tick_moment(date(2024, 1, 15)) == datetime(2024, 1, 15, 8, tzinfo=UTC)
    assert tick_moment(date(2024, 7, 1)) == datetime(2024, 7, 1, 7, tzinfo=UTC)


# Ports and files --------------------------------------------------------------------


def test_a_taken_port_is_replaced_by_a_free_one_and_said_so() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        busy = taken.getsockname()[1]
        # The usual ports may be in use by a make run on this machine; free ones
        # stand in for them, so only the one taken here needs replacing.
        others: list[int] = []
        for _ in range(len(fields(Ports)) - 1):
            others.append(free_port(exclude={busy, *others}))
        wanted = Ports(busy, *others)

        ports, notes = choose_ports(wanted)

    assert ports.kafka != busy
    assert notes == [f"port {busy} (kafka) is taken; using {ports.kafka}"]


def test_free_ports_mode_picks_distinct_ports_for_every_listener() -> None:
    ports, notes = choose_ports(free_only=True)

    values = [getattr(ports, item.name) for item in fields(Ports)]
    assert len(values) == 11
    assert len(set(values)) == len(values)
    assert notes == []


def test_a_fresh_start_removes_the_last_runs_data_and_nothing_else(
    tmp_path: Path,
) -> None:
    layout = RunLayout(tmp_path)
    for folder in (layout.logs, layout.mail, layout.kafka / "data", layout.work):
        folder.mkdir(parents=True)
    stores = (layout.intake_db, layout.notify_db, layout.plans_db, layout.reviews_db)
    for path in (*stores, layout.placement_db, layout.staff_csv):
        path.write_text("old")
    (tmp_path / "intake.db-wal").write_text("old")
    (tmp_path / "kafka-ephemeral").mkdir()

    layout.reset()

    assert sorted(p.name for p in tmp_path.iterdir()) == ["kafka-ephemeral"]


def test_a_fresh_start_refuses_while_the_last_runs_broker_still_runs(
    tmp_path: Path,
) -> None:
    layout = RunLayout(tmp_path)
    layout.kafka.mkdir()
    # A stand-in for the JVM: a live process whose command line names the directory.
    stand_in = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", str(layout.kafka)]
    )
    try:
        # Its command line reads empty for a moment while it is being exec'd.
        cmdline = Path(f"/proc/{stand_in.pid}/cmdline")
        for _ in range(100):
            if str(layout.kafka).encode() in cmdline.read_bytes():
                break
            time.sleep(0.05)
        BrokerLayout(layout.kafka).pid_file.write_text(f"{stand_in.pid}\n")
        with pytest.raises(RunError, match=f"pid {stand_in.pid}"):
            layout.reset()
        assert layout.kafka.exists()
    finally:
        stand_in.kill()
        stand_in.wait()


# The tally --------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """The fields of a kafka-python ConsumerRecord that the watcher reads."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


class Feed:
    """Builds records as the services' relays publish them, offsets counting up."""

    def __init__(self, watcher: TopicWatcher) -> None:
        self.watcher = watcher
        self.offset = 0

    def publish(
        self, topic: str, name: str, case_id: str, data: dict[str, Any]
    ) -> RecordedEvent:
        owner = topic.split(".")[1]
        event = RecordedEvent(
            id=str(uuid.uuid4()),
            stream_id=case_id,
            version=1,
            position=1,
            type=f"send.{owner}.{name}.v1",
            source=f"/send/{owner}",
            time=datetime(2024, 3, 1, tzinfo=UTC),
            data=data,
            metadata=Metadata(),
        )
        self.take(topic, event)
        return event

    def take(self, topic: str, event: RecordedEvent) -> None:
        record = to_kafka(event)
        self.offset += 1
        headers: list[tuple[str, bytes | None]] = list(record.headers)
        at = 1_000 * self.offset
        self.watcher.take(
            Record(topic, 0, self.offset, at, record.key, record.value, headers)
        )

    def clock(
        self,
        name: str,
        case_id: str,
        clock: str = "decision",
        *,
        clock_id: str | None = None,
        **data: Any,
    ) -> RecordedEvent:
        values = {
            "case_id": case_id,
            "clock_id": clock_id or clock,
            "clock": clock,
            **data,
        }
        return self.publish(DEADLINES.name, name, case_id, values)


def test_each_clock_is_counted_once_in_the_state_it_ended_in() -> None:
    watcher = TopicWatcher("unused:9092")
    feed = Feed(watcher)
    met, late, overdue, withdrawn, cancelled, fresh = (
        str(uuid.uuid4()) for _ in range(6)
    )
    for case in (met, late, overdue, withdrawn, cancelled, fresh):
        feed.publish(INTAKE.name, "RequestReceived", case, {"case_id": case})
        feed.clock("ClockSet", case, due_on="2024-03-01")

    # Met after an overdue alert; late; overdue for good; an overdue alert withdrawn.
    feed.clock("ClockOverdue", met)
    feed.clock("ClockMet", met)
    feed.clock("ClockLate", late, exception_reason="c")
    feed.clock("ClockOverdue", overdue)
    alert = feed.clock("ClockOverdue", withdrawn)
    feed.clock("AlertWithdrawn", withdrawn, alert_id=alert.id)
    feed.clock("ClockCancelled", cancelled)
    approaching = feed.clock("ClockApproaching", fresh)
    # A redelivered record (the same ce_id at a later offset) changes nothing.
    feed.take(DEADLINES.name, approaching)
    # A clock of a case the demo did not post is left out.
    feed.clock("ClockSet", str(uuid.uuid4()))

    ours = {met, late, overdue, withdrawn, cancelled, fresh}
    [decision] = count_clocks(watcher, ours)

    assert (decision.set, decision.met, decision.late) == (6, 1, 1)
    assert (decision.cancelled, decision.overdue, decision.open) == (1, 1, 2)
    assert decision.exception == 1
    assert decision.approaching_alerts == 1
    assert decision.adds_up
    assert watcher.has_decision_event(late, frozenset({"ClockMet", "ClockLate"}))
    assert not watcher.has_decision_event(fresh, frozenset({"ClockMet"}))


def test_notify_events_are_kept_with_their_kind_and_recipient() -> None:
    watcher = TopicWatcher("unused:9092")
    feed = Feed(watcher)
    case = str(uuid.uuid4())
    feed.publish(
        NOTIFY.name,
        "NotificationSent",
        case,
        {"alert_kind": "overdue", "recipient_role": "manager", "case_id": case},
    )

    [sent] = watcher.notifications.values()
    assert (sent.name, sent.alert_kind, sent.recipient_role) == (
        "NotificationSent",
        "overdue",
        "manager",
    )


# Reconciling ------------------------------------------------------------------------


def summary_of(caseload: list[PlannedCase]) -> DemoSummary:
    """The summary a perfect run of ``caseload`` would give, before it is checked."""
    watcher = TopicWatcher("unused:9092")
    feed = Feed(watcher)
    ids = set()
    for number, case in enumerate(caseload):
        case_id = str(uuid.uuid4())
        ids.add(case_id)
        feed.clock("ClockSet", case_id)
        if number < 12:
            feed.clock("ClockApproaching", case_id)
        if case.outcome == "withdrawn":
            feed.clock("ClockCancelled", case_id)
        else:
            feed.clock("ClockMet" if case.within_time else "ClockLate", case_id)
        if case.exception_reason is not None:
            feed.clock("ClockExceptionApplied", case_id)
    decided = [c for c in caseload if c.outcome != "withdrawn"]
    return DemoSummary(
        scale=0.05,
        year=2024,
        first_day="2024-01-01",
        last_day="2025-03-17",
        seconds=1.0,
        requests=len(caseload),
        assignments=len(caseload),
        agreed=sum(c.outcome == "agreed" for c in decided),
        refused=sum(c.outcome == "refused" for c in decided),
        withdrawn=len(caseload) - len(decided),
        exceptions=sum(c.exception_reason is not None for c in caseload),
        clocks=count_clocks(watcher, ids),
        planned_decision=planned_decision_counts(caseload),
        emails_in_catcher=12,
        notifications_sent=12,
        notifications_failed=0,
        sent_by_kind={"approaching": 12},
        sent_by_role={"coordinator": 12},
        latency=None,
        timeline={
            "in_time_never_overdue": len(caseload),
            "in_time_overdue": 0,
            "late_overdue_first": 0,
            "late_never_overdue": 0,
        },
        deadlines_summary=None,
        read_model="no deadlines read API to compare with",
        mail_dir="/tmp/mail",
        mail_url="http://127.0.0.1:8025/",
    )


def test_a_run_that_matches_its_plan_reconciles(caseload: list[PlannedCase]) -> None:
    summary = summary_of(caseload)

    assert reconcile(summary, len(caseload)) == []
    assert "The numbers reconcile." in summary.render()


def test_a_lost_email_or_a_clock_gone_astray_is_reported(
    caseload: list[PlannedCase],
) -> None:
    good = summary_of(caseload)
    decision = good.clocks[0]
    astray = replace(decision, met=decision.met - 1, late=decision.late + 1)

    lost_email = reconcile(replace(good, emails_in_catcher=11), len(caseload))
    wrong_clock = reconcile(replace(good, clocks=[astray]), len(caseload))

    assert lost_email == [
        "11 emails in the mail catcher, but 12 sent over SMTP (NotificationSent "
        "events, a digest once)"
    ]
    assert wrong_clock == [
        f"decision clock: met is {astray.met}, the plan says {decision.met}",
        f"decision clock: late is {astray.late}, the plan says {decision.late}",
    ]


def test_a_clock_overdue_too_early_or_never_is_caught(
    caseload: list[PlannedCase],
) -> None:
    watcher = TopicWatcher("unused:9092")
    feed = Feed(watcher)
    in_time = next(
        c
        for c in caseload
        if c.within_time and london_date(c.outcome_recorded_at) <= c.decision_due_on
    )
    late, late_too = [c for c in caseload if c.within_time is False][:2]
    ids = {case.sequence: str(uuid.uuid4()) for case in (in_time, late, late_too)}
    for case_id in ids.values():
        feed.clock("ClockSet", case_id)
    # In time, yet overdue first (as against a clock running ahead); one late case
    # overdue first as it should be; the other never.
    feed.clock("ClockOverdue", ids[in_time.sequence])
    feed.clock("ClockMet", ids[in_time.sequence])
    feed.clock("ClockOverdue", ids[late.sequence])
    feed.clock("ClockLate", ids[late.sequence])
    feed.clock("ClockLate", ids[late_too.sequence])

    timeline = check_timeline([in_time, late, late_too], ids, watcher)

    assert timeline == {
        "in_time_never_overdue": 0,
        "in_time_overdue": 1,
        "late_overdue_first": 1,
        "late_never_overdue": 1,
    }


def test_the_read_models_summary_is_compared_clock_by_clock(
    caseload: list[PlannedCase],
) -> None:
    decision = summary_of(caseload).clocks[0]
    # The read model tells running clocks with an approaching alert apart.
    row = {
        "set": decision.set,
        "open": 0,
        "approaching": decision.open,
        "overdue": decision.overdue,
        "met": decision.met,
        "late": decision.late,
        "cancelled": decision.cancelled,
        "with_exception": decision.exception,
    }
    clocks: dict[str, dict[str, int]] = {"decision": row}
    remote = {"cases": decision.set, "clocks": clocks}
    assert compare_read_model([decision], remote) == []

    row["late"] += 1
    clocks["final_plan"] = {"set": 1}
    assert compare_read_model([decision], remote) == [
        f"decision: late is {decision.late} on the topic, {decision.late + 1} in "
        "/summary",
        "/summary has a final_plan clock the topic never showed",
    ]


# The later stages -------------------------------------------------------------------


def test_timeliness_is_counted_from_the_clock_events_as_the_dfe_counts_it() -> None:
    watcher = TopicWatcher("unused:9092")
    feed = Feed(watcher)
    cases = [str(uuid.uuid4()) for _ in range(4)]
    in_time, late_excepted, no_plan, pending = cases
    for case in cases:
        feed.clock("ClockSet", case, "final_plan")
    feed.clock("ClockMet", in_time, "final_plan")
    feed.clock("ClockExceptionApplied", late_excepted, "final_plan")
    feed.clock("ClockLate", late_excepted, "final_plan")
    feed.clock("ClockCancelled", no_plan, "final_plan")
    feed.clock("ClockOverdue", pending, "final_plan")
    # Two reviews held: one held in time and decided in 4 weeks, one late and not
    # decided yet; the next year's review clock is open.
    for case, held in ((in_time, "ClockMet"), (late_excepted, "ClockLate")):
        feed.clock("ClockSet", case, "annual_review")
        feed.clock(held, case, "annual_review")
        feed.clock("ClockSet", case, "annual_review", clock_id="annual_review:next")
        feed.clock("ClockSet", case, "review_decision")
    feed.clock("ClockMet", in_time, "review_decision")

    figures = count_timeliness(watcher, set(cases))

    assert figures == Timeliness(
        plans_issued=2,
        plans_within_20_weeks=1,
        plans_issued_excl_exceptions=1,
        plans_within_20_weeks_excl_exceptions=1,
        reviews_held=2,
        reviews_held_in_time=1,
        review_decisions=1,
        review_decisions_within_4_weeks=1,
    )
    assert figures.within_20_weeks_share == 0.5
    assert figures.within_4_weeks_share == 1.0


def test_a_later_clock_or_a_timeliness_figure_off_the_plan_is_reported(
    caseload: list[PlannedCase],
) -> None:
    good = summary_of(caseload)
    figures = Timeliness(3, 1, 3, 1, 1, 1, 1, 0)
    intended = {"final_plan": {"set": 3, "met": 1, "late": 2}}

    report = reconcile(
        replace(
            good,
            planned_clocks=intended,
            timeliness=figures,
            planned_timeliness=replace(figures, plans_within_20_weeks=2),
        ),
        len(caseload),
    )

    assert report == [
        "final_plan clock: set is 0, the plan says 3",
        "final_plan clock: met is 0, the plan says 1",
        "final_plan clock: late is 0, the plan says 2",
        "plans within 20 weeks: 1 here, 2 in the plan",
    ]


def test_an_alert_emailed_twice_to_one_role_is_caught(
    caseload: list[PlannedCase],
) -> None:
    good = summary_of(caseload)
    raised = good.alerts_raised["approaching"]
    # Each ClockApproaching may reach a coordinator and a SENCO once each.
    once = {"approaching/coordinator": raised, "approaching/senco": raised}
    twice = {**once, "approaching/senco": raised + 1}

    assert reconcile(replace(good, sent_by_kind_and_role=once), len(caseload)) == []
    assert reconcile(replace(good, sent_by_kind_and_role=twice), len(caseload)) == [
        f"{raised + 1} approaching emails to a senco for {raised} clock events "
        "raising them: some alert went out twice"
    ]


def test_the_note_under_the_summary_says_no_later_case_will_alert(
    caseload: list[PlannedCase],
) -> None:
    summary = summary_of(caseload)

    note = after_demo_note(summary.last_day)

    assert f"the last demo tick (08:00 London on {summary.last_day})" in note
    assert "no ticker runs now" in note
    assert "none becomes due or overdue and none alerts" in note


def test_the_summary_shows_the_dfe_figures_beside_the_published_ones(
    caseload: list[PlannedCase],
) -> None:
    figures = Timeliness(66, 21, 66, 21, 17, 17, 10, 6)
    summary = replace(
        summary_of(caseload),
        timeliness=figures,
        planned_timeliness=figures,
        later_posted={"final_plan": 66, "review_decided": 10},
        published={
            "within_20_weeks_excl_exceptions": 0.321,
            "review_decisions_within_4_weeks": 0.521,
        },
    )

    text = summary.render()
    data = summary.to_json()

    assert "plans issued 66, within 20 weeks 21 (31.8%)" in text
    assert "published 32.1%" in text
    assert "decisions 10, within 4 weeks 6 (60.0%; published 52.1%)" in text
    assert "the clocks' figures agree." in text
    assert data["timeliness"]["within_4_weeks_share"] == 0.6
    assert data["planned_timeliness"]["plans_issued"] == 66


# Starting side by side ----------------------------------------------------------------


def _printer(name: str, line: str, *, then_exit: bool = False) -> ProcessSpec:
    code = f"import sys, time; print({line!r}, flush=True); "
    code += "sys.exit(4)" if then_exit else "time.sleep(60)"
    return ProcessSpec(
        name=name,
        argv=[sys.executable, "-c", code],
        ready_log_line="ready" if not then_exit else "never said",
        stop_timeout=5,
    )


def test_a_group_starts_side_by_side_and_each_is_waited_for(tmp_path: Path) -> None:
    with Stack(tmp_path) as stack:
        started = stack.start_all(
            [_printer("one", "one ready"), _printer("two", "two ready")], timeout=60
        )

        names = [managed.spec.name for managed, _ in started]
        assert names == ["one", "two"]
        assert all(managed.running for managed, _ in started)
        assert all(seconds >= 0 for _, seconds in started)
        assert sorted(stack.pids()) == ["one", "two"]
    assert stack.processes == []


def test_a_group_fails_at_once_when_one_of_it_exits(tmp_path: Path) -> None:
    with Stack(tmp_path) as stack:
        group = [_printer("slow", "not yet"), _printer("quits", "bye", then_exit=True)]
        with pytest.raises(ProcessStartError, match="quits exited with code 4"):
            stack.start_all(group, timeout=60)

        # The one still starting runs on until the stack is stopped.
        assert [m.spec.name for m in stack.processes] == ["slow", "quits"]
    assert stack.processes == []


def test_an_earlier_runs_ready_line_in_a_kept_log_does_not_count(
    tmp_path: Path,
) -> None:
    # What a --keep-data restart finds: the last run's log, ready line and all.
    (tmp_path / "worker.log").write_text("starting\nworker ready\nstopped\n")
    gate = tmp_path / "go"
    code = (
        "import pathlib, sys, time\n"
        "print('starting again', flush=True)\n"
        f"while not pathlib.Path({str(gate)!r}).exists():\n"
        "    time.sleep(0.05)\n"
        "print('worker ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    spec = ProcessSpec(
        name="worker",
        argv=[sys.executable, "-c", code],
        ready_log_line="worker ready",
        stop_timeout=5,
    )
    with Stack(tmp_path) as stack:
        managed = ManagedProcess(spec, tmp_path / "worker.log")
        stack.processes.append(managed)

        # It waits for the gate, so this run has not said it is ready.
        assert not managed.is_ready()
        gate.touch()
        managed.wait_until_ready(timeout=60)

        assert managed.is_ready()
        assert "stopped" not in managed.log_tail()
        assert managed.log_tail().splitlines()[-1] == "worker ready"
    # The earlier run's lines are kept: the log is appended to, not replaced.
    kept = (tmp_path / "worker.log").read_text()
    assert kept.startswith("starting\nworker ready\nstopped\nstarting again\n")


# A process that dies during the demo ---------------------------------------------


def _worker(name: str) -> ProcessSpec:
    """A stand-in for a stream worker: says it is ready, then runs until killed."""
    return _printer(name, f"{name} ready")


def _services(tmp_path: Path, stack: Stack, ticker: Any) -> DemoServices:
    # Nothing listens at the APIs' address: the demo must stop before it posts.
    nowhere = f"http://{LOOPBACK}:{free_port()}"
    return DemoServices(
        intake_url=nowhere,
        mail_url=f"{nowhere}/",
        mail_dir=tmp_path,
        ticker=ticker,
        plans_url=nowhere,
        reviews_url=nowhere,
        stopped=stack.stopped,
    )


def test_a_worker_killed_during_the_demo_ends_it_naming_the_worker(
    tmp_path: Path, caseload: list[PlannedCase]
) -> None:
    out = io.StringIO()
    ticks: list[datetime] = []
    with Stack(tmp_path / "logs") as stack:
        stack.start_all([_worker("deadlines-worker"), _worker("notify-worker")], 60)
        notify = stack.processes[1]

        def tick_then_kill(moment: datetime) -> None:
            ticks.append(moment)
            # kill -9 while the first simulated day is under way.
            notify.signal(signal.SIGKILL)
            notify.process.wait()

        services = _services(tmp_path, stack, tick_then_kill)
        driver = DemoDriver(
            caseload, services, TopicWatcher("unused:9092"), DemoSettings(), out
        )
        try:
            with pytest.raises(PlatformStopped) as stopped:
                driver.run()
        finally:
            driver.close()

    message = str(stopped.value)
    assert f"notify-worker (pid {notify.process.pid}) was killed by SIGKILL" in message
    assert "(exit status -9)" in message
    assert "notify-worker ready" in message  # the end of its log
    assert "deadlines-worker" not in message
    # It stopped on the day the worker died: no command posted, no month played.
    assert ticks == [tick_moment(date(2024, 1, 1))]
    assert driver.case_ids == {}
    assert "posted" not in out.getvalue()


def test_a_wait_for_the_topics_ends_when_a_process_has_exited(tmp_path: Path) -> None:
    watcher = TopicWatcher("unused:9092")
    with Stack(tmp_path) as stack:
        (quitter, _), (runner, _) = stack.start_all(
            [_worker("relay"), _worker("worker")], 60
        )
        quitter.signal(signal.SIGTERM)
        quitter.process.wait()

        # With no stall allowed, only the check of the processes can answer first.
        with pytest.raises(PlatformStopped, match=r"relay \(pid \d+\) was killed by"):
            watcher.wait_until(lambda: False, 0.0, "nothing", stack.stopped)
        assert runner.running


def test_waiting_for_notify_to_send_ends_when_its_worker_has_died(
    tmp_path: Path, caseload: list[PlannedCase]
) -> None:
    with Stack(tmp_path / "logs") as stack:
        ((notify, _),) = stack.start_all([_worker("notify-worker")], 60)
        notify.signal(signal.SIGKILL)
        notify.process.wait()
        services = replace(
            _services(tmp_path, stack, lambda moment: None),
            # A ledger with alerts still to send, as a killed worker leaves it.
            ledger_status=lambda: {"pending": 3},
        )
        driver = DemoDriver(
            caseload,
            services,
            TopicWatcher("unused:9092"),
            DemoSettings(settle_stall=0.0),
            io.StringIO(),
        )
        try:
            # Without the check this would be "notify sent nothing for 0 s".
            with pytest.raises(PlatformStopped, match=r"notify-worker .* SIGKILL"):
                driver._settle()
        finally:
            driver.close()


def test_a_stopped_process_is_described_by_its_exit_status(tmp_path: Path) -> None:
    with Stack(tmp_path) as stack:
        assert stack.stopped() is None
        ((quits, _),) = stack.start_all([_worker("mail")], 60)
        quits.signal(signal.SIGTERM)
        quits.process.wait()

        with pytest.raises(ProcessStartError) as error:
            stack.check_alive()

    assert str(error.value).startswith(
        f"a process stopped unexpectedly: mail (pid {quits.process.pid}) was killed "
        "by SIGTERM (exit status -15); the end of "
    )
    assert exit_status(3) == "exited with code 3"


def test_only_a_new_event_counts_as_progress() -> None:
    watcher = TopicWatcher("unused:9092")
    feed = Feed(watcher)
    event = feed.clock("ClockSet", str(uuid.uuid4()))
    record = to_kafka(event)
    again = Record(
        DEADLINES.name, 0, 99, 1, record.key, record.value, list(record.headers)
    )

    # A worker that crashes and starts again publishes the same event again: that
    # is no progress, so the demo's stall detection still fires.
    assert watcher.take(again) is False
    junk = Record(DEADLINES.name, 0, 100, 1, b"k", b"not json", [])
    assert watcher.take(junk) is False
    assert watcher.unreadable == 1


# Notify in make run: the local GOV.UK Notify, the staff's texts, the closing note ----


def test_notify_is_wired_to_the_local_govuk_notify_and_back(tmp_path: Path) -> None:
    ports, _ = choose_ports(free_only=True)
    platform = Platform(RunLayout(tmp_path), ports, "127.0.0.1:9092", True)

    specs = {spec.name: spec for group in service_specs(platform) for spec in group}

    worker, api, stub = (
        specs["notify-worker"],
        specs["notify-api"],
        specs["notify-stub"],
    )
    assert api.ready_url == f"http://{LOOPBACK}:{ports.notify}/readyz"
    assert stub.ready_url == f"http://{LOOPBACK}:{ports.notify_stub}/healthz"
    argv = list(stub.argv)
    assert argv[argv.index("--port") + 1] == str(ports.notify_stub)
    receipts = f"http://{LOOPBACK}:{ports.notify}/callbacks/govuk-notify"
    assert argv[argv.index("--callback-url") + 1] == receipts
    token = argv[argv.index("--callback-token") + 1]
    for spec in (worker, api):
        env = spec.env
        assert env["NOTIFY_PORT"] == str(ports.notify)
        assert env["NOTIFY_GOVUK_BASE_URL"] == f"http://{LOOPBACK}:{ports.notify_stub}"
        assert env["NOTIFY_GOVUK_API_KEY"] == DEFAULT_API_KEY
        assert env["NOTIFY_GOVUK_CALLBACK_TOKEN"] == token
        assert env["NOTIFY_CLOCK"] == "ticks"
    # A new token each run: one run's receipts are refused by another's notify.
    again = Platform(RunLayout(tmp_path), ports, "127.0.0.1:9092", True)
    assert again.callback_token != platform.callback_token


def test_the_demo_staff_have_drama_mobiles_and_preferences_by_role() -> None:
    mobiles = [m.mobile for m in DIRECTORY]
    assert all(m is not None and m.startswith("07700900") for m in mobiles)
    assert len(set(mobiles)) == len(mobiles)
    # Clear of GOV.UK Notify's simulator numbers, which fail on purpose.
    assert not {"07700900002", "07700900003"} & set(mobiles)
    assert all(normalise_uk_mobile(m or "").startswith("+447700900") for m in mobiles)

    chosen = demo_preferences(DIRECTORY)
    managers = [m for m in DEMO_STAFF if m.role == "manager"]
    coordinators = [m for m in DEMO_STAFF if m.role == "coordinator"]
    for manager in managers:
        assert chosen[manager.staff_id]["channels"] == {
            "approaching": "email",
            "overdue": "both",
        }
        # No quiet hours for the demo's texts: see demo_preferences.
        assert chosen[manager.staff_id]["quiet_hours"] is None
    for senco in DEMO_SENCOS:
        assert chosen[senco.staff_id] == {
            "channels": {"approaching": "email", "overdue": "email"}
        }
    digest, texting, *rest = coordinators
    assert chosen[digest.staff_id]["daily_digest"] is True
    assert chosen[texting.staff_id] == {
        "channels": {"approaching": "sms", "overdue": "both"},
        "quiet_hours": None,
    }
    assert all("daily_digest" not in chosen[m.staff_id] for m in rest)


def _sent(
    kind: str,
    role: str,
    channel: str = "email",
    bundle: str | None = None,
    *,
    cause: str = "clock-event-1/STAFF-1",
    corrects: str | None = None,
) -> Notification:
    return Notification(
        "NotificationSent",
        "case-1",
        kind,
        role,
        channel,
        "smtp",
        bundle,
        alert_id=f"{cause}/{channel}/{kind}",
        corrects_alert_id=corrects,
        cause=cause,
    )


def test_the_closing_note_counts_each_channel_and_holds_it_to_the_preferences() -> None:
    notifications = [
        _sent("approaching", "coordinator", bundle="digest-1"),
        _sent("approaching", "coordinator", bundle="digest-1"),
        _sent("approaching", "coordinator", bundle="digest-2"),
        _sent("overdue", "coordinator"),
        _sent("overdue", "manager"),
        _sent("overdue", "manager", "sms"),
        _sent("approaching", "coordinator", "sms"),
    ]
    messages = [{"id": "n1", "type": "sms"}, {"id": "n2", "type": "sms"}]
    callbacks = [
        {"notification_id": "n1", "status": "delivered", "answer": 200},
        {"notification_id": "n2", "status": "delivered", "answer": 401},
        {"notification_id": "n2", "status": "delivered", "answer": 200},
    ]

    counts = count_notify(notifications, 4, messages, callbacks, {"held": 3})

    assert counts.email_messages_by_role == {"coordinator": 3, "manager": 1}
    assert (counts.digests, counts.digest_alerts) == (2, 3)
    assert counts.texts_sent == counts.texts_at_govuk_notify == 2
    assert counts.texts_by_kind_and_role == {
        "overdue/manager": 1,
        "approaching/coordinator": 1,
    }
    assert counts.receipts_accepted == {"delivered": 2}
    assert counts.held_for_digest == 3
    assert counts.problems == []
    assert "2 sent via the local GOV.UK Notify" in counts.render()

    # A manager's overdue email without its text, a SENCO texted, a lost receipt.
    lone = _sent("overdue", "manager", cause="clock-event-2/STAFF-1")
    wrong = count_notify(
        [*notifications, lone, _sent("overdue", "senco", "sms")],
        5,
        [*messages, {"id": "n3", "type": "sms"}],
        callbacks,
        {},
    )
    assert wrong.problems == [
        "notify accepted delivery receipts for 2 of the 3 messages the local GOV.UK "
        "Notify took",
        "2 overdue alerts to managers by email but 1 by text, 1 of them one way "
        "only: managers chose both",
        "a SENCO was texted, but the SENCOs chose email",
    ]


def test_an_alert_withdrawn_between_its_email_and_its_text_is_no_mismatch() -> None:
    email = _sent("overdue", "manager", cause="clock-event-3/STAFF-1")
    correction = _sent(
        "correction", "manager", cause="withdrawn-1/STAFF-1", corrects=email.alert_id
    )
    lone = _sent("overdue", "manager", cause="clock-event-4/STAFF-1")

    withdrawn = count_notify([email, correction], 2, [], [], {})
    not_withdrawn = count_notify([email, correction, lone], 3, [], [], {})

    assert withdrawn.problems == []
    assert not_withdrawn.problems == [
        "1 overdue alerts to managers by email but 0 by text, 1 of them one way only: "
        "managers chose both"
    ]


def test_a_digest_is_one_email_for_the_alerts_it_carries(
    caseload: list[PlannedCase],
) -> None:
    good = summary_of(caseload)
    # 12 NotificationSent events, 3 of them carried by one digest: 10 emails.
    digest = replace(good, emails_in_catcher=10, email_messages=10)
    lost = replace(good, emails_in_catcher=9, email_messages=10)

    assert reconcile(digest, len(caseload)) == []
    assert reconcile(lost, len(caseload)) == [
        "9 emails in the mail catcher, but 10 sent over SMTP (NotificationSent "
        "events, a digest once)"
    ]
