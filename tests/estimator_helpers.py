"""Shared factories, small deterministic streams and state snapshots for the estimator tests."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pandas as pd
import torch
from discovery import cases, stream_estimator_classes

__all__ = [
    "FACTORIES", "CLASSIFIERS", "stream", "frames", "snapshot", "state_key", "engine_state", "assert_prefix_kept",
    "assert_same_snapshot", "is_classifier",
]

_SMALL = {"batch_size": 5, "seed": 1}  # the layer sizes come from each class's `_unit_test_params`
_AM = {"code_steps": 2}  # for estimators with code steps: two, so that the safeguard's branches run
#: configurations beyond each class's ``_unit_test_params`` (the classes themselves are discovered)
_EXTRA: dict[str, list[dict[str, Any]]] = {
    "AMClassifier": [{"activation": "sign"}],
    "BackpropClassifier": [{"optimizer": "sgd", "lr": 0.05, "momentum": 0.9}],
}


def _factory(cls: type, params: dict[str, Any]) -> Any:
    accepted = inspect.signature(cls).parameters
    small = {k: v for k, v in {**_SMALL, **_AM}.items() if k in accepted}
    return lambda: cls(**{**params, **small})


def _factories() -> dict[str, Any]:
    out: dict[str, Any] = {}
    classes = stream_estimator_classes()
    for label, cls, params in cases(classes):
        out[label] = _factory(cls, params)
    for cls in classes:
        for i, params in enumerate(_EXTRA.get(cls.__name__, [])):
            out[f"{cls.__name__}-extra{i}"] = _factory(cls, params)
    return out


#: every stream estimator (discovered) with each of its test configurations, small and fast
FACTORIES: dict[str, Any] = _factories()
CLASSIFIERS = [k for k, make in FACTORIES.items() if hasattr(make(), "predict_proba_one")]


def is_classifier(model: Any) -> bool:
    return hasattr(model, "predict_proba_one")


def stream(
    model: Any, n: int = 40, seed: int = 0, features: str = "abcd", n_classes: int = 3
) -> list[tuple[dict, Any]]:
    """``n`` samples; classes appear one by one (class k first at sample 7k), some features go missing."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x = {f: float(rng.normal(loc=j, scale=1 + j)) for j, f in enumerate(features)}
        if i % 4 == 3:
            x.pop(features[i % len(features)])
        if is_classifier(model):
            k = min(i // 7, n_classes - 1) if i < 7 * n_classes else int(rng.integers(n_classes))
            y: Any = ["x", "y", "z", "w"][k]
        else:
            y = 50.0 + sum(x.values()) + float(rng.normal())
        out.append((x, y))
    return out


def frames(
    rows: list[tuple[dict, Any]], sizes: list[int], columns: list[list[str]]
) -> list[tuple[pd.DataFrame, pd.Series, list[tuple[dict, Any]]]]:
    """Cut ``rows`` into DataFrame batches of ``sizes`` restricted to ``columns``; also the same rows as dicts."""
    out, start = [], 0
    for size, cols in zip(sizes, columns, strict=True):
        chunk = rows[start:start + size]
        dicts = [({c: x.get(c, 0.0) for c in cols}, y) for x, y in chunk]
        frame = pd.DataFrame([d for d, _ in dicts], columns=cols)
        out.append((frame, pd.Series([y for _, y in dicts]), dicts))
        start += size
    return out


def engine_state(model: Any) -> dict[str, torch.Tensor]:
    eng = model._engine
    return {} if eng is None else {k: v.detach().clone() for k, v in eng.state_dict().items()}


def state_key(model: Any) -> tuple[str, str, dict[str, tuple[str, tuple[int, ...], bytes]]]:
    """The complete learned state (``__getstate__``) in a bitwise-comparable form (NaN-safe, memo-free)."""
    state = model.__getstate__()
    arrays = {k: (str(v.dtype), v.shape, np.ascontiguousarray(v).tobytes()) for k, v in state["arrays"].items()}
    return repr(state["params"]), repr(state["meta"]), arrays


def snapshot(model: Any) -> tuple[Any, dict[str, Any]]:
    """Everything observable about a model: its full state (params, features, labels, buffer, statistics,
    engine state) and, outside of it, the module's training flags and the engine's plain attributes."""
    extra: dict[str, Any] = {"dict_keys": sorted(vars(model))}
    eng = model._engine
    if eng is not None:
        extra["training"] = [m.training for m in eng.module.modules()]
        extra["engine"] = {k: v for k, v in vars(eng).items() if isinstance(v, (int, float, str, bool, type(None)))}
        extra["params"] = [p.detach().clone() for p in eng.module.parameters()]
        extra["grads"] = [p.grad for p in eng.module.parameters()]
    return state_key(model), extra


def assert_same_snapshot(a: tuple[Any, dict[str, Any]], b: tuple[Any, dict[str, Any]]) -> None:
    assert a[0] == b[0]
    ea, eb = a[1], b[1]
    assert ea.keys() == eb.keys()
    for k in ea:
        if k == "params":
            assert all(torch.equal(p, q) for p, q in zip(ea[k], eb[k], strict=True))
        else:
            assert ea[k] == eb[k], k


def assert_prefix_kept(old: dict[str, torch.Tensor], new: dict[str, torch.Tensor]) -> list[str]:
    """Every old tensor is found unchanged at the start of its (possibly grown) new version; returns the
    names of the tensors that grew."""
    grown = []
    for key, before in old.items():
        assert key in new, f"{key} disappeared"
        after = new[key]
        assert after.dim() == before.dim(), key
        assert all(a >= b for a, b in zip(after.shape, before.shape, strict=True)), key
        assert torch.equal(after[tuple(slice(0, s) for s in before.shape)], before), f"{key} changed"
        if after.shape != before.shape:
            grown.append(key)
    return grown
