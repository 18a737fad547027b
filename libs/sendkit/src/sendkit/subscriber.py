"""An idempotent Kafka subscriber: each event handled once in effect, bad ones aside.

Kafka delivers at least once, so the subscriber records the ``ce_id`` of every event it
has handled in the same store transaction as whatever the handler appends. For each
record it:

1. reads the CloudEvents envelope (``sendkit.envelope.from_kafka``);
2. opens one store transaction; if the consumer has processed this ``ce_id`` before it
   does nothing more, otherwise it calls ``handler(event, tx)`` (the handler appends its
   own events through ``tx``) and marks the id processed; the transaction commits;
3. only then lets the Kafka offset be committed (offsets of one poll are committed
   together, after every record of the poll is durable).

A redelivery, a rebalance or a replay from offset 0 therefore changes nothing.

A record the subscriber cannot handle goes to the consumer's own dead-letter topic,
``<consumer>.<topic>.dlq``, byte for byte (key, value and headers) with headers saying
why (``dlq_reason``, ``dlq_error_type``, ``dlq_source_topic``, ``dlq_source_partition``,
``dlq_source_offset``, ``dlq_consumer``). That happens when the record is not a valid
envelope, or when the handler raises a permanent error: ``Unprocessable``, a pydantic
``ValidationError``, ``ValueError`` or ``KeyError`` (the list can be changed per
subscriber). The dead letter is flushed to Kafka before the offset is committed, an
error is logged (without the payload) and ``sendkit_subscriber_dead_letters_total`` is
incremented; consumption goes on.

Transient failures are retried in place, with a backoff that doubles up to a cap: the
store being locked or unreachable (``StoreUnavailable``, ``sqlite3.OperationalError``),
a version conflict (the handler reloads and decides again), ``RetryLater`` from the
handler, and Kafka failing to take a dead letter. If they last longer than the retry
budget, the poll gives up on the rest of its records and rewinds to the first one not
handled, so the next poll starts there and the consumer keeps its group membership.

A poll that fails because Kafka is away (a ``KafkaError`` from the consumer: a
broker restarting, a coordinator not yet elected) is logged and tried again after the
same capped backoff, for as long as it takes: the consumer reconnects by itself, and
``run_forever`` carries on with the records that follow.

Any other exception from the handler is taken for a bug: the partition is rewound to
the record and the exception propagates out of ``poll_once`` and ``run_forever``, so
the process stops (and is restarted by its supervisor) rather than set aside every
message a faulty release cannot handle.

A dead-lettered record is not marked processed, so a replay sends it to the dead-letter
topic again; the ``dlq_source_*`` headers identify repeats.

kafka-python 3.0.12 can leave a member that joined its group with no partitions when a
short poll ends between JoinGroup and SyncGroup; it then polls nothing for ever, and
its partitions wait. A watchdog in ``poll_once`` leaves the group and subscribes again
when the consumer has had no partition for ``unassigned_rejoin_s`` (45 s by default)
while its topic has some. A member of a group with more members than partitions is
idle by design and would rejoin at that interval, causing a rebalance each time: run
no more replicas of a subscriber than its topic has partitions.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import REGISTRY, CollectorRegistry, Counter
from pydantic import ValidationError

from send_schemas.topics import dead_letter_topic
from sendkit.envelope import ConsumedRecord, InvalidEnvelope, ReceivedEvent, from_kafka
from sendkit.health import PROGRESS, Progress
from sendkit.kafka_security import kafka_python_config
from sendkit.logging import kafka_correlation_scope
from sendkit.store import EventStore, StoreUnavailable, Transaction, VersionConflict

log = logging.getLogger(__name__)

UNASSIGNED_REJOIN_S = 45.0
"""How long a subscriber may have no partition of its topic before it joins again."""

Handler = Callable[[ReceivedEvent, Transaction], None]
"""Handles one event; appends what it decides through the transaction it is given."""

_T = TypeVar("_T")

HANDLED = "handled"
DUPLICATE = "duplicate"
DEAD_LETTERED = "dead_lettered"

_MAX_REASON_BYTES = 1000


class SubscriberError(Exception):
    """Root of the subscriber's errors."""


class Unprocessable(SubscriberError):
    """Raised by a handler for an event it can never handle; the event is set aside.

    The message goes into the dead-letter record's ``dlq_reason`` header and the log,
    so it should say what is wrong without quoting personal data.
    """


class RetryLater(SubscriberError):
    """Raised by a handler when something it needs is briefly unavailable."""


PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    Unprocessable,
    ValidationError,
    ValueError,
    KeyError,
)
"""Handler errors that send an event to the dead-letter topic by default."""

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    StoreUnavailable,
    sqlite3.OperationalError,
    VersionConflict,
    RetryLater,
    KafkaError,
)
"""Errors retried in place by default."""

# Messages of these types are written by this code or deliberately by handler
# authors, so they may be logged; other exceptions' text may quote the payload.
_LOGGABLE_REASONS: tuple[type[BaseException], ...] = (
    InvalidEnvelope,
    Unprocessable,
    ValidationError,
    KeyError,
)


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """What one ``poll_once`` did with the records it received."""

    handled: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    rewound: bool = False

    @property
    def records(self) -> int:
        return self.handled + self.duplicates + self.dead_lettered


class _GaveUp(Exception):
    """Transient failures outlasted the retry budget, or a stop was asked for."""


class _SubscriberMetrics:
    """The subscriber's series in one registry; made once per registry and shared."""

    _made: weakref.WeakKeyDictionary[CollectorRegistry, _SubscriberMetrics] = (
        weakref.WeakKeyDictionary()
    )
    _lock = threading.Lock()

    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "sendkit_subscriber_messages_total",
            "Records a subscriber finished with, by outcome: handled, duplicate "
            "(already processed) or dead_lettered.",
            ["consumer", "topic", "outcome"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "sendkit_subscriber_dead_letters_total",
            "Records sent to the consumer's dead-letter topic, by error type.",
            ["consumer", "topic", "error_type"],
            registry=registry,
        )
        self.retries = Counter(
            "sendkit_subscriber_retries_total",
            "Transient failures retried, by error type.",
            ["consumer", "topic", "error_type"],
            registry=registry,
        )

    @classmethod
    def of(cls, registry: CollectorRegistry) -> _SubscriberMetrics:
        with cls._lock:
            if registry not in cls._made:
                cls._made[registry] = cls(registry)
            return cls._made[registry]


class IdempotentSubscriber:
    """Consumes one topic for one named consumer, handling each event once in effect.

    ``consumer_name`` (``deadlines``, ``notify``, ...) scopes the processed ids in the
    store and names the dead-letter topic; ``group_id`` is the Kafka consumer group.
    The consumer starts from the earliest offset when the group has none, and never
    commits offsets automatically.
    """

    def __init__(
        self,
        consumer_name: str,
        topic: str,
        bootstrap: str,
        group_id: str,
        store: EventStore,
        handler: Handler,
        *,
        dead_letter_to: str | None = None,
        permanent_errors: tuple[type[BaseException], ...] = PERMANENT_ERRORS,
        transient_errors: tuple[type[BaseException], ...] = TRANSIENT_ERRORS,
        poll_timeout_ms: int = 1000,
        max_records: int = 500,
        retry_initial_s: float = 0.1,
        retry_max_s: float = 5.0,
        retry_budget_s: float = 60.0,
        consumer_config: Mapping[str, Any] | None = None,
        producer_config: Mapping[str, Any] | None = None,
        registry: CollectorRegistry | None = None,
        unassigned_rejoin_s: float = UNASSIGNED_REJOIN_S,
    ) -> None:
        self.consumer_name = consumer_name
        self._unassigned_rejoin_s = unassigned_rejoin_s
        self._unassigned_since: float | None = None
        self.topic = topic
        self.group_id = group_id
        self.store = store
        self.handler = handler
        self.dead_letter_topic = dead_letter_to or dead_letter_topic(
            consumer_name, topic
        )
        self._permanent = permanent_errors
        self._transient = transient_errors
        self._poll_timeout_ms = poll_timeout_ms
        self._max_records = max_records
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._retry_budget_s = retry_budget_s
        self._stop = threading.Event()
        self.bootstrap = bootstrap
        self._bootstrap = bootstrap.split(",")
        # TLS and SASL as KAFKA_SECURITY_PROTOCOL and the rest say; the configs win.
        security = kafka_python_config()
        self._producer_config = {**security, **dict(producer_config or {})}
        self._producer: KafkaProducer | None = None
        self._metrics = _SubscriberMetrics.of(registry or REGISTRY)
        self._consumer = KafkaConsumer(
            topic,
            bootstrap_servers=self._bootstrap,
            group_id=group_id,
            client_id=f"{consumer_name}-{topic}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **{**security, **dict(consumer_config or {})},
        )

    # --- the loop ---------------------------------------------------------------------

    def poll_once(self) -> PollOutcome:
        """Fetch one batch, handle each record, then commit the offsets of the batch."""
        batch = self._consumer.poll(
            timeout_ms=self._poll_timeout_ms, max_records=self._max_records
        )
        if not batch:
            self._rejoin_if_left_unassigned()
        counts = {HANDLED: 0, DUPLICATE: 0, DEAD_LETTERED: 0}
        done: dict[TopicPartition, OffsetAndMetadata] = {}
        pending = [(tp, list(records)) for tp, records in batch.items()]
        rewound = False
        try:
            for index, (tp, records) in enumerate(pending):
                for record in records:
                    try:
                        if self._stop.is_set():
                            # Stopping: the rest of the batch is left, uncommitted,
                            # to whichever member of the group polls it next.
                            raise _GaveUp
                        outcome = self._handle(record)
                    except BaseException:
                        # Nothing from here on is durable: make the next poll start at
                        # this record, and at the first record of every later partition.
                        self._rewind(tp, record.offset)
                        for later_tp, later in pending[index + 1 :]:
                            self._rewind(later_tp, later[0].offset)
                        raise
                    counts[outcome] += 1
                    done[tp] = OffsetAndMetadata(record.offset + 1, "", -1)
        except _GaveUp:
            rewound = True
        finally:
            self._commit(done)
        return PollOutcome(
            handled=counts[HANDLED],
            duplicates=counts[DUPLICATE],
            dead_lettered=counts[DEAD_LETTERED],
            rewound=rewound,
        )

    def _rejoin_if_left_unassigned(self) -> None:
        """Subscribe again when the group has left this member without partitions
        for too long while the topic has some (see the module's docstring)."""
        if self._consumer.assignment():
            self._unassigned_since = None
            return
        now = time.monotonic()
        if self._unassigned_since is None:
            self._unassigned_since = now
            return
        if now - self._unassigned_since < self._unassigned_rejoin_s:
            return
        if not self._consumer.partitions_for_topic(self.topic):
            return  # the topic has no partitions (yet): nothing to be assigned
        log.warning(
            "subscriber %s has had no partition of %s for %.0f s: joining again",
            self.consumer_name,
            self.topic,
            now - self._unassigned_since,
            extra={"consumer": self.consumer_name, "topic": self.topic},
        )
        self._unassigned_since = None
        self._consumer.unsubscribe()
        self._consumer.subscribe([self.topic])

    def run_forever(
        self, stop_event: threading.Event, *, progress: Progress | None = None
    ) -> None:
        """Poll until ``stop_event`` is set, then leave the group and close.

        A stop is seen between records and during a retry's backoff: the record in
        hand is finished, the offsets of what was handled are committed, and the rest
        of the batch is left to the next member of the group. Each poll is a round on
        ``progress`` (``sendkit.health``; by default one tracked in ``PROGRESS`` while
        this runs): fine when it handled records or none were waiting, blocked when
        it handled none while the partitions' known high-water marks are ahead of the
        consumer's position.
        """
        log.info(
            "subscriber %s started on %s",
            self.consumer_name,
            self.topic,
            extra={"consumer": self.consumer_name, "topic": self.topic},
        )
        self._stop = stop_event
        own_progress = progress is None
        if progress is None:
            progress = PROGRESS.track(f"subscriber {self.consumer_name} {self.topic}")
        failures = 0
        try:
            while not stop_event.is_set():
                try:
                    outcome = self.poll_once()
                except KafkaError as error:
                    # The broker is away (restarting, unreachable): the client
                    # reconnects by itself, so wait and poll again. Nothing polled
                    # was handled, and no work is known to wait.
                    failures += 1
                    progress.record(0, None)
                    self._poll_failed(error, failures)
                    continue
                failures = 0
                progress.record(
                    outcome.records, 0 if outcome.records else self.known_lag()
                )
        except Exception as error:
            # Only the type: the message of an unexpected error may quote the event.
            log.error(
                "subscriber %s stopped by an unexpected %s; the record will be "
                "redelivered when it restarts",
                self.consumer_name,
                type(error).__name__,
                extra={
                    "consumer": self.consumer_name,
                    "topic": self.topic,
                    "error_type": type(error).__name__,
                },
            )
            raise
        finally:
            if own_progress:
                PROGRESS.untrack(progress)
            self.close()
            log.info(
                "subscriber %s stopped on %s",
                self.consumer_name,
                self.topic,
                extra={"consumer": self.consumer_name, "topic": self.topic},
            )

    def _poll_failed(self, error: KafkaError, failures: int) -> None:
        delay = min(self._retry_max_s, self._retry_initial_s * 2 ** (failures - 1))
        self._metrics.retries.labels(
            self.consumer_name, self.topic, type(error).__name__
        ).inc()
        # Said at the first failure and then every tenth, not at every poll.
        log.log(
            logging.ERROR if failures == 1 or failures % 10 == 0 else logging.DEBUG,
            "subscriber %s cannot poll Kafka (%s); polling again in %.1f s",
            self.consumer_name,
            type(error).__name__,
            delay,
            extra={
                "consumer": self.consumer_name,
                "topic": self.topic,
                "error_type": type(error).__name__,
                "attempt": failures,
            },
        )
        self._stop.wait(delay)

    def known_lag(self) -> int | None:
        """Records behind the position on the assigned partitions, as far as the last
        fetch responses tell (no request is made); ``None`` when none tells."""
        lag: int | None = None
        for tp in self._consumer.assignment() or ():
            try:
                highwater = self._consumer.highwater(tp)
                position = self._consumer.position(tp, timeout_ms=0)
            except KafkaError:  # revoked meanwhile, or no position yet
                continue
            if highwater is None or position is None:
                continue
            lag = (lag or 0) + max(highwater - position, 0)
        return lag

    def close(self) -> None:
        """Leave the consumer group and close the Kafka clients (not the store)."""
        self._consumer.close(autocommit=False)
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.close()

    def __enter__(self) -> IdempotentSubscriber:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    # --- one record -------------------------------------------------------------------

    def _handle(self, record: ConsumedRecord) -> str:
        try:
            event = from_kafka(record)
        except InvalidEnvelope as error:
            self._retrying(partial(self._dead_letter, record, error, None), record)
            return DEAD_LETTERED
        try:
            return self._retrying(partial(self._apply, event, record), record)
        except self._permanent as error:
            self._retrying(partial(self._dead_letter, record, error, event), record)
            return DEAD_LETTERED

    def _apply(self, event: ReceivedEvent, record: ConsumedRecord) -> str:
        with kafka_correlation_scope(record.headers), self.store.transaction() as tx:
            if tx.is_processed(self.consumer_name, event.id):
                outcome = DUPLICATE
            else:
                self.handler(event, tx)
                tx.mark_processed(self.consumer_name, event.id)
                outcome = HANDLED
        self._metrics.messages.labels(self.consumer_name, self.topic, outcome).inc()
        if outcome == DUPLICATE:
            log.debug(
                "event already processed; skipped",
                extra=self._context(record, event),
            )
        return outcome

    def _retrying(self, action: Callable[[], _T], record: ConsumedRecord) -> _T:
        """Run ``action``, retrying transient errors with a capped, doubling backoff."""
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                return action()
            except self._transient as error:
                attempt += 1
                delay = min(
                    self._retry_max_s, self._retry_initial_s * 2 ** (attempt - 1)
                )
                spent = time.monotonic() - started
                self._metrics.retries.labels(
                    self.consumer_name, self.topic, type(error).__name__
                ).inc()
                context = self._context(record, None) | {
                    "error_type": type(error).__name__,
                    "attempt": attempt,
                }
                if spent + delay > self._retry_budget_s or self._stop.is_set():
                    log.error(
                        "transient failure outlasted the retry budget; will poll again",
                        extra=context,
                    )
                    raise _GaveUp from error
                log.warning(
                    "transient failure; retrying in %.2f s", delay, extra=context
                )
                if self._stop.wait(delay):
                    raise _GaveUp from error

    # --- dead letters -----------------------------------------------------------------

    def _dead_letter(
        self,
        record: ConsumedRecord,
        error: BaseException,
        event: ReceivedEvent | None,
    ) -> None:
        error_type = type(error).__name__
        reason = _describe(error)
        headers = list(record.headers or ())
        headers += [
            ("dlq_reason", reason.encode()[:_MAX_REASON_BYTES]),
            ("dlq_error_type", error_type.encode()),
            ("dlq_source_topic", record.topic.encode()),
            ("dlq_source_partition", str(record.partition).encode()),
            ("dlq_source_offset", str(record.offset).encode()),
            ("dlq_consumer", self.consumer_name.encode()),
        ]

        # Flushed at once: the offset of this record may be committed right after.
        producer = self._dead_letter_producer()
        future = producer.send(
            self.dead_letter_topic, key=record.key, value=record.value, headers=headers
        )
        producer.flush()
        future.get(timeout=0)

        self._metrics.dead_letters.labels(
            self.consumer_name, self.topic, error_type
        ).inc()
        self._metrics.messages.labels(
            self.consumer_name, self.topic, DEAD_LETTERED
        ).inc()
        context = self._context(record, event) | {
            "error_type": error_type,
            "dead_letter_topic": self.dead_letter_topic,
        }
        if isinstance(error, _LOGGABLE_REASONS):
            context["reason"] = reason
        log.error(
            "record sent to the dead-letter topic %s (%s)",
            self.dead_letter_topic,
            error_type,
            extra=context,
        )

    def _dead_letter_producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = KafkaProducer(
                bootstrap_servers=self._bootstrap,
                client_id=f"{self.consumer_name}-dead-letters",
                enable_idempotence=True,
                acks="all",
                linger_ms=0,
                **self._producer_config,
            )
        return self._producer

    # --- offsets ----------------------------------------------------------------------

    def _rewind(self, tp: TopicPartition, offset: int) -> None:
        try:
            self._consumer.seek(tp, offset)
        except (KafkaError, AssertionError, ValueError):
            # The partition was revoked meanwhile; its new owner starts from the
            # last committed offset, which is what a rewind would have achieved.
            log.info(
                "partition no longer assigned; not rewound",
                extra={"topic": tp.topic, "partition": tp.partition},
            )

    def _commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        if not offsets:
            return
        try:
            self._consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as error:
            # Every record behind these offsets is durable and marked processed, so
            # redelivering them after a rebalance is harmless.
            log.warning(
                "offset commit failed; the records will be redelivered and skipped",
                extra={
                    "consumer": self.consumer_name,
                    "topic": self.topic,
                    "error_type": type(error).__name__,
                },
            )

    def _context(
        self, record: ConsumedRecord, event: ReceivedEvent | None
    ) -> dict[str, Any]:
        context: dict[str, Any] = {
            "consumer": self.consumer_name,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
        }
        if event is not None:
            context |= {"event_id": event.id, "event_type": event.type}
        return context


def _describe(error: BaseException) -> str:
    """A one-line reason for a dead letter; a validation error without its inputs."""
    if isinstance(error, InvalidEnvelope):
        return error.reason
    if isinstance(error, ValidationError):
        problems = error.errors(include_url=False, include_input=False)
        parts = [
            f"{'.'.join(str(p) for p in problem['loc']) or '(root)'}: {problem['msg']}"
            for problem in problems
        ]
        return f"{error.title} failed validation: " + "; ".join(parts)
    if isinstance(error, KeyError):
        return f"missing key {error.args[0]!r}" if error.args else "missing key"
    return str(error) or type(error).__name__
