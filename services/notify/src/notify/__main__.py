"""``python -m notify <command>``: see ``notify.entrypoints.cli``."""

from notify.entrypoints.cli import main

raise SystemExit(main())
