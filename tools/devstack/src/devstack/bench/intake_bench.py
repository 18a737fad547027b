"""Intake's command cost without HTTP, other processes or the network: a baseline.

``handle_cost(count)`` receives ``count`` requests through ``IntakeService.handle`` on
a SQLite store of its own (WAL, ``synchronous=FULL``, as the service runs), one after
the other in this process, and reports each command's time and the share spent
committing. Set beside the HTTP figures measured with the whole platform running, it
separates what a command costs from what the machine's other work adds to it.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from devstack.bench.stats import summarize
from intake.application.service import IntakeService, new_case_id
from intake.domain import ReceiveRequest
from intake.settings import SOURCE
from sendkit.store import open_store

WARM_UP = 20


def handle_cost(count: int = 300) -> dict[str, Any]:
    """Time ``count`` ``ReceiveRequest`` commands on a fresh SQLite store."""
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as folder:
        store = open_store(f"sqlite:///{Path(folder) / 'intake.db'}", SOURCE)
        try:
            service = IntakeService(store)
            received = datetime.now(UTC).replace(microsecond=0)
            timings: list[float] = []
            for number in range(WARM_UP + count):
                command = ReceiveRequest(
                    case_id=new_case_id(),
                    requester_type="school",
                    child_reference=f"C-{number:08d}",
                    date_of_birth=date(2015, 5, 1),
                    school_urn=990001 + number % 12,
                    curriculum_year=4,
                    channel="portal",
                    received_at=received,
                )
                started = time.perf_counter()
                service.handle(command, actor="bench")
                if number >= WARM_UP:
                    timings.append((time.perf_counter() - started) * 1000.0)
        finally:
            store.close()
    return {
        "command": "ReceiveRequest through IntakeService.handle, SQLite WAL",
        "count": count,
        "ms": summarize(timings).to_json(),
    }
