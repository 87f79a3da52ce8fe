"""Damaged files, failing disks and broken imports never stop the server (issue 14, items 3, 4, 11)."""

from __future__ import annotations

import base64
import errno
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import api_fixtures
import pytest
from fastapi.testclient import TestClient
from stream_am.server import checkpoints, registry

# pytest fixtures shared by the tests/api modules (no conftest.py here: see api_fixtures)
make_client = api_fixtures.make_client
client = api_fixtures.client

SMALL = api_fixtures.SMALL
PROBE = {"instances": [{"a": 0.3, "b": -1.0}, {"a": 2.0, "b": 0.5}, [0.1, 0.2]]}


def _feed(client: TestClient, path: str, batches: int, size: int = 5) -> None:
    for k in range(batches):
        xs = [{"a": (k * size + i) % 5 / 5.0, "b": (i * 7 % 11) / 11.0} for i in range(size)]
        r = client.post(path, json={"instances": xs, "targets": [(k + i) % 2 for i in range(size)]})
        assert r.status_code == 200, r.text


def _observed(client: TestClient, name: str) -> tuple[Any, Any]:
    return client.get(f"/models/{name}").json(), client.post(f"/models/{name}/predict", json=PROBE).json()


def _checkpoints(tmp_path: Path, name: str) -> list[Path]:
    return sorted((tmp_path / "state").glob(f"models/{name}-*/checkpoints/ckpt-*"), reverse=True)


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flip", "truncate", "meta"])
def test_damaged_newest_checkpoint_recovers_from_the_older_one(
    make_client: Callable[..., TestClient], tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Item 4: a corrupt newest checkpoint used to stop the whole server; flipped bytes loaded silently."""
    settings = {"checkpoint_every_samples": 10, "checkpoint_every_seconds": 3600}
    first = make_client(**settings)
    first.post("/models", json={"name": "m", "params": SMALL})
    _feed(first, "/models/m/learn", 7)  # checkpoints at 10, 20, 30 samples, then a tail
    expected = _observed(first, "m")
    first.app.state.registry.close(checkpoint=False)  # type: ignore[attr-defined]  # a crash
    newest = _checkpoints(tmp_path, "m")[0]
    target = newest / ("server.json" if damage == "meta" else "model/state.safetensors")
    if damage == "flip":
        _flip_byte(target)
    else:
        target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 3])
    with caplog.at_level(logging.ERROR, logger="stream_am.api"):
        second = make_client(**settings)
    assert _observed(second, "m") == expected  # the older checkpoint plus the log: bitwise the same model
    assert str(target) in caplog.text  # the damaged file is named
    assert (newest.parent / f"corrupt-{newest.name}").is_dir()  # moved aside, kept for inspection
    assert second.get("/health").json()["status"] == "ok"


def test_unrecoverable_model_is_quarantined_while_others_serve(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    settings = {"checkpoint_every_samples": 10, "checkpoint_every_seconds": 3600}
    first = make_client(**settings)
    first.post("/models", json={"name": "m", "params": SMALL})
    _feed(first, "/models/m/learn", 7)
    _feed(first, "/learn", 2)
    healthy = _observed(first, "default")
    first.app.state.registry.close(checkpoint=False)  # type: ignore[attr-defined]
    for ckpt in _checkpoints(tmp_path, "m"):
        _flip_byte(ckpt / "model" / "state.safetensors")
    second = make_client(**settings)
    r = second.get("/models/m")
    assert r.status_code == 503 and "quarantined" in r.json()["detail"] and "state.safetensors" in r.json()["detail"]
    assert second.post("/models/m/learn", json={"instances": [[1.0]], "targets": [1]}).status_code == 503
    health = second.get("/health").json()
    assert health["status"] == "degraded" and "m" in health["problems"]
    assert _observed(second, "default") == healthy  # the others serve
    _feed(second, "/learn", 1)
    assert second.delete("/models/m").status_code == 204  # an operator can remove it
    assert second.get("/health").json()["status"] == "ok"


def test_quarantined_models_count_towards_max_models(make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    """Found by a review: a quarantined model keeps its files until it is deleted, but max_models counted only
    the serving ones, so models could be created beyond the bound on the state directory."""
    settings = {"checkpoint_every_samples": 10, "checkpoint_every_seconds": 3600, "max_models": 2}
    first = make_client(**settings)
    first.post("/models", json={"name": "m", "params": SMALL})
    _feed(first, "/models/m/learn", 2)
    first.app.state.registry.close(checkpoint=False)  # type: ignore[attr-defined]
    for ckpt in _checkpoints(tmp_path, "m"):
        _flip_byte(ckpt / "model" / "state.safetensors")
    second = make_client(**settings)  # "default" serves, "m" is quarantined
    refused = second.post("/models", json={"name": "n", "params": SMALL})
    assert refused.status_code == 422 and "1 quarantined" in refused.text and "name" in refused.text, refused.text
    assert second.get("/models/n").status_code == 404
    assert second.delete("/models/m").status_code == 204
    assert second.post("/models", json={"name": "n", "params": SMALL}).status_code == 201


def _export(client: TestClient, name: str) -> dict[str, Any]:
    r = client.get(f"/models/{name}/export")
    assert r.status_code == 200
    doc: dict[str, Any] = r.json()
    return doc


def test_import_with_replace_keeps_the_old_model_until_the_new_one_loaded(client: TestClient) -> None:
    """Item 3: a broken document with ?replace=true used to delete the existing model, log and checkpoints."""
    client.post("/models", json={"name": "m", "params": SMALL})
    _feed(client, "/models/m/learn", 3)
    before = _observed(client, "m")
    doc = _export(client, "m")
    broken = {**doc, "files": {**doc["files"], "state.safetensors": base64.b64encode(b"garbage").decode()}}
    r = client.post("/models/m/import?replace=true", json=broken)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "files"
    assert _observed(client, "m") == before
    _feed(client, "/models/m/learn", 1)  # still learning
    r = client.post("/models/m/import?replace=true", json=doc)
    assert r.status_code == 201 and r.json()["samples_seen"] == 15
    assert _observed(client, "m")[1] == before[1]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["files"].update({"state.safetensors": base64.b64encode(b"\x08" + b"\0" * 7 + b"{}").decode()}),
         "files"),
        (lambda d: d["files"].update({"config.json": base64.b64encode(b'{"format": 5}').decode()}), "files"),
        ("features", "files"),
        (lambda d: d["state"].update({"samples_seen": 1e999}), "state.samples_seen"),
        (lambda d: d["state"].update({"model_version": -1}), "state.model_version"),
        ("batch", "files.batch_size"),
        ("surrogate class", "files"),  # a name the library keeps but a JSON answer cannot carry
        ("surrogate feature", "files"),
        (lambda d: d["state"].update({"metrics": {"n": 1, "correct": 1000}}), "state.metrics"),
        (lambda d: d["state"].update({"metrics": {"n": 2.5, "correct": 1}}), "state.metrics"),
        (lambda d: d["params"].update({"batch_size": 5}), "params.batch_size"),  # not what the files hold
    ],
)
def test_broken_imports_are_422_naming_the_field(client: TestClient, change: Any, field: str) -> None:
    """Item 11: garbage safetensors, meta.features: 5 and samples_seen: 1e999 used to give 500."""
    import json

    if isinstance(change, str) and change.startswith("surrogate"):
        _feed(client, "/learn", 2)  # (classes and features to name)
    doc = _export(client, "default")
    config = json.loads(base64.b64decode(doc["files"]["config.json"]))
    if change == "features":
        config["meta"]["features"] = 5
    elif change == "batch":
        config["params"]["batch_size"] = ["int", 10**12]
    elif isinstance(change, str):
        names = config["meta"][change.split()[1] + ("es" if change.endswith("class") else "s")]
        names[:] = [["str", f"n{i}\ud800"] for i in range(len(names))]  # (one type for all, as a model keeps)
    else:
        change(doc)
    if isinstance(change, str):
        doc["files"]["config.json"] = base64.b64encode(json.dumps(config).encode()).decode()
    body = json.dumps(doc).replace("Infinity", "1e999")
    r = client.post("/models/x/import", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["field"] == field
    assert client.get("/models/x").status_code == 404
    assert client.get("/models").status_code == 200


def test_full_disk_on_create_is_503_naming_the_cause(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*_: Any, **__: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(registry.ServedModel, "open", full)
    r = client.post("/models", json={"name": "m", "params": SMALL})
    assert r.status_code == 503 and "No space left on device" in r.json()["detail"]
    monkeypatch.undo()
    assert client.post("/models", json={"name": "m", "params": SMALL}).status_code == 201


def test_full_log_is_503_naming_the_cause_logged_once(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    """Item 11: on a full disk the 503 said "cannot rollback - no transaction is active" and nothing was logged."""
    _feed(client, "/learn", 1)
    before = _observed(client, "default")
    log = client.app.state.registry.get("default").log  # type: ignore[attr-defined]
    pages = log._writer.execute("PRAGMA page_count").fetchone()[0]
    log._writer.execute(f"PRAGMA max_page_count = {pages}")  # SQLite answers SQLITE_FULL, as on a full disk
    big = {"instances": [{"a": float(i), "b": 1.0} for i in range(300)], "targets": [i % 2 for i in range(300)]}
    with caplog.at_level(logging.ERROR, logger="stream_am.api"):
        answers = [client.post("/learn", json=big) for _ in range(3)]
    assert all(r.status_code == 503 for r in answers)
    assert all("disk is full" in r.json()["detail"] for r in answers), answers[0].text
    assert caplog.text.count("event log failed") == 1
    assert client.get("/health").json()["status"] == "degraded"
    assert _observed(client, "default") == before
    log._writer.execute("PRAGMA max_page_count = 1073741823")
    assert client.post("/learn", json=big).status_code == 200
    assert client.get("/health").json()["status"] == "ok"


def test_failing_checkpoint_backs_off_and_shows_in_health(
    make_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Item 11: a failing checkpoint was retried after every write group (2,791 tracebacks in 15 s)."""
    client = make_client(checkpoint_every_samples=1)
    attempts: list[float] = []
    write = checkpoints.write

    def failing(*args: Any, **kwargs: Any) -> Path:
        attempts.append(time.monotonic())
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints, "write", failing)
    with caplog.at_level(logging.ERROR, logger="stream_am.api"):
        start = time.monotonic()
        while time.monotonic() - start < 0.5:
            _feed(client, "/learn", 1, size=2)
    assert 1 <= len(attempts) <= 2  # not one per write group
    assert caplog.text.count("checkpoint failed") == 1
    health = client.get("/health").json()
    assert health["status"] == "degraded" and "No space left" in health["problems"]["default"]
    monkeypatch.setattr(checkpoints, "write", write)
    deadline = time.monotonic() + 10
    while client.get("/health").json()["status"] != "ok" and time.monotonic() < deadline:
        _feed(client, "/learn", 1, size=2)
        time.sleep(0.2)
    assert client.get("/health").json()["status"] == "ok"


def test_a_model_that_cannot_be_rebuilt_at_run_time_is_quarantined(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing request sends its model back to checkpoint + log; if even that fails, only it stops serving."""
    from stream_am.server import estimators, recovery, writer

    client.post("/models", json={"name": "m", "params": SMALL})
    _feed(client, "/models/m/learn", 1)
    learn = estimators.learn

    def failing(est: Any, rows: list[dict[str, float]], targets: list[Any], frame: Any = None) -> None:
        if "boom" in rows[0]:
            raise RuntimeError("boom")
        learn(est, rows, targets, frame)

    def unrecoverable(*_: Any, **__: Any) -> Any:
        raise recovery.Unrecoverable("ckpt-00000000000000000001/model/state.safetensors: checksum mismatch")

    monkeypatch.setattr(estimators, "learn", failing)
    monkeypatch.setattr(writer, "restore_point", unrecoverable)
    r = client.post("/models/m/learn", json={"instances": [{"boom": 1.0}], "targets": [1]})
    assert r.status_code == 503 and "quarantined" in r.json()["detail"] and "checksum" in r.json()["detail"]
    assert client.post("/models/m/learn", json={"instances": [[1.0]], "targets": [1]}).status_code == 503
    assert "m" in client.get("/health").json()["problems"]
    _feed(client, "/learn", 1)  # the others serve


def test_a_crash_while_pruning_leaves_no_half_deleted_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "checkpoints"
    for seq in (1, 2, 3):
        checkpoints.write(root, seq, {}, lambda d: (d.mkdir(), (d / "state.safetensors").write_bytes(b"x" * 64)))
    monkeypatch.setattr(checkpoints.shutil, "rmtree", lambda *a, **k: None)  # the process dies before removing
    assert checkpoints.prune(root, 2) == 2
    assert [checkpoints.seq_of(p) for p in checkpoints.listing(root)] == [3, 2]  # each whole: it verifies
    assert all(checkpoints.verify(p)["seq"] == checkpoints.seq_of(p) for p in checkpoints.listing(root))
    monkeypatch.undo()
    checkpoints.listing(root)  # a restart clears what the crash left
    assert sorted(p.name for p in root.iterdir()) == ["ckpt-00000000000000000002", "ckpt-00000000000000000003"]


@pytest.mark.parametrize("name", [["int", 0], ["bool", True], ["float", 0.5], ["tuple", [["str", "a"]]]])
def test_an_import_whose_features_no_request_can_name_is_refused(client: TestClient, name: list[Any]) -> None:
    """Requests name features by strings (a list instance's are "0", "1", ...). A model saved with features named
    otherwise (the numpy API names them 0, 1, ... as ints) was imported: its features were never given again, every
    prediction imputed them all, a list instance grew a second "0", and GET listed both as "0"."""
    import json

    _feed(client, "/learn", 2)
    doc = _export(client, "default")
    config = json.loads(base64.b64decode(doc["files"]["config.json"]))
    config["meta"]["features"][0] = name
    doc["files"]["config.json"] = base64.b64encode(json.dumps(config).encode()).decode()
    r = client.post("/models/x/import", json=doc)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["field"] == "files" and "string" in r.json()["detail"][0]["msg"]
    assert client.get("/models/x").status_code == 404
