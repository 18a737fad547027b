"""A stop flag the benchmark's waiting loops look at, set by SIGINT or SIGTERM.

kafka-python 3 runs its network tasks under ``except BaseException``, so a
``KeyboardInterrupt`` raised while the main thread is inside a client call can be
swallowed there. The signal handler therefore also sets this flag, and every loop that
waits (for a consumer group, for emails, between load steps) calls ``check_stop``, so
Ctrl-C always reaches the code that stops the processes.
"""

from __future__ import annotations

import threading

STOP = threading.Event()


class Interrupted(Exception):
    """The benchmark was asked to stop (Ctrl-C or SIGTERM)."""


def check_stop() -> None:
    """Raise ``Interrupted`` once a stop has been asked for."""
    if STOP.is_set():
        raise Interrupted("the benchmark was interrupted")
