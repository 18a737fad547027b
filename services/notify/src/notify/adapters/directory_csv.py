"""Reading the staff directory CSV from a file (``NOTIFY_DIRECTORY_CSV``).

The format and its checks are ``notify.domain.directory_file``.
"""

from __future__ import annotations

from pathlib import Path

from notify.domain.directory import StaffDirectory
from notify.domain.directory_file import (
    COLUMNS,
    OPTIONAL_COLUMNS,
    InvalidDirectoryFile,
    parse_directory_csv,
)
from notify.errors import DirectoryError

__all__ = [
    "COLUMNS",
    "OPTIONAL_COLUMNS",
    "InvalidDirectoryFile",
    "load_directory",
    "parse_directory_csv",
    "read_directory_csv",
]


def read_directory_csv(path: str | Path) -> str:
    """The text of the directory CSV at ``path``; ``DirectoryError`` if unreadable."""
    source = Path(path)
    try:
        return source.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise DirectoryError(
            f"cannot read the staff directory {source} ({error.strerror}): set "
            "NOTIFY_DIRECTORY_CSV to a readable CSV file with the columns "
            + ", ".join(COLUMNS)
        ) from error


def load_directory(path: str | Path) -> StaffDirectory:
    """Read the directory CSV at ``path``; ``DirectoryError`` if it is unusable."""
    return StaffDirectory(parse_directory_csv(read_directory_csv(path), str(path)))
