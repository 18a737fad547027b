"""Runs a service's process entry point on a test's own topics.

``python tests/shutdown/launch.py <entry point> <topic> [<topic> ...]`` imports the
entry point's module, makes it read and write the test's topics instead of the
service's own (so a test never touches a topic other tests read), and runs the
module's ``main()`` as ``python -m`` would: signals, settings, store, relay lock and
heartbeat are all the entry point's own. An entry point with one topic has the one
builder that names it build on ``<topic>``; one that follows several topics is given
them in the order ``ENTRY_POINTS`` documents. When ``main()`` returns, the process's
subscriber counters (``sendkit_subscriber_messages_total`` by outcome) are printed as
one JSON line starting ``subscriber outcomes``, for a test to read what it did.
"""

from __future__ import annotations

import functools
import importlib
import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence

from prometheus_client import REGISTRY


def _builder_on(holder: str, builder: str) -> Callable[[Sequence[str]], None]:
    """Make ``holder.builder`` take ``topic=`` the test's one topic."""

    def patch(topics: Sequence[str]) -> None:
        (topic,) = topics
        module = importlib.import_module(holder)
        original = getattr(module, builder)
        setattr(module, builder, functools.partial(original, topic=topic))

    return patch


def _reviews_topics(topics: Sequence[str]) -> None:
    # The subscribers look their topics up by owner when they are built.
    plans_topic, intake_topic = topics
    module = importlib.import_module("reviews.adapters.subscribers")
    module.FOLLOWED_TOPICS = {"plans": plans_topic, "intake": intake_topic}


def _placement_topics(topics: Sequence[str]) -> None:
    intake_topic, plans_topic = topics
    module = importlib.import_module("placement.entrypoints.subscriber")
    original = module.start_subscriber_threads
    module.start_subscriber_threads = functools.partial(
        original, topics=(intake_topic, plans_topic)
    )


# Entry point: (the module whose main() runs, what puts it on the test's topics).
ENTRY_POINTS: dict[str, tuple[str, Callable[[Sequence[str]], None]]] = {
    "intake-relay": (
        "intake.entrypoints.relay",
        _builder_on("intake.entrypoints.relay", "build_relay"),
    ),
    "plans-subscriber": (
        "plans.entrypoints.subscriber",
        _builder_on("plans.entrypoints.subscriber", "build_subscriber"),
    ),
    # The HTTP app, uvicorn and all, with its relay thread on the test's topic.
    "intake-api": (
        "intake.__main__",
        _builder_on("intake.adapters.relay", "build_relay"),
    ),
    # Topics: plans', then intake's.
    "reviews-subscribers": ("reviews.entrypoints.subscribers", _reviews_topics),
    # Topics: intake's, then plans'.
    "placement-subscriber": ("placement.entrypoints.subscriber", _placement_topics),
}


def main() -> int:
    entry, topics = sys.argv[1], sys.argv[2:]
    runs, put_on_topics = ENTRY_POINTS[entry]
    put_on_topics(topics)
    code = importlib.import_module(runs).main()
    print("subscriber outcomes", json.dumps(outcomes()), flush=True)
    return int(code or 0)


def outcomes() -> dict[str, int]:
    counts: Counter[str] = Counter()
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name == "sendkit_subscriber_messages_total":
                counts[sample.labels["outcome"]] += int(sample.value)
    return dict(counts)


if __name__ == "__main__":
    sys.exit(main())
