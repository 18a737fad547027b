"""The outbox relay that publishes intake's events to ``send.intake.events``."""

from __future__ import annotations

from typing import Any

from intake.settings import IntakeSettings
from sendkit.store import EventStore


def start_relay_thread(settings: IntakeSettings, store: EventStore) -> Any:
    raise NotImplementedError("waiting for sendkit.relay")
