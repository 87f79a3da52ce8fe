"""A predictor's client of the writer: long event streams never block the requests it forwards.

Found by an adversarial review: the client kept at most 100 connections to the writer and waited without a
limit for a free one, so 100 open dashboards (history streams, each holding a connection for
``stream_seconds``) through one predictor made every forwarded request (learning included) hang until a
stream ended.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from replica_fixtures import Writer
from starlette.requests import Request
from stream_am.server import Settings
from stream_am.server.proxy import WriterProxy


def _request(path: str) -> Request:
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [(b"host", b"x")], "http_version": "1.1", "scheme": "http", "server": ("x", 80)}

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    return Request(scope, receive)


def test_many_open_history_streams_do_not_block_forwarded_requests(tmp_path: Path) -> None:
    short = Path(tempfile.mkdtemp(prefix="sam-"))
    writer = Writer(Settings(state_dir=tmp_path / "state", role="writer", stream_seconds=60), socket=short / "w.sock")

    async def run() -> int:
        proxy = WriterProxy(f"unix:{short}/w.sock")
        streams = []
        try:
            for _ in range(120):
                streams.append(await asyncio.wait_for(proxy.forward(_request("/models/default/history/stream")), 5))
            answer = await asyncio.wait_for(proxy.forward(_request("/models")), 5)
            assert answer.background is not None
            await answer.background()
            return answer.status_code
        finally:
            for stream in streams:
                assert stream.background is not None
                await stream.background()  # closes the stream (as a client that leaves)
            await proxy.close()

    try:
        assert asyncio.run(run()) == 200
    finally:
        writer.stop()
