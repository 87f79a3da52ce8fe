"""Error types of the service and the handlers that turn them into JSON answers."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic_core import PydanticSerializationError
from starlette.exceptions import HTTPException
from stream_am.server.schemas import INSTANCE_TAGS

from stream_am.checks import InputError

_log = logging.getLogger("stream_am.api")

__all__ = [
    "FieldConflict",
    "FieldError",
    "ModelExists",
    "ModelNotFound",
    "Overloaded",
    "Unavailable",
    "field_name",
    "input_field",
    "install_handlers",
]


class FieldError(ValueError):
    """Bad input attributable to one request field (answered with 422)."""

    def __init__(self, field: str, msg: str) -> None:
        super().__init__(f"{field}: {msg}")
        self.field = field
        self.msg = msg


class FieldConflict(FieldError):
    """A well-formed field the model's state cannot honour now (answered with 409, naming the field): a
    ``min_model_version`` ahead of every acknowledged update, an id that already holds another instance."""


class ModelNotFound(LookupError):
    """No model of that name (answered with 404)."""


class ModelExists(ValueError):
    """A model of that name already exists (answered with 409)."""


class Overloaded(RuntimeError):
    """The writer queue of a model is full or the model is closing (answered with 503)."""


class Unavailable(RuntimeError):
    """A model or the storage cannot serve now; the message names the cause (answered with 503)."""


def input_field(exc: InputError, rows: str = "instances", row: int | None = None) -> FieldError:
    """A library :class:`~stream_am.checks.InputError` as a request field: ``x``/``X`` -> ``rows[i].key``,
    ``y`` -> ``targets[i]``; ``row`` is the row when the library saw a single sample."""
    row = exc.row if exc.row is not None else row
    index = "" if row is None else f"[{row}]"
    if exc.field == "y":
        return FieldError(f"targets{index}", str(exc))
    key = "" if exc.key is None or rows != "instances" else f".{exc.key}"
    return FieldError(f"{rows}{index}{key}", str(exc))


_TAGS = set(INSTANCE_TAGS)


def field_name(loc: Sequence[Any]) -> str:
    """Render a pydantic location as ``instances[0].x`` (without ``body`` and union tags)."""
    out = ""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    previous: Any = None
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(previous, int) and part in _TAGS:
            pass  # the tag of a union member, not a field
        elif part == "[key]":  # pydantic's mark of a key's own error, after the key: the field is that key
            out += " (the key)"
        elif part == "":  # (an empty key, which ".name" would not show)
            out += '[""]'
        else:
            out += f".{part}" if out else str(part)
        previous = part
    return out or "body"


def _error(status: int, items: list[dict[str, Any]]) -> JSONResponse:
    """The answer; a lone surrogate its texts quote from the request (``"\\ud800"`` is legal JSON but no Unicode
    text, and no UTF-8 answer can carry it) is written as its escape, so the refusal itself stays writable."""
    safe = [{k: _text(v) for k, v in item.items()} for item in items]
    return JSONResponse(status_code=status, content={"detail": safe})


def _text(value: Any) -> Any:
    return value.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(value, str) else value


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    items = [
        {
            "field": "body" if e.get("type") == "json_invalid" else field_name(e.get("loc", ())),
            "msg": _body_message(request, e) if tuple(e.get("loc", ())) == ("body",) else str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]
    return _error(422, items)


def _body_message(request: Request, error: Any) -> str:
    """The message for an error of the body as a whole: not read as a JSON object, or (pydantic's
    ``string_unicode`` there) a field name that is no Unicode text."""
    if error.get("type") == "string_unicode":
        return "a field name of the body is not Unicode text (a lone surrogate such as \\ud800)"
    return _not_json(request)


def _not_json(request: Request) -> str:
    """The message for a body that was not read as a JSON object, naming the usual cause: the content type
    (``curl -d`` sends ``application/x-www-form-urlencoded`` unless told otherwise)."""
    kind = request.headers.get("content-type")
    if kind is None or "json" in kind:
        return "the body must be a JSON object"
    return f"the body must be a JSON object sent with the header 'content-type: application/json' (got {kind!r})"


async def _value_error(_: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, InputError):
        exc = input_field(exc)
    field = exc.field if isinstance(exc, FieldError) else "body"  # every 422 names a field
    msg = exc.msg if isinstance(exc, FieldError) else str(exc)
    return _error(422, [{"field": field, "msg": msg, "type": "value_error"}])


_UNPARSED = "There was an error parsing the body"  # FastAPI's 400 when reading the JSON body raised


async def _unwritable(request: Request, exc: Exception) -> JSONResponse:
    """An answer that cannot be written as JSON is the server's failure, not the request's: 500, logged."""
    _log.error("%s %s: the answer could not be written as JSON: %s", request.method, request.url.path, exc)
    return JSONResponse(status_code=500, content={"detail": f"the answer could not be written as JSON: {exc}"})


async def _conflict(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FieldConflict)
    return _error(409, [{"field": exc.field, "msg": exc.msg, "type": "conflict"}])


async def _http(request: Request, exc: Exception) -> Any:
    """FastAPI's own answer, except a body its JSON reader gave up on (nested deeper than Python's recursion
    limit, an integer over 4,300 digits): a 422 naming the body, as every malformed body is answered."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400 and exc.detail == _UNPARSED:
        msg = "the body could not be read as JSON (not UTF-8 text, nested too deeply, or a number too long)"
        return _error(422, [{"field": "body", "msg": msg, "type": "json_invalid"}])
    return await http_exception_handler(request, exc)


async def _not_found(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=404, content={"detail": str(exc.args[0] if exc.args else exc)})


async def _exists(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=409, content={"detail": str(exc)})


async def _overloaded(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=503, content={"detail": str(exc)}, headers={"Retry-After": "1"})


async def _storage(request: Request, exc: Exception) -> JSONResponse:
    """A full disk or another storage failure outside a model's writer: 503 naming the cause."""
    _log.error("%s %s: storage error: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    return await _overloaded(request, Unavailable(f"storage error: {type(exc).__name__}: {exc}"))


def install_handlers(app: FastAPI) -> None:
    """Map validation and library ``ValueError`` to 422, unknown models to 404, conflicts to 409, overload to 503."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(ModelExists, _exists)
    app.add_exception_handler(FieldConflict, _conflict)  # before ValueError's: the most derived class wins
    app.add_exception_handler(ValueError, _value_error)
    app.add_exception_handler(PydanticSerializationError, _unwritable)  # (a ValueError: the most derived wins)
    app.add_exception_handler(ModelNotFound, _not_found)
    app.add_exception_handler(Overloaded, _overloaded)
    app.add_exception_handler(Unavailable, _overloaded)
    app.add_exception_handler(OSError, _storage)
    app.add_exception_handler(sqlite3.OperationalError, _storage)
