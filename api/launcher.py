"""``stream-am serve --predictors N``: one writer process and N predictor processes behind one port.

The writer is the single-process server with the snapshot publisher (``role="writer"``), listening on a
Unix socket next to its state; it is restarted when it dies (it restores from its checkpoints and log, so
nothing acknowledged is lost). The predictors share the public port (uvicorn's process supervisor binds it
once and restarts a predictor that dies); each answers predictions from the published snapshots and
forwards everything else to the writer (:mod:`replica_app`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from stream_am.server.periodic import Periodic
from stream_am.server.settings import Settings

__all__ = ["LAUNCHER_PID", "WriterProcess", "serve_replicas", "socket_path", "watch_launcher"]

#: set by the launcher in its processes' environment: they stop when it is gone (see :func:`watch_launcher`)
LAUNCHER_PID = "STREAM_AM_LAUNCHER_PID"

_log = logging.getLogger("stream_am.api")


def socket_path(state_dir: Path) -> Path:
    """The writer's Unix socket: in the state directory, or in the temporary directory when that path is too
    long for a socket address (about 100 bytes)."""
    path = state_dir / "writer.sock"
    if len(os.fsencode(path)) < 100:
        return path
    digest = hashlib.sha256(os.fsencode(state_dir)).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"stream-am-{digest}.sock"


class WriterProcess:
    """The writer as a child process, restarted (after a short, growing pause) whenever it exits unasked."""

    def __init__(self, command: list[str], env: dict[str, str], address: Path) -> None:
        self.command = command
        self.env = env
        self.address = address
        self.restarts = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, env=self.env)
        self._watcher = threading.Thread(target=self._watch, name="writer-watch", daemon=True)
        self._watcher.start()

    def ready(self, timeout: float) -> bool:
        """Wait until the writer answers ``/health`` (True), or exits or the time is up (False)."""
        deadline = time.monotonic() + timeout
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(self.address)), timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process is None or (self.process.poll() is not None and self.restarts == 0):
                    return False
                try:
                    if client.get("http://writer/health").status_code in (200, 503):
                        return True
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        return False

    def _watch(self) -> None:
        pause = 0.5
        while True:
            assert self.process is not None
            started = time.monotonic()
            code = self.process.wait()
            if self._stopping.is_set():
                return
            pause = 0.5 if time.monotonic() - started > 30 else min(pause * 2, 30.0)
            _log.error("the writer process exited with code %s; restarting it in %.1f s", code, pause)
            if self._stopping.wait(pause):
                return
            self.restarts += 1
            self.process = subprocess.Popen(self.command, env=self.env)

    def stop(self, timeout: float = 60.0) -> None:
        """Ask the writer to finish (it drains its queues and checkpoints), kill it after ``timeout``."""
        self._stopping.set()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._watcher is not None:
            self._watcher.join()


def watch_launcher(interval: float = 0.5) -> Periodic:
    """Started: in a process the launcher started, a watch that shuts this process down (SIGTERM, so the
    server drains and checkpoints) once the launcher is gone, e.g. killed with -9, instead of leaving an
    orphan that holds the state directory and the port. Elsewhere it ends at once. Stop it at shutdown."""
    launcher = os.environ.get(LAUNCHER_PID)

    def look() -> bool:
        if launcher is None:
            return False  # not a launcher's process: nothing to watch
        if os.getppid() == int(launcher):
            return True
        _log.error("the launcher (pid %s) is gone: stopping", launcher)
        os.kill(os.getpid(), signal.SIGTERM)
        return False  # once: a second SIGTERM would make the server skip its graceful shutdown

    watch = Periodic("launcher-watch", interval, look)
    watch.start()
    return watch


def _listen(host: str, port: int) -> socket.socket:
    """The public socket the predictors share.

    Made with ``IPPROTO_TCP`` named: asyncio turns Nagle's algorithm off only on connections whose socket says
    so, and a socket made without it (as uvicorn's own ``bind_socket``) and handed to worker processes gives
    every keep-alive request a delayed-ACK stall (the kernel's delayed-ACK timer, tens of milliseconds).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def serve_replicas(settings: Settings, predictors: int, log_level: str = "info", access_log: bool = False) -> int:
    """Run a writer and ``predictors`` predictor processes until interrupted; returns the exit status."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    state = Path(settings.state_dir).resolve()
    store = settings.snapshots.resolve()
    address = socket_path(state)
    writer_settings = settings.model_copy(update={"role": "writer", "state_dir": state, "snapshot_dir": store})
    command = [sys.executable, "-m", "stream_am", "serve", "--uds", str(address), "--log-level", log_level]
    os.environ[LAUNCHER_PID] = str(os.getpid())  # the writer and the predictors stop when this process is gone
    writer = WriterProcess(command + (["--access-log"] if access_log else []),
                           {**os.environ, **writer_settings.environment()}, address)
    writer.start()
    try:
        if not writer.ready(timeout=300):
            print("stream-am serve: the writer process did not start (see its messages above)", file=sys.stderr)
            return 1
        predictor = settings.model_copy(
            update={"role": "predictor", "writer_url": f"unix:{address}", "state_dir": state, "snapshot_dir": store}
        )
        os.environ.update(predictor.environment())  # the predictors build their settings from it
        config = uvicorn.Config(
            "stream_am.server.app:create_app", factory=True, host=settings.host, port=settings.port,
            workers=predictors, log_level=log_level, access_log=access_log,
        )
        sockets = [_listen(settings.host, settings.port)]
        try:
            supervisor = Multiprocess(config, sockets=sockets)
        except TypeError:  # older uvicorn releases take the workers' target explicitly
            supervisor = Multiprocess(config, target=uvicorn.Server(config).run, sockets=sockets)  # type: ignore[call-arg]
        supervisor.run()  # restarts a predictor that dies (uvicorn >= 0.30)
    finally:
        writer.stop()
    return 0
