"""The installed version of stream_am (read by the packaging metadata and ``stream-am --version``)."""

__version__ = "0.2.0"

