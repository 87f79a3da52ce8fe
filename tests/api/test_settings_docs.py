"""The settings as the documentation states them: every field in a settings table of docs/server.md or
docs/dashboard.md (or the limits of docs/security.md) with its default, and read from the environment as stated."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from stream_am.server.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
_ROW = re.compile(r"^\| ((?:`\w+`(?:, | / )?)+) \| ([^|]+) \|", re.M)


def _documented() -> dict[str, str]:
    """Setting name -> the default its table gives (``a`` / ``b`` and ``a``, ``b`` rows split in order)."""
    out: dict[str, str] = {}
    for page in ("server.md", "dashboard.md", "security.md"):
        section = (DOCS / page).read_text().split("| Setting | Default |", 1)[1].split("\n\n", 1)[0]
        for names, default in _ROW.findall(section):
            keys = re.findall(r"`(\w+)`", names)
            values = re.split(r", | / ", default.strip()) if len(keys) > 1 else [default.strip()]
            assert len(values) == len(keys), (page, names, default)
            for key, value in zip(keys, values, strict=True):
                out.setdefault(key, value.strip("`"))
    return out


def _read(text: str) -> Any:
    """A default as the docs write it: ``8 MiB``, ``unset``, ``true``, ``<state_dir>/snapshots``, numbers."""
    if text == "unset" or text.startswith("<"):
        return None
    if text in ("true", "false"):
        return text == "true"
    if text.endswith(" MiB"):
        return int(text.removesuffix(" MiB")) * 2**20
    try:
        return float(text)
    except ValueError:
        return text


def test_every_setting_is_documented_with_its_default() -> None:
    documented = _documented()
    fields = Settings.model_fields
    assert set(fields) <= set(documented), set(fields) - set(documented)
    assert set(documented) <= set(fields), set(documented) - set(fields)
    for name, field in fields.items():
        default = field.default.get_secret_value() if isinstance(field.default, SecretStr) else field.default
        want = str(default) if isinstance(default, Path) else default
        got = _read(documented[name])
        assert got == want, (name, documented[name], default)


def test_an_empty_torch_threads_is_torch_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_AM_TORCH_THREADS", "")
    assert Settings().torch_threads is None
    monkeypatch.setenv("STREAM_AM_TORCH_THREADS", "3")
    assert Settings().torch_threads == 3
    monkeypatch.delenv("STREAM_AM_TORCH_THREADS")
    assert Settings().torch_threads == 1


def test_the_processes_a_launcher_starts_get_torch_default_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAM_AM_TORCH_THREADS", raising=False)
    env = Settings(torch_threads=None).environment()
    assert env["STREAM_AM_TORCH_THREADS"] == ""
    monkeypatch.setenv("STREAM_AM_TORCH_THREADS", env["STREAM_AM_TORCH_THREADS"])
    assert Settings().torch_threads is None
    assert Settings(torch_threads=2).environment()["STREAM_AM_TORCH_THREADS"] == "2"
    assert "STREAM_AM_API_KEY" not in Settings(api_key=None).environment()
