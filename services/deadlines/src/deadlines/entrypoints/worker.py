"""The deadlines stream processor as a faust worker: ``python -m deadlines worker``.

One agent, ``clocks``, reads the four domain topics and the tick topic as raw bytes, so
the CloudEvents headers reach the kernel's envelope parser untouched. It hands each
record to the ``Pipeline`` (``deadlines.application.pipeline``), which orders a
partition's inputs so a replay repeats the first run, applies them to the engine,
publishes the clock events, writes the case states and progress once Kafka holds the
events, and commits the inputs' offsets once Kafka holds the states. The agent's
stream never acknowledges a record (``stream.noack()``, and no ``ack``), so faust's
own commit, whose offsets come from acknowledged records and which counts a jump in
the offsets it read as acknowledged, commits nothing; the pipeline commits through
``FaustCommitter``. Records faust drops from the stream (those it had fetched when a
rebalance or recovery suspended its flow) are read again from the broker
(``BrokerOffsets.read``). Processing is at least once, and a repeat re-emits the same
event ids.

Each case's state lives in the faust table ``case-clocks`` (in memory, rebuilt from
its changelog topic ``<app id>-case-clocks-changelog`` at start), keyed by case id. The
worker creates that topic itself before the app starts (compacted, one partition per
input partition) and waits until the broker reports it, so the first write never
meets a missing topic; each write names its changelog partition, so the producer
waits for the topic's metadata rather than failing. That partition is the one the
murmur2 partitioner of every producer of the domain topics picks, so a case's state
is on the changelog partition of the same number as its events and the worker that
owns partition ``p`` of the inputs owns those states. A settler round's states go
out together, a batch per changelog partition (``faust_table_writes``), as its clock
events do (``BatchSender``); the producer's batches are raised to
``PRODUCER_BATCH_BYTES`` for that.

The agent only offers records; a drainer task applies them in batches (see
``Pipeline.run``), and a timer wakes it every second so that an input held back for
its turn is let go after ``DEADLINES_MAX_WAIT_SECONDS`` even if nothing else arrives.

Kafka security (TLS, SASL/SCRAM) comes from ``sendkit.kafka_security``: faust's
``broker_credentials`` from ``faust_app_config()``, and the worker's own kafka-python
clients from ``kafka_python_config()``.

Liveness: once the table is recovered (the worker logs ``deadlines worker ready``), a
timer records a round every ten seconds (``sendkit.health.track_faust_progress``):
fine while the committed offsets of the inputs advance or nothing waits, so the file
named by ``SEND_HEARTBEAT_FILE`` goes stale, and the pod is restarted, only when
inputs wait and nothing is committed; that also catches faust's own consumer-stall
bugs (see the project's Kafka notes). On SIGTERM or SIGINT the agent waits (up to
``SETTLE_TIMEOUT_S``) for the pipeline's last commit, and faust's worker flushes and
leaves the group; a stop that takes longer than
``SEND_SHUTDOWN_TIMEOUT_SECONDS`` ends the process with status 3.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import faust
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from deadlines.adapters.faust_ports import (
    BatchSender,
    BrokerOffsets,
    CachedPartitioner,
    ConsumerFlow,
    FaustCommitter,
    FaustPublisher,
)
from deadlines.adapters.table_states import TableStates, faust_table_writes
from deadlines.application.pipeline import Pipeline
from deadlines.application.ports import InputRecord
from deadlines.application.processor import ClockProcessor
from deadlines.domain.council import CouncilConfig
from deadlines.domain.engine import EngineConfig
from deadlines.domain.errors import DeadlinesError
from deadlines.settings import DeadlinesSettings
from send_schemas.topics import PARTITIONS
from sendkit.calendar import london_date
from sendkit.events import utcnow
from sendkit.health import (
    HealthSettings,
    Shutdown,
    start_heartbeat,
    track_faust_progress,
)
from sendkit.kafka_security import faust_app_config, kafka_python_config
from sendkit.logging import configure_logging

log = logging.getLogger(__name__)

TABLE_NAME = "case-clocks"
READY_MESSAGE = "deadlines worker ready"
NUDGE_INTERVAL_S = 1.0
TOPIC_READY_TIMEOUT_S = 60.0
SETTLE_TIMEOUT_S = 5.0
PRODUCER_BATCH_BYTES = 512 * 1024


class ChangelogUnavailable(DeadlinesError):
    """The table's changelog topic could not be created or seen on the broker."""


def changelog_topic_name(app_id: str) -> str:
    """The changelog topic faust names for the case table."""
    return f"{app_id}-{TABLE_NAME}-changelog"


def ensure_changelog_topic(
    bootstrap_servers: Sequence[str],
    name: str,
    *,
    partitions: int = PARTITIONS,
    replication_factor: int = 1,
    timeout_s: float = TOPIC_READY_TIMEOUT_S,
    security: dict[str, Any] | None = None,
) -> None:
    """Create the compacted changelog topic unless it exists, and wait until the
    broker reports every partition of it with a leader.

    faust would declare the topic itself, but only once partitions are assigned, and
    a declaration that fails on a broker still starting is logged and passed over;
    the table then fails every write. An existing topic is left as it is (faust
    checks its partition count against the inputs' at assignment).
    """
    admin = KafkaAdminClient(
        bootstrap_servers=list(bootstrap_servers),
        client_id="deadlines-changelog",
        **(security if security is not None else kafka_python_config()),
    )
    try:
        deadline = time.monotonic() + timeout_s
        created = False
        while True:
            found = _leaders(admin, name)
            if found and all(found.values()):
                return
            if found is None and not created:
                try:
                    admin.create_topics(
                        [
                            NewTopic(
                                name,
                                num_partitions=partitions,
                                replication_factor=replication_factor,
                                topic_configs={"cleanup.policy": "compact"},
                            )
                        ]
                    )
                    log.info(
                        "changelog topic created",
                        extra={"topic": name, "partitions": partitions},
                    )
                    created = True
                except TopicAlreadyExistsError:
                    created = True
                except KafkaError as error:
                    log.warning(
                        "changelog topic not created yet: %s",
                        error,
                        extra={"topic": name},
                    )
            if time.monotonic() > deadline:
                raise ChangelogUnavailable(
                    f"the changelog topic {name} was not ready on the broker within "
                    f"{timeout_s:.0f} s; create it (cleanup.policy=compact, "
                    f"{partitions} partitions) or let the worker's Kafka user create "
                    "topics"
                )
            time.sleep(0.5)
    finally:
        admin.close()


def _leaders(admin: KafkaAdminClient, name: str) -> dict[int, bool] | None:
    """Each partition of topic ``name``: whether it has a leader; ``None``: no topic."""
    try:
        described = admin.describe_topics([name])
    except KafkaError:
        return None
    for topic in described:
        if topic["name"] == name and not topic["error_code"]:
            return {
                int(p["partition_index"]): int(p["leader_id"]) >= 0
                for p in topic["partitions"]
            }
    return None


def engine_config(settings: DeadlinesSettings) -> EngineConfig:
    """The engine's configuration from the settings: the council's term dates, local
    targets and lead times (``DeadlinesSettings.council``).

    Raises ``sendkit.settings.SettingsError`` for a term dates file that cannot be read
    or clashes with ``DEADLINES_TERM_DATES``.
    """
    return EngineConfig(council=settings.council())


def log_council(council: CouncilConfig, today: date) -> None:
    """Say at start-up which council settings the clocks are set with.

    Unless the termly SENCO list target is switched off, warns when there are no term
    dates or they end within a year of ``today``: a review due after the last term
    listed goes on no SENCO list, so its local target is not set.
    """
    terms = council.terms
    log.info(
        "council settings",
        extra={
            "terms": len(terms),
            "first_term_starts_on": terms[0].starts_on.isoformat() if terms else None,
            "last_term_ends_on": terms[-1].ends_on.isoformat() if terms else None,
            "local_amounts": dict(council.local_amounts),
            "local_targets_off": sorted(council.disabled),
        },
    )
    if "senco_review_list" in council.disabled:
        return
    if not terms:
        log.warning(
            "no term dates: the termly SENCO list target sets no clock; set "
            "DEADLINES_TERM_DATES (the same terms as NOTIFY_TERM_DATES), or switch "
            "the target off with DEADLINES_LOCAL_TARGETS=senco_review_list=off"
        )
    elif terms[-1].ends_on < today + timedelta(days=366):
        log.warning(
            "the term dates end on %s, within a year: reviews due after that go on no "
            "SENCO list clock until DEADLINES_TERM_DATES is extended",
            terms[-1].ends_on.isoformat(),
        )


class ClocksWorker:
    """The faust app, its table and agent, and the pipeline the agent drives."""

    def __init__(
        self, settings: DeadlinesSettings, *, config: EngineConfig | None = None
    ) -> None:
        self.settings = settings
        self.config = config or engine_config(settings)
        web = settings.worker_web_port
        security = faust_app_config()
        self.app = faust.App(
            settings.app_id,
            broker=[f"kafka://{server}" for server in settings.bootstrap_servers],
            store="memory://",
            topic_partitions=PARTITIONS,
            topic_replication_factor=settings.replication_factor,
            table_standby_replicas=0,
            processing_guarantee="at_least_once",
            stream_wait_empty=False,
            consumer_auto_offset_reset="earliest",
            broker_commit_interval=1.0,
            # A drain's records go in a batch per partition (``BatchSender``).
            producer_max_batch_size=PRODUCER_BATCH_BYTES,
            web_enabled=web is not None,
            web_port=web or 6066,
            web_bind="127.0.0.1",
            worker_redirect_stdouts=False,
            autodiscover=False,
            producer_partitioner=CachedPartitioner(),
            **security,
        )
        self.inputs = self.app.topic(
            *settings.domain_topics,
            settings.ticks_topic,
            key_type=bytes,
            value_type=bytes,
            # Raw bytes both ways: faust's default JSON codec would crash the agent on
            # a record that is not JSON, which must be dead-lettered instead.
            key_serializer="raw",
            value_serializer="raw",
        )
        self.table = self.app.Table(
            TABLE_NAME,
            key_type=bytes,
            # The states' own JSON bytes (``StoredCase.encode``), kept and sent as
            # they are (faust's "raw" codec for bytes): the compact form is what the
            # table holds in memory.
            value_type=bytes,
            partitions=PARTITIONS,
            use_partitioner=True,
            help="Each case's clock engine state, and each partition's progress.",
        )
        self.pipeline: Pipeline | None = None
        self.offsets = BrokerOffsets(
            settings.bootstrap_servers, config=kafka_python_config()
        )
        self.app.agent(self.inputs, name="clocks")(self._clocks)
        self.app.timer(interval=NUDGE_INTERVAL_S, name="nudge")(self._nudge)
        self.app.on_partitions_revoked.connect(self._on_revoked)

    def _new_pipeline(self) -> Pipeline:
        sender = BatchSender(self.app)
        states = TableStates(
            self.table,
            partitions=PARTITIONS,
            write_many=faust_table_writes(self.table, sender, partitions=PARTITIONS),
            cache_cases=self.settings.state_cache_cases,
        )

        async def ack(event: Any) -> object:
            # Never faust's ack: the pipeline commits its offsets itself (see above).
            return None

        return Pipeline(
            states=states,
            processor=ClockProcessor(
                states,
                config=self.config,
                partitions=PARTITIONS,
                output_topic=self.settings.clocks_topic,
            ),
            offsets=self.offsets,
            publisher=FaustPublisher(self.app, sender),
            ack=ack,
            commit=FaustCommitter(self.app),
            flow=ConsumerFlow(self.app),
            max_queued=self.settings.max_queued,
            refill=self.offsets,
            domain_topics=self.settings.domain_topics,
            ticks_topic=self.settings.ticks_topic,
            max_wait_s=self.settings.max_wait_seconds,
        )

    async def _clocks(self, stream: Any) -> None:
        manual = stream.noack()
        pipeline = self.pipeline = self._new_pipeline()
        drainer = asyncio.ensure_future(pipeline.run())
        try:
            async for event in manual.events():
                if drainer.done():
                    drainer.result()  # the drainer failed: crash the agent with it
                message = event.message
                record = InputRecord(
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    timestamp=float(message.timestamp or 0.0),
                    key=message.key,
                    value=message.value,
                    headers=list(message.headers or ()),
                )
                await pipeline.offer(record, event)
                pipeline.wake()
        finally:
            drainer.cancel()
            # The offsets of what was drained, if the consumer can still commit them;
            # what is not committed is applied again after the restart.
            try:
                await asyncio.wait_for(pipeline.settled(), SETTLE_TIMEOUT_S)
            except Exception as error:
                log.warning(
                    "last offsets not committed: the inputs will come again",
                    extra={"error": type(error).__name__},
                )

    async def _nudge(self) -> None:
        if self.pipeline is not None and self.pipeline.waiting():
            self.pipeline.wake()

    async def _on_revoked(
        self, sender: Any, /, *args: Any, signal: Any = None, **kwargs: Any
    ) -> None:
        if self.pipeline is not None:
            log.info(
                "partitions revoked: held inputs dropped, to be delivered again",
                extra={"held": self.pipeline.waiting()},
            )
            await self.pipeline.forget()


class _Worker(faust.Worker):
    """faust's worker, announcing readiness in the service's own log format."""

    def __init__(
        self, clocks: ClocksWorker, *, shutdown: Shutdown | None = None, **options: Any
    ) -> None:
        super().__init__(clocks.app, **options)
        self.clocks = clocks
        self.shutdown = shutdown
        # faust's terminal spinner writes cursor escapes into the JSON log stream.
        self.spinner = None

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        log.info(READY_MESSAGE, extra={"app_id": self.app.conf.id})

    def _schedule_shutdown(self, signal: Any) -> None:
        # mode's one path from SIGTERM and SIGINT to stopping: bound the stop there.
        if self.shutdown is not None:
            self.shutdown.request(f"signal {getattr(signal, 'name', signal)}")
        super()._schedule_shutdown(signal)

    def on_worker_shutdown(self) -> None:
        self.clocks.offsets.close()
        log.info("deadlines worker stopped", extra={"app_id": self.app.conf.id})


def run_worker(settings: DeadlinesSettings | None = None) -> None:
    """Run the worker until SIGTERM or SIGINT (faust's worker handles both)."""
    settings = settings or DeadlinesSettings()
    configure_logging(
        "deadlines", log_format=settings.log_format, level=settings.log_level
    )
    quiet = logging.DEBUG if settings.log_level == "DEBUG" else logging.WARNING
    for name in ("faust", "mode", "aiokafka", "kafka"):
        logging.getLogger(name).setLevel(quiet)
    config = engine_config(settings)
    log_council(config.council, london_date(utcnow()))
    worker = ClocksWorker(settings, config=config)
    ensure_changelog_topic(
        settings.bootstrap_servers,
        changelog_topic_name(settings.app_id),
        partitions=PARTITIONS,
        replication_factor=settings.replication_factor,
    )
    health = HealthSettings()
    track_faust_progress(
        worker.app,
        (*settings.domain_topics, settings.ticks_topic),
        name="deadlines worker",
    )
    heartbeat = start_heartbeat(health)
    log.info(
        "deadlines worker starting",
        extra={
            "app_id": settings.app_id,
            "bootstrap": settings.kafka_bootstrap_servers,
        },
    )
    try:
        _Worker(
            worker,
            shutdown=Shutdown(
                "deadlines-worker", timeout_s=health.shutdown_timeout_seconds
            ),
            loglevel=settings.log_level,
            override_logging=False,
            redirect_stdouts=False,
            quiet=True,
        ).execute_from_commandline()
    finally:
        if heartbeat is not None:
            heartbeat.stop()
