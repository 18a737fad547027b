"""The contract tests' shared run of the services on the real broker (made once)."""

from __future__ import annotations

import uuid

import pytest
from contract_wire import PublishedRun, run_services


@pytest.fixture(scope="session")
def published_run(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> PublishedRun:
    """Intake, deadlines and notify run through their real paths, read back."""
    tmp = tmp_path_factory.mktemp("contract-run")
    return run_services(
        tmp, kafka_bootstrap, f"notify.contract.{uuid.uuid4().hex[:12]}"
    )
