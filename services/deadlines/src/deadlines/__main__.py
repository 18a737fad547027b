"""``python -m deadlines worker|ticker|api``: the deadlines service's processes.

- ``worker``: the faust stream processor (``deadlines.entrypoints.worker``);
- ``ticker [--every SECONDS] [--once]``: sends the time to every partition of
  ``send.clock.ticks`` (``deadlines.ticker``);
- ``api``: the read API over the read model (``deadlines.entrypoints.api``).

Settings come from the environment (``deadlines.settings``). A setting that cannot
be used stops the command before it starts anything, with status 2 and one line a
problem on stderr, each naming the variable and saying how to fix it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pydantic import ValidationError

from sendkit.settings import SettingsError, env_name

USAGE = "usage: python -m deadlines {worker|ticker|api} [options]"


def settings_problems(error: ValidationError | SettingsError) -> list[str]:
    """What is wrong with the settings, one sentence each, for a person to fix."""
    if isinstance(error, SettingsError):
        return [str(error)]
    from deadlines.settings import DeadlinesApiSettings

    fields = DeadlinesApiSettings.model_fields
    problems = []
    for detail in error.errors():
        message = str(detail["msg"]).removeprefix("Value error, ")
        first = str(detail["loc"][0]) if detail["loc"] else ""
        name = env_name(DeadlinesApiSettings, first) if first in fields else first
        # pydantic's own messages (not a number, a port out of range) lack the name.
        if name and name.upper() not in message:
            message = f"{name.upper()}: {message}"
        problems.append(message)
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _run(argv)
    except (ValidationError, SettingsError) as error:
        for problem in settings_problems(error):
            print(f"deadlines: cannot start: {problem}", file=sys.stderr)  # noqa: T201
        return 2


def _run(argv: Sequence[str] | None) -> int:
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
