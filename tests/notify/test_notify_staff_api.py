"""Notify's HTTP API: the staff directory, preferences, the CSV import and bootstrap,
the callback endpoint's bearer token, and who may call what, on a real SQLite file.

Tokens come from the local issuer (``tests/auth_fixtures.py``) and are verified
through the real path; the directory's tests act as a ``service_admin``."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from notify_factories import COORDINATOR, MANAGER, SENCO, write_directory_csv
from notify_servers import CALLBACK_TOKEN

from auth_fixtures import Mint
from devstack.kafka_config import free_port
from notify.adapters.postgres_db import NotifyPostgresDatabase
from notify.adapters.sqlite_db import sqlite_path
from notify.bootstrap import NotifyRuntime, build_runtime, open_database
from notify.entrypoints.api import create_app
from notify.settings import NotifySettings
from sendkit.store import StoreUnavailable

CSV_HEADERS = {"Content-Type": "text/csv"}
ADMIN_ID = "admin-1"


def settings(tmp_path: Path, **changes: Any) -> NotifySettings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'notify.db'}",
        "directory_csv": None,
        "govuk_callback_token": CALLBACK_TOKEN,
    }
    values.update(changes)
    return NotifySettings(**values)


@pytest.fixture
def runtime(tmp_path: Path, ledger_url: str) -> Iterator[NotifyRuntime]:
    built = build_runtime(settings(tmp_path, database_url=ledger_url))
    yield built
    built.db.close()


@pytest.fixture
def admin(auth_env: dict[str, str], mint: Mint) -> dict[str, str]:
    """The Authorization header of a service administrator."""
    return mint(ADMIN_ID, ["service_admin"])


@pytest.fixture
def api(runtime: NotifyRuntime, admin: dict[str, str]) -> Iterator[TestClient]:
    """A client sending the administrator's token with every request."""
    with TestClient(create_app(runtime=runtime), headers=admin) as client:
        yield client


@pytest.fixture
def bare(runtime: NotifyRuntime, auth_env: dict[str, str]) -> Iterator[TestClient]:
    """A client that sends no Authorization header unless a request gives one."""
    with TestClient(create_app(runtime=runtime)) as client:
        yield client


def manager_body() -> dict[str, Any]:
    return {
        "staff_id": MANAGER.staff_id,
        "name": MANAGER.name,
        "email": MANAGER.email,
        "role": "manager",
    }


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def test_staff_are_added_read_replaced_and_removed(api: TestClient) -> None:
    created = api.post("/staff", json=manager_body())
    assert created.status_code == 201
    assert created.headers["location"] == f"/staff/{MANAGER.staff_id}"

    coordinator = {
        "name": COORDINATOR.name,
        "email": COORDINATOR.email,
        "role": "EHCCO",
        "manager_id": MANAGER.staff_id,
        "mobile": "07700 900101",
    }
    put = api.put(f"/staff/{COORDINATOR.staff_id}", json=coordinator)
    assert put.status_code == 201
    assert put.json()["mobile"] == "+447700900101"
    assert put.json()["role"] == "coordinator"
    again = api.put(
        f"/staff/{COORDINATOR.staff_id}", json={**coordinator, "mobile": None}
    )
    assert again.status_code == 200
    assert api.get(f"/staff/{COORDINATOR.staff_id}").json()["mobile"] is None

    listed = api.get("/staff", params={"role": "coordinator"}).json()
    assert [m["staff_id"] for m in listed["staff"]] == [COORDINATOR.staff_id]

    # A manager of someone cannot be removed; the coordinator can, then the manager.
    body = problem(api.delete(f"/staff/{MANAGER.staff_id}"), 409)
    assert COORDINATOR.staff_id in body["detail"]
    assert api.delete(f"/staff/{COORDINATOR.staff_id}").status_code == 204
    assert api.delete(f"/staff/{MANAGER.staff_id}").status_code == 204
    problem(api.get(f"/staff/{MANAGER.staff_id}"), 404)


def test_bad_entries_are_refused_with_every_field_named(api: TestClient) -> None:
    body = problem(
        api.post(
            "/staff",
            json={
                "staff_id": "senco-9",
                "name": "Pat",
                "email": "pat-at-school",
                "role": "senco",
                "mobile": "020 7946 0000",
            },
        ),
        422,
    )
    fields = {e["field"]: e["message"] for e in body["errors"]}
    assert "is not an email address" in fields["email"]
    assert "UK mobile numbers start 07" in fields["mobile"]
    assert "needs the URN" in fields["school_urn"]

    unknown_manager = problem(
        api.post("/staff", json={**manager_body(), "manager_id": "nobody"}), 422
    )
    assert unknown_manager["errors"][0]["field"] == "manager_id"
    extra = problem(api.post("/staff", json={**manager_body(), "colour": "red"}), 422)
    assert extra["errors"][0]["field"] == "colour"
    assert api.post("/staff", json=manager_body()).status_code == 201
    problem(api.post("/staff", json=manager_body()), 409)
    assert api.get("/staff").json()["count"] == 1


def test_preferences_refuse_silencing_a_miss_and_sms_without_a_number(
    api: TestClient,
) -> None:
    api.post("/staff", json=manager_body())
    path = f"/staff/{MANAGER.staff_id}/preferences"
    assert api.get(path).json() == {
        "channels": {},
        "quiet_hours": "20:00-08:00",
        "daily_digest": False,
    }

    body = problem(api.put(path, json={"channels": {"overdue": "none"}}), 422)
    assert body["errors"][0]["field"] == "channels.overdue"
    assert "cannot be turned off" in body["errors"][0]["message"]
    body = problem(api.put(path, json={"channels": {"approaching": "sms"}}), 422)
    assert "needs a mobile number" in body["errors"][0]["message"]
    problem(api.put(path, json={"quiet_hours": "late"}), 422)
    problem(api.put(path, json={"channels": {"whenever": "email"}}), 422)

    chosen = {
        "channels": {"approaching": "none", "overdue": "email"},
        "quiet_hours": None,
        "daily_digest": True,
    }
    assert api.put(path, json=chosen).json() == chosen
    assert api.get(path).json() == chosen
    problem(api.get("/staff/nobody/preferences"), 404)


def test_removing_a_number_that_preferences_need_is_refused(api: TestClient) -> None:
    body = {**manager_body(), "mobile": "07700900102"}
    api.post("/staff", json=body)
    api.put(
        f"/staff/{MANAGER.staff_id}/preferences",
        json={"channels": {"overdue": "both"}},
    )
    fields = {k: v for k, v in body.items() if k != "staff_id"}

    refused = problem(
        api.put(f"/staff/{MANAGER.staff_id}", json={**fields, "mobile": None}), 422
    )

    assert refused["errors"][0]["field"] == "mobile"
    assert api.get(f"/staff/{MANAGER.staff_id}").json()["mobile"] == "+447700900102"


def test_a_csv_import_is_all_or_nothing_and_names_each_bad_row(
    api: TestClient,
) -> None:
    bad = (
        "staff_id,name,email,role,manager_id,mobile,school_urn\n"
        "mgr-01,Sam Manager,sam.m@council.example,manager,,,\n"
        "ehcco-01,Alex,alex-at-council,coordinator,mgr-01,,\n"
        "ehcco-02,Jo,jo.s@council.example,coordinator,mgr-99,,\n"
        "senco-01,Pat,pat.s@school.example,senco,,07700 90012,\n"
    )

    body = problem(api.post("/staff/import", content=bad, headers=CSV_HEADERS), 422)

    fields = [e["field"] for e in body["errors"]]
    assert fields == ["line 3.email", "line 5.mobile", "line 5.school_urn"]
    assert api.get("/staff").json()["count"] == 0

    # With the row errors fixed, a manager missing from the file and the directory
    # is still named, and still nothing is written.
    fixed = bad.replace("alex-at-council", "alex.c@council.example").replace(
        "07700 90012,", "07700 900103,100234"
    )
    body = problem(api.post("/staff/import", content=fixed, headers=CSV_HEADERS), 422)
    assert [e["field"] for e in body["errors"]] == ["line 4.manager_id"]
    assert api.get("/staff").json()["count"] == 0

    good = fixed.replace("mgr-99", "mgr-01")
    imported = api.post("/staff/import", content=good, headers=CSV_HEADERS)
    assert imported.json() == {"imported": 4, "created": 4, "updated": 0}
    again = api.post("/staff/import", content=good, headers=CSV_HEADERS)
    assert again.json() == {"imported": 4, "created": 0, "updated": 4}
    senco = api.get("/staff", params={"school_urn": 100234}).json()["staff"]
    assert [(s["staff_id"], s["mobile"]) for s in senco] == [
        ("senco-01", "+447700900103")
    ]
    unsupported = problem(api.post("/staff/import", content=good), 415)
    assert unsupported["type"] == "/problems/unsupported-media-type"
    assert unsupported["errors"] == [
        {"field": "header.content-type", "message": "must be text/csv"}
    ]


def test_the_directory_csv_is_imported_at_start_only_when_it_changed(
    tmp_path: Path, ledger_url: str, admin: dict[str, str]
) -> None:
    csv = write_directory_csv(tmp_path / "staff.csv")
    first = build_runtime(
        settings(tmp_path, database_url=ledger_url, directory_csv=csv)
    )
    try:
        with TestClient(create_app(runtime=first), headers=admin) as api:
            assert api.get(f"/staff/{SENCO.staff_id}").json()["school_urn"] == 100234
            # A change made through the API...
            changed = api.put(
                f"/staff/{SENCO.staff_id}",
                json={
                    "name": SENCO.name,
                    "email": "pat.new@school.example",
                    "role": "senco",
                    "school_urn": 100234,
                },
            )
            assert changed.status_code == 200
    finally:
        first.db.close()

    # ...survives a restart with the same file, and a changed file is applied.
    second = build_runtime(
        settings(tmp_path, database_url=ledger_url, directory_csv=csv)
    )
    try:
        assert second.staff.get(SENCO.staff_id).email == "pat.new@school.example"
    finally:
        second.db.close()
    csv.write_text(csv.read_text().replace("Pat Senco", "Pat Q Senco"))
    third = build_runtime(
        settings(tmp_path, database_url=ledger_url, directory_csv=csv)
    )
    try:
        assert third.staff.get(SENCO.staff_id).name == "Pat Q Senco"
    finally:
        third.db.close()


def test_a_callback_with_a_wrong_token_is_refused_and_changes_nothing(
    bare: TestClient, runtime: NotifyRuntime
) -> None:
    api = bare
    receipt = {
        "id": "8d2c4b1e-1111-4c6b-9a0f-3e5d7c9b1a2f",
        "reference": "no-such-alert",
        "to": "07700900101",
        "status": "delivered",
        "notification_type": "sms",
    }
    for header in (
        None,
        "Bearer wrong-token",
        f"Basic {CALLBACK_TOKEN}",
        f"Bearer {CALLBACK_TOKEN}x",
    ):
        headers = {"Authorization": header} if header else {}
        response = api.post("/callbacks/govuk-notify", json=receipt, headers=headers)
        body = problem(response, 401)
        # The platform's 401, as for a bad OpenID Connect token: kind and challenge.
        assert body["type"] == "/problems/unauthenticated"
        assert response.headers["www-authenticate"].startswith('Bearer realm="notify"')
        assert "NOTIFY_GOVUK_CALLBACK_TOKEN" in body["detail"]

    accepted = api.post(
        "/callbacks/govuk-notify",
        json=receipt,
        headers={"Authorization": f"Bearer {CALLBACK_TOKEN}"},
    )
    assert accepted.json() == {"outcome": "unknown"}
    assert runtime.db.store.last_position() == 0


@pytest.mark.usefixtures("auth_env")
def test_callbacks_are_refused_when_no_token_is_configured(tmp_path: Path) -> None:
    runtime = build_runtime(settings(tmp_path, govuk_callback_token=None))
    try:
        with TestClient(create_app(runtime=runtime)) as api:
            response = api.post(
                "/callbacks/govuk-notify",
                json={"id": "x", "status": "delivered"},
                headers={"Authorization": "Bearer anything"},
            )
        problem(response, 401)
    finally:
        runtime.db.close()


def test_probes_answer(api: TestClient, bare: TestClient) -> None:
    assert api.get("/healthz").json()["service"] == "notify"
    assert api.get("/readyz").json()["checks"] == {"database": "ok"}
    assert problem(api.get("/alerts/nope"), 404)["type"] == "/problems/alert-not-found"
    # The probes need no token.
    assert bare.get("/healthz").status_code == 200
    assert bare.get("/readyz").status_code == 200


def test_readiness_answers_while_another_replica_holds_the_ledger(
    bare: TestClient, ledger_url: str
) -> None:
    # Another replica's ledger step, held open: on PostgreSQL it holds the ledger's
    # advisory lock, on SQLite the file's write lock.
    other_replica = open_database(ledger_url)
    try:
        with other_replica.transaction() as tx:
            tx.get_meta("schema_version")
            ledger_free = ledger_takes_a_step(ledger_url)
            ready = bare.get("/readyz")
    finally:
        other_replica.close()

    assert not ledger_free, "the ledger was not held: the test proves nothing"
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok"}


def ledger_takes_a_step(ledger_url: str) -> bool:
    """Whether a ledger step can start now, asked with a short wait."""
    if ledger_url.startswith("sqlite:"):
        probe = sqlite3.connect(sqlite_path(ledger_url), timeout=0.2)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.rollback()
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            probe.close()
    try:
        # Opening makes its tables under the ledger lock, so it waits for the lock.
        NotifyPostgresDatabase(ledger_url, pool_size=1, lock_timeout_s=0.2).close()
        return True
    except StoreUnavailable:
        return False


def test_without_a_valid_token_every_staff_route_is_401_and_nothing_changes(
    bare: TestClient, runtime: NotifyRuntime
) -> None:
    path = f"/staff/{MANAGER.staff_id}"
    calls = [
        ("GET", "/staff", {}),
        ("POST", "/staff", {"json": manager_body()}),
        ("POST", "/staff/import", {"content": "staff_id\n", "headers": CSV_HEADERS}),
        ("GET", path, {}),
        ("PUT", path, {"json": manager_body()}),
        ("DELETE", path, {}),
        ("GET", f"{path}/preferences", {}),
        ("PUT", f"{path}/preferences", {"json": {}}),
        ("GET", "/alerts/nope", {}),
    ]
    for method, url, options in calls:
        response = bare.request(method, url, **options)
        problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer realm=")
    forged = bare.get("/staff", headers={"Authorization": "Bearer not.a.jwt"})
    problem(forged, 401)
    assert 'error="invalid_token"' in forged.headers["www-authenticate"]
    assert runtime.staff.members() == []


@pytest.mark.parametrize(
    "roles",
    [["team_manager"], ["ehc_coordinator"], ["senco"], ["panel_officer"], ["auditor"]],
)
def test_only_an_administrator_changes_the_directory(
    api: TestClient, bare: TestClient, mint: Mint, roles: list[str]
) -> None:
    assert api.post("/staff", json=manager_body()).status_code == 201
    other = mint("someone-1", roles)
    path = f"/staff/{MANAGER.staff_id}"
    fields = {k: v for k, v in manager_body().items() if k != "staff_id"}
    writes = [
        bare.post(
            "/staff", json={**manager_body(), "staff_id": "new-1"}, headers=other
        ),
        bare.put(path, json={**fields, "name": "Changed"}, headers=other),
        bare.delete(path, headers=other),
        bare.put(f"{path}/preferences", json={"daily_digest": True}, headers=other),
        bare.post(
            "/staff/import",
            content="staff_id,name,email,role,manager_id\n",
            headers={**other, **CSV_HEADERS},
        ),
    ]
    for response in writes:
        assert problem(response, 403)["action"] == "notify:staff.write"
    assert [m.name for m in api.app.state.runtime.staff.members()] == [MANAGER.name]
    assert api.get(f"{path}/preferences").json()["daily_digest"] is False


def test_an_auditor_reads_the_directory_and_alerts_and_others_may_not(
    api: TestClient, bare: TestClient, mint: Mint
) -> None:
    api.post("/staff", json=manager_body())
    path = f"/staff/{MANAGER.staff_id}"
    auditor = mint("auditor-1", ["auditor"])
    assert bare.get("/staff", headers=auditor).json()["count"] == 1
    assert bare.get(path, headers=auditor).json()["email"] == MANAGER.email
    assert bare.get(f"{path}/preferences", headers=auditor).status_code == 200
    problem(bare.get("/alerts/nope", headers=auditor), 404)

    for roles in (["team_manager"], ["ehc_coordinator"], ["senco"]):
        other = mint("someone-1", roles)
        for url in ("/staff", path, f"{path}/preferences"):
            assert problem(bare.get(url, headers=other), 403)["action"] == (
                "notify:staff.read"
            )
        refused = problem(bare.get("/alerts/nope", headers=other), 403)
        assert refused["action"] == "notify:alerts.read"


def test_reads_of_contact_details_are_logged_without_their_values(
    api: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    api.post("/staff", json={**manager_body(), "mobile": "07700900102"})
    with caplog.at_level("INFO", logger="notify.entrypoints.api"):
        api.get(f"/staff/{MANAGER.staff_id}")
        api.get("/staff")
    reads = [
        r for r in caplog.records if r.getMessage() == "staff contact details read"
    ]
    assert [(r.__dict__["endpoint"], r.__dict__["subjects"]) for r in reads] == [
        ("GET /staff/{staff_id}", [MANAGER.staff_id]),
        ("GET /staff", [MANAGER.staff_id]),
    ]
    assert all(r.__dict__["staff_id"] == ADMIN_ID for r in reads)
    logged = " ".join(str(r.__dict__) for r in reads)
    assert MANAGER.email not in logged
    assert "7700900102" not in logged


def test_python_m_notify_api_serves_until_sigterm(
    tmp_path: Path, ledger_url: str, admin: dict[str, str]
) -> None:
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "NOTIFY_DATABASE_URL": ledger_url,
            "NOTIFY_DIRECTORY_CSV": str(write_directory_csv(tmp_path / "staff.csv")),
            "NOTIFY_PORT": str(port),
            "LOG_FORMAT": "text",
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "notify", "api"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert ready is not None, "the API never answered"
        assert ready.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/staff").status_code == 401
        staff = httpx.get(f"http://127.0.0.1:{port}/staff", headers=admin).json()
        assert staff["count"] == 5
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    output = process.stdout.read().decode() if process.stdout else ""
    # uvicorn shuts down cleanly, then re-raises SIGTERM so the exit status says why.
    assert code in (0, -signal.SIGTERM), output
    assert "notify API stopped" in output
