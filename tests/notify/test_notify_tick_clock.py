"""``NOTIFY_CLOCK=ticks``: digests and quiet hours follow the ticks, not the wall clock.

A demo moves the platform's clock through months in minutes with ticks on
``send.clock.ticks``. Here the wall clock is the test's and never reaches a digest time
or the end of the quiet hours; only the ticks move. The ledger is a real SQLite file,
email goes to the real mail catcher, texts through the official client to the local
GOV.UK Notify.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from notify_factories import (
    COORDINATOR,
    FakeClock,
    approaching,
    coordinator_assigned,
    new_case,
    seed,
)
from notify_servers import settings_for, wait_for, wired

from devstack.notify_stub import NotifyStub
from devstack.smtp import MailCatcher
from notify.application.clock import LAST_TICK_KEY, TickClock, tick_time
from notify.bootstrap import NotifyRuntime, build_runtime, open_database
from notify.domain.delivery import AlertStatus
from notify.domain.preferences import ChannelChoice, PreferenceKind, Preferences
from notify.entrypoints.worker import follow_tick
from notify.errors import UnreadableMessage

# The wall clock stands at noon on a day long after the demo's: it never passes 07:30
# of any demo day, and is outside the quiet hours.
WALL = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
DIGEST = Preferences(daily_digest=True)
TEXTS = Preferences(
    channels={
        PreferenceKind.APPROACHING: ChannelChoice.SMS,
        PreferenceKind.OVERDUE: ChannelChoice.BOTH,
    }
)


def tick(moment: datetime) -> bytes:
    stamp = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps({"now": stamp, "tick_id": "t", "after": {}}).encode()


def eight_london(day: date) -> datetime:
    # The demo ticks at 08:00 London; these days are in winter, when that is 08:00 UTC.
    return datetime(day.year, day.month, day.day, 8, 0, tzinfo=UTC)


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[MailCatcher]:
    with MailCatcher(port=0, maildir=tmp_path / "mail") as running:
        yield running


@pytest.fixture
def stub() -> Iterator[NotifyStub]:
    with NotifyStub(deliver_after_s=0.05) as running:
        yield running


@contextmanager
def on_ticks(
    tmp_path: Path,
    catcher: MailCatcher,
    stub: NotifyStub | None,
    wall: FakeClock,
    **changes: Any,
) -> Iterator[NotifyRuntime]:
    """A notify runtime with ``NOTIFY_CLOCK=ticks`` whose wall clock is ``wall``."""
    settings = settings_for(tmp_path, catcher, stub, clock="ticks", **changes)
    runtime = build_runtime(settings, now=wall)
    try:
        yield runtime
    finally:
        runtime.db.close()


def assigned(runtime: NotifyRuntime) -> str:
    case = new_case()
    runtime.handlers.handle_intake_event(
        coordinator_assigned(case, COORDINATOR.staff_id)
    )
    return case


def ticking(runtime: NotifyRuntime) -> TickClock:
    assert runtime.clock is not None, "NOTIFY_CLOCK=ticks should give a tick clock"
    return runtime.clock


def test_a_tick_is_read_for_its_now_and_anything_else_is_refused() -> None:
    assert tick_time(b'{"now": "2024-03-04T08:00:00Z", "after": {"x": 1}}') == (
        datetime(2024, 3, 4, 8, 0, tzinfo=UTC)
    )
    assert tick_time(b'{"now": "2024-06-04T09:00:00+01:00"}') == (
        datetime(2024, 6, 4, 8, 0, tzinfo=UTC)
    )
    for bad in (b"", b"not json", b"[1]", b'{"now": 5}', b'{"now": "yesterday"}'):
        with pytest.raises(UnreadableMessage):
            tick_time(bad)


def test_the_clock_never_goes_back_and_a_restart_resumes_from_the_last_tick(
    ledger_url: str,
) -> None:
    db = open_database(ledger_url)
    try:
        clock = TickClock(db, wall=lambda: WALL)
        assert (clock.has_tick, clock.now()) == (False, WALL)
        first = datetime(2024, 1, 2, 8, 0, tzinfo=UTC)
        assert clock.advance(first) is True
        assert clock.advance(first) is False
        assert clock.advance(first - timedelta(days=1)) is False
        assert clock.now() == first
        later = datetime(2024, 1, 3, 8, 0, tzinfo=UTC)
        assert clock.take_record(tick(later)) is True

        restarted = TickClock(db, wall=lambda: WALL)
        assert (restarted.has_tick, restarted.now()) == (True, later)
        with db.transaction() as tx:
            assert tx.get_meta(LAST_TICK_KEY) == "2024-01-03T08:00:00.000000Z"
    finally:
        db.close()


def test_a_demo_day_by_day_sends_one_digest_per_day(
    tmp_path: Path, catcher: MailCatcher
) -> None:
    wall = FakeClock(WALL)
    with on_ticks(tmp_path, catcher, None, wall) as runtime:
        clock = ticking(runtime)
        seed(runtime.db, preferences={COORDINATOR.staff_id: DIGEST})
        case = assigned(runtime)
        days = [date(2024, 1, 8) + timedelta(days=n) for n in range(4)]
        gathered = []
        for number, day in enumerate(days):
            clock.advance(eight_london(day))
            gathered.append(runtime.scheduler.run().digests)
            # Two alerts on each of the first three days, in the next day's digest.
            if number < 3:
                for lead in (5, 4):
                    runtime.handlers.handle_deadlines_event(
                        approaching(case, due_on=day + timedelta(days=7), lead=lead)
                    )
            runtime.delivery.deliver_due()

        # Day one's tick found nothing held; each later tick gathered the day before.
        assert gathered == [0, 1, 1, 1]
        digests = catcher.wait_for_messages(3)
        assert len(digests) == 3
        subjects = {" ".join(m.subject.split()) for m in digests}
        assert subjects == {
            f"[SEND] Daily digest {day:%a} {day.day} {day:%b %Y}: 2 deadlines "
            "approaching"
            for day in days[1:]
        }
        with runtime.db.transaction() as tx:
            counts = tx.count_by_status()
        assert counts.get(AlertStatus.HELD, 0) == 0


def test_on_the_wall_clock_the_same_demo_sends_no_digest(
    tmp_path: Path, catcher: MailCatcher
) -> None:
    # The contrast: the wall clock stands at noon, so nothing after it is gathered.
    wall = FakeClock(WALL)
    with wired(tmp_path, catcher, None, wall) as runtime:
        assert runtime.clock is None
        seed(runtime.db, preferences={COORDINATOR.staff_id: DIGEST})
        case = assigned(runtime)
        runtime.handlers.handle_deadlines_event(approaching(case))
        assert runtime.scheduler.run().digests == 0
        with runtime.db.transaction() as tx:
            assert tx.count_by_status()[AlertStatus.HELD] == 1


def test_quiet_hours_follow_the_ticks(
    tmp_path: Path, catcher: MailCatcher, stub: NotifyStub
) -> None:
    wall = FakeClock(WALL)
    with on_ticks(tmp_path, catcher, stub, wall, delivery_poll_seconds=5) as runtime:
        clock = ticking(runtime)
        seed(runtime.db, preferences={COORDINATOR.staff_id: TEXTS})
        case = assigned(runtime)
        # 21:00 on the ticks' calendar: inside 20:00-08:00, though the wall says noon.
        clock.advance(datetime(2024, 1, 8, 21, 0, tzinfo=UTC))
        runtime.handlers.handle_deadlines_event(approaching(case))

        evening = runtime.delivery.deliver_due()
        # Looked at again a poll later; still the same evening on the ticks' clock.
        assert runtime.delivery.next_attempt_at() == WALL + timedelta(seconds=5)
        wall.advance(seconds=5)
        later = runtime.delivery.deliver_due()
        clock.advance(eight_london(date(2024, 1, 9)))
        wall.advance(seconds=5)
        morning = runtime.delivery.deliver_due()

        assert (evening.attempted, evening.deferred) == (0, 1)
        assert (later.attempted, later.deferred) == (0, 1)
        assert morning.sent == 1
        [text] = stub.notifications()
        assert text.recipient == COORDINATOR.mobile


@dataclass
class _Message:
    value: bytes
    partition: int = 0
    offset: int = 0


def test_the_worker_moves_the_clock_and_the_delivery_thread_sends_the_digest(
    tmp_path: Path, catcher: MailCatcher
) -> None:
    # The scheduler's own interval is an hour: only the tick can make it run now.
    wall = FakeClock(WALL)
    with on_ticks(
        tmp_path,
        catcher,
        None,
        wall,
        schedule_interval_seconds=3600,
        delivery_poll_seconds=0.2,
    ) as runtime:
        clock = ticking(runtime)
        seed(runtime.db, preferences={COORDINATOR.staff_id: DIGEST})
        case = assigned(runtime)
        executor = ThreadPoolExecutor(max_workers=1)

        async def follow(value: bytes) -> bool:
            loop = asyncio.get_running_loop()
            return await follow_tick(
                loop, executor, runtime, clock, _Message(value, offset=1)
            )

        runtime.delivery_thread.start()
        try:
            assert asyncio.run(follow(tick(eight_london(date(2024, 1, 8))))) is True
            runtime.handlers.handle_deadlines_event(approaching(case))
            assert asyncio.run(follow(b"not a tick")) is False
            assert asyncio.run(follow(tick(eight_london(date(2024, 1, 9))))) is True
            wait_for(lambda: len(catcher.messages()) == 1, "the digest of 9 January")
        finally:
            runtime.delivery_thread.stop(timeout=10)
            executor.shutdown(wait=True)
        [digest] = catcher.messages()
        assert "Daily digest Tue 9 Jan 2024" in " ".join(digest.subject.split())
