"""Fixtures for the HTTP service tests: in-process apps and real server subprocesses on loopback.

Imported by the test modules (not a conftest.py: with ``--doctest-modules`` two conftest.py files in
package-less test folders collide).
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from stream_am.server import Settings, create_app

REPO = Path(__file__).resolve().parents[2]
SMALL = {"hidden_sizes": [8], "batch_size": 4, "seed": 0}


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """``make_client(**settings)`` -> a started ``TestClient`` over a fresh (or reused) state dir."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        overrides.setdefault("state_dir", tmp_path / "state")
        client = TestClient(create_app(Settings(**overrides)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in reversed(clients):
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A real server process (``python -m api.cli serve`` or ``python -m uvicorn --factory``)."""

    def __init__(
        self, state_dir: Path, env: dict[str, str] | None = None, via_uvicorn: bool = False, args: tuple[str, ...] = ()
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            **(env or {}),
        }
        if via_uvicorn:
            full_env["STREAM_AM_STATE_DIR"] = str(state_dir)
            cmd = [sys.executable, "-m", "uvicorn", "--factory", "stream_am.server.app:create_app"]
            cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
        else:
            cmd = [sys.executable, "-m", "stream_am.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
            cmd += ["--state-dir", str(state_dir), "--log-level", "warning", *args]
        # a session of its own: kill() reaches the processes it starts (a writer, predictors) too
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=full_env, start_new_session=True)
        self._wait()

    def _wait(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError("server did not become healthy")

    def kill(self) -> None:
        """``kill -9`` of the server and every process it started: no shutdown hook, no final checkpoint."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)

    def stop(self) -> int:
        """A graceful stop (SIGTERM): the lifespan writes final checkpoints (uvicorn re-raises the signal)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@pytest.fixture
def start_server() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(state_dir: Path, **kwargs: Any) -> Server:
        server = Server(state_dir, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.kill()


def logged_events(state: Path) -> int:
    """Learn events logged after the newest checkpoint of each model under a state directory (0 once
    checkpointed; the log itself keeps the events back to the oldest kept checkpoint)."""
    total = 0
    for db in state.glob("models/*/events.sqlite"):
        newest = max((int(p.name[len("ckpt-"):]) for p in db.parent.glob("checkpoints/ckpt-*")), default=0)
        with sqlite3.connect(db) as conn:
            total += conn.execute("SELECT count(*) FROM events WHERE seq > ?", (newest,)).fetchone()[0]
    return total
