"""A reading of the repository's Dockerfile and .dockerignore, for the image tests.

There is no Docker engine here, so the tests read the file: ``parse`` splits it into
stages of instructions (continuation lines joined, comments dropped), and
``ignored`` answers whether .dockerignore keeps a path out of the build context,
following Docker's rules for the patterns the file uses (``**``, ``*``, ``!``
exceptions, the last matching pattern wins, a directory's pattern covers its files).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath


@dataclass
class Instruction:
    keyword: str
    arguments: str

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction, or None for the shell form."""
        try:
            value = json.loads(self.arguments)
        except json.JSONDecodeError:
            return None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        return None


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse(text: str) -> list[Stage]:
    """The stages of a Dockerfile, in order."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    if pending:
        raise ValueError("the Dockerfile ends inside a continued line")

    stages: list[Stage] = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        arguments = arguments.strip()
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", arguments, re.IGNORECASE)
            if match is None:
                raise ValueError(f"unreadable FROM: {line}")
            stages.append(Stage(name=match.group(2) or "", base=match.group(1)))
        elif not stages:
            if keyword != "ARG":
                raise ValueError(f"{keyword} before the first FROM")
        else:
            stages[-1].instructions.append(Instruction(keyword, arguments))
    return stages


def copy_parts(instruction: Instruction) -> tuple[dict[str, str], list[str], str]:
    """A COPY's flags (``--from`` and so on), its sources and its destination."""
    words = instruction.arguments.split()
    flags = {}
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    return flags, words[:-1], words[-1]


@dataclass
class IgnoreRules:
    patterns: list[tuple[bool, re.Pattern[str]]]

    @classmethod
    def read(cls, path: Path) -> IgnoreRules:
        patterns = []
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exception = line.startswith("!")
            pattern = line.lstrip("!").strip().strip("/")
            patterns.append((exception, re.compile(_glob_to_regex(pattern))))
        return cls(patterns)

    def ignored(self, path: str) -> bool:
        """Whether ``path`` (relative to the context) is left out of the context."""
        candidate = PurePosixPath(path)
        prefixes = [str(candidate)] + [
            str(p) for p in candidate.parents if str(p) != "."
        ]
        result = False
        for exception, regex in self.patterns:
            if any(regex.fullmatch(prefix) for prefix in prefixes):
                result = not exception
        return result


def _glob_to_regex(pattern: str) -> str:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)
