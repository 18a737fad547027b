"""The engine's shortcuts give what the plain computation gives.

``apply`` derives again only the clocks of the rules that read the changed fact's type
(and of a rule keyed by a field the fact carries, only the clock of the fact's value),
shares unchanged clocks with the state it was given, and makes output ids without
``uuid.uuid5``. Each shortcut is checked here against the plain computation: an engine
configured to derive every rule on every event, a state compared as JSON before and
after, and ``uuid.uuid5`` itself.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta

import orjson
import pytest
from deadlines_support import SCENARIOS, Case, Scenario, Spec, at, received
from hypothesis import given, settings
from hypothesis import strategies as st

from deadlines.application.processor import SOURCE, Cause, clock_record
from deadlines.domain import contract as ev
from deadlines.domain import engine
from deadlines.domain.engine import CaseEvent, CaseState, Emitted, apply, tick
from deadlines.domain.evaluate import EngineConfig
from send_schemas.deadlines import CLOCK_EVENTS
from sendkit.envelope import encode_data, to_kafka
from sendkit.events import SYSTEM_ACTOR, Metadata, RecordedEvent


class _EveryRule(EngineConfig):
    """A configuration under which every event derives every rule's clocks again."""

    def rules_reading(self, event_type: str) -> frozenset[str]:
        return frozenset(rule.name for rules in self.rulesets for rule in rules.rules)

    def instance_key(self, event_type: str, name: str) -> str | None:
        return None


def _every_rule(config: EngineConfig) -> EngineConfig:
    return _EveryRule(rulesets=config.rulesets, council=config.council)


def _dump(outputs: list[Emitted]) -> list[str]:
    return [json.dumps(output.to_dict(), sort_keys=True) for output in outputs]


def _steps(
    scenario: Scenario, extra: list[Spec], ticks: list[int]
) -> list[CaseEvent | date]:
    """The scenario's setup, then the extra events with ticks between them."""
    case = Case()
    items: list[CaseEvent | date] = list(case.events(scenario.setup))
    days = iter(sorted(scenario.due + timedelta(days=offset) for offset in ticks))
    for spec in extra:
        day = next(days, None)
        if day is not None:
            items.append(day)
        items.append(case.event(*spec))
    items.extend(days)
    return items


def _run(
    items: list[CaseEvent | date], config: EngineConfig
) -> tuple[list[str], list[dict[str, object]]]:
    """Every step's outputs and state, checking that no step changes its input."""
    state: CaseState | None = None
    outputs: list[str] = []
    states: list[dict[str, object]] = []
    for item in items:
        before = None if state is None else json.dumps(state.to_dict())
        if isinstance(item, date):
            if state is None:
                continue
            new, emitted = tick(state, at(item), config)
        else:
            new, emitted = apply(state, item, config)
        if state is not None:
            assert json.dumps(state.to_dict()) == before, "a step changed its input"
        state = new
        outputs.extend(_dump(emitted))
        states.append(state.to_dict())
    return outputs, states


def _extras(scenario: Scenario, stop_offset: int) -> list[Spec]:
    extra: list[Spec] = []
    if scenario.exception is not None:
        extra.append(scenario.exception)
    extra.extend(scenario.correction)
    if scenario.stop is not None:
        extra.append(scenario.stop(scenario.due + timedelta(days=stop_offset)))
    extra.append(scenario.cancel)
    return extra


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
@settings(max_examples=15, deadline=None)
@given(
    order=st.permutations(range(5)),
    ticks=st.lists(st.integers(min_value=-40, max_value=40), max_size=6),
    stop_offset=st.integers(min_value=-20, max_value=20),
)
def test_deriving_what_an_event_touches_gives_every_output_as_deriving_all(
    scenario: Scenario, order: list[int], ticks: list[int], stop_offset: int
) -> None:
    extras = _extras(scenario, stop_offset)
    extra = [extras[i] for i in order if i < len(extras)]
    items = _steps(scenario, extra, ticks)

    fast = _run(items, scenario.config)
    full = _run(items, _every_rule(scenario.config))

    assert fast == full
    assert fast[0], "the scenario published nothing, so it compared nothing"


def test_a_fact_of_one_keyed_clock_derives_that_clock_alone_with_the_same_outputs() -> (
    None
):
    config = EngineConfig()
    assert config.instance_key(ev.ADVICE_RECEIVED, "advice") == "advice_id"
    assert config.instance_key(ev.PLAN_ISSUED, "advice") is None
    case = Case()
    specs: list[Spec] = [
        received(date(2025, 1, 6)),
        (ev.ASSESSMENT_AGREED, {"notified_on": "2025-02-14"}),
        *[
            (
                ev.ADVICE_REQUESTED,
                {"advice_id": name, "body": "health", "received_by_body_on": day},
            )
            for name, day in (("A1", "2025-02-17"), ("A2", "2025-02-18"))
        ],
        (ev.ADVICE_RECEIVED, {"advice_id": "A2", "received_on": "2025-04-20"}),
        (ev.ADVICE_RECEIVED, {"advice_id": "A1", "received_on": "2025-03-10"}),
    ]
    items: list[CaseEvent | date] = [date(2025, 1, 6)]
    for spec in specs:
        items.append(case.event(*spec))
    items += [date(2025, 3, 3), date(2025, 5, 1)]

    fast = _run(items, config)
    full = _run(items, _every_rule(config))

    assert fast == full
    # A2's advice came late and A1's in time: each clock ended by its own fact.
    assert sum("ClockLate" in line for line in fast[0]) == 1
    assert sum("ClockMet" in line and "id=A1]" in line for line in fast[0]) == 1


def test_a_scenario_run_is_the_same_from_a_state_read_back_from_json() -> None:
    # A state read from the worker's table has no clocks shared with another state.
    scenario = SCENARIOS[0]
    items = _steps(scenario, _extras(scenario, 3), [-12, -3, 1, 5])
    expected, _ = _run(items, scenario.config)

    state: CaseState | None = None
    outputs: list[str] = []
    for item in items:
        if state is not None:
            state = CaseState.from_dict(json.loads(json.dumps(state.to_dict())))
        if isinstance(item, date):
            if state is not None:
                state, emitted = tick(state, at(item), scenario.config)
                outputs.extend(_dump(emitted))
        else:
            state, emitted = apply(state, item, scenario.config)
            outputs.extend(_dump(emitted))

    assert outputs == expected


@given(
    st.text(max_size=40),
    st.text(max_size=20),
    st.text(max_size=12),
    st.lists(st.one_of(st.integers(), st.text(max_size=10), st.dates()), max_size=4),
)
def test_output_ids_are_uuid5_of_the_joined_parts(
    case_id: str, clock_id: str, transition: str, parts: list[object]
) -> None:
    name = "\x1f".join([case_id, clock_id, transition, *(str(p) for p in parts)])
    expected = str(uuid.uuid5(engine._NAMESPACE, name))

    assert engine.output_id(case_id, clock_id, transition, *parts) == expected


def test_a_clock_record_is_what_to_kafka_makes_of_the_validated_event() -> None:
    # The processor encodes the engine's values with orjson and builds the headers
    # itself; the kernel's path validates a RecordedEvent and encodes with json.
    made: dict[str, int] = {}
    cause = Cause.of("cause-1", "correlation-1", at(date(2025, 3, 30)))
    for scenario in SCENARIOS:
        items = _steps(scenario, _extras(scenario, 3), [-12, -3, 1, 5])
        state: CaseState | None = None
        for item in items:
            if isinstance(item, date):
                if state is None:
                    continue
                state, emitted = tick(state, at(item), scenario.config)
            else:
                state, emitted = apply(state, item, scenario.config)
            for sequence, output in enumerate(emitted, start=1):
                fast = clock_record(output, sequence=sequence, cause=cause)
                slow = to_kafka(
                    RecordedEvent(
                        id=output.id,
                        stream_id=output.case_id,
                        version=sequence,
                        position=0,
                        type=output.type,
                        source=SOURCE,
                        time=cause.time,
                        data=output.event.model_dump(mode="json"),
                        metadata=Metadata(
                            actor=SYSTEM_ACTOR,
                            correlation_id=cause.correlation_id,
                            causation_id=cause.event_id,
                        ),
                    )
                )
                assert fast == slow, output.type
                made[output.type] = made.get(output.type, 0) + 1

    assert set(made) == set(CLOCK_EVENTS)


_JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12),
)


@given(
    st.dictionaries(
        st.text(max_size=8, alphabet=st.characters(exclude_categories=("Cs",))),
        st.one_of(_JSON_LEAVES, st.lists(_JSON_LEAVES, max_size=4)),
        max_size=6,
    )
)
def test_orjson_with_sorted_keys_writes_what_encode_data_writes(
    data: dict[str, object],
) -> None:
    # Text of any kind (control characters, quotes, non-ASCII), numbers, booleans,
    # nulls and lists: the two encoders agree byte for byte.
    assert orjson.dumps(data, option=orjson.OPT_SORT_KEYS) == encode_data(data)
