"""HTTP load benchmark: a real ``stream-am serve`` on loopback against in-process ``learn_many``.

Measures requests/s and p50/p99 latency of ``POST /predict`` (1 instance) and ``POST /partial_fit``
(32 instances), the samples learned per second over HTTP, and the in-process ``learn_many`` throughput
of the same estimator on the same batches (one torch thread, as the server runs)::

    python benchmarks/http_load.py --requests 300 --concurrency 4 --out results/http_load
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _batches(seed: int, n_batches: int, size: int, n_features: int) -> list[tuple[list[dict[str, float]], list[int]]]:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=n_features)
    out = []
    for _ in range(n_batches):
        X = rng.normal(size=(size, n_features))
        y = (X @ w > 0).astype(int)
        out.append(([{f"f{j}": float(v) for j, v in enumerate(row)} for row in X], [int(t) for t in y]))
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(state_dir: Path, port: int, extra: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "STREAM_AM_CHECKPOINT_EVERY_SAMPLES": "1000000",
    }
    cmd = [sys.executable, "-m", "stream_am.cli", "serve", "--port", str(port), "--state-dir", str(state_dir)]
    # a session of its own: terminating it reaches the processes it starts (``--predictors``)
    proc = subprocess.Popen([*cmd, "--log-level", "warning", *extra], cwd=REPO, env=env, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def _run(url: str, bodies: list[tuple[str, dict[str, Any]]], concurrency: int) -> tuple[float, list[float]]:
    """Send every body once from ``concurrency`` threads; wall time and per-request latencies."""
    latencies: list[float] = []
    lock = threading.Lock()
    it = iter(bodies)
    errors: list[str] = []

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            while True:
                with lock:
                    item = next(it, None)
                if item is None:
                    return
                start = time.perf_counter()
                r = http.post(item[0], json=item[1])
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    if r.status_code != 200:
                        errors.append(r.text)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, e.g. {errors[0]}")
    return time.perf_counter() - start, latencies


def _row(name: str, wall: float, lat: list[float], samples: int) -> dict[str, Any]:
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else [lat[0]] * 99
    return {
        "case": name,
        "requests": len(lat),
        "req_per_s": len(lat) / wall,
        "p50_ms": 1000 * q[49],
        "p99_ms": 1000 * q[98],
        "samples_per_s": samples / wall if samples else None,
    }


def _in_process(
    warm: list[tuple[list[dict[str, float]], list[int]]],
    batches: list[tuple[list[dict[str, float]], list[int]]],
    timer: Callable[[], float],
) -> float:
    """Samples/s of ``learn_many`` on ``batches`` after an untimed warm-up on ``warm`` (as over HTTP)."""
    import pandas as pd
    import torch

    from stream_am import AMClassifier

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = AMClassifier()
        for x, y in warm:
            model.learn_many(pd.DataFrame(x), pd.Series(y, dtype=object))
        frames = [(pd.DataFrame(x), pd.Series(y, dtype=object)) for x, y in batches]
        start = timer()
        for X, y in frames:
            model.learn_many(X, y)
        return sum(len(y) for _, y in frames) / (timer() - start)
    finally:
        torch.set_num_threads(threads)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per case")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads")
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="directory for results.json")
    args = parser.parse_args(argv)

    warm = _batches(args.seed, 4, 32, args.features)
    learn = _batches(args.seed + 1, args.requests, 32, args.features)
    probes = _batches(args.seed + 2, 1, args.requests, args.features)[0][0]
    before = _in_process(warm, learn, time.perf_counter)  # measured before and after the server, averaged
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        proc = _start_server(Path(tmp) / "state", port)
        url = f"http://127.0.0.1:{port}"
        try:
            _run(url, [("/partial_fit", {"instances": x, "targets": y}) for x, y in warm], 1)
            _run(url, [("/predict", {"instances": [p]}) for p in probes[:20]], args.concurrency)  # warm-up
            rows = []
            for c in sorted({1, args.concurrency}):
                wall, lat = _run(url, [("/predict", {"instances": [p]}) for p in probes], c)
                rows.append(_row(f"predict, 1 instance, {c} client(s)", wall, lat, 0))
            learned = 0
            for c in sorted({1, args.concurrency}):
                half = learn[: len(learn) // 2] if c == 1 else learn[len(learn) // 2 :]
                wall, lat = _run(url, [("/partial_fit", {"instances": x, "targets": y}) for x, y in half], c)
                rows.append(_row(f"partial_fit, 32 instances, {c} client(s)", wall, lat, 32 * len(lat)))
                learned += len(half)
            seen = httpx.get(f"{url}/models/default", timeout=30).json()["samples_seen"]
            assert seen == 32 * (len(warm) + learned), seen
        finally:
            proc.terminate()
            proc.wait(timeout=120)
    in_process = statistics.mean([before, _in_process(warm, learn, time.perf_counter)])
    rows.append({"case": "in-process learn_many, 32 rows", "samples_per_s": in_process})
    ratio = max(r["samples_per_s"] or 0.0 for r in rows[:-1]) / in_process

    print(f"{'case':40} {'req/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'samples/s':>10}")
    for r in rows:
        cells = [f"{r[k]:9.1f}" if r.get(k) is not None else f"{'':9}" for k in ("req_per_s", "p50_ms", "p99_ms")]
        sps = f"{r['samples_per_s']:10.0f}" if r.get("samples_per_s") else f"{'':10}"
        print(f"{r['case']:40} {' '.join(cells)} {sps}")
    print(f"best HTTP learning / in-process learning: {ratio:.2f} (cpus {os.cpu_count()})")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps({"rows": rows, "ratio": ratio, **vars(args)}, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
