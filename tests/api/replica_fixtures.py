"""The in-process replicas fixture: a writer (a real uvicorn server on a Unix socket or a TCP port, in a thread)
publishing snapshots, and a predictor application (a TestClient) answering from them or forwarding to the writer."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from api_fixtures import free_port
from fastapi.testclient import TestClient
from stream_am.server import Settings, create_app

__all__ = ["Writer", "replicas", "until"]


class Writer:
    """The writer process's application, served by uvicorn in a thread on a Unix socket or a TCP port."""

    def __init__(self, settings: Settings, socket: Path | None = None, port: int | None = None) -> None:
        where: dict[str, Any] = {"uds": str(socket)} if socket is not None else {"host": "127.0.0.1", "port": port}
        self.server = uvicorn.Server(uvicorn.Config(create_app(settings), **where, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert time.monotonic() < deadline, "the writer did not start"
            time.sleep(0.02)

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        """A request straight to the writer (not through a predictor)."""
        config = self.server.config
        transport = httpx.HTTPTransport(uds=config.uds) if config.uds else None
        base = "http://writer" if config.uds else f"http://{config.host}:{config.port}"
        with httpx.Client(transport=transport, base_url=base) as client:
            return client.post(path, json=body)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join()


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[Callable[..., tuple[Writer, TestClient]]]:
    """``replicas(**settings)`` -> (writer, predictor client) over one state and snapshot directory."""
    short = Path(tempfile.mkdtemp(prefix="sam-"))  # a socket path must stay under ~100 bytes
    started: list[Any] = []

    def start(tcp: bool = False, **overrides: Any) -> tuple[Writer, TestClient]:
        common = {"state_dir": tmp_path / "state", "publish_interval": 0.05, "snapshot_poll_interval": 0.02,
                  **overrides}
        if tcp:  # as a predictor on another host reaches its writer
            port = free_port()
            writer, url = Writer(Settings(role="writer", **common), port=port), f"http://127.0.0.1:{port}"
        else:
            writer, url = Writer(Settings(role="writer", **common), socket=short / "w.sock"), f"unix:{short}/w.sock"
        predictor = TestClient(create_app(Settings(role="predictor", writer_url=url, **common)))
        predictor.__enter__()
        started.extend([writer, predictor])
        return writer, predictor

    yield start
    for thing in reversed(started):
        if isinstance(thing, TestClient):
            thing.__exit__(None, None, None)
        else:
            thing.stop()
    shutil.rmtree(short, ignore_errors=True)


def until(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """``check()`` once it is truthy (asserts that it becomes so within ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)
