"""Every event the services publish, as it is on the topics, keeps the contract.

The records come from a run of intake, deadlines and notify through their real paths
on the shared broker (``contract_wire.PublishedRun``); only the run's own cases are
looked at, as other tests write to the same topics.
"""

from __future__ import annotations

from types import SimpleNamespace

from contract_wire import PublishedRun, order_problems, record_problems

from send_schemas.intake import EVENTS_BY_TYPE as INTAKE_TYPES
from send_schemas.topics import DEADLINES, INTAKE, NOTIFY


def test_every_published_record_is_a_valid_cloudevent_of_its_schema(
    published_run: PublishedRun,
) -> None:
    records = published_run.own()

    problems = [p for record in records for p in record_problems(record)]

    assert problems == [], "\n".join(problems)
    assert {r.topic for r in records} == {INTAKE.name, DEADLINES.name, NOTIFY.name}
    assert set(INTAKE_TYPES) <= published_run.types()
    assert {
        "send.deadlines.ClockSet.v1",
        "send.deadlines.ClockLate.v1",
        "send.deadlines.ClockCancelled.v1",
        "send.notify.NotificationSent.v1",
    } <= published_run.types()


def test_each_cases_records_are_on_one_partition_in_sequence(
    published_run: PublishedRun,
) -> None:
    problems = order_problems(published_run.own())

    assert problems == [], "\n".join(problems)


def test_the_relay_replay_put_each_intake_event_on_the_topic_twice_with_one_id(
    published_run: PublishedRun,
) -> None:
    intake = [r for r in published_run.own() if r.topic == INTAKE.name]
    ids = [dict(r.headers)["ce_id"] for r in intake]

    assert len(ids) == 2 * len(set(ids))
    assert all(ids.count(i) == 2 for i in ids)


def test_the_check_catches_a_record_that_breaks_the_contract(
    published_run: PublishedRun,
) -> None:
    good = next(r for r in published_run.own() if r.topic == INTAKE.name)
    headers = list(good.headers)

    def changed(**fields: object) -> SimpleNamespace:
        return SimpleNamespace(**{**vars_of(good), **fields})

    wrong_key = changed(key=b"3f2e1d0c-9b8a-4765-8432-10fedcba9876")
    no_partitionkey = changed(headers=[h for h in headers if h[0] != "ce_partitionkey"])
    wrong_topic = changed(topic=NOTIFY.name)
    bad_data = changed(value=b'{"case_id": 7}')

    assert any("differ" in p for p in record_problems(wrong_key))
    assert any("ce_partitionkey" in p for p in record_problems(no_partitionkey))
    assert any(
        "belongs on send.intake.events" in p for p in record_problems(wrong_topic)
    )
    assert any("data:" in p for p in record_problems(bad_data))
    assert record_problems(good) == []


def vars_of(record: object) -> dict[str, object]:
    names = ("topic", "partition", "offset", "key", "value", "headers")
    return {name: getattr(record, name) for name in names}
