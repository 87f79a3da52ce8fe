"""The ``stream-am`` console script: ``serve``, ``scenario`` and ``demo``."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stream-am", description="Online Alternating Minimization.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="Start the HTTP service (settings also from STREAM_AM_* variables).")
    serve.add_argument("--host", default=None, help="Interface to bind (default 127.0.0.1).")
    serve.add_argument("--port", type=int, default=None, help="Port to listen on (default 8000).")
    serve.add_argument("--state-dir", type=Path, default=None, help="Directory for logs and checkpoints.")
    serve.add_argument("--log-level", default="info", help="uvicorn log level.")
    sub.add_parser("scenario", help="Run scenarios: `stream-am scenario list|run ...`.", add_help=False)
    sub.add_parser("demo", help="A short demonstration.", add_help=False)
    return parser


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from api.settings import Settings

    overrides = {"host": args.host, "port": args.port, "state_dir": args.state_dir}
    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level, access_log=False)
    return 0


def _delegate(module: str, argv: list[str]) -> int:
    """Hand the remaining arguments to ``module.main(argv)`` (written outside the api package)."""
    result = importlib.import_module(module).main(argv)
    return int(result or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``stream-am``; returns the exit status."""
    import sys

    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "scenario":
        return _delegate("scenarios.cli", args_list[1:])
    if args_list and args_list[0] == "demo":
        return _delegate("stream_am.demo", args_list[1:])
    args = _parser().parse_args(args_list)
    return _serve(args)


if __name__ == "__main__":
    raise SystemExit(main())
