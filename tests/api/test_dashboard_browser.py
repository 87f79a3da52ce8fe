"""The dashboard and the API docs in a real headless Chromium against a real `stream-am serve` on loopback.

Marked ``browser`` (not in the default run; ``.ci/run`` runs them): ``python -m pytest -m browser``. They need
the ``playwright`` package and a Chromium executable (Debian: ``apt-get install chromium``; another one with
``STREAM_AM_CHROMIUM=/path``). Screenshots of each state are written to ``out/browser/`` (git-ignored).
"""

from __future__ import annotations

import itertools
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import api_fixtures
import httpx
import pytest
from river.datasets import synth
from stream_am.scenarios.drift import switching

pytestmark = pytest.mark.browser
start_server = api_fixtures.start_server  # shared fixture (see api_fixtures)
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need `pip install playwright`")

ARTIFACTS = api_fixtures.REPO / "out" / "browser"
FAST = {"STREAM_AM_HISTORY_INTERVAL": "0.2", "STREAM_AM_STREAM_SECONDS": "5"}
SMALL = {"hidden_sizes": [16], "batch_size": 16, "seed": 0}
WAIT_MS = 30_000


def _chromium() -> str:
    path = os.environ.get("STREAM_AM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("no Chromium executable: apt-get install chromium (or set STREAM_AM_CHROMIUM)")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[api_fixtures.Server]:
    env = {**FAST, "STREAM_AM_CHECKPOINT_EVERY_SAMPLES": "500"}
    server = api_fixtures.Server(tmp_path_factory.mktemp("dash") / "state", env=env)
    yield server
    server.kill()


class Watched:
    """A page whose console errors, page errors and requests to other hosts are recorded."""

    def __init__(self, browser: Any, base: str, name: str, headers: dict[str, str] | None = None) -> None:
        self.base = base
        self.name = name
        self.context = browser.new_context(viewport={"width": 1200, "height": 1000})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.requests: list[Any] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", self._request)

    def _request(self, request: Any) -> None:
        self.requests.append(request)
        if not request.url.startswith((self.base + "/", f"blob:{self.base}/", "data:")):
            self.foreign.append(request.url)

    def shot(self, state: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{state}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def text(self, selector: str) -> str:
        return str(self.page.locator(selector).inner_text())

    def wait_for(self, script: str, arg: Any = None) -> None:
        """Wait until a JavaScript function is true (a function, not an expression: the CSP forbids eval)."""
        self.page.wait_for_function(script, arg=arg, timeout=WAIT_MS)

    def clean(self) -> None:
        assert self.foreign == [], f"requests left the server: {self.foreign}"
        assert self.errors == [], f"console errors: {self.errors}"

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watch(browser: Any) -> Iterator[Callable[..., Watched]]:
    pages: list[Watched] = []

    def make(base: str, name: str, **kwargs: Any) -> Watched:
        page = Watched(browser, base, name, **kwargs)
        pages.append(page)
        return page

    yield make
    for page in pages:
        page.close()


def _points(w: Watched) -> int:
    return int(w.page.locator("#chart-metric").get_attribute("data-points") or 0)


def test_page_loads_offline_then_follows_learning_without_reload(server: Any, watch: Callable[..., Watched]) -> None:
    http = httpx.Client(base_url=server.url, timeout=30)
    assert http.post("/models", json={"name": "live", "estimator": "AMClassifier", "params": SMALL}).status_code == 201
    w = watch(server.url, "live")
    response = w.page.goto(f"{server.url}/dashboard#live")
    assert response.status == 200 and "default-src 'self'" in response.headers["content-security-policy"]
    w.wait_for("() => document.querySelector('#conn').dataset.state === 'live'")
    assert w.page.locator("#model").input_value() == "live"
    assert w.text("#c-samples") == "0"
    w.shot("empty")
    w.page.evaluate("() => { window.__sameDocument = true; }")
    before = _points(w)

    for i in range(6):
        xs = [{"a": (i * 32 + k) % 7 / 7.0, "b": (k % 5) / 5.0} for k in range(32)]
        ys = [int(x["a"] > 0.4) for x in xs]
        assert http.post("/models/live/partial_fit", json={"instances": xs, "targets": ys}).status_code == 200
        assert http.post("/models/live/predict", json={"instances": xs[:2]}).status_code == 200
    w.wait_for("() => document.querySelector('#c-samples').textContent === '192'")
    w.wait_for("(n) => Number(document.querySelector('#chart-metric').dataset.points) > n", before + 1)
    w.wait_for("() => document.querySelector('#c-latency').textContent.endsWith('ms')")
    assert w.page.evaluate("() => window.__sameDocument") is True  # updated in place, never reloaded
    assert w.text("#c-version") == "6"
    assert "no predictions" not in w.text("#c-latency")
    assert w.page.locator("#classes .bar").count() == 2
    w.shot("learning")
    w.clean()


def test_the_selector_switches_to_a_regressor_and_its_errors(server: Any, watch: Callable[..., Watched]) -> None:
    http = httpx.Client(base_url=server.url, timeout=30)
    body = {"name": "reg", "estimator": "AMRegressor", "params": SMALL}
    assert http.post("/models", json=body).status_code == 201
    for i in range(4):
        xs = [{"a": k / 32.0, "b": float(i)} for k in range(32)]
        body = {"instances": xs, "targets": [2.0 * x["a"] - x["b"] for x in xs]}
        assert http.post("/models/reg/partial_fit", json=body).status_code == 200
    w = watch(server.url, "selector")
    w.page.goto(f"{server.url}/dashboard")
    w.wait_for("() => document.querySelector('#conn').dataset.state === 'live'")
    names = w.page.locator("#model option").all_inner_texts()
    assert {"default", "reg"} <= set(names) and w.page.locator("#model").input_value() == "default"
    w.page.select_option("#model", "reg")
    w.wait_for("() => document.querySelector('#c-samples').textContent === '128'")
    assert "MAE and RMSE" in w.text("#metric-title")
    assert w.text("#c-metric-label").lower().startswith("mae / rmse")
    assert w.page.locator("#classes-panel").is_hidden()
    assert w.page.url.endswith("#reg")
    w.shot("regressor")
    w.clean()


def test_a_drift_scenario_streamed_through_the_server_shows_a_drift_mark(
    server: Any, watch: Callable[..., Watched]
) -> None:
    http = httpx.Client(base_url=server.url, timeout=30)
    assert http.post("/models", json={"name": "drift", "estimator": "AMClassifier", "params": SMALL}).status_code == 201
    w = watch(server.url, "drift")
    w.page.goto(f"{server.url}/dashboard#drift")
    w.wait_for("() => document.querySelector('#conn').dataset.state === 'live'")
    # STAGGER (Schlimmer & Granger's classic drift): concept 0, then concept 2 from sample 1200 (abrupt),
    # built with the scenario suite's `switching`
    concepts = [iter(synth.STAGGER(classification_function=f, seed=f)) for f in (0, 2)]
    stream = switching(concepts, [0, 1], [1200], width=1, seed=0)
    for _ in range(60):
        batch = list(itertools.islice(stream, 40))
        body = {"instances": [x for x, _ in batch], "targets": [int(y) for _, y in batch]}
        assert http.post("/models/drift/predict", json={"instances": body["instances"][:4]}).status_code == 200
        assert http.post("/models/drift/partial_fit", json=body).status_code == 200
        time.sleep(0.05)  # a paced stream: the curve gets a point every 0.2 s
    w.wait_for("() => document.querySelectorAll('#marks li.drift').length > 0")
    w.wait_for("() => document.querySelector('#c-samples').textContent === '2,400'")
    at = int(w.text("#marks li.drift").split(" at ")[1].split(" samples")[0].replace(",", ""))
    assert 1200 < at <= 2400, at  # after the switch
    assert int(w.page.locator("#chart-metric").get_attribute("data-marks") or 0) >= 1
    assert w.text("#c-drifts").split(" / ")[0] != "0"
    w.wait_for("() => document.querySelector('#c-checkpoint').textContent !== 'none yet'")
    w.shot("drift")
    w.clean()


def test_the_page_asks_for_the_key_once_and_sends_it_in_a_header(
    tmp_path: Path, watch: Callable[..., Watched], start_server: Callable[..., Any]
) -> None:
    key = "s3cret-key"
    env = {**FAST, "STREAM_AM_API_KEY": key, "STREAM_AM_PROTECT_READS": "true"}
    server = start_server(tmp_path / "state", env=env)
    assert httpx.get(f"{server.url}/history").status_code == 401
    auth = {"Authorization": f"Bearer {key}"}
    body = {"instances": [{"a": 1.0}, {"a": -1.0}] * 8, "targets": [1, 0] * 8}
    assert httpx.post(f"{server.url}/partial_fit", json=body, headers=auth).status_code == 200

    w = watch(server.url, "key")
    w.page.goto(f"{server.url}/dashboard")
    w.page.locator("#keyform").wait_for(state="visible", timeout=WAIT_MS)
    assert w.page.locator("#main").is_hidden()
    w.shot("prompt")
    w.clean()  # asking costs no refused request

    w.page.fill("#key", "wrong")
    w.page.click("#keyform button")
    w.page.locator("#keyerror").wait_for(state="visible", timeout=WAIT_MS)
    w.errors.clear()  # Chromium logs the refused request (401) as a console error
    w.shot("refused")

    w.page.fill("#key", key)
    w.page.click("#keyform button")
    w.wait_for("() => document.querySelector('#conn').dataset.state === 'live'")
    w.wait_for("() => document.querySelector('#c-samples').textContent === '16'")
    assert w.page.locator("#keyform").is_hidden()
    data = [r for r in w.requests if "/history" in r.url]
    assert data and all(r.headers.get("authorization") == f"Bearer {key}" for r in data[-3:])
    assert not any(key in r.url for r in w.requests)
    w.shot("unlocked")
    w.clean()

    w.page.reload()  # asked once: the key stays for this tab
    w.wait_for("() => document.querySelector('#conn').dataset.state === 'live'")
    assert w.page.locator("#keyform").is_hidden()
    w.clean()


def test_the_scenario_report_is_one_file_that_loads_nothing_else(
    tmp_path: Path, watch: Callable[..., Watched]
) -> None:
    from stream_am.scenarios.cli import main

    out = tmp_path / "recurring"
    assert main(["run", "recurring", "--quick", "--html", "--no-progress", "--out", str(out)]) == 0
    w = watch(out.as_uri(), "scenario-report")
    w.page.goto((out / "report.html").as_uri())
    assert w.page.locator("svg polyline").count() >= 6
    assert w.page.locator("table tbody tr").count() >= 6
    assert [r.url for r in w.requests] == [(out / "report.html").as_uri()]
    w.shot("recurring")
    w.clean()


@pytest.mark.parametrize("path, ready", [("/docs", ".swagger-ui .info .title"), ("/redoc", "h1")])
def test_api_docs_render_offline(server: Any, watch: Callable[..., Watched], path: str, ready: str) -> None:
    w = watch(server.url, path.strip("/"))
    w.page.goto(f"{server.url}{path}")
    w.page.locator(ready).first.wait_for(state="visible", timeout=WAIT_MS)
    assert "stream_am" in w.text(ready)
    w.shot("rendered")
    w.clean()
