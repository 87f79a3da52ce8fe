"""The ``stream-am`` console script: ``serve``, ``scenario``, ``demo`` and ``--version``.

Each subcommand imports what it needs only when it runs: ``stream-am demo`` and ``stream-am --version``
never import the HTTP service, and ``import stream_am`` never imports this module's subcommands.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stream_am import arguments
from stream_am._version import __version__

__all__ = ["main"]

# Subcommands whose argument parsing belongs to another module: ``stream-am NAME ARGS`` calls
# ``MODULE.main(ARGS)``. They are listed here so that ``--help`` shows them without importing them.
_DELEGATED = {
    "scenario": ("stream_am.scenarios.cli", "Run the scenario suite: `stream-am scenario list|run NAME ...`."),
    "demo": ("stream_am.demo", "A one-minute demonstration: AM against backprop and river on a digits stream."),
}
# what a delegated subcommand needs beyond the core install: (the extra, the modules it brings)
_EXTRAS = {"scenario": ("scenarios", ("tqdm", "matplotlib"))}


_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")  # uvicorn's
MAX_PREDICTORS = 64  # processes, each holding every model: more is a typo, not a deployment


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stream-am", description="Online Alternating Minimization on data streams.")
    parser.add_argument("--version", action="version", version=f"stream-am {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{serve,scenario,demo}")
    serve = sub.add_parser("serve", help="Start the HTTP service (settings also from STREAM_AM_* variables).")
    serve.add_argument("--host", type=arguments.given, default=None, help="Interface to bind (default 127.0.0.1).")
    serve.add_argument("--port", type=arguments.integer, default=None, help="Port to listen on (default 8000).")
    serve.add_argument("--state-dir", type=arguments.given_path, default=None,
                       help="Directory for logs and checkpoints.")
    serve.add_argument("--log-level", default="info", choices=_LOG_LEVELS, help="uvicorn log level (default info).")
    serve.add_argument("--access-log", action="store_true", help="Log every request (off by default).")
    serve.add_argument("--predictors", type=arguments.whole(1, MAX_PREDICTORS), default=0, metavar="N",
                       help=f"Serve with one writer process and N predictor processes, N <= {MAX_PREDICTORS} "
                       "(see docs/distributed.md).")
    serve.add_argument("--role", choices=("all", "writer", "predictor"), default=None,
                       help="Run one part of a multi-process server: the writer, or a predictor (needs --writer-url).")
    serve.add_argument("--writer-url", type=arguments.given, default=None,
                       help="A predictor's writer: http://host:port or unix:/path.")
    serve.add_argument("--snapshot-dir", type=arguments.given_path, default=None,
                       help="Where the writer publishes snapshots (default <state-dir>/snapshots).")
    serve.add_argument("--uds", type=arguments.given, default=None,
                       help="Listen on this Unix socket instead of --host/--port.")
    for name, (_, text) in _DELEGATED.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def _needs_extra(command: str, extra: str, missing: list[str]) -> int:
    """Say which extra ``command`` needs (``missing``: the modules not found); the exit status."""
    print(f"stream-am {command} needs the {extra} extra ({', '.join(missing)} missing): pip install "
          f"'stream-am[{extra}]' (from a checkout: pip install -e '.[{extra}]')", file=sys.stderr)
    return 2


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn  # noqa: F401  (the server extra is installed)
        from pydantic import ValidationError

        from stream_am.server import preflight
        from stream_am.server.app import create_app
        from stream_am.server.settings import Settings
    except ImportError as err:  # the server's dependencies are an extra
        return _needs_extra("serve", "server", [str(err.name)])
    overrides = {
        "host": args.host, "port": args.port, "state_dir": args.state_dir, "role": args.role,
        "writer_url": args.writer_url, "snapshot_dir": args.snapshot_dir,
    }
    given = {k: v for k, v in overrides.items() if v is not None}
    problems = preflight.empty_settings(given, os.environ)  # (an empty STREAM_AM_STATE_DIR reads as ".")
    try:
        settings = Settings(**given)
    except ValidationError as err:  # one line per setting, naming it (never its value: the API key)
        return _refused(*(problems or preflight.settings_errors(err)))
    except ValueError as err:  # pydantic-settings' SettingsError: a variable it could not read
        return _refused(*(problems or [str(err).splitlines()[0]]))
    if args.predictors and settings.role != "all":
        problems.append("--predictors starts a writer and its predictors itself; drop --role")
    if problems:
        return _refused(*problems)
    # refusals that create nothing come first; the state directory is made last (a refused start leaves none)
    problem = preflight.path_problem(settings, args.uds)
    if problem:
        return _refused(problem)
    listen = None if args.uds else (settings.host, settings.port)  # (bound and closed again to check it)
    if settings.role == "predictor":  # it holds no state: the writer owns the state directory
        problem = preflight.bind_problem(*listen) if listen else None
        return _refused(problem) if problem else _run(create_app(settings), settings, args)
    root = Path(settings.state_dir)
    if root.is_dir() and not os.access(root, os.W_OK | os.X_OK):
        return _refused(f"--state-dir (STREAM_AM_STATE_DIR): the state directory {root} is not writable by this "
                        "user; pass another --state-dir or give this user write access to it")
    if _in_use(root):  # the server checks again when it takes the lock
        print(f"stream-am serve: the state directory {settings.state_dir} is in use by another stream_am server; "
              "stop it or pass another --state-dir", file=sys.stderr)
        return 1
    problem = (preflight.bind_problem(*listen) if listen else None) or preflight.make_dirs(
        settings, snapshots=bool(args.predictors) or settings.role == "writer")
    if problem:
        return _refused(problem)
    if args.predictors:
        from stream_am.server.launcher import serve_replicas

        return serve_replicas(settings, args.predictors, args.log_level, args.access_log)
    return _run(create_app(settings), settings, args)


def _refused(*problems: str) -> int:
    """Print each problem as one line (each names its option); the exit status of a refused start."""
    for problem in problems:
        print(f"stream-am serve: {problem}", file=sys.stderr)
    return 2


def _run(app: Any, settings: Any, args: argparse.Namespace) -> int:
    import uvicorn

    where = {"uds": args.uds} if args.uds else {"host": settings.host, "port": settings.port}
    uvicorn.run(app, **where, log_level=args.log_level, access_log=args.access_log)
    return 0


def _in_use(root: Path) -> bool:
    """Whether another process holds the lock a server takes on its state directory (``.lock``)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: servers take no lock either
        return False
    try:
        handle = open(root / ".lock", "ab")
    except OSError:  # no directory yet: nobody serves it
        return False
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``stream-am``; returns the exit status (130 when interrupted, without a traceback)."""
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:
        return arguments.interrupted("stream-am")


def _main(args_list: list[str]) -> int:
    if args_list and args_list[0] in _DELEGATED:
        extra, needed = _EXTRAS.get(args_list[0], ("", ()))
        missing = [m for m in needed if importlib.util.find_spec(m) is None]
        if missing:  # before anything runs (a scenario would otherwise fail at its first progress bar or plot)
            return _needs_extra(args_list[0], extra, missing)
        module = importlib.import_module(_DELEGATED[args_list[0]][0])
        return int(module.main(args_list[1:]) or 0)
    args = _parser().parse_args(args_list)
    return _serve(args)


if __name__ == "__main__":
    raise SystemExit(main())
