"""``docs/subscribing.md`` is true: its examples run, and it covers every type.

The kafka-python and kcat examples are taken from the document as written (the code
block after ``<!-- test: kafka-python -->`` and ``<!-- test: kcat -->``) and run as a
subscriber of another council system would run them, against the shared broker after
the services have published (``published_run``). The kafka-python subscriber must read
every event of the run exactly once (the intake events are on the topic twice, as after
a relay crash) and set none of them aside.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from contract_files import SAMPLES_ROOT, SUBSCRIBING, read_json
from contract_wire import PublishedRun

from send_schemas.registry import PENDING_TOPICS, event_types
from send_schemas.topics import TOPICS

EXAMPLE_TIMEOUT_S = 300


def example(name: str) -> str:
    """The code block that follows ``<!-- test: name -->`` in the document."""
    text = SUBSCRIBING.read_text(encoding="utf-8")
    found = re.search(
        rf"<!-- test: {re.escape(name)} -->\n```[a-z]*\n(.*?)\n```", text, re.DOTALL
    )
    assert found is not None, f"no example marked {name!r} in {SUBSCRIBING}"
    return found.group(1)


def test_the_kafka_python_example_reads_every_event_of_the_run_once(
    published_run: PublishedRun, tmp_path: Path
) -> None:
    script = tmp_path / "subscriber.py"
    script.write_text(example("kafka-python"), encoding="utf-8")
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": published_run.bootstrap,
        "GROUP_ID": f"contract-subscriber-{uuid.uuid4().hex[:12]}",
        "STOP_WHEN_IDLE_MS": "20000",
    }

    finished = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=EXAMPLE_TIMEOUT_S,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr[-4000:]
    lines = [json.loads(line) for line in finished.stdout.splitlines() if line]
    handled = [line["id"] for line in lines if "id" in line]
    assert published_run.ids() <= set(handled)
    assert len(handled) == len(set(handled)), "an event was handled twice"
    received = {line["case"] for line in lines if "case" in line}
    assert set(published_run.case_ids) <= received
    own = {f"{r.topic}[{r.partition}]@{r.offset}" for r in published_run.own()}
    set_aside = [
        json.loads(line)["set_aside"]
        for line in finished.stderr.splitlines()
        if line.startswith('{"set_aside"')
    ]
    assert not own & set(set_aside)


def test_the_kcat_example_lists_the_intake_events_with_their_headers(
    published_run: PublishedRun,
) -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": published_run.bootstrap}

    finished = subprocess.run(
        ["bash", "-c", example("kcat")],
        env=env,
        capture_output=True,
        text=True,
        timeout=EXAMPLE_TIMEOUT_S,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr[-2000:]
    for case_id in published_run.case_ids:
        assert f"key={case_id} " in finished.stdout
    assert "ce_type=send.intake.RequestReceived.v1" in finished.stdout
    assert "ce_partitionkey=" in finished.stdout


def test_the_document_describes_every_topic_and_registered_type() -> None:
    text = SUBSCRIBING.read_text(encoding="utf-8")

    missing = [t.type for t in event_types() if f"`{t.type}`" not in text]
    missing += [
        topic.name
        for topic in TOPICS
        if f"`{topic.name}`" not in text and topic.name not in PENDING_TOPICS
    ]

    assert missing == [], f"docs/subscribing.md does not describe {missing}"


def test_the_example_record_in_the_document_is_a_committed_sample() -> None:
    text = SUBSCRIBING.read_text(encoding="utf-8")
    found = re.search(
        r"An example \(`schemas/samples/([^`]+)`\).*?```json\n(.*?)\n```",
        text,
        re.DOTALL,
    )

    assert found is not None
    assert json.loads(found.group(2)) == read_json(SAMPLES_ROOT / found.group(1))
