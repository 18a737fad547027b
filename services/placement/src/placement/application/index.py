"""Every case's placement state and every panel, kept by catching up with the store.

``PlacementIndex`` folds every placement event, in global position order, into one
``Case`` per case id, and remembers the last position it applied. Each query first
reads whatever was committed after that position, so an answer is never older than the
last command this process or another answered. A panel has no stream of its own (every
event is keyed by its case); the index gathers a panel from its cases' listings. The
index lives in memory and is rebuilt from position 0 when the process starts, which
takes seconds for a county's history but would need persisting for a national one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date

from placement.domain.model import Case, Listing, evolve
from sendkit.store.base import EventStore


@dataclass(frozen=True, slots=True)
class PanelView:
    """One panel: its date and each case on it with what the panel did."""

    panel_id: str
    panel_on: date
    cases: tuple[tuple[str, Listing], ...]


class PlacementIndex:
    """Every case's placement state, caught up from ``store.iter_all`` on demand."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._cases: dict[str, Case] = {}
        self._position = 0
        self._lock = threading.Lock()

    @property
    def position(self) -> int:
        """The global position of the last event applied."""
        return self._position

    def catch_up(self) -> int:
        """Apply every event committed since the checkpoint; return the new position."""
        with self._lock:
            for event in self._store.iter_all(after=self._position):
                case = self._cases.get(event.stream_id) or Case(case_id=event.stream_id)
                self._cases[event.stream_id] = evolve(case, event)
                self._position = event.position
            return self._position

    def case(self, case_id: str) -> Case | None:
        self.catch_up()
        with self._lock:
            return self._cases.get(case_id)

    def cases(self) -> list[Case]:
        self.catch_up()
        with self._lock:
            return list(self._cases.values())

    def panels(self) -> list[PanelView]:
        """Every panel, earliest meeting first."""
        gathered: dict[str, list[tuple[str, Listing]]] = {}
        for case in self.cases():
            for listing in case.listings:
                gathered.setdefault(listing.panel_id, []).append(
                    (case.case_id, listing)
                )
        views = [
            PanelView(
                panel_id=panel_id,
                panel_on=entries[0][1].panel_on,
                cases=tuple(sorted(entries, key=lambda entry: entry[0])),
            )
            for panel_id, entries in gathered.items()
        ]
        return sorted(views, key=lambda view: (view.panel_on, view.panel_id))

    def panel(self, panel_id: str) -> PanelView | None:
        for view in self.panels():
            if view.panel_id == panel_id:
                return view
        return None
