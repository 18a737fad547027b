"""The worker's case states: their stored bytes, the bounded cache, the wake-up index.

``TableStates`` keeps each case in the table as the bytes ``StoredCase.encode`` makes,
decodes a case when an event or a tick needs it, keeps only the cases used most
recently decoded, and finds a tick's cases by their wake-up days without decoding
the others. These tests hold the bytes to the state's ``to_dict`` form and show that
a small cache never lets an older value of a case be read.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import orjson
import pytest
from deadlines_support import SCENARIOS, Case, at

from deadlines.adapters.table_states import TableStates
from deadlines.application.partitioning import case_partition, progress_key
from deadlines.application.ports import StoredCase
from deadlines.application.sequencer import Progress
from deadlines.domain.engine import CaseState, apply, tick


def scenario_states() -> list[CaseState]:
    """Every state each scenario passes through: set, alerted, stopped, corrected."""
    states: list[CaseState] = []
    for scenario in SCENARIOS:
        case = Case()
        state: CaseState | None = None
        for event in case.events(scenario.setup):
            state, _ = apply(state, event, scenario.config)
            states.append(state)
        assert state is not None
        for offset in (-12, -3, 1):
            state, _ = tick(state, at(scenario.due + timedelta(days=offset)))
            states.append(state)
        for spec in (*scenario.correction, scenario.cancel):
            state, _ = apply(state, case.event(*spec), scenario.config)
            states.append(state)
    return states


def stored(case: str, published: int, wake_on: date | None = None) -> StoredCase:
    return StoredCase(CaseState(case_id=case, wake_on=wake_on), published)


def test_the_stored_bytes_hold_the_to_dict_form_and_read_back_to_the_same_state() -> (
    None
):
    states = scenario_states()
    assert len(states) > 100

    for number, state in enumerate(states):
        case = StoredCase(state, published=number)
        raw = case.encode()
        written = orjson.loads(raw)
        expected = case.to_dict()

        # The bytes have every key and value of to_dict, and fields to_dict leaves
        # out (a clock's id and wake-up day, a fact's empty recorded_on) besides.
        assert written["format"] == expected["format"]
        assert written["published"] == number
        engine = written["engine"]
        for key, value in expected["engine"].items():
            if key not in ("clocks", "facts"):
                assert engine[key] == value, key
        facts = zip(engine["facts"], expected["engine"]["facts"], strict=True)
        for fact, wanted in facts:
            assert {k: fact[k] for k in wanted} == wanted
        assert set(engine["clocks"]) == set(expected["engine"]["clocks"])
        for clock_id, clock in expected["engine"]["clocks"].items():
            assert {k: engine["clocks"][clock_id][k] for k in clock} == clock
        assert StoredCase.decode(raw).to_dict() == expected
        assert StoredCase.wake_on_of(raw) == state.wake_on


def test_a_state_written_as_the_json_of_to_dict_is_read_as_before() -> None:
    # The form the worker wrote before its states were encoded by orjson.
    state = scenario_states()[-1]
    old = json.dumps(StoredCase(state, 7).to_dict()).encode()

    assert StoredCase.decode(old).to_dict() == StoredCase(state, 7).to_dict()


def test_bytes_that_are_not_a_state_object_are_refused_saying_what_to_do() -> None:
    with pytest.raises(ValueError, match="DEADLINES_APP_ID"):
        StoredCase.decode(b"[1, 2]")
    with pytest.raises(ValueError, match="format"):
        StoredCase.decode(b'{"format": 0}')


def test_a_case_evicted_before_its_write_is_read_from_what_was_taken() -> None:
    table: dict[bytes, Any] = {b"case-a": stored("case-a", 1).encode()}
    states = TableStates(table, cache_cases=1)
    states.save("case-a", stored("case-a", 2))
    taken = states.take()  # on its way to the changelog: the table still holds 1
    states.save("case-b", stored("case-b", 1))  # evicts case-a from the cache

    before = states.load("case-a")
    states.write(taken)
    after = states.load("case-a")

    assert before is not None
    assert before.published == 2
    assert after is not None
    assert after.published == 2
    assert StoredCase.decode(table[b"case-a"]).published == 2


def test_a_write_of_an_older_take_leaves_a_newer_save_visible() -> None:
    table: dict[bytes, Any] = {}
    states = TableStates(table, cache_cases=1)
    states.save("case-a", stored("case-a", 1))
    first = states.take()
    states.save("case-a", stored("case-a", 2))
    second = states.take()
    states.write(first)
    states.save("case-b", stored("case-b", 1))  # evicts case-a

    found = states.load("case-a")

    assert found is not None
    assert found.published == 2
    states.write(second)
    assert StoredCase.decode(table[b"case-a"]).published == 2


def test_the_cache_keeps_only_the_cases_used_last() -> None:
    table: dict[bytes, Any] = {
        f"case-{n}".encode(): stored(f"case-{n}", n).encode() for n in range(5)
    }
    states = TableStates(table, cache_cases=2)

    first = states.load("case-0")
    states.load("case-1")
    states.load("case-0")  # used again: case-1 is now the older
    states.load("case-2")

    assert states.load("case-0") is first  # still decoded, not read again
    assert list(states._cache) == ["case-2", "case-0"]


def test_waking_finds_the_cases_due_in_id_order_without_decoding_them() -> None:
    today = date(2025, 3, 3)
    partition = case_partition("case-due-1")
    same = [
        f"case-due-{n}"
        for n in range(40)
        if case_partition(f"case-due-{n}") == partition
    ]
    early, later, idle = same[0], same[1], same[2]
    table: dict[bytes, Any] = {
        early.encode(): stored(early, 1, today - timedelta(days=3)).encode(),
        later.encode(): stored(later, 1, today + timedelta(days=1)).encode(),
        idle.encode(): stored(idle, 1, None).encode(),
        progress_key(partition).encode(): orjson.dumps(
            Progress(partition=partition).to_dict()
        ),
    }
    states = TableStates(table, cache_cases=1)

    assert states.waking(partition, today) == [early]
    assert states._cache == {}  # read for their wake-up days alone

    # A save moves a case's day; a case saved but not yet written is found too.
    states.save(later, stored(later, 2, today))
    newcomer = same[3]
    states.save(newcomer, stored(newcomer, 1, today - timedelta(days=9)))
    assert states.waking(partition, today) == sorted([early, later, newcomer])
    states.save(early, stored(early, 2, None))
    assert states.waking(partition, today) == sorted([later, newcomer])

    # After a rebalance the index is built again from the table and what is saved.
    states.flush()
    states.forget()
    assert states.waking(partition, today) == sorted([later, newcomer])
    assert states.load_progress(partition) == Progress(partition=partition)
