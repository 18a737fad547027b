"""Case states and partition progress over a mapping: the faust table, or a dict.

Values are plain JSON (``StoredCase.to_dict``, ``Progress.to_dict``) under UTF-8
keys: the case id, or ``progress_key(p)`` for partition ``p``. Decoded states are
cached, since a tick reads every case of its partition; writes are buffered and reach
the mapping (for the faust table, its changelog) only at ``flush``. Only this worker
writes the keys
of the partitions it owns, so the cache cannot go stale until a rebalance, which calls
``forget``.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

from deadlines.application.partitioning import (
    case_partition,
    is_progress_key,
    progress_key,
)
from deadlines.application.ports import StoredCase
from deadlines.application.sequencer import Progress
from send_schemas.topics import PARTITIONS


class TableStates:
    """``CaseStates`` over a mutable mapping of bytes keys to JSON values."""

    def __init__(
        self, table: MutableMapping[bytes, Any], *, partitions: int = PARTITIONS
    ) -> None:
        self.table = table
        self.partitions = partitions
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

    def flush(self) -> None:
        for key, value in self._dirty.items():
            self.table[key] = value
        self._dirty.clear()

    def forget(self) -> None:
        self._cache.clear()
        self._dirty.clear()
        self._index = None
