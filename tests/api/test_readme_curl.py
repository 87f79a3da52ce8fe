"""The README's curl session, replayed in-process against a fresh default server: same answers as quoted."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import api_fixtures
from fastapi.testclient import TestClient

client = api_fixtures.client  # pytest fixtures (see api_fixtures)
make_client = api_fixtures.make_client

README = Path(__file__).resolve().parents[2] / "README.md"


def _session() -> list[tuple[str, dict | None, dict | None]]:
    """(path, body or None for a GET, quoted answer or None) for every curl command of "Serve a model"."""
    section = README.read_text().split("## Serve a model", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\ncurl.*?```", section, re.S).group(0)
    out: list[tuple[str, dict | None, dict | None]] = []
    for chunk in re.split(r"\n(?=curl )", block.strip("`").removeprefix("bash\n")):
        command, _, answer = chunk.partition("\n# ")
        words = shlex.split(command.replace("\\\n", " "))
        url = next(w for w in words if w.startswith("localhost:8000"))
        body = json.loads(words[words.index("-d") + 1]) if "-d" in words else None
        out.append((url.removeprefix("localhost:8000"), body, json.loads(answer) if answer else None))
    return out


def test_the_readme_curl_session_answers_as_quoted(client: TestClient) -> None:
    session = _session()
    assert [path for path, _, _ in session] == ["/partial_fit", "/predict", "/models/default"]
    for path, body, quoted in session:
        answer = client.post(path, json=body) if body is not None else client.get(path)
        assert answer.status_code == 200, answer.text
        if quoted is not None:
            assert answer.json() == quoted
    # the text after the session quotes the model's metrics: nothing is learned before batch_size samples
    assert '`"metrics": {"scored": 2, "accuracy": 0.0}`' in README.read_text()
    assert client.get("/models/default").json()["metrics"] == {"scored": 2, "accuracy": 0.0}
