"""What ``stream-am serve`` checks before the service starts: each problem is one line naming the option and its
``STREAM_AM_*`` variable, and a refused start leaves nothing behind.

The checks that create nothing run first (the settings, the ``--uds`` path, the ``--host``/``--port`` pair, which
is bound and closed again); then the state directory and, for a writer, the snapshot directory are created and
written (a probe file, removed); a directory made here is removed again when a later one fails.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from stream_am.server.settings import Settings

from stream_am.arguments import make_writable, not_a_directory, remove_made, unseen

__all__ = ["bind_problem", "empty_settings", "make_dirs", "path_problem", "setting_name", "settings_errors"]

#: the settings ``stream-am serve`` takes as options (the others come from ``STREAM_AM_*`` variables only)
OPTIONS = {"host": "--host", "port": "--port", "state_dir": "--state-dir", "role": "--role",
           "writer_url": "--writer-url", "snapshot_dir": "--snapshot-dir"}
#: settings whose empty value would be read as something else (``Path("")`` is the current directory)
NOT_EMPTY = ("state_dir", "snapshot_dir", "host", "writer_url")
_SUN_PATH = 108 if sys.platform.startswith("linux") else 104  # bytes a Unix socket's path may have
_WHY = {errno.EADDRINUSE: "another process listens there",
        errno.EADDRNOTAVAIL: "no interface of this machine has that address",
        errno.EACCES: "this user may not listen on that port"}


def setting_name(field: str) -> str:
    """``--port (STREAM_AM_PORT)`` for a setting with an option, ``STREAM_AM_MAX_BATCH`` for the others."""
    variable = f"STREAM_AM_{field.upper()}"
    return f"{OPTIONS[field]} ({variable})" if field in OPTIONS else variable


def empty_settings(given: Mapping[str, Any], environ: Mapping[str, str]) -> list[str]:
    """The settings set to an empty text by a variable that no option overrides, one line each (the options
    themselves refuse an empty value; the variables' names are read without regard to case, as pydantic does)."""
    upper = {name.upper(): value for name, value in environ.items()}
    return [f"{setting_name(field)}: must not be empty" for field in NOT_EMPTY
            if field not in given and upper.get(f"STREAM_AM_{field.upper()}") == ""]


def settings_errors(err: ValidationError) -> list[str]:
    """pydantic's errors as one line each, ``--port (STREAM_AM_PORT): Input should be ...``; never the value
    (the settings hold the API key). A check of the whole settings names its field at the start of its message."""
    lines = []
    for item in err.errors(include_url=False, include_input=False, include_context=False):
        msg = str(item.get("msg", "")).removeprefix("Value error, ")
        loc = item.get("loc", ())
        field = str(loc[0]) if loc else ""
        if not field:
            head, colon, rest = msg.partition(": ")
            if colon and head in Settings.model_fields:
                field, msg = head, rest
        lines.append(f"{setting_name(field)}: {msg}" if field else msg)
    return lines


def path_problem(settings: Settings, uds: str | None) -> str | None:
    """Why ``--state-dir`` or ``--uds`` cannot be used, found before anything is created. uvicorn removes the
    ``--uds`` path when it stops, so an existing file that is not a socket is refused; the socket's directory
    must exist (unless it is the state directory, made before the server starts) and be writable."""
    state_dir = Path(settings.state_dir)
    why = unseen(state_dir)
    if why:
        return f"--state-dir {str(state_dir)!r}: cannot be looked at ({why})"
    blocker = not_a_directory(state_dir)
    if blocker is not None:
        return f"--state-dir {str(state_dir)!r}: {str(blocker)!r} is not a directory"
    if uds is None:
        return None
    path = Path(uds)
    why = unseen(path)
    if why:
        return f"--uds {uds!r}: cannot be looked at ({why})"
    if path.exists() and not stat.S_ISSOCK(path.stat().st_mode):
        return f"--uds {uds!r} exists and is not a socket (it would be removed when the server stops)"
    if len(os.fsencode(uds)) > _SUN_PATH:
        return f"--uds: the path has {len(os.fsencode(uds))} bytes; a Unix socket's path has at most {_SUN_PATH}"
    blocker = not_a_directory(path.parent)
    if blocker is not None:
        return f"--uds {uds!r}: {str(blocker)!r} is not a directory"
    if not path.parent.is_dir():
        if path.parent.resolve() == state_dir.resolve():
            return None
        return f"--uds {uds!r}: the directory {str(path.parent)!r} does not exist"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return f"--uds {uds!r}: the directory {str(path.parent)!r} is not writable by this user"
    return None


def bind_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on, found by binding every address it resolves to as uvicorn's
    server does (``SO_REUSEADDR``, IPv6 sockets IPv6 only) and closing them again, before the state directory is
    made: an address no interface has failed in uvicorn after the server had set its state up."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as err:
        return f"--host {host!r} does not resolve to an address: {err}"
    held: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(found):
            try:
                sock = socket.socket(family, kind, proto)
            except OSError:  # a family this machine lacks: the server skips it too
                continue
            held.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError as err:
        why = _WHY.get(err.errno or 0, err.strerror or str(err))
        return f"--host/--port: cannot listen on {host}:{port} ({why})"
    finally:
        for sock in held:
            sock.close()
    return None


def make_dirs(settings: Settings, snapshots: bool) -> str | None:
    """Create the state directory (and the snapshot directory when ``snapshots``: a writer publishes there) and
    write a probe file in each; why one cannot be, naming its option. What this made is removed on failure."""
    made: list[Path] = []
    wanted = [("state_dir", Path(settings.state_dir))]
    if snapshots:
        wanted.append(("snapshot_dir", settings.snapshots))
    for field, directory in wanted:
        try:
            make_writable(directory.absolute(), made)
        except OSError as err:
            remove_made(made)
            return f"{setting_name(field)}: {str(directory)!r} cannot be created and written ({err.strerror or err})"
    return None
