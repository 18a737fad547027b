"""The pieces every command route shares: who acts, the key, the answer on a replay."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from sendkit.commands import run_command
from sendkit.events import Metadata, NewEvent, RecordedEvent
from sendkit.idempotency import IdempotencyKey
from sendkit.store import InMemoryEventStore
from sendkit.web import StaffIdHeader, actor_of, command_response, create_app


def app_over(store: InMemoryEventStore) -> FastAPI:
    app = create_app("helpers")

    @app.post("/notes/{note_id}", status_code=201)
    def add_note(
        note_id: str, idempotency: IdempotencyKey, staff_id: StaffIdHeader = None
    ) -> Any:
        def decide(history: Sequence[RecordedEvent]) -> list[NewEvent]:
            return [
                NewEvent(
                    type="send.tester.NoteAdded.v1",
                    data={"n": len(history) + 1},
                    metadata=Metadata(actor=actor_of(staff_id)),
                )
            ]

        def answer(
            history: Sequence[RecordedEvent], recorded: Sequence[RecordedEvent]
        ) -> dict[str, Any]:
            return {"version": recorded[-1].version}

        result = run_command(store, note_id, decide, answer, idempotency=idempotency)
        return command_response(result, 201, {"Location": f"/notes/{note_id}"})

    return app


def test_the_staff_header_names_the_actor_and_its_absence_means_system() -> None:
    store = InMemoryEventStore()
    client = TestClient(app_over(store))

    client.post("/notes/a", headers={"X-Staff-Id": "st-1"})
    client.post("/notes/a")

    assert [e.metadata.actor for e in store.read_stream("a")] == ["st-1", "system"]


def test_a_malformed_staff_id_is_a_422_naming_the_header() -> None:
    client = TestClient(app_over(InMemoryEventStore()))

    response = client.post("/notes/a", headers={"X-Staff-Id": "no spaces allowed"})

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["header.X-Staff-Id"]


def test_a_replay_answers_with_the_first_status_and_says_so() -> None:
    store = InMemoryEventStore()
    client = TestClient(app_over(store))
    keyed = {"Idempotency-Key": "k-1"}

    first = client.post("/notes/a", headers=keyed)
    again = client.post("/notes/a", headers=keyed)

    assert first.status_code == again.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == "/notes/a"
    assert again.json() == first.json() == {"version": 1}
    assert len(store.read_stream("a")) == 1
