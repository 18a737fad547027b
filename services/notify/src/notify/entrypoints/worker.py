"""The notify stream worker (faust): clock and intake events in, ledger entries out.

Three agents read raw bytes (the CloudEvents binary mode: ``ce_*`` headers, JSON
value): one on ``send.deadlines.events`` records the alerts clock events raise (and
follows the annual review clocks), one on ``send.intake.events`` keeps each case's
coordinator and school, one on ``send.reviews.events`` the setting the plan names and
the next review meeting. Each record is read with the kernel's envelope and handled on
a dedicated handler thread, so the database never blocks the event loop; the agent
moves on (and faust may commit the offset) only once the handler's transaction has
committed. The processing guarantee is faust's
``at_least_once``: a redelivered record finds its id already recorded and changes
nothing.

A record that cannot be read (not a CloudEvent, data that breaks the contract) is
copied to notify's own dead-letter topic, ``notify.<source topic>.dlq``, with the reason
in its headers, and the agent goes on with the next one. So is a record whose handler
raises an unexpected error: unlike the kernel's subscriber, which stops the process,
a faust agent that lets an exception escape may skip the record on restart without a
trace (faust-streaming#315), so parking it is the visible choice. A database that
stays locked is retried in place first (``StoreUnavailable``, with backoff).

With ``NOTIFY_CLOCK=ticks`` a fourth agent follows ``send.clock.ticks`` and moves the
calendar clock (``notify.application.clock``) that digests, termly lists and quiet
hours then follow, waking the delivery thread so the scheduler runs at once.

Beside the agents, the worker runs the delivery thread (sends what the ledger holds,
and between passes records the digests and termly lists due) and the outbox relay
(publishes notify's events to ``send.notify.events``); both start with the app and
stop with it.

The relay takes the relay lock of notify's store first (``sendkit.relay_lock``), so
however many replicas run, one publishes and the others stand by. With
``SEND_HEARTBEAT_FILE`` set, the worker keeps that file fresh for an exec liveness
probe while its agents make progress or have nothing waiting (a timer after table
recovery, ``sendkit.health.track_faust_progress``) and the relay's rounds are fine.

Run it with ``python -m notify worker``; SIGTERM or SIGINT stops it cleanly: the
agents finish the record in hand, the delivery thread the send in progress and the
relay its batch (the two threads side by side, for up to ``SMTP_TIMEOUTS_PER_SEND``
SMTP timeouts), faust commits the offsets of what was handled and leaves the group. A
stop that takes longer than ``SEND_SHUTDOWN_TIMEOUT_SECONDS`` ends the process with
status 3 (``sendkit.health.Shutdown``), abandoning what is in flight: records not
committed are read again and found in the ledger, and a send cut off is left claimed
until its lease runs out (``NOTIFY_CLAIM_LEASE_SECONDS``) or, on SQLite, until the next
start releases it; an email the server had accepted by then is sent again with the same
Message-ID. So the deployment gives the worker a shutdown timeout above four SMTP
timeouts (``deploy/generate.py``).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import faust
import mode

from notify.adapters.kafka_records import (
    CONSUMER,
    RawRecord,
    dead_letter_headers,
    header_list,
    read_record,
)
from notify.application.clock import TickClock
from notify.application.delivery import DeliveryThread
from notify.application.handlers import Handled
from notify.application.inbound import InboundEvent
from notify.bootstrap import NotifyRuntime, build_runtime
from notify.entrypoints.relay import RelayThread
from notify.errors import UnreadableMessage
from notify.settings import NotifySettings
from send_schemas.topics import (
    CLOCK_TICKS,
    DEADLINES,
    INTAKE,
    NOTIFY,
    REVIEWS,
    dead_letter_topic,
)
from sendkit.health import (
    HealthSettings,
    Shutdown,
    start_heartbeat,
    track_faust_progress,
)
from sendkit.kafka_security import faust_app_config
from sendkit.logging import configure_logging, correlation_scope
from sendkit.store.base import StoreUnavailable

log = logging.getLogger(__name__)

STORE_RETRIES = 6
"""Attempts at a handler whose database stays locked, before the record is parked."""

READY_MESSAGE = "notify worker ready"

SMTP_TIMEOUTS_PER_SEND = 4
"""The SMTP timeouts one send may wait through (connect, greeting and STARTTLS, the
envelope, the message): how long a stop waits for the send in progress, in timeouts."""


def broker_urls(bootstrap: str) -> list[str]:
    """``KAFKA_BOOTSTRAP_SERVERS`` as faust broker URLs."""
    return [f"kafka://{s.strip()}" for s in bootstrap.split(",") if s.strip()]


class RecordConsumer:
    """Reads one record, runs its handler off the loop, and dead-letters refusals."""

    def __init__(
        self,
        runtime: NotifyRuntime,
        executor: ThreadPoolExecutor,
        dead_letters: dict[str, faust.TopicT],
        *,
        store_retry_delay: float = 0.5,
    ) -> None:
        self._runtime = runtime
        self._executor = executor
        self._dead_letters = dead_letters
        self._retry_delay = store_retry_delay

    async def consume(
        self, event: Any, handler: Callable[[InboundEvent], Handled]
    ) -> Handled | None:
        message = event.message
        record = RawRecord(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            value=message.value,
            headers=header_list(message.headers),
        )
        try:
            inbound = read_record(record)
        except UnreadableMessage as error:
            await self._dead_letter(record, str(error), type(error).__name__)
            return None

        with correlation_scope(inbound.correlation_id):
            try:
                handled = await self._run(handler, inbound)
            except UnreadableMessage as error:
                await self._dead_letter(record, str(error), type(error).__name__)
                return None
            except Exception as error:
                # An exception escaping a faust agent can make it skip the record on
                # restart (faust-streaming#315), silently; parked in the dead-letter
                # topic with its reason, it stays visible and can be replayed.
                log.exception(
                    "handler failed; record sent to the dead-letter topic",
                    extra={"event_id": inbound.id, "event_type": inbound.type},
                )
                await self._dead_letter(
                    record,
                    f"notify could not handle {inbound.type}: {error!r}",
                    type(error).__name__,
                )
                return None

        if handled.pending:
            self._runtime.delivery_thread.wake()
        return handled

    async def _run(
        self, handler: Callable[[InboundEvent], Handled], event: InboundEvent
    ) -> Handled:
        loop = asyncio.get_running_loop()
        delay = self._retry_delay
        for attempt in range(1, STORE_RETRIES + 1):
            try:
                # Run in a copy of this context, so the handler's logs and events carry
                # the record's correlation id on the handler thread too.
                context = contextvars.copy_context()
                return await loop.run_in_executor(
                    self._executor, context.run, handler, event
                )
            except StoreUnavailable:
                if attempt == STORE_RETRIES:
                    raise
                log.warning(
                    "notify database busy; retrying the record",
                    extra={"event_id": event.id, "attempt": attempt},
                )
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable: the loop returns or raises")

    async def _dead_letter(
        self, record: RawRecord, reason: str, error_type: str
    ) -> None:
        target = self._dead_letters[record.topic]
        log.error(
            "unreadable record sent to the dead-letter topic",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "dead_letter_topic": target.get_topic_name(),
                "reason": reason,
            },
        )
        sent = await target.send(
            key=record.key,
            value=record.value if record.value is not None else b"",
            headers=dead_letter_headers(record, reason, error_type),
            force=True,
        )
        # Wait for the broker's answer: the source offset may be committed once the
        # agent moves on, and the record must not exist nowhere.
        await sent


async def follow_tick(
    loop: asyncio.AbstractEventLoop,
    executor: ThreadPoolExecutor,
    runtime: NotifyRuntime,
    clock: TickClock,
    message: Any,
) -> bool:
    """Move the calendar clock to one tick record's time; whether it moved.

    A record that is not a tick is logged and passed over: the topic is the ticker's,
    and a bad tick holds no alert that could be lost.
    """
    try:
        moved = await loop.run_in_executor(executor, clock.take_record, message.value)
    except UnreadableMessage as error:
        log.warning(
            "record on the tick topic passed over: %s",
            error,
            extra={"partition": message.partition, "offset": message.offset},
        )
        return False
    if moved:
        # The scheduler runs when the clock moves: a digest may now be due.
        runtime.delivery_thread.wake()
    return bool(moved)


def create_app(runtime: NotifyRuntime) -> faust.App:
    """The faust app with notify's agents and background services."""
    settings = runtime.settings
    app = faust.App(
        settings.app_id,
        broker=broker_urls(settings.kafka_bootstrap_servers),
        store="memory://",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        topic_disable_leader=True,
        table_standby_replicas=0,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        web_enabled=settings.web_port is not None,
        web_port=settings.web_port or 6066,
        web_bind="127.0.0.1",
        worker_redirect_stdouts=False,
        # TLS and SASL/SCRAM from KAFKA_SECURITY_* (sendkit.kafka_security).
        **faust_app_config(),
    )

    def raw_topic(name: str) -> faust.TopicT:
        return app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )

    deadlines = raw_topic(DEADLINES.name)
    intake = raw_topic(INTAKE.name)
    reviews = raw_topic(REVIEWS.name)
    dead_letters = {
        name: raw_topic(dead_letter_topic(CONSUMER, name))
        for name in (DEADLINES.name, INTAKE.name, REVIEWS.name)
    }
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="notify-handler")
    consumer = RecordConsumer(runtime, executor, dead_letters)

    @app.agent(deadlines, name="notify.raise_clock_alerts")
    async def raise_clock_alerts(stream: Any) -> None:
        async for event in stream.events():
            await consumer.consume(event, runtime.handlers.handle_deadlines_event)

    @app.agent(intake, name="notify.follow_coordinators")
    async def follow_coordinators(stream: Any) -> None:
        async for event in stream.events():
            await consumer.consume(event, runtime.handlers.handle_intake_event)

    @app.agent(reviews, name="notify.follow_reviews")
    async def follow_reviews(stream: Any) -> None:
        async for event in stream.events():
            await consumer.consume(event, runtime.handlers.handle_reviews_event)

    clock = runtime.clock
    if clock is not None:
        ticks = raw_topic(CLOCK_TICKS.name)

        @app.agent(ticks, name="notify.follow_ticks")
        async def follow_ticks(stream: Any) -> None:
            loop = asyncio.get_running_loop()
            async for event in stream.events():
                await follow_tick(loop, executor, runtime, clock, event.message)

    relay = (
        RelayThread(runtime.db.store, NOTIFY.name, settings.kafka_bootstrap_servers)
        if settings.relay_enabled
        else None
    )

    @app.service
    class Background(mode.Service):
        """Starts the delivery thread and the relay with the app, stops them after."""

        async def on_start(self) -> None:
            for topic in dead_letters.values():
                await topic.maybe_declare()
            runtime.delivery_thread.start()
            if relay is not None:
                relay.start()
            log.info(
                READY_MESSAGE,
                extra={"app_id": settings.app_id, "relay": relay is not None},
            )

        async def on_stop(self) -> None:
            # Both threads are asked at once and given one wait between them: the
            # delivery thread's send in progress may take four SMTP timeouts, the
            # relay's batch its acknowledgement. A stop that outlasts
            # SEND_SHUTDOWN_TIMEOUT_SECONDS is ended by the worker's Shutdown.
            threads: list[DeliveryThread | RelayThread] = [runtime.delivery_thread]
            if relay is not None:
                threads.append(relay)
            wait_s = settings.smtp_timeout_seconds * SMTP_TIMEOUTS_PER_SEND
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, stop_side_by_side, threads, wait_s)
            executor.shutdown(wait=True)

    return app


class _Stoppable(Protocol):
    def request_stop(self) -> None: ...

    def stop(self, timeout: float | None = None) -> None: ...

    def is_alive(self) -> bool: ...


def stop_side_by_side(threads: Sequence[_Stoppable], wait_s: float) -> bool:
    """Ask every thread to stop, then wait for them all, ``wait_s`` in all; return
    whether every one has stopped (a thread still running is logged)."""
    for thread in threads:
        thread.request_stop()
    deadline = time.monotonic() + wait_s
    for thread in threads:
        thread.stop(max(deadline - time.monotonic(), 0.0))
    running = [getattr(t, "name", repr(t)) for t in threads if t.is_alive()]
    if running:
        log.error(
            "notify threads still running after %.0f s: %s",
            wait_s,
            ", ".join(running),
            extra={"running": running},
        )
    return not running


class NotifyWorker(faust.Worker):
    """faust's worker, logging through the platform's JSON or text format, its stop
    bounded by ``shutdown`` (``SEND_SHUTDOWN_TIMEOUT_SECONDS``, then exit 3)."""

    def __init__(
        self,
        app: faust.App,
        settings: NotifySettings,
        *,
        shutdown: Shutdown | None = None,
        **kwargs: Any,
    ) -> None:
        self._settings = settings
        self.shutdown = shutdown
        super().__init__(app, loglevel=settings.log_level, **kwargs)

    def _schedule_shutdown(self, signal: Any) -> None:
        # mode's one path from SIGTERM and SIGINT to stopping: bound the stop there.
        if self.shutdown is not None:
            self.shutdown.request(f"signal {getattr(signal, 'name', signal)}")
        super()._schedule_shutdown(signal)

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        configure_logging(
            "notify",
            log_format=self._settings.log_format,
            level=self._settings.log_level,
        )


def run_worker(settings: NotifySettings | None = None) -> None:
    """Run the worker until SIGTERM or SIGINT."""
    settings = settings or NotifySettings()
    configure_logging(
        "notify", log_format=settings.log_format, level=settings.log_level
    )
    runtime = build_runtime(settings)
    heartbeat = None
    try:
        app = create_app(runtime)
        # The exec probe's file: fresh while the agents' committed offsets move or
        # nothing waits, and while the relay's rounds are fine (sendkit.health).
        followed = [DEADLINES.name, INTAKE.name, REVIEWS.name]
        if runtime.clock is not None:
            followed.append(CLOCK_TICKS.name)
        track_faust_progress(app, followed, name="notify worker")
        health = HealthSettings()
        heartbeat = start_heartbeat(health)
        NotifyWorker(
            app,
            settings,
            shutdown=Shutdown(
                "notify-worker", timeout_s=health.shutdown_timeout_seconds
            ),
            redirect_stdouts=False,
        ).execute_from_commandline()
    finally:
        if heartbeat is not None:
            heartbeat.stop()
        runtime.close()
