"""Notify's own test helpers, for the shutdown tests: the synthetic staff and clock
events of ``tests/notify/notify_factories.py`` and the publisher of
``tests/notify/notify_kafka.py``, which writes events as the platform's producers do.

``tests/notify`` is not a package (its modules import each other by their bare names),
so the two files are loaded here by path under those same names; a session that also
collects ``tests/notify`` finds them already loaded and shares them.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

NOTIFY_TESTS = Path(__file__).resolve().parents[1] / "notify"


def _load(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, NOTIFY_TESTS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


notify_factories = _load("notify_factories")
notify_kafka = _load("notify_kafka")
