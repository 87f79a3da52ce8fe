"""Forwarding a request from a predictor process to the writer, unchanged, and its answer back, streamed.

The writer keeps every promise of the single-process server: a write is answered only once it is in the
durable log, so a forwarded write that got an answer is acknowledged and logged. When the writer cannot be
reached, the answer is 503 naming the cause; a request whose connection broke after it was sent may or may not
have been applied (as with any network failure) and is never reported as acknowledged.
"""

from __future__ import annotations

import httpx
from fastapi import Request
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse
from stream_am.server.errors import Unavailable

__all__ = ["WriterProxy"]

# hop-by-hop headers (RFC 9110 section 7.6.1) and those each server sets itself
_REQUEST_DROP = {b"host", b"connection", b"keep-alive", b"transfer-encoding", b"te", b"upgrade", b"content-length"}
_RESPONSE_DROP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "date", "server"}


class WriterProxy:
    """An HTTP client of the writer at ``url`` (``http://host:port`` or ``unix:/path/to.sock``)."""

    def __init__(self, url: str, connect_timeout: float = 5.0) -> None:
        self.url = url
        self.forwarded = 0
        self.failed = 0
        uds = url[len("unix:"):] if url.startswith("unix:") else None
        # no limit on connections to the writer (httpx's default, 100, with no pool timeout, made every forwarded
        # request wait behind 100 open history streams until one ended); a transport takes its own limits
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=20)
        transport = httpx.AsyncHTTPTransport(uds=uds, limits=limits) if uds is not None else None
        base = "http://writer" if uds is not None else url.rstrip("/")
        # no read timeout: a write waits for its group's fsync, a history stream lasts stream_seconds
        self.client = httpx.AsyncClient(
            base_url=base, transport=transport, timeout=httpx.Timeout(None, connect=connect_timeout), limits=limits
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def forward(self, request: Request) -> StreamingResponse:
        """Send ``request`` to the writer as it came; stream the writer's answer back."""
        body = await request.body()
        target = request.scope.get("raw_path") or request.url.path.encode()
        query = request.scope.get("query_string", b"")
        url = self.client.base_url.copy_with(raw_path=target + (b"?" + query if query else b""))
        headers = [(k, v) for k, v in request.headers.raw if k.lower() not in _REQUEST_DROP]
        outgoing = self.client.build_request(request.method, url, headers=headers, content=body)
        self.forwarded += 1
        try:
            answer = await self.client.send(outgoing, stream=True)
        except httpx.ConnectError as exc:
            self.failed += 1
            raise Unavailable(f"the writer ({self.url}) is unreachable ({exc}); nothing was applied; retry") from None
        except httpx.TransportError as exc:
            self.failed += 1
            raise Unavailable(
                f"the writer ({self.url}) did not answer ({type(exc).__name__}): the request was not acknowledged "
                "and may or may not have been applied; retry"
            ) from None
        kept = [(k, v) for k, v in answer.headers.multi_items() if k.lower() not in _RESPONSE_DROP]
        return StreamingResponse(
            answer.aiter_raw(), answer.status_code, headers=dict(kept), background=BackgroundTask(answer.aclose)
        )
