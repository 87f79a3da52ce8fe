"""``python -m stream_am`` runs the ``stream-am`` console script."""

from stream_am.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
