"""Case states and partition progress over a mapping: the faust table, or a dict.

Values are plain JSON (``StoredCase.to_dict``, ``Progress.to_dict``) under UTF-8
keys: the case id, or ``progress_key(p)`` for partition ``p``. Decoded states are
cached, since a tick reads every case of its partition; writes are buffered and reach
the mapping only at ``flush``. Only this worker writes the keys of the partitions it
owns, so the cache cannot go stale until a rebalance, which calls ``forget``.

A faust table's own ``table[key] = value`` hands its changelog record to the
producer's buffer and forgets it: nothing says when, or whether, it reached Kafka, so
a commit could pass inputs whose state a kill then loses. ``faust_table_write`` writes
the local store and sends the changelog record itself, and ``flush`` returns each
record's delivery for the pipeline to await before it commits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from deadlines.application.partitioning import (
    case_partition,
    is_progress_key,
    key_partition,
    progress_key,
)
from deadlines.application.ports import StoredCase
from deadlines.application.sequencer import Progress
from send_schemas.topics import PARTITIONS

Write = Callable[[bytes, Any], Awaitable[Any]]
"""Stores one key's value durably; the awaitable resolves once it is."""


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


class TableStates:
    """``CaseStates`` over a mutable mapping of bytes keys to JSON values.

    With ``write`` (``faust_table_write`` for a faust table), ``flush`` writes through
    it and returns the deliveries; without, it assigns into ``table``.
    """

    def __init__(
        self,
        table: MutableMapping[bytes, Any],
        *,
        partitions: int = PARTITIONS,
        write: Write | None = None,
    ) -> None:
        self.table = table
        self.partitions = partitions
        self.write = write
        self._cache: dict[str, StoredCase] = {}
        self._dirty: dict[bytes, Any] = {}
        self._index: dict[int, set[str]] | None = None

    def load(self, case_id: str) -> StoredCase | None:
        cached = self._cache.get(case_id)
        if cached is not None:
            return cached
        key = case_id.encode()
        raw = self._dirty.get(key)
        if raw is None:
            raw = self.table.get(key)
        if raw is None:
            return None
        case = StoredCase.from_dict(raw)
        self._cache[case_id] = case
        return case

    def save(self, case_id: str, case: StoredCase) -> None:
        self._cache[case_id] = case
        self._dirty[case_id.encode()] = case.to_dict()
        if self._index is not None:
            self._index.setdefault(case_partition(case_id, self.partitions), set()).add(
                case_id
            )

    def case_ids(self, partition: int) -> Iterable[str]:
        if self._index is None:
            index: dict[int, set[str]] = {}
            for raw_key in list(self.table.keys()) + list(self._dirty):
                key = raw_key.decode()
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
        return None if raw is None else Progress.from_dict(raw)

    def save_progress(self, progress: Progress) -> None:
        key = progress_key(progress.partition, self.partitions).encode()
        self._dirty[key] = progress.to_dict()

    def flush(self) -> list[Awaitable[Any]]:
        deliveries: list[Awaitable[Any]] = []
        for key, value in self._dirty.items():
            if self.write is None:
                self.table[key] = value
            else:
                deliveries.append(self.write(key, value))
        self._dirty.clear()
        return deliveries

    def forget(self) -> None:
        self._cache.clear()
        self._dirty.clear()
        self._index = None
