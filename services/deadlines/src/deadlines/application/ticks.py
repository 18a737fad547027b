"""The record format of a tick on ``send.clock.ticks``: what time it is, and as of what.

A tick's value is JSON::

    {"now": "2025-02-03T09:00:00.000000Z", "tick_id": "<uuid>",
     "after": {"send.intake.events": 17, "send.plans.events": 0, ...}}

``now`` (an aware ISO 8601 timestamp, required, inside the calendar's supported
range) is the time the processor takes as "now" for the cases of the partition the
tick is on. ``after`` (optional) is the
barrier: for each domain topic, the end offset of the same partition when the tick was
sent. The processor applies the tick only after every event below those offsets, and
applies events at or above them only after the tick, so a replay from offset 0 puts
ticks and events in the same order as the first run did, whatever order the broker
hands the topics over in. ``tick_id`` names one round of ticks (the same on every
partition); outputs a tick causes carry it as their correlation id. The key is
``tick``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sendkit.calendar import supported_moment_problem
from sendkit.envelope import format_time, parse_time

TICK_KEY = b"tick"


class InvalidTick(ValueError):
    """A record on the tick topic is not a tick; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Tick:
    """One partition's tick: the time, and the domain topics' offsets it comes after."""

    now: datetime
    tick_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    after: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise InvalidTick(
                "a tick's 'now' must be an aware datetime: pass datetime.now(UTC) or "
                "a timestamp with an offset"
            )


def encode_tick(tick: Tick) -> bytes:
    """The record value of a tick: compact JSON with sorted keys."""
    body = {"now": format_time(tick.now), "tick_id": tick.tick_id}
    if tick.after:
        body["after"] = dict(sorted(tick.after.items()))  # type: ignore[assignment]
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def parse_tick(value: bytes | None) -> Tick:
    """Read a tick record's value, or raise ``InvalidTick`` saying what is wrong."""
    if value is None:
        raise InvalidTick('the tick has no value; send JSON such as {"now": ...}')
    try:
        body = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidTick("the tick's value is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidTick("the tick's value must be a JSON object with a 'now' field")
    now_text = body.get("now")
    if not isinstance(now_text, str):
        raise InvalidTick("the tick has no 'now' string (an aware ISO 8601 time)")
    try:
        now = parse_time(now_text)
    except ValueError:
        raise InvalidTick(
            "the tick's 'now' is not an ISO 8601 time with an offset, such as "
            "2025-02-03T09:00:00Z"
        ) from None
    # A 'now' the calendar cannot count from would fail every clock it reached.
    problem = supported_moment_problem(now)
    if problem is not None:
        raise InvalidTick(f"the tick's 'now': {problem}")
    tick_id = body.get("tick_id")
    if tick_id is not None and not isinstance(tick_id, str):
        raise InvalidTick("the tick's 'tick_id' must be a string")
    after = body.get("after", {})
    if not isinstance(after, dict) or not all(
        isinstance(topic, str)
        and isinstance(offset, int)
        and not isinstance(offset, bool)
        and offset >= 0
        for topic, offset in after.items()
    ):
        raise InvalidTick(
            "the tick's 'after' must map topic names to offsets (whole numbers >= 0)"
        )
    return Tick(now=now, tick_id=tick_id or "", after=dict(after))
