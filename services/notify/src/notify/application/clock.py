"""Notify's calendar clock: the time digests, termly lists and quiet hours follow.

By default (``NOTIFY_CLOCK=wall``) that is the wall clock. With ``NOTIFY_CLOCK=ticks``
it is the latest tick the worker has read on ``send.clock.ticks``, the time the
deadlines processor keeps too. A demo that moves the platform's clock through months in
minutes then gets one daily digest per simulated day (gathered when a tick passes the
digest time), texts held by the simulated hour, and termly lists by the simulated term.

Only what follows the calendar moves with the ticks. When a send is due, its back-off,
its lease and every recorded timestamp stay on the wall clock, so a retry never waits
for a tick that may not come. Time never goes back: a tick earlier than one already
seen changes nothing. The latest tick is kept in notify's database (``meta``), so a
worker that restarts knows the time before the next tick arrives.

Known limits: between two ticks the clock stands still (it is the time of the latest
tick, not that time plus the seconds since), so with a ticker every minute a digest is
gathered up to a minute late; and before the first tick a new ledger knows no time, so
the scheduler records nothing until one arrives and alerts raised before then are put in
the digest of the wall clock's day.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime

from notify.application.ports import NotifyDatabase
from notify.errors import UnreadableMessage
from sendkit.envelope import format_time, parse_time
from sendkit.events import utcnow

log = logging.getLogger(__name__)

LAST_TICK_KEY = "clock.last_tick"
WALL = "wall"
TICKS = "ticks"


def tick_time(value: bytes | None) -> datetime:
    """The ``now`` of one tick record's value; ``UnreadableMessage`` if it has none.

    A tick is JSON with an aware ISO 8601 ``now`` (the deadlines ticker's format);
    every other field is ignored.
    """
    try:
        body = json.loads(value or b"")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UnreadableMessage("the tick's value is not JSON") from None
    text = body.get("now") if isinstance(body, dict) else None
    if not isinstance(text, str):
        raise UnreadableMessage(
            'a tick is a JSON object with a "now" string, such as '
            '{"now": "2025-02-03T08:00:00Z"}'
        )
    try:
        moment = parse_time(text)
    except ValueError:
        raise UnreadableMessage(
            f"the tick's now {text!r} is not an ISO 8601 time with an offset"
        ) from None
    if moment.tzinfo is None:
        raise UnreadableMessage(f"the tick's now {text!r} has no offset")
    return moment


class TickClock:
    """The time of the latest tick seen; the wall clock's until there is one.

    ``advance`` is called by the worker's tick agent; ``now`` by the scheduler, the
    handlers (for the digest an alert goes in) and the delivery (quiet hours). Safe to
    call from any thread.
    """

    def __init__(
        self,
        db: NotifyDatabase | None = None,
        *,
        wall: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._wall = wall
        self._lock = threading.Lock()
        self._latest: datetime | None = None
        if db is not None:
            with db.transaction() as tx:
                kept = tx.get_meta(LAST_TICK_KEY)
            if kept:
                self._latest = parse_time(kept)

    @property
    def has_tick(self) -> bool:
        with self._lock:
            return self._latest is not None

    @property
    def latest(self) -> datetime | None:
        """The latest tick's time, or ``None`` before the first."""
        with self._lock:
            return self._latest

    def now(self) -> datetime:
        with self._lock:
            latest = self._latest
        return latest if latest is not None else self._wall()

    def advance(self, moment: datetime) -> bool:
        """Take a tick's time; whether the clock moved (a tick in the past does not)."""
        if moment.tzinfo is None:
            raise ValueError("a tick's time must be an aware datetime")
        with self._lock:
            if self._latest is not None and moment <= self._latest:
                return False
            self._latest = moment
        if self._db is not None:
            # Kept after the move, so a restart resumes from it; a tick lost between
            # the two is only the one the next tick replaces.
            with self._db.transaction() as tx:
                kept = tx.get_meta(LAST_TICK_KEY)
                if not kept or parse_time(kept) < moment:
                    tx.set_meta(LAST_TICK_KEY, format_time(moment))
        log.debug("clock moved", extra={"now": format_time(moment)})
        return True

    def take_record(self, value: bytes | None) -> bool:
        """``advance`` to the time of a tick record's value."""
        return self.advance(tick_time(value))


def when_moved(clock: TickClock) -> Callable[[], object]:
    """A token that changes whenever ``clock`` moves (for running what it drives)."""
    return lambda: clock.latest
