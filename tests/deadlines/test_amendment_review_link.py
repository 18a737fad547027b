"""An amendment notice naming its review joins that review's clocks (issue #5, gap B).

Worked examples, dates counted by hand: a review meeting held Wed 4 Mar 2026 caps the
final amended plan at Wed 27 May 2026 (4 Mar + 12 weeks); a notice sent Wed 18 Mar 2026
gives Wed 13 May 2026 (+ 8 weeks) and comments until Wed 1 Apr 2026 (15 days beginning
with 18 Mar); a notice sent Wed 15 Apr 2026 alone would give Wed 10 Jun 2026.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from deadlines_support import Case, Spec, d, of, one, short

from deadlines.domain import contract as ev
from deadlines.domain.engine import Emitted, run
from deadlines.domain.evaluate import EngineConfig
from deadlines.domain.model import EACH_EVENT, Start
from deadlines.domain.rules import CURRENT, RULESETS

REVIEW = "0c9e7f4a-1b2d-4c3e-8f5a-6b7c8d9e0f1a"
HELD: Spec = (ev.REVIEW_HELD, {"review_id": REVIEW, "held_on": "2026-03-04"})
FINAL = f"final_amended_plan[review_id={REVIEW}]"
COMMENTS = f"amendment_comments[review_id={REVIEW}]"


def _decided(notified_on: str) -> Spec:
    return ev.REVIEW_DECIDED, {
        "review_id": REVIEW,
        "decision": "amend",
        "notified_on": notified_on,
    }


def _notice(sent_on: str, review_id: str | None = None) -> Spec:
    data: dict[str, Any] = {"notice_sent_on": sent_on}
    if review_id is not None:
        data["review_id"] = review_id
    return ev.AMENDMENT_PROPOSED, data


def _outputs(*specs: Spec, config: EngineConfig | None = None) -> list[Emitted]:
    events = Case().events(specs)
    if config is None:
        return run(events)[1]
    return run(events, config=config)[1]


def _set_clocks(outputs: list[Emitted], rule: str) -> dict[str, date]:
    return {
        o.event.clock_id: o.event.due_on
        for o in outputs
        if short(o) == "ClockSet" and o.event.clock_id.startswith(rule + "[")
    }


def test_a_notice_after_the_review_decision_joins_its_clock() -> None:
    outputs = _outputs(HELD, _decided("2026-03-18"), _notice("2026-03-18", REVIEW))

    assert _set_clocks(outputs, "final_amended_plan") == {FINAL: d("2026-05-13")}
    assert _set_clocks(outputs, "amendment_comments") == {COMMENTS: d("2026-04-01")}


def test_a_notice_before_the_decision_keeps_the_twelve_week_cap() -> None:
    outputs = _outputs(HELD, _notice("2026-04-15", REVIEW), _decided("2026-04-15"))

    # 15 Apr + 8 weeks is 10 Jun; the meeting on 4 Mar + 12 weeks, 27 May, comes first.
    assert _set_clocks(outputs, "final_amended_plan") == {FINAL: d("2026-05-27")}
    set_event = one(outputs, FINAL, "ClockSet").event
    assert set_event.started_on == d("2026-04-15")
    assert set_event.counts_from == d("2026-03-04")


def test_the_amended_plan_meets_the_one_joined_clock() -> None:
    outputs = _outputs(
        HELD,
        _decided("2026-03-18"),
        _notice("2026-03-18", REVIEW),
        (ev.PLAN_AMENDED, {"issued_on": "2026-05-13"}),
    )

    met = one(outputs, FINAL, "ClockMet").event
    assert met.stopped_on == d("2026-05-13")
    assert not [o for o in outputs if "AmendmentProposed#" in o.event.clock_id]


def test_a_notice_without_review_id_still_opens_a_clock_of_its_own() -> None:
    outputs = _outputs(HELD, _decided("2026-03-18"), _notice("2026-04-15"))

    assert _set_clocks(outputs, "final_amended_plan") == {
        FINAL: d("2026-05-13"),
        "final_amended_plan[AmendmentProposed#1]": d("2026-06-10"),
    }


def test_a_notice_naming_a_review_never_decided_caps_at_its_meeting() -> None:
    outputs = _outputs(HELD, _notice("2026-04-15", REVIEW))

    assert _set_clocks(outputs, "final_amended_plan") == {FINAL: d("2026-05-27")}


def _rules_before_the_review_link() -> EngineConfig:
    """The table as it was: both amendment rows started by every notice alike."""
    old_starts = (
        Start(ev.AMENDMENT_PROPOSED, on="notice_sent_on", key=EACH_EVENT),
        Start(
            ev.REVIEW_DECIDED,
            on="notified_on",
            key="review_id",
            when=CURRENT.rule("final_amended_plan").starts[-1].when,
        ),
    )
    rows = tuple(
        replace(rule, starts=old_starts)
        if rule.name in ("final_amended_plan", "amendment_comments")
        else rule
        for rule in CURRENT.rules
    )
    assert len(RULESETS) == 1, "compare with the version the notices were set under"
    return EngineConfig(rulesets=(replace(CURRENT, rules=rows),))


def test_notices_without_review_id_give_the_very_same_outputs() -> None:
    specs = (
        HELD,
        _decided("2026-03-18"),
        _notice("2026-04-15"),
        (ev.PLAN_AMENDED, {"issued_on": "2026-06-12"}),
        _notice("2026-06-15"),
    )

    now = _outputs(*specs)
    before = _outputs(*specs, config=_rules_before_the_review_link())

    assert [(o.id, o.type, o.data()) for o in now] == [
        (o.id, o.type, o.data()) for o in before
    ]
    assert of(now, "final_amended_plan[AmendmentProposed#2]", "ClockSet")
