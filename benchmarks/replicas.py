"""Predictor replicas: predict requests/s of ``stream-am serve`` alone and with 1 and 2 predictor processes.

Each mode is a real server on loopback, started in turn in this one run, with the same model, the same warm-up
and the same requests: ``predict`` of 1 and of 64 instances from ``--concurrency`` client threads, then a mixed
phase in which one client learns (32 instances per request) while the others predict, reporting the predict
rate, the learning rate and the staleness bounds the answers carried::

    python benchmarks/replicas.py --requests 400 --concurrency 4 --out results/replicas
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from http_load import _batches, _free_port, _row, _run, _start_server  # noqa: E402  (a sibling script, not a package)

PARAMS = {"hidden_sizes": [128, 128], "batch_size": 32, "seed": 0}


def _published(url: str, version: int, predictors: int) -> None:
    """Wait until every predictor process holds ``version`` of the model (no-op without predictors)."""
    pids: set[int] = set()
    deadline = time.monotonic() + 120
    while predictors and len(pids) < predictors:
        if time.monotonic() > deadline:
            raise RuntimeError("the predictors did not load the model")
        with httpx.Client(base_url=url, timeout=10) as fresh:
            info = fresh.get("/replica").json()
        if info["models"].get("bench", {}).get("model_version") == version:
            pids.add(info["pid"])
        time.sleep(0.05)


def _mixed(url: str, learn: list[Any], probes: list[Any], concurrency: int) -> dict[str, Any]:
    """One client learns while ``concurrency - 1`` predict; rates and the staleness the answers carried."""
    stop = threading.Event()
    staleness: list[float] = []
    count = [0]

    def predictor() -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            k = 0
            while not stop.is_set():
                answer = http.post("/models/bench/predict", json={"instances": [probes[k % len(probes)]]})
                k += 1
                answer.raise_for_status()
                staleness.append(answer.json()["staleness_seconds"])

    threads = [threading.Thread(target=predictor) for _ in range(max(1, concurrency - 1))]
    start = time.perf_counter()
    for t in threads:
        t.start()
    with httpx.Client(base_url=url, timeout=120) as http:
        for x, y in learn:
            http.post("/models/bench/learn", json={"instances": x, "targets": y}).raise_for_status()
            count[0] += len(y)
    wall = time.perf_counter() - start
    stop.set()
    for t in threads:
        t.join()
    ordered = sorted(staleness)
    return {
        "predict_req_per_s": len(staleness) / wall,
        "learn_samples_per_s": count[0] / wall,
        "staleness_p50_s": ordered[len(ordered) // 2],
        "staleness_max_s": ordered[-1],
    }


def _mode(predictors: int, args: argparse.Namespace, data: dict[str, Any]) -> dict[str, Any]:
    name = "single process" if not predictors else f"{predictors} predictor(s)"
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        proc = _start_server(Path(tmp) / "state", port, ["--predictors", str(predictors)] if predictors else [])
        url = f"http://127.0.0.1:{port}"
        try:
            httpx.post(f"{url}/models", json={"name": "bench", "estimator": "AMClassifier", "params": PARAMS},
                       timeout=60).raise_for_status()
            _run(url, [("/models/bench/learn", {"instances": x, "targets": y}) for x, y in data["warm"]], 1)
            _published(url, len(data["warm"]), predictors)
            one = [("/models/bench/predict", {"instances": [p]}) for p in data["probes"][: args.requests]]
            wide = [("/models/bench/predict", {"instances": data["probes"][:64]})] * (args.requests // 4)
            _run(url, one[:40], args.concurrency)  # warm-up
            rows = []
            for label, bodies in (("1 instance", one), ("64 instances", wide)):
                wall, lat = _run(url, bodies, args.concurrency)
                rows.append({**_row(f"{name}: predict {label}", wall, lat, 0), "mode": name})
            mixed = _mixed(url, data["learn"], data["probes"], args.concurrency)
        finally:
            proc.terminate()
            proc.wait(timeout=120)
    return {"rows": rows, "mixed": {"mode": name, **mixed}}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="predict requests per case")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads")
    parser.add_argument("--learn-batches", type=int, default=60, help="learn requests of the mixed phase")
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--modes", default="0,1,2", help="predictor processes per mode (0: single process)")
    parser.add_argument("--out", type=Path, default=None, help="directory for results.json")
    args = parser.parse_args(argv)
    data = {
        "warm": _batches(0, 8, 32, args.features),
        "learn": _batches(1, args.learn_batches, 32, args.features),
        "probes": _batches(2, 1, max(args.requests, 64), args.features)[0][0],
    }
    results = [_mode(int(m), args, data) for m in args.modes.split(",")]
    rows = [r for res in results for r in res["rows"]]
    base = {r["case"].split(": ")[1]: r["req_per_s"] for r in results[0]["rows"]}
    print(f"{'case':36} {'req/s':>8} {'x first':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for r in rows:
        ratio = r["req_per_s"] / base[r["case"].split(": ")[1]]
        print(f"{r['case']:36} {r['req_per_s']:8.1f} {ratio:8.2f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f}")
    print(f"\nmixed: 1 client learning, {max(1, args.concurrency - 1)} predicting")
    print(f"{'mode':20} {'predict req/s':>14} {'learn samples/s':>16} {'staleness p50 s':>16} {'max s':>7}")
    for res in results:
        m = res["mixed"]
        print(f"{m['mode']:20} {m['predict_req_per_s']:14.1f} {m['learn_samples_per_s']:16.0f} "
              f"{m['staleness_p50_s']:16.3f} {m['staleness_max_s']:7.3f}")
    print(f"(cpus {os.cpu_count()}; client threads share them with the servers)")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        payload = {"rows": rows, "mixed": [r["mixed"] for r in results], **vars(args)}
        (args.out / "results.json").write_text(json.dumps(payload, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
