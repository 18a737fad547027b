"""Runs a service's process entry point on a test's own topic.

``python tests/shutdown/launch.py <entry point> <topic>`` imports the entry point's
module, makes the one builder that names the topic build on ``<topic>`` instead of
the service's own (so a test never writes to a topic other tests read), and runs the
module's ``main()`` as ``python -m`` would: signals, settings, store, relay lock and
heartbeat are all the entry point's own. When ``main()`` returns, the process's
subscriber counters (``sendkit_subscriber_messages_total`` by outcome) are printed as
one JSON line starting ``subscriber outcomes``, for a test to read what it did.
"""

from __future__ import annotations

import functools
import importlib
import json
import sys
from collections import Counter

from prometheus_client import REGISTRY

# Entry point: (the module whose main() runs, the module holding the function that
# takes ``topic=``, that function).
ENTRY_POINTS = {
    "intake-relay": ("intake.entrypoints.relay",) * 2 + ("build_relay",),
    "plans-subscriber": ("plans.entrypoints.subscriber",) * 2 + ("build_subscriber",),
    # The HTTP app, uvicorn and all, with its relay thread on the test's topic.
    "intake-api": ("intake.__main__", "intake.adapters.relay", "build_relay"),
}


def main() -> int:
    entry, topic = sys.argv[1], sys.argv[2]
    runs, holder, builder = ENTRY_POINTS[entry]
    patched = importlib.import_module(holder)
    setattr(patched, builder, functools.partial(getattr(patched, builder), topic=topic))
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
