"""Which partition a case's records are on: the producers' own rule, repeated here.

Every topic of the platform has the same number of partitions and is keyed by the case
id, and every producer (kafka-python in the services, aiokafka inside faust) picks the
partition as ``murmur2(key) & 0x7fffffff`` modulo the partition count. The processor
relies on it twice: a tick on partition ``p`` evaluates the cases whose id hashes to
``p``, and the case table's changelog is partitioned the same way, so a worker that
owns partition ``p`` of the inputs also owns those cases' state.
"""

from __future__ import annotations

from functools import lru_cache

from kafka.partitioner.default import murmur2

from send_schemas.topics import PARTITIONS

PROGRESS_PREFIX = "~progress/"


@lru_cache(maxsize=65536)
def key_partition(key: bytes, partitions: int = PARTITIONS) -> int:
    """The partition kafka-python's and aiokafka's default partitioners choose."""
    return int((murmur2(key) & 0x7FFFFFFF) % partitions)


@lru_cache(maxsize=65536)
def case_partition(case_id: str, partitions: int = PARTITIONS) -> int:
    """The partition of a case id used as a record key (UTF-8)."""
    return key_partition(case_id.encode("utf-8"), partitions)


@lru_cache(maxsize=256)
def progress_key(partition: int, partitions: int = PARTITIONS) -> str:
    """A table key for partition ``partition``'s progress that hashes to that partition.

    The key's changelog record then lands on the same changelog partition as the
    partition's cases, so whoever owns the cases owns their progress too.
    """
    if not 0 <= partition < partitions:
        raise ValueError(f"partition {partition} is not in 0..{partitions - 1}")
    number = 0
    while True:
        key = f"{PROGRESS_PREFIX}{partition}/{number}"
        if case_partition(key, partitions) == partition:
            return key
        number += 1


def is_progress_key(key: str) -> bool:
    return key.startswith(PROGRESS_PREFIX)
