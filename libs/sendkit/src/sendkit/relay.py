"""The outbox relay: publishes a service's appended events to its Kafka topic, in order.

The events table is the outbox. The relay reads the events after its checkpoint (the
position it last finished publishing, kept in the same store under ``relay:<topic>``),
sends them with an idempotent producer (``acks=all``, at most five requests in flight,
which keeps each partition's order through the producer's own retries), waits until
Kafka has acknowledged every one, and only then moves the checkpoint. Killed at any
point, it starts again from the last checkpoint: events after it are sent again, with
the same ``ce_id`` and the same bytes, and consumers drop the repeats. Nothing is
skipped, because positions grow in commit order and the checkpoint only ever covers
events Kafka has acknowledged; nothing is reordered within a case, because a case is one
key and so one partition, and events are sent in position order.

One relay publishes per topic and store at a time. The process entry point below takes
the relay lock of ``sendkit.relay_lock`` (a PostgreSQL advisory lock, or a file lock
beside a SQLite file) and stands by while another replica holds it, so a deployment
may run several replicas; a relay run by other code goes through
``run_one_at_a_time`` (or ``exclusive_relay_loop``, for the relay thread of an HTTP
app) for the same guarantee.

Known weakness: if Kafka stays unreachable longer than the producer's delivery timeout
(two minutes by default) part-way through a batch, the producer may give up on one
record while a later record of the same partition still succeeds; the batch is then
re-sent whole, so nothing is lost, but a consumer can see that later event before the
repeat of the earlier one. ``ce_sequence`` (the stream version) lets a consumer notice.

Run it as a process with ``python -m sendkit.relay --store sqlite:///intake.db --topic
send.intake.events --source /send/intake`` (``--help`` lists the options).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from sendkit.background import (
    STOP_TIMEOUT_S,
    BackgroundLoop,
    bootstrapped_here,
    mark_bootstrapped,
    on_loop_thread,
)
from sendkit.envelope import to_kafka
from sendkit.health import PROGRESS, Progress, supervised
from sendkit.kafka_security import kafka_python_config
from sendkit.logging import configure_logging
from sendkit.relay_lock import relay_lock_for, run_exclusively
from sendkit.store import EventStore, StoreUnavailable, open_store

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500
DEFAULT_POLL_INTERVAL_S = 0.5
MAX_BACKOFF_S = 30.0
STOP_FLUSH_S = 5.0
"""How long a stopping relay still waits for Kafka to acknowledge the batch it sent."""
PROBE_TIMEOUT_S = 5.0
"""How long one bootstrap probe waits for a broker (short, so a stop is seen soon)."""


class RelayError(Exception):
    """Root of the relay's errors."""


class PublishFailed(RelayError):
    """Kafka did not acknowledge a batch; the checkpoint stayed where it was."""


class _RelayMetrics:
    """The relay's series in one registry; made once per registry and shared."""

    _made: weakref.WeakKeyDictionary[CollectorRegistry, _RelayMetrics] = (
        weakref.WeakKeyDictionary()
    )
    _lock = threading.Lock()

    def __init__(self, registry: CollectorRegistry) -> None:
        self.published = Counter(
            "sendkit_relay_published_total",
            "Events the outbox relay has published and Kafka has acknowledged.",
            ["topic"],
            registry=registry,
        )
        self.failures = Counter(
            "sendkit_relay_failures_total",
            "Relay rounds that failed (Kafka or the store) and will be retried.",
            ["topic"],
            registry=registry,
        )
        self.checkpoint = Gauge(
            "sendkit_relay_checkpoint_position",
            "The store position up to which every event has been published.",
            ["topic"],
            registry=registry,
        )
        self.lag = Gauge(
            "sendkit_relay_lag_events",
            "Events committed to the store and not yet published.",
            ["topic"],
            registry=registry,
        )

    @classmethod
    def of(cls, registry: CollectorRegistry) -> _RelayMetrics:
        with cls._lock:
            if registry not in cls._made:
                cls._made[registry] = cls(registry)
            return cls._made[registry]


class OutboxRelay:
    """Publishes the events of one store to one topic, resuming from a checkpoint.

    ``bootstrap`` is a comma-separated ``host:port`` list. The producer is made on the
    first round, so constructing a relay never waits for Kafka. ``producer_config``
    adds or overrides kafka-python producer settings (for TLS or SASL); settings that
    would break ordering or durability are refused.
    """

    def __init__(
        self,
        store: EventStore,
        topic: str,
        bootstrap: str,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        checkpoint_name: str | None = None,
        flush_timeout_s: float = 60.0,
        linger_ms: int = 5,
        producer_config: Mapping[str, Any] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size is {batch_size}: it must be at least 1")
        config = dict(producer_config or {})
        _refuse_unsafe_producer_settings(config)
        self.store = store
        self.topic = topic
        self.bootstrap = bootstrap
        self.batch_size = batch_size
        self.checkpoint_name = checkpoint_name or f"relay:{topic}"
        self._flush_timeout_s = flush_timeout_s
        self._producer_config: dict[str, Any] = {
            "bootstrap_servers": bootstrap.split(","),
            "client_id": f"relay-{topic}",
            "enable_idempotence": True,
            "acks": "all",
            "max_in_flight_requests_per_connection": 5,
            "linger_ms": linger_ms,
            # TLS and SASL as KAFKA_SECURITY_PROTOCOL and the rest say; config wins.
            **kafka_python_config(),
            **config,
        }
        self._producer: KafkaProducer | None = None
        self._checkpoint: int | None = None
        self._metrics = _RelayMetrics.of(registry or REGISTRY)
        self._stopping: threading.Event | None = None
        self._read: int | None = None

    @property
    def checkpoint(self) -> int:
        """The position up to which everything is published (read from the store)."""
        if self._checkpoint is None:
            self._checkpoint = self.store.get_checkpoint(self.checkpoint_name)
        return self._checkpoint

    def lag(self) -> int:
        """Events committed and not yet published."""
        return max(self.store.last_position() - self.checkpoint, 0)

    def run_once(self) -> int:
        """Publish the next batch after the checkpoint; return how many were published.

        Raises ``PublishFailed`` if Kafka did not acknowledge all of them, and
        ``StoreUnavailable`` if the store could not be read or the checkpoint written;
        in both cases the checkpoint has not moved and the next round sends the batch
        again.
        """
        self._read = None
        after = self.checkpoint
        events = self.store.read_all(after=after, limit=self.batch_size)
        self._read = len(events)
        if not events:
            if on_loop_thread() and not bootstrapped_here():
                # Nothing to send yet, but readiness waits for a first contact.
                self._probe_or_fail()
            self._metrics.lag.labels(self.topic).set(0)
            return 0

        # Send everything, then wait for every acknowledgement.
        producer = self._connected()
        try:
            futures = []
            for event in events:
                record = to_kafka(event)
                futures.append(
                    producer.send(
                        self.topic,
                        key=record.key,
                        value=record.value,
                        headers=record.headers,
                    )
                )
            self._await_acknowledgements(producer)
        except KafkaError as error:
            raise PublishFailed(
                f"Kafka at {self.bootstrap} did not take events after position "
                f"{after} for {self.topic} ({error!r}); they will be sent again"
            ) from error
        failed = [f for f in futures if not f.is_done or f.failed()]
        if failed:
            first = failed[0].exception if failed[0].is_done else "no acknowledgement"
            raise PublishFailed(
                f"Kafka did not acknowledge {len(failed)} of {len(events)} events for "
                f"{self.topic} (first error: {first!r}); they will be sent again"
            )

        # Only acknowledged events are covered by the checkpoint.
        last = events[-1].position
        with self.store.transaction() as tx:
            tx.set_checkpoint(self.checkpoint_name, last)
        self._checkpoint = last
        self._metrics.published.labels(self.topic).inc(len(events))
        self._metrics.checkpoint.labels(self.topic).set(last)
        self._metrics.lag.labels(self.topic).set(self.lag())
        log.debug(
            "relay published %d events up to position %d",
            len(events),
            last,
            extra={"topic": self.topic, "count": len(events), "position": last},
        )
        return len(events)

    def run_forever(
        self,
        stop_event: threading.Event,
        poll_interval: float = DEFAULT_POLL_INTERVAL_S,
        *,
        progress: Progress | None = None,
    ) -> None:
        """Publish until ``stop_event`` is set; failures are logged and retried.

        A failed round is retried after a backoff that doubles up to 30 seconds. The
        producer is made afresh after a Kafka failure, so a stuck connection cannot
        keep the relay down. Once ``stop_event`` is set, the batch in flight gets
        ``STOP_FLUSH_S`` more to be acknowledged, or is abandoned with the checkpoint
        where it was (the next relay sends it again). The producer is closed on return.

        Each round is recorded on ``progress`` (``sendkit.health``; by default one
        tracked in ``PROGRESS`` while this runs): fine when it published or found
        nothing, blocked when it read events and could not publish them.
        """
        log.info(
            "relay started for %s at position %d",
            self.topic,
            self.checkpoint,
            extra={"topic": self.topic, "position": self.checkpoint},
        )
        own_progress = progress is None
        if progress is None:
            progress = PROGRESS.track(f"relay {self.topic}")
        self._stopping = stop_event
        failures = 0
        try:
            while not stop_event.is_set():
                try:
                    published = self.run_once()
                except (RelayError, StoreUnavailable) as error:
                    # Events read and not published are known to wait; a store that
                    # could not be read leaves the work unknown.
                    progress.record(0, self._read or None)
                    failures += 1
                    delay = min(MAX_BACKOFF_S, poll_interval * 2**failures)
                    self._metrics.failures.labels(self.topic).inc()
                    log.error(
                        "relay round failed; retrying in %.1f s: %s",
                        delay,
                        error,
                        extra={"topic": self.topic, "error_type": type(error).__name__},
                    )
                    if isinstance(error, PublishFailed):
                        self._disconnect()
                    stop_event.wait(delay)
                    continue
                progress.record(published, 0)
                failures = 0
                if published < self.batch_size:
                    stop_event.wait(poll_interval)
        finally:
            if own_progress:
                PROGRESS.untrack(progress)
            self.close()
            self._stopping = None
            log.info(
                "relay stopped for %s at position %d",
                self.topic,
                self.checkpoint,
                extra={"topic": self.topic, "position": self.checkpoint},
            )

    def close(self) -> None:
        """Flush and close the producer (the store belongs to the caller)."""
        self._disconnect()

    def forget_checkpoint(self) -> None:
        """Read the checkpoint from the store again at the next round (another
        replica may have moved it while this one stood by)."""
        self._checkpoint = None

    def __enter__(self) -> OutboxRelay:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def _connected(self) -> KafkaProducer:
        if self._producer is None:
            try:
                self._producer = KafkaProducer(**self._producer_config)
            except KafkaError as error:
                raise PublishFailed(
                    f"cannot connect a producer to Kafka at {self.bootstrap} "
                    f"({error!r}): check KAFKA_BOOTSTRAP_SERVERS and that the broker "
                    "is up"
                ) from error
            mark_bootstrapped()
        return self._producer

    def _probe_or_fail(self) -> None:
        try:
            self.probe_kafka()
        except KafkaError as error:
            raise PublishFailed(
                f"no Kafka broker answered at {self.bootstrap} ({error!r}): check "
                "KAFKA_BOOTSTRAP_SERVERS and that the broker is up"
            ) from error

    def probe_kafka(self, timeout_s: float = PROBE_TIMEOUT_S) -> None:
        """Bootstrap a producer with the relay's settings once and close it; raises
        ``KafkaError`` when no broker answers within ``timeout_s``. A readiness check
        learns from this that the relay's producer can reach Kafka, even on a replica
        that stands by or has nothing to publish."""
        producer = KafkaProducer(
            **{
                **self._producer_config,
                "bootstrap_timeout_ms": int(timeout_s * 1000),
                "client_id": f"relay-probe-{self.topic}",
            }
        )
        producer.close(timeout=timeout_s)
        mark_bootstrapped()

    def _await_acknowledgements(self, producer: KafkaProducer) -> None:
        """Wait for Kafka to acknowledge what was sent, in slices, so a stop is seen:
        after a stop at most ``STOP_FLUSH_S`` more. Returns when every record is
        acknowledged or the time is up; the caller checks the futures."""
        deadline = time.monotonic() + self._flush_timeout_s
        stop_deadline: float | None = None
        while True:
            now = time.monotonic()
            stopping = self._stopping is not None and self._stopping.is_set()
            if stop_deadline is None and stopping:
                stop_deadline = now + STOP_FLUSH_S
            end = deadline if stop_deadline is None else min(deadline, stop_deadline)
            if now >= end:
                return
            try:
                producer.flush(timeout=min(1.0, end - now))
                return
            except KafkaTimeoutError:
                continue

    def _disconnect(self) -> None:
        producer, self._producer = self._producer, None
        stopping = self._stopping is not None and self._stopping.is_set()
        if producer is not None:
            try:
                # Stopping, unacknowledged records are abandoned to the next relay.
                producer.close(
                    timeout=min(STOP_FLUSH_S, self._flush_timeout_s)
                    if stopping
                    else self._flush_timeout_s
                )
            except KafkaError:
                log.warning(
                    "relay producer did not close cleanly",
                    extra={"topic": self.topic},
                    exc_info=True,
                )


_UNSAFE_SETTINGS: dict[str, Callable[[Any], bool]] = {
    "enable_idempotence": lambda value: value is not True,
    "acks": lambda value: value not in ("all", -1),
    "max_in_flight_requests_per_connection": lambda value: int(value) > 5,
    "retries": lambda value: value == 0,
    "key_serializer": lambda value: value is not None,
    "value_serializer": lambda value: value is not None,
}


def _refuse_unsafe_producer_settings(config: Mapping[str, Any]) -> None:
    unsafe = sorted(
        name
        for name, bad in _UNSAFE_SETTINGS.items()
        if name in config and bad(config[name])
    )
    if unsafe:
        raise ValueError(
            f"producer_config sets {', '.join(unsafe)} in a way that could lose or "
            "reorder events: leave idempotence, acks=all, at most 5 in flight, retries "
            "and the (absent) serializers as the relay sets them"
        )


def run_one_at_a_time(
    make_relay: Callable[[], OutboxRelay],
    store: EventStore,
    stop_event: threading.Event,
    *,
    poll_interval: float = DEFAULT_POLL_INTERVAL_S,
) -> None:
    """Publish with relays from ``make_relay`` while this replica holds the relay lock
    of ``store`` (``sendkit.relay_lock``), standing by while another does, until
    ``stop_event`` is set; a service's relay entry point, and the relay thread of a
    service's HTTP app, is this call.

    Run on a ``sendkit.background.BackgroundLoop``, the relay sets the loop's
    ``bootstrapped`` flag, which readiness reads, once a producer of it has reached
    Kafka: the publisher when it first connects (a round with nothing to send probes
    instead), a standby by probing at each of its rounds until one succeeds.
    """
    probe = make_relay()  # makes no connection: only its checkpoint name is wanted
    lock = relay_lock_for(store, probe.checkpoint_name)
    probe.close()

    def while_standing_by() -> None:
        # A standby publishes nothing, so only a probe tells readiness that its
        # producer could reach Kafka; once told, it probes no more.
        if not on_loop_thread() or bootstrapped_here():
            return
        try:
            probe.probe_kafka()
        except KafkaError as error:
            log.debug(
                "relay standby cannot reach Kafka yet: %r",
                error,
                extra={"topic": probe.topic},
            )

    try:
        run_exclusively(
            make_relay,
            lock,
            stop_event,
            poll_interval=poll_interval,
            on_standby=while_standing_by,
        )
    finally:
        lock.release()


def exclusive_relay_loop(
    relay: OutboxRelay,
    *,
    poll_interval: float = DEFAULT_POLL_INTERVAL_S,
    stop_timeout_s: float = STOP_TIMEOUT_S,
) -> BackgroundLoop:
    """``relay`` publishing on a ``BackgroundLoop`` (not yet started) while this
    replica holds the relay lock of its store, as ``run_one_at_a_time`` does: the
    relay thread of a service's HTTP app. Each tenure reads the checkpoint afresh."""

    def this_relay() -> OutboxRelay:
        relay.forget_checkpoint()
        return relay

    return BackgroundLoop(
        f"relay-{relay.topic}",
        lambda stop: run_one_at_a_time(
            this_relay, relay.store, stop, poll_interval=poll_interval
        ),
        stop_timeout_s=stop_timeout_s,
    )


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sendkit.relay",
        description="Publish a service's stored events to its Kafka topic, in order.",
    )
    parser.add_argument(
        "--store",
        required=True,
        help="store URL: sqlite:///path.db, postgresql://host/db or memory://",
    )
    parser.add_argument("--topic", required=True, help="topic, e.g. send.intake.events")
    parser.add_argument(
        "--source", required=True, help="CloudEvents source, e.g. /send/intake"
    )
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        help="Kafka host:port list (default: $KAFKA_BOOTSTRAP_SERVERS or "
        "127.0.0.1:9092)",
    )
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument(
        "--poll-interval", type=float, default=DEFAULT_POLL_INTERVAL_S, help="seconds"
    )
    parser.add_argument(
        "--until-caught-up",
        action="store_true",
        help="exit once every stored event is published, instead of running on",
    )
    parser.add_argument(
        "--log-format",
        choices=("json", "text"),
        default=os.environ.get("LOG_FORMAT", "json"),
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the relay as a process until SIGTERM or SIGINT.

    The stop is bounded by ``SEND_SHUTDOWN_TIMEOUT_SECONDS`` and the rounds keep the
    file named by ``SEND_HEARTBEAT_FILE`` (see ``sendkit.health``).
    """
    arguments = _parse_arguments(argv)
    configure_logging("relay", log_format=arguments.log_format)
    with supervised("relay") as shutdown:
        stop = shutdown.stop
        store = open_store(arguments.store, arguments.source)

        def make_relay() -> OutboxRelay:
            return OutboxRelay(
                store,
                arguments.topic,
                arguments.bootstrap,
                batch_size=arguments.batch_size,
            )

        relay = make_relay()
        # One publisher at a time, whichever replica it is (see sendkit.relay_lock).
        lock = relay_lock_for(store, relay.checkpoint_name)
        try:
            if arguments.until_caught_up:
                while not stop.is_set() and not lock.try_acquire():
                    stop.wait(arguments.poll_interval)
                while not stop.is_set() and relay.run_once():
                    pass
            else:
                run_exclusively(
                    make_relay, lock, stop, poll_interval=arguments.poll_interval
                )
        finally:
            relay.close()
            lock.release()
            store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
