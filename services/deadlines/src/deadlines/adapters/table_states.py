"""Case states and partition progress over a mapping: the faust table, or a dict.

Values are JSON as bytes (``StoredCase.encode``, and ``Progress.to_dict`` encoded)
under UTF-8 keys: the case id, or ``progress_key(p)`` for partition ``p``. The table
holds only those bytes, the compact form, and the table's changelog carries them as
they are (the faust table's values are ``raw``). Decoded states are kept for the
cases used most recently, at most ``cache_cases`` of them, so a worker's memory does
not grow with a copy of every case as engine objects; a round of ticks needs no
decoded state to find its cases, because each case's next wake-up day is kept in an
index of its own (read from the bytes once per case after a start or rebalance). Writes
are buffered and reach the mapping only at ``flush``, where a case saved several times
since the last flush is encoded, and written, once. Only this worker writes the keys
of the partitions it owns, so nothing it holds can go stale until a rebalance, which
calls ``forget``.

A faust table's own ``table[key] = value`` hands its changelog record to the
producer's buffer and forgets it: nothing says when, or whether, it reached Kafka, so
a commit could pass inputs whose state a kill then loses. ``faust_table_writes`` writes
the local store and sends the changelog records itself, all of a flush's keys at once
in a batch per changelog partition (``BatchSender``), and ``flush`` returns their one
delivery for the pipeline to await before it commits. Each record names its
changelog partition, the key's murmur2 partition: faust's own choice reads the
producer's cached metadata without waiting for it, and fails with a ``TypeError``
while that metadata lacks the changelog topic.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import (
    Awaitable,
    Callable,
    Mapping,
    MutableMapping,
    Sequence,
)
from datetime import date
from typing import TYPE_CHECKING, Any

import orjson

from deadlines.application.partitioning import (
    case_partition,
    is_progress_key,
    key_partition,
    progress_key,
)
from deadlines.application.ports import StoredCase, compact_json
from deadlines.application.sequencer import Progress
from send_schemas.topics import PARTITIONS

if TYPE_CHECKING:
    from deadlines.adapters.faust_ports import BatchSender, OutRecord

Write = Callable[[bytes, bytes], Awaitable[Any]]
"""Stores one key's value durably; the awaitable resolves once it is."""

WriteMany = Callable[[Sequence[tuple[bytes, bytes]]], Awaitable[Any]]
"""Stores many keys' values durably; the awaitable resolves once all of them are."""

DEFAULT_CACHE_CASES = 2048
"""How many cases' decoded states ``TableStates`` keeps by default."""


def faust_table_writes(
    table: Any, sender: BatchSender, *, partitions: int = PARTITIONS
) -> WriteMany:
    """A ``WriteMany`` into a faust table: its local store at once, and the changelog
    records sent together, each on its key's murmur2 partition (as above)."""
    topic = table.changelog_topic.get_topic_name()

    async def durable(records: list[OutRecord]) -> None:
        delivery = await sender.send(records)
        await delivery

    def write_many(items: Sequence[tuple[bytes, bytes]]) -> Awaitable[Any]:
        records: list[OutRecord] = []
        for key, value in items:
            table.data[key] = value
            records.append((topic, key_partition(key, partitions), key, value, []))
        return durable(records)

    return write_many


class TableStates:
    """``CaseStates`` over a mutable mapping of bytes keys to encoded (bytes) values.

    With ``write_many`` (``faust_table_writes``), ``write`` hands it every key taken
    and returns its one delivery; with ``write``, it writes key by key and returns
    each delivery; without either, it assigns into ``table``.
    """

    def __init__(
        self,
        table: MutableMapping[bytes, Any],
        *,
        partitions: int = PARTITIONS,
        write: Write | None = None,
        write_many: WriteMany | None = None,
        cache_cases: int = DEFAULT_CACHE_CASES,
    ) -> None:
        if cache_cases < 1:
            raise ValueError("cache_cases must be at least 1")
        self.table = table
        self.partitions = partitions
        self.write_one = write
        self.write_many = write_many
        self.cache_cases = cache_cases
        self._cache: OrderedDict[str, StoredCase] = OrderedDict()
        # A case's entry is its StoredCase, encoded at the flush; progress is
        # mutated by its sequencer, so its entry is a JSON copy made at the save.
        self._dirty: dict[bytes, StoredCase | dict[str, Any]] = {}
        # What was taken and is not yet written into the table: a case evicted from
        # the cache meanwhile is read from here, never from an older table value.
        self._unwritten: dict[bytes, StoredCase | dict[str, Any]] = {}
        # Per partition, each case's next wake-up day (None: nothing to wake for).
        self._wake: dict[int, dict[str, date | None]] | None = None

    def load(self, case_id: str) -> StoredCase | None:
        cache = self._cache
        cached = cache.get(case_id)
        if cached is not None:
            cache.move_to_end(case_id)
            return cached
        key = case_id.encode()
        pending = self._pending(key)
        if isinstance(pending, StoredCase):
            case = pending
        else:
            raw = self.table.get(key)
            if raw is None:
                return None
            case = StoredCase.decode(raw)
        self._remember(case_id, case)
        return case

    def save(self, case_id: str, case: StoredCase) -> None:
        self._remember(case_id, case)
        self._dirty[case_id.encode()] = case
        if self._wake is not None:
            partition = case_partition(case_id, self.partitions)
            self._wake.setdefault(partition, {})[case_id] = case.state.wake_on

    def waking(self, partition: int, today: date) -> list[str]:
        """The cases of ``partition`` whose next wake-up day is ``today`` or before,
        in the order of their ids."""
        days = self._index().get(partition, {})
        return sorted(
            case_id for case_id, day in days.items() if day is not None and day <= today
        )

    def load_progress(self, partition: int) -> Progress | None:
        key = progress_key(partition, self.partitions).encode()
        raw = self._pending(key)
        if raw is None:
            found = self.table.get(key)
            raw = None if found is None else orjson.loads(found)
        return Progress.from_dict(raw) if isinstance(raw, dict) else None

    def save_progress(self, progress: Progress) -> None:
        key = progress_key(progress.partition, self.partitions).encode()
        self._dirty[key] = progress.to_dict()

    def take(self) -> dict[bytes, Any]:
        """What was saved since the last ``take``, each key's latest; for ``write``."""
        taken, self._dirty = self._dirty, {}
        self._unwritten.update(taken)
        return taken

    def write(self, taken: Mapping[bytes, Any]) -> list[Awaitable[Any]]:
        """Write what was taken; the deliveries to await for it to be durable."""
        items = [
            (
                key,
                value.encode()
                if isinstance(value, StoredCase)
                else compact_json(value),
            )
            for key, value in taken.items()
        ]
        deliveries: list[Awaitable[Any]] = []
        if self.write_many is not None:
            if items:
                deliveries.append(self.write_many(items))
        else:
            for key, value in items:
                if self.write_one is None:
                    self.table[key] = value
                else:
                    deliveries.append(self.write_one(key, value))
        # The table holds these values now (each writer sets it before it sends);
        # a key taken again since keeps its newer value here.
        for key, value in taken.items():
            if self._unwritten.get(key) is value:
                del self._unwritten[key]
        return deliveries

    def flush(self) -> list[Awaitable[Any]]:
        return self.write(self.take())

    def forget(self) -> None:
        self._cache.clear()
        self._dirty.clear()
        self._unwritten.clear()
        self._wake = None

    def _pending(self, key: bytes) -> StoredCase | dict[str, Any] | None:
        """The latest value saved for ``key`` that the table may not hold yet."""
        found = self._dirty.get(key)
        return found if found is not None else self._unwritten.get(key)

    def _remember(self, case_id: str, case: StoredCase) -> None:
        cache = self._cache
        cache[case_id] = case
        cache.move_to_end(case_id)
        if len(cache) > self.cache_cases:
            cache.popitem(last=False)

    def _index(self) -> dict[int, dict[str, date | None]]:
        """Each partition's cases and their wake-up days, built on first use.

        The cases are those in the table and those saved but not yet written into
        it (not taken yet, or taken and not yet handed to the writer). A case in the
        table is read from its bytes for its wake-up day alone, not decoded whole.
        """
        if self._wake is None:
            index: dict[int, dict[str, date | None]] = {}
            for raw_key, raw in self.table.items():
                key = raw_key.decode()
                if is_progress_key(key):
                    continue
                partition = case_partition(key, self.partitions)
                index.setdefault(partition, {})[key] = StoredCase.wake_on_of(raw)
            for pending in (self._unwritten, self._dirty):  # the newest last
                for raw_key, value in pending.items():
                    if isinstance(value, StoredCase):
                        case_id = raw_key.decode()
                        partition = case_partition(case_id, self.partitions)
                        index.setdefault(partition, {})[case_id] = value.state.wake_on
            self._wake = index
        return self._wake
