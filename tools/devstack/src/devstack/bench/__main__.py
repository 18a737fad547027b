"""``python -m devstack.bench``: see ``devstack.bench.cli``."""

from __future__ import annotations

import sys

from devstack.bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
