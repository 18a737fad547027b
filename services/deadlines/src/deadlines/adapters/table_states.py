"""Case states and partition progress over a mapping: the faust table, or a dict.

Values are plain JSON (``StoredCase.to_dict``, ``Progress.to_dict``) under UTF-8
keys: the case id, or ``progress_key(p)`` for partition ``p``. Decoded states are
cached, since a tick reads every case of its partition; writes are buffered and reach
the mapping only at ``flush``, where a case saved several times since the last flush
is turned into JSON, and written, once. Only this worker writes the keys of the
partitions it owns, so the cache cannot go stale until a rebalance, which calls
``forget``.

A faust table's own ``table[key] = value`` hands its changelog record to the
producer's buffer and forgets it: nothing says when, or whether, it reached Kafka, so
a commit could pass inputs whose state a kill then loses. ``faust_table_write`` writes
the local store and sends the changelog record itself, and ``flush`` returns each
record's delivery for the pipeline to await before it commits. ``faust_table_writes``
does the same for all of a flush's keys at once, in a batch per changelog partition
(``BatchSender``), with one delivery for them all; its values are encoded as faust's
``json`` codec would (compact JSON), so the table's recovery reads them back.
"""

from __future__ import annotations

import json
from collections.abc import (
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    MutableMapping,
    Sequence,
)
from typing import TYPE_CHECKING, Any

from deadlines.application.partitioning import (
    case_partition,
    is_progress_key,
    key_partition,
    progress_key,
)
from deadlines.application.ports import StoredCase
from deadlines.application.sequencer import Progress
from send_schemas.topics import PARTITIONS

if TYPE_CHECKING:
    from deadlines.adapters.faust_ports import BatchSender, OutRecord

Write = Callable[[bytes, Any], Awaitable[Any]]
"""Stores one key's value durably; the awaitable resolves once it is."""

WriteMany = Callable[[Sequence[tuple[bytes, Any]]], Awaitable[Any]]
"""Stores many keys' values durably; the awaitable resolves once all of them are."""


def faust_table_write(table: Any, *, partitions: int = PARTITIONS) -> Write:
    """A ``Write`` into a faust table: its local store, and its changelog record sent
    now, the record's delivery returned (faust's ``FutureMessage``).

    The changelog partition is the key's murmur2 partition, as the producer's
    partitioner would choose, but named here: faust's own choice (``send_changelog``
    without a partition) reads the producer's cached metadata without waiting for it,
    and fails with a ``TypeError`` on every write while that metadata lacks the
    changelog topic; with the partition named, the producer waits for the metadata.
    """

    def write(key: bytes, value: Any) -> Awaitable[Any]:
        # The store directly: ``table[key] = value`` would send a second record.
        table.data[key] = value
        delivery: Awaitable[Any] = table.send_changelog(
            key_partition(key, partitions), key, value
        )
        return delivery

    return write


def faust_table_writes(
    table: Any, sender: BatchSender, *, partitions: int = PARTITIONS
) -> WriteMany:
    """A ``WriteMany`` into a faust table: its local store at once, and the changelog
    records sent together, each on its key's murmur2 partition (as above)."""
    topic = table.changelog_topic.get_topic_name()

    async def durable(records: list[OutRecord]) -> None:
        delivery = await sender.send(records)
        await delivery

    def write_many(items: Sequence[tuple[bytes, Any]]) -> Awaitable[Any]:
        records: list[OutRecord] = []
        for key, value in items:
            table.data[key] = value
            encoded = json.dumps(value, separators=(",", ":")).encode()
            records.append((topic, key_partition(key, partitions), key, encoded, []))
        return durable(records)

    return write_many


class TableStates:
    """``CaseStates`` over a mutable mapping of bytes keys to JSON values.

    With ``write_many`` (``faust_table_writes``), ``write`` hands it every key taken
    and returns its one delivery; with ``write`` (``faust_table_write``), it writes
    key by key and returns each delivery; without either, it assigns into ``table``.
    """

    def __init__(
        self,
        table: MutableMapping[bytes, Any],
        *,
        partitions: int = PARTITIONS,
        write: Write | None = None,
        write_many: WriteMany | None = None,
    ) -> None:
        self.table = table
        self.partitions = partitions
        self.write_one = write
        self.write_many = write_many
        self._cache: dict[str, StoredCase] = {}
        # A case's entry is its StoredCase, made JSON at the flush; progress is
        # mutated by its sequencer, so its entry is a JSON copy made at the save.
        self._dirty: dict[bytes, StoredCase | dict[str, Any]] = {}
        self._index: dict[int, set[str]] | None = None

    def load(self, case_id: str) -> StoredCase | None:
        cached = self._cache.get(case_id)
        if cached is not None:
            return cached
        key = case_id.encode()
        dirty = self._dirty.get(key)
        if isinstance(dirty, StoredCase):
            self._cache[case_id] = dirty
            return dirty
        raw = dirty if dirty is not None else self.table.get(key)
        if raw is None:
            return None
        case = StoredCase.from_dict(raw)
        self._cache[case_id] = case
        return case

    def save(self, case_id: str, case: StoredCase) -> None:
        self._cache[case_id] = case
        self._dirty[case_id.encode()] = case
        if self._index is not None:
            self._index.setdefault(case_partition(case_id, self.partitions), set()).add(
                case_id
            )

    def case_ids(self, partition: int) -> Iterable[str]:
        if self._index is None:
            index: dict[int, set[str]] = {}
            # The cache holds every case saved, also those taken but not yet
            # written into the table.
            found = {raw_key.decode() for raw_key in self.table}
            found.update(raw_key.decode() for raw_key in self._dirty)
            found.update(self._cache)
            for key in found:
                if is_progress_key(key):
                    continue
                index.setdefault(case_partition(key, self.partitions), set()).add(key)
            self._index = index
        return tuple(self._index.get(partition, ()))

    def load_progress(self, partition: int) -> Progress | None:
        key = progress_key(partition, self.partitions).encode()
        raw = self._dirty.get(key)
        if raw is None:
            raw = self.table.get(key)
        return Progress.from_dict(raw) if isinstance(raw, dict) else None

    def save_progress(self, progress: Progress) -> None:
        key = progress_key(progress.partition, self.partitions).encode()
        self._dirty[key] = progress.to_dict()

    def take(self) -> dict[bytes, Any]:
        """What was saved since the last ``take``, each key's latest; for ``write``."""
        taken, self._dirty = self._dirty, {}
        return taken

    def write(self, taken: Mapping[bytes, Any]) -> list[Awaitable[Any]]:
        """Write what was taken; the deliveries to await for it to be durable."""
        items = [
            (key, value.to_dict() if isinstance(value, StoredCase) else value)
            for key, value in taken.items()
        ]
        if self.write_many is not None:
            return [self.write_many(items)] if items else []
        deliveries: list[Awaitable[Any]] = []
        for key, value in items:
            if self.write_one is None:
                self.table[key] = value
            else:
                deliveries.append(self.write_one(key, value))
        return deliveries

    def flush(self) -> list[Awaitable[Any]]:
        return self.write(self.take())

    def forget(self) -> None:
        self._cache.clear()
        self._dirty.clear()
        self._index = None
