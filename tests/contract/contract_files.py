"""Where the committed contract is, and reading it: schemas, headers, golden samples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from send_schemas.generate import HEADERS_SCHEMA_PATH, default_root
from send_schemas.registry import EventType

SCHEMAS = default_root()
REPO = SCHEMAS.parent
JSON_ROOT = SCHEMAS / "json"
SAMPLES_ROOT = SCHEMAS / "samples"
ASYNCAPI = SCHEMAS / "asyncapi.yaml"
SUBSCRIBING = REPO / "docs" / "subscribing.md"


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def committed_schema(entry: EventType) -> dict[str, Any] | None:
    """The schema as last committed, or None for a version never published."""
    path = JSON_ROOT / str(entry.schema_path)
    return read_json(path) if path.is_file() else None


def committed_headers_schema() -> dict[str, Any]:
    schema: dict[str, Any] = read_json(JSON_ROOT / HEADERS_SCHEMA_PATH)
    return schema


def golden_samples(entry: EventType) -> dict[str, dict[str, Any]]:
    """The golden samples of a type and version, by file name."""
    folder = SAMPLES_ROOT / str(entry.samples_path)
    return {path.name: read_json(path) for path in sorted(folder.glob("r*-*.json"))}
