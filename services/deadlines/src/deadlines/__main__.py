"""``python -m deadlines worker|ticker|api``: the deadlines service's processes.

- ``worker``: the faust stream processor (``deadlines.entrypoints.worker``);
- ``ticker [--every SECONDS] [--once]``: sends the time to every partition of
  ``send.clock.ticks`` (``deadlines.ticker``);
- ``api``: the read API over the read model (``deadlines.entrypoints.api``).

Settings come from the environment (``deadlines.settings``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

USAGE = "usage: python -m deadlines {worker|ticker|api} [options]"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr)  # noqa: T201
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "worker":
        from deadlines.entrypoints.worker import run_worker

        if rest:
            print(  # noqa: T201
                "the worker takes no options; it reads DEADLINES_* settings",
                file=sys.stderr,
            )
            return 2
        run_worker()
        return 0
    if command == "ticker":
        from deadlines.ticker import main as ticker_main

        return ticker_main(rest)
    if command == "api":
        from deadlines.entrypoints.api import main as api_main

        return api_main(rest)
    print(f"unknown command {command!r}; {USAGE}", file=sys.stderr)  # noqa: T201
    return 2


if __name__ == "__main__":
    sys.exit(main())
