"""An HTTP process served by ``sendkit.web.serve`` stops within its shutdown timeout
even when a request never finishes and a background loop never stops.

The program below is an app from the kernel's factory with a route that waits for
ever and a lifespan that runs a loop which ignores its stop (its own stop timeout is
ten minutes). With ``SEND_SHUTDOWN_TIMEOUT_SECONDS=2`` uvicorn gives the request one
second before cancelling it, and the lifespan gives the loop the other second before
leaving it to the process's exit. Without either bound the process would not exit and
the test's guard would fail; no assertion is about how long anything took.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import httpx

from devstack.kafka_config import free_port

from .shutdown_support import Processes, process_env, wait_for

PROGRAM = """
import asyncio, sys, threading
from contextlib import asynccontextmanager
from sendkit.background import BackgroundLoop, stop_then_close
from sendkit.logging import configure_logging
from sendkit.web import create_app, serve

configure_logging("stop-budget", log_format="text")
release = threading.Event()

def stubborn(stop):
    release.wait()  # ignores its stop event, as a loop stuck in a call would

@asynccontextmanager
async def lifespan(app):
    loop = BackgroundLoop("stubborn-loop", stubborn, stop_timeout_s=600).start()
    yield
    stop_then_close([loop], None, what="the test's store")

app = create_app("stop-budget", lifespan=lifespan)

@app.get("/hang")
async def hang():
    print("request in hand", flush=True)
    await asyncio.Event().wait()

serve(app, host="127.0.0.1", port=int(sys.argv[1]))
print("served", flush=True)
"""


def test_a_request_that_never_ends_and_a_loop_that_never_stops_do_not_hold_the_stop(
    tmp_path: Path, processes: Processes
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = process_env(SEND_SHUTDOWN_TIMEOUT_SECONDS="2")
    server = processes.start(["-c", PROGRAM, str(port)], env, tmp_path / "app.log")

    def answers() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(answers, "the app to answer")
    outcome: list[str] = []

    def call() -> None:
        try:
            outcome.append(str(httpx.get(f"{base}/hang", timeout=300).status_code))
        except httpx.HTTPError as error:
            outcome.append(type(error).__name__)

    caller = threading.Thread(target=call)
    caller.start()
    wait_for(lambda: server.said("request in hand"), "the request to be in hand")

    code = server.terminate()
    caller.join(60)
    log = server.text()

    # uvicorn re-raises the SIGTERM it handled once the app has shut down.
    assert code in (0, -signal.SIGTERM), log[-3000:]
    assert "timeout graceful shutdown exceeded" in log, log[-3000:]
    assert "stubborn-loop did not stop" in log, log[-3000:]
    assert "the test's store left open" in log, log[-3000:]
    assert "Application shutdown complete" in log, log[-3000:]
    # The cancelled request got no answer of success.
    assert outcome, "the caller never returned"
    assert outcome != ["200"]
