"""Runs a service's process entry point on a test's own topics.

``python tests/shutdown/launch.py <entry point> <topic> [<topic> ...]`` imports the
entry point's module, makes it read and write the test's topics instead of the
service's own (so a test never touches a topic other tests read), and runs the
module's ``main()`` as ``python -m`` would: signals, settings, store, relay lock and
heartbeat are all the entry point's own. An entry point with one topic has the one
builder that names it build on ``<topic>``; one that follows several topics is given
them in the order ``ENTRY_POINTS`` documents. When ``main()`` returns, the process's
subscriber counters (``sendkit_subscriber_messages_total`` by outcome) are printed as
one JSON line starting ``subscriber outcomes``, for a test to read what it did (an
HTTP entry point then exits 0 rather than by the SIGTERM uvicorn raises again).
"""

from __future__ import annotations

import functools
import importlib
import json
import signal
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry

REGISTRIES: list[CollectorRegistry] = [REGISTRY]
"""Where the process's subscribers count: the default registry, and an app's own."""


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


def _deadlines_api(topics: Sequence[str]) -> None:
    # The service's settings put its topics under a prefix of the test's
    # (DEADLINES_TOPIC_PREFIX): there are none to give. Its subscribers count into
    # the app's own metrics registry, which is kept for ``outcomes``.
    if topics:
        raise SystemExit(f"this entry point takes no topics, not {list(topics)}")
    module = importlib.import_module("deadlines.entrypoints.api")
    original = module.create_app

    def create_app(*args: Any, **kwargs: Any) -> Any:
        app = original(*args, **kwargs)
        REGISTRIES.append(app.state.metrics.registry)
        return app

    module.create_app = create_app


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
    # The read API, uvicorn and all, with its projector threads; no topics given.
    "deadlines-api": ("deadlines.entrypoints.api", _deadlines_api),
}

HTTP_ENTRY_POINTS = frozenset({"intake-api", "deadlines-api"})


def main() -> int:
    entry, topics = sys.argv[1], sys.argv[2:]
    runs, put_on_topics = ENTRY_POINTS[entry]
    put_on_topics(topics)
    # The entry point reads its settings from the environment, and any arguments of
    # its own from the command line, where it must find none of launch.py's.
    del sys.argv[1:]
    if entry in HTTP_ENTRY_POINTS:
        # uvicorn raises the signal it handled again once the app has shut down, to
        # end the process with it; the handler it then finds does nothing, so main()
        # returns and the counters below are printed.
        signal.signal(signal.SIGTERM, lambda signum, frame: None)
    code = importlib.import_module(runs).main()
    print("subscriber outcomes", json.dumps(outcomes()), flush=True)
    return int(code or 0)


def outcomes() -> dict[str, int]:
    counts: Counter[str] = Counter()
    for registry in REGISTRIES:
        for metric in registry.collect():
            for sample in metric.samples:
                if sample.name == "sendkit_subscriber_messages_total":
                    counts[sample.labels["outcome"]] += int(sample.value)
    return dict(counts)


if __name__ == "__main__":
    sys.exit(main())
