"""Predictor replicas in one test process: a writer (a real uvicorn server on a Unix socket, in a thread)
publishing snapshots, and a predictor application answering from them or forwarding to the writer.

The multi-process server (``stream-am serve --predictors N``), kill -9 included, is in
``test_replicas_processes.py``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import replica_fixtures
from api_fixtures import SMALL
from fastapi.testclient import TestClient
from pydantic import ValidationError
from replica_fixtures import until
from stream_am.server import Settings, create_app, snapshots

from stream_am.cli import main as cli_main

ROWS = [{"a": 1.0, "b": 0.0}, {"a": -1.0, "b": 0.5}, {"a": 0.3, "b": -0.2}, {"a": -0.7, "b": 0.9}]
TARGETS = ["x", "y", "x", "y"]
KEY = {"Authorization": "Bearer k"}

replicas = replica_fixtures.replicas


def _answer_at(client: TestClient, version: int, body: dict[str, Any]) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        answer = client.post("/predict", json=body).json()
        return answer if answer["model_version"] == version and answer["staleness_seconds"] > 0 else None

    return until(check)  # type: ignore[no-any-return]


@pytest.mark.parametrize("tcp", [False, True], ids=["unix-socket", "http"])
def test_predictor_answers_from_the_published_state_as_the_writer_would(replicas, tcp: bool) -> None:
    writer, predictor = replicas(tcp=tcp)
    assert predictor.post("/learn", json={"instances": ROWS, "targets": TARGETS}).json()["model_version"] == 1
    local = _answer_at(predictor, 1, {"instances": ROWS})
    ahead = predictor.post("/predict", json={"instances": ROWS, "min_model_version": 2})  # forwarded: refused
    assert ahead.status_code == 409 and ahead.json()["detail"][0]["field"] == "min_model_version"
    direct = writer.post("/predict", {"instances": ROWS}).json()
    assert direct["staleness_seconds"] == 0.0 and direct["model_version"] == 1
    assert local["predictions"] == direct["predictions"]
    assert local["probabilities"] == direct["probabilities"]  # one process, one published state: bitwise
    assert 0 < local["staleness_seconds"] <= 2.0
    info = predictor.get("/replica").json()
    assert info["answered"] >= 1 and info["forwarded_stale"] >= 1
    assert info["models"]["default"]["model_version"] == 1


def test_every_publication_is_loaded_and_versions_only_grow(replicas) -> None:
    _, predictor = replicas()
    seen = []
    for k in range(1, 5):
        assert predictor.post("/learn", json={"instances": ROWS[:2], "targets": TARGETS[:2]}).status_code == 200
        seen.append(_answer_at(predictor, k, {"instances": ROWS[:1]})["model_version"])
    assert seen == [1, 2, 3, 4]
    assert len(list((predictor.app.state.settings.snapshots / "default").glob("ckpt-*"))) <= 3  # keep_snapshots


def test_a_snapshot_older_than_the_bound_is_never_answered_from(replicas) -> None:
    # the writer publishes once a minute: the predictor's snapshot soon exceeds the bound
    _, predictor = replicas(publish_interval=60.0, max_staleness_seconds=0.3)
    predictor.post("/learn", json={"instances": ROWS, "targets": TARGETS})
    time.sleep(0.4)
    answer = predictor.post("/predict", json={"instances": ROWS[:1]}).json()
    assert answer == {**answer, "model_version": 1, "staleness_seconds": 0.0}  # the writer answered
    assert predictor.get("/replica").json()["forwarded_stale"] >= 1


def test_writes_and_stored_predictions_go_through_the_writer(replicas) -> None:
    _, predictor = replicas()
    stored = predictor.post("/predict", json={"instances": ROWS[:2], "ids": ["p", "q"]})
    assert stored.status_code == 200 and stored.json()["staleness_seconds"] == 0.0
    learned = predictor.post("/learn", json={"ids": ["p", "q"], "targets": ["x", "y"]})
    assert learned.json() == {"learned": 2, "samples_seen": 2, "model_version": 1}
    again = predictor.post("/learn", json={"ids": ["p"], "targets": ["x"]})
    assert again.status_code == 422 and again.json()["detail"][0]["field"] == "ids[0]"
    created = predictor.post("/models", json={"name": "m2", "estimator": "AMRegressor", "params": SMALL})
    assert created.status_code == 201
    assert predictor.get("/models/m2").json()["model_version"] == 0


def test_bad_predictions_are_refused_with_the_writers_field_names(replicas) -> None:
    _, predictor = replicas()
    predictor.post("/learn", json={"instances": ROWS, "targets": TARGETS})
    _answer_at(predictor, 1, {"instances": ROWS[:1]})
    for body, field in [
        ({"instances": []}, "instances"),
        ({"instances": [{"a": "x"}]}, "instances[0].a"),
        ({"instances": [{"a": 1.0}], "min_model_version": -1}, "min_model_version"),
        ({"instances": [{"a": 1.0}], "surprise": 1}, "surprise"),
    ]:
        answer = predictor.post("/predict", json=body)
        assert answer.status_code == 422, body
        assert answer.json()["detail"][0]["field"] == field


def test_the_api_key_is_checked_by_the_predictor_before_the_body(replicas) -> None:
    _, predictor = replicas(api_key="k")
    refused = predictor.post("/learn", json={"instances": ROWS, "targets": TARGETS})
    assert refused.status_code == 401
    assert predictor.post("/learn", json={"instances": ROWS, "targets": TARGETS}, headers=KEY).status_code == 200
    assert predictor.post("/predict", json={"instances": ROWS[:1], "ids": ["z"]}).status_code == 401
    assert predictor.post("/predict", json={"instances": ROWS[:1]}).status_code == 200  # open, as on the writer


def test_a_deleted_model_is_withdrawn_and_a_new_incarnation_never_answers_from_the_old(replicas) -> None:
    _, predictor = replicas()
    predictor.post("/models", json={"name": "m", "estimator": "AMClassifier", "params": SMALL})
    for _ in range(3):
        predictor.post("/models/m/learn", json={"instances": ROWS, "targets": TARGETS})
    until(lambda: predictor.get("/replica").json()["models"].get("m", {}).get("model_version") == 3)
    assert predictor.delete("/models/m").status_code == 204
    until(lambda: "m" not in predictor.get("/replica").json()["models"])
    assert predictor.post("/models/m/predict", json={"instances": ROWS[:1]}).status_code == 404
    predictor.post("/models", json={"name": "m", "estimator": "AMClassifier", "params": SMALL})
    answer = until(lambda: predictor.get("/replica").json()["models"].get("m"))
    assert answer["model_version"] == 0 and answer["samples_seen"] == 0


def test_without_the_writer_fresh_snapshots_still_answer_and_stale_ones_are_refused(replicas) -> None:
    writer, predictor = replicas(max_staleness_seconds=1.0)
    predictor.post("/learn", json={"instances": ROWS, "targets": TARGETS})
    _answer_at(predictor, 1, {"instances": ROWS[:1]})
    writer.stop()
    assert predictor.post("/predict", json={"instances": ROWS[:1]}).json()["model_version"] == 1
    down = predictor.post("/learn", json={"instances": ROWS, "targets": TARGETS})
    assert down.status_code == 503 and "writer" in down.json()["detail"]
    time.sleep(1.1)
    stale = predictor.post("/predict", json={"instances": ROWS[:1]})
    assert stale.status_code == 503 and "unreachable" in stale.json()["detail"]


def test_a_damaged_snapshot_is_not_loaded_and_the_previous_one_keeps_serving(replicas, tmp_path: Path) -> None:
    writer, predictor = replicas()
    predictor.post("/learn", json={"instances": ROWS, "targets": TARGETS})
    _answer_at(predictor, 1, {"instances": ROWS[:1]})
    writer.stop()  # no more publications: the damaged one below stays the newest
    store = predictor.app.state.settings.snapshots / "default"
    head = snapshots.read_head(store)
    assert head is not None
    damaged = store / "ckpt-00000000000000000099"
    shutil.copytree(store / f"ckpt-{head.published:020d}", damaged)
    victim = next(p for p in sorted((damaged / "model").rglob("*")) if p.is_file())
    victim.write_bytes(victim.read_bytes()[:-1] + b"\x00")
    snapshots.write_head(store, snapshots.Head(head.model_id, head.estimator, 99, 99, time.time()))
    until(lambda: predictor.get("/replica").json()["snapshot_load_failures"] >= 1)
    info = predictor.get("/replica").json()
    assert info["models"]["default"]["model_version"] == 1


def test_settings_and_the_command_line_name_what_is_wrong(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValidationError, match="writer_url"):
        Settings(role="predictor")
    with pytest.raises(ValidationError, match="writer_url"):
        Settings(role="predictor", writer_url="ftp://x")
    with pytest.raises(ValidationError, match="max_staleness_seconds"):
        Settings(max_staleness_seconds=0)
    assert cli_main(["serve", "--role", "predictor"]) == 2
    assert "--writer-url (STREAM_AM_WRITER_URL)" in capsys.readouterr().err
    assert cli_main(["serve", "--predictors", "2", "--role", "writer"]) == 2
    assert "--role" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["serve", "--predictors", "0"])
    assert "--predictors" in capsys.readouterr().err


def test_the_dashboard_and_its_event_stream_come_through_a_predictor(replicas) -> None:
    _, predictor = replicas(stream_seconds=0.5)
    predictor.post("/learn", json={"instances": ROWS, "targets": TARGETS})
    page = predictor.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    with predictor.stream("GET", "/models/default/history/stream") as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        text = events.read().decode()
    assert "event: update" in text and text.rstrip().endswith("event: end\ndata: {}")
    assert '"samples_seen": 4' in text  # the writer's state, streamed through


def test_a_writer_whose_snapshots_cannot_be_written_still_serves_and_says_so(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-directory"
    settings = Settings(state_dir=tmp_path / "state", role="writer", snapshot_dir=blocked)
    blocked.write_text("")  # after the settings were checked: the storage failing while the server runs
    with TestClient(create_app(settings)) as writer:
        assert writer.post("/learn", json={"instances": ROWS, "targets": TARGETS}).status_code == 200
        health = writer.get("/health").json()
    assert health["status"] == "degraded" and "publishing snapshots" in health["problems"]["(snapshot publisher)"]


def test_a_periodic_round_survives_a_failure_and_ends_when_its_step_says_so() -> None:
    from stream_am.server.periodic import Periodic

    calls: list[int] = []

    def step() -> bool:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("one bad round")
        return len(calls) < 4

    rounds = Periodic("test", 0.01, step)
    rounds.start()
    until(lambda: len(calls) == 4)
    time.sleep(0.1)
    rounds.stop()
    assert len(calls) == 4  # the failure did not end it; False did


def test_snapshots_never_remove_what_the_publisher_did_not_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by an adversarial review: every directory of the snapshot directory that was not a served model
    was removed (a user's own data), and a snapshot directory holding the state directory lost its models."""
    shared = tmp_path / "shared"
    (shared / "mydata").mkdir(parents=True)
    (shared / "mydata" / "file.txt").write_text("x")
    settings = Settings(state_dir=tmp_path / "state", role="writer", snapshot_dir=shared, publish_interval=0.05)
    with TestClient(create_app(settings)) as writer:
        assert writer.post("/learn", json={"instances": ROWS, "targets": TARGETS}).status_code == 200
        deadline = time.time() + 10
        while not (shared / "default" / snapshots.HEAD).exists() and time.time() < deadline:
            time.sleep(0.05)
    assert (shared / "default" / snapshots.HEAD).exists() and (shared / "mydata" / "file.txt").read_text() == "x"
    for snapshot_dir in (tmp_path / "state", tmp_path):
        with pytest.raises(ValidationError, match="snapshot_dir: .* is the state directory or holds it"):
            Settings(state_dir=tmp_path / "state", snapshot_dir=snapshot_dir)
    assert cli_main(["serve", "--role", "writer", "--state-dir", str(tmp_path / "state"),
                     "--snapshot-dir", str(tmp_path)]) == 2
    assert "--snapshot-dir (STREAM_AM_SNAPSHOT_DIR)" in capsys.readouterr().err


def test_one_models_publication_failing_does_not_stop_the_others_and_leftovers_are_cleared(tmp_path: Path) -> None:
    """Found by a review: a model whose snapshot could not be written ended the publisher's round, so every model
    after it had no heartbeat (predictors forwarded everything as stale); and the temporary files of a writer
    killed mid-publication stayed in the snapshot directory for ever."""
    shared = tmp_path / "snapshots"
    shared.mkdir()
    (shared / "a").write_text("")  # model a's snapshot directory cannot be created
    (shared / "b" / ".tmp-0123").mkdir(parents=True)  # a killed writer's half-written snapshot and heartbeat
    (shared / "b" / ".head-0123").write_text("{")
    settings = Settings(state_dir=tmp_path / "state", role="writer", snapshot_dir=shared, publish_interval=0.05)
    with TestClient(create_app(settings)) as writer:
        for name in ("a", "b"):
            assert writer.post("/models", json={"name": name, "estimator": "AMClassifier", "params": SMALL}
                               ).status_code == 201
            assert writer.post(f"/models/{name}/learn", json={"instances": ROWS, "targets": TARGETS}
                               ).status_code == 200
        head = until(lambda: snapshots.read_head(shared / "b"))
        until(lambda: snapshots.read_head(shared / "b").published == 1)  # type: ignore[union-attr]
        problems = until(lambda: writer.get("/health").json()["problems"].get("(snapshot publisher)"))
    assert head.model_id and "'a'" in problems and "'b'" not in problems, problems
    assert sorted(p.name for p in (shared / "b").iterdir() if p.name.startswith(".")) == []
