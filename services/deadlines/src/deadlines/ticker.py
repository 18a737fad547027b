"""The ticker: tells every partition of ``send.clock.ticks`` what time it is.

The deadlines processor has no clock of its own; time reaches it as ticks. In
production ``python -m deadlines ticker --every 60`` sends a round each minute; tests
and the demo call ``send_ticks(bootstrap_or_producer_or_ticker, now)`` with whatever
"now" they want, so a year can pass in seconds.

A round is one record per partition (key ``tick``, value as in
``deadlines.application.ticks``). Before sending, the ticker reads the end offsets of
the domain topics on each partition and puts them in the tick as its barrier, so the
processor applies the tick after exactly those events, on the first run and on every
replay. ``send_ticks`` returns once Kafka has acknowledged every tick of the round.

As a process, the ticker waits for Kafka if it is down at start, and a round that
fails is logged and tried again after a backoff that doubles up to 30 seconds, for as
long as the outage lasts, rather than ending the process; after a few failures in a
row it makes its Kafka clients afresh, so it resumes sending as soon as the broker is
back. SIGTERM stops it after the round in hand, within
``SEND_SHUTDOWN_TIMEOUT_SECONDS``. Each round sent keeps ``SEND_HEARTBEAT_FILE``
fresh, and so does a round that failed (``sendkit.health`` counts it as a failure with
no work known to wait), so a Kafka outage does not get the ticker restarted by its
liveness probe; the cost is that a ticker which can never send is not restarted
either, and shows only in its error log and in the absence of ticks.
"""

from __future__ import annotations

import argparse
import logging
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from deadlines.application.ticks import TICK_KEY, Tick, encode_tick
from deadlines.settings import DOMAIN_TOPICS, DeadlinesSettings
from send_schemas.topics import CLOCK_TICKS
from sendkit.background import connect_with_retry
from sendkit.events import utcnow
from sendkit.health import PROGRESS, Progress, supervised
from sendkit.kafka_security import kafka_python_config
from sendkit.logging import KAFKA_CORRELATION_HEADER, configure_logging

log = logging.getLogger(__name__)

BARRIER_TOPICS: tuple[str, ...] = DOMAIN_TOPICS
DEFAULT_TIMEOUT_S = 30.0
RETRY_MAX_S = 30.0
"""The longest wait between two tries at a round that failed."""
RECONNECT_AFTER = 5
"""Failed rounds in a row after which the ticker's clients are made afresh."""


class TickerError(Exception):
    """A round of ticks could not be sent; nothing in it can be relied on."""


@dataclass(frozen=True, slots=True)
class TickRound:
    """What one call sent: the round's id and time, and each partition's barrier."""

    tick_id: str
    now: datetime
    after: dict[int, dict[str, int]] = field(default_factory=dict)

    @property
    def partitions(self) -> tuple[int, ...]:
        return tuple(sorted(self.after))


class Ticker:
    """A producer and an offsets reader for sending rounds of ticks; close it after."""

    def __init__(
        self,
        bootstrap_servers: str | Sequence[str] | None = None,
        *,
        producer: KafkaProducer | None = None,
        topic: str = CLOCK_TICKS.name,
        barrier_topics: Sequence[str] = BARRIER_TOPICS,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if producer is None and bootstrap_servers is None:
            raise TickerError("give the ticker a bootstrap address or a KafkaProducer")
        if bootstrap_servers is None:
            bootstrap_servers = producer.config["bootstrap_servers"]  # type: ignore[union-attr]
        self.topic = topic
        self.barrier_topics = tuple(barrier_topics)
        self.timeout_s = timeout_s
        timeout_ms = int(timeout_s * 1000)
        self._own_producer = producer is None
        security = kafka_python_config()
        self.producer = producer or KafkaProducer(
            bootstrap_servers=bootstrap_servers,
            client_id="deadlines-ticker",
            bootstrap_timeout_ms=timeout_ms,
            **security,
        )
        try:
            self.offsets = KafkaConsumer(
                bootstrap_servers=bootstrap_servers,
                client_id="deadlines-ticker-offsets",
                group_id=None,
                enable_auto_commit=False,
                bootstrap_timeout_ms=timeout_ms,
                **security,
            )
        except BaseException:
            # Retried by the caller while Kafka is down: leak no producer per try.
            if self._own_producer:
                self.producer.close()
            raise

    def send(self, now: datetime, *, tick_id: str | None = None) -> TickRound:
        """Send a tick with ``now`` to every partition; wait until Kafka has them."""
        if now.tzinfo is None:
            raise TickerError(
                "the time to send has no time zone: pass an aware datetime "
                "(datetime.now(UTC))"
            )
        tick_id = tick_id or str(uuid.uuid4())
        partitions = sorted(self.producer.partitions_for(self.topic) or ())
        if not partitions:
            raise TickerError(
                f"topic {self.topic} has no partitions: create the project's topics "
                "first (devstack.kafka_topics)"
            )

        # The barrier is read before anything is sent: each tick comes after exactly
        # the events that were on its partition at this moment.
        wanted = [
            TopicPartition(topic, partition)
            for topic in self.barrier_topics
            for partition in partitions
        ]
        ends = self.offsets.end_offsets(wanted, timeout_ms=int(self.timeout_s * 1000))
        after: dict[int, dict[str, int]] = {p: {} for p in partitions}
        for tp, end in dict(ends).items():
            if tp.partition in after:
                after[tp.partition][tp.topic] = int(end)

        futures = [
            self.producer.send(
                self.topic,
                key=TICK_KEY,
                value=encode_tick(Tick(now=now, tick_id=tick_id, after=after[p])),
                partition=p,
                headers=[(KAFKA_CORRELATION_HEADER, tick_id.encode())],
            )
            for p in partitions
        ]
        self.producer.flush(timeout=self.timeout_s)
        for future in futures:
            try:
                future.get(timeout=self.timeout_s)
            except Exception as error:
                raise TickerError(
                    f"Kafka did not take the tick round {tick_id}: {error}"
                ) from error
        return TickRound(tick_id=tick_id, now=now, after=after)

    def close(self) -> None:
        self.offsets.close()
        if self._own_producer:
            # Bounded: records of a failed round may still wait for a broker.
            self.producer.close(timeout=self.timeout_s)

    def __enter__(self) -> Ticker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def send_ticks(
    target: Ticker | KafkaProducer | str,
    now: datetime,
    *,
    tick_id: str | None = None,
    topic: str = CLOCK_TICKS.name,
    barrier_topics: Sequence[str] = BARRIER_TOPICS,
) -> TickRound:
    """Send one round of ticks with ``now`` through a ticker, a producer or a bootstrap.

    With a producer or a bootstrap address a ticker is made for the call, on ``topic``
    with barriers from ``barrier_topics``, and closed after it (a producer passed in is
    left open); a ``Ticker`` keeps its own topics. Keep a ``Ticker`` to send many.
    """
    if isinstance(target, Ticker):
        return target.send(now, tick_id=tick_id)
    if isinstance(target, KafkaProducer):
        made = Ticker(producer=target, topic=topic, barrier_topics=barrier_topics)
    else:
        made = Ticker(target, topic=topic, barrier_topics=barrier_topics)
    with made as ticker:
        return ticker.send(now, tick_id=tick_id)


def run_ticker(
    settings: DeadlinesSettings, *, every_s: float, once: bool = False
) -> int:
    """Send a round of ticks with the real time every ``every_s`` until stopped.

    With ``once``, send one round and return; a round Kafka does not take then raises
    ``TickerError``. Otherwise a round that fails is logged and tried again after a
    backoff that doubles from ``every_s`` up to ``RETRY_MAX_S``; after
    ``RECONNECT_AFTER`` failures in a row the clients are closed and made afresh.
    """
    with supervised("deadlines-ticker") as shutdown:
        stop = shutdown.stop
        with PROGRESS.tracking("ticker") as progress:
            while not stop.is_set():
                made = _connect(settings, stop)
                if made is None:
                    break
                with made as ticker:
                    log.info(
                        "ticker started",
                        extra={"every_s": every_s, "topic": ticker.topic},
                    )
                    _send_rounds(ticker, stop, progress, every_s=every_s, once=once)
                if once:
                    break
    log.info("ticker stopped")
    return 0


def _connect(settings: DeadlinesSettings, stop: threading.Event) -> Ticker | None:
    return connect_with_retry(
        lambda: Ticker(
            settings.bootstrap_servers,
            topic=settings.ticks_topic,
            barrier_topics=settings.domain_topics,
        ),
        stop,
        what="ticker",
    )


def _send_rounds(
    ticker: Ticker,
    stop: threading.Event,
    progress: Progress,
    *,
    every_s: float,
    once: bool,
) -> None:
    """Send rounds until stopped (or, with ``once``, one round); return early, for
    fresh clients, after ``RECONNECT_AFTER`` failed rounds in a row."""
    failures = 0
    while not stop.is_set():
        try:
            sent = ticker.send(utcnow())
        except Exception as error:
            if once:
                raise
            failures += 1
            # The broker is away, or the round failed in a way not foreseen: either
            # way the ticker's one job is to try again. No work is known to wait, so
            # an outage does not make the liveness probe restart the process.
            progress.record(0, None)
            delay = min(RETRY_MAX_S, every_s * 2 ** (failures - 1))
            log.error(
                "ticks not sent; trying again in %.0f s: %s",
                delay,
                error,
                exc_info=not isinstance(error, (TickerError, KafkaError)),
                extra={"error_type": type(error).__name__, "attempt": failures},
            )
            if stop.wait(delay) or failures >= RECONNECT_AFTER:
                return
            continue
        failures = 0
        progress.record(1, 0)
        log.info(
            "ticks sent",
            extra={
                "tick_id": sent.tick_id,
                "now": sent.now.isoformat(),
                "partitions": len(sent.partitions),
            },
        )
        if once:
            return
        stop.wait(every_s)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deadlines ticker",
        description="Send the time to every partition of send.clock.ticks.",
    )
    parser.add_argument("--every", type=float, default=None, help="seconds between")
    parser.add_argument("--once", action="store_true", help="send one round and exit")
    args = parser.parse_args(argv)
    settings = DeadlinesSettings()
    configure_logging(
        "deadlines-ticker", log_format=settings.log_format, level=settings.log_level
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    every = args.every if args.every is not None else settings.tick_every_seconds
    if every <= 0:
        parser.error("--every must be a positive number of seconds")
    return run_ticker(settings, every_s=every, once=args.once)
