"""Save and load estimators: configuration as JSON, tensors with safetensors, never pickle.

``save(estimator, path)`` writes a directory with ``config.json`` (the class name, the constructor
arguments, feature names, labels and counters) and ``state.safetensors`` (feature statistics, the partial
buffer and the engine's ``state_dict``). ``load(path)`` rebuilds an estimator that predicts and keeps
learning exactly as the original. Feature names and labels must be ``str``, ``int``, ``float``, ``bool``
or tuples of these (pickle has no such limit).
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["save", "load", "register", "FORMAT"]

FORMAT = "stream_am.estimator/1"
_CONFIG, _STATE = "config.json", "state.safetensors"


def _encode(value: Any, field: str) -> Any:
    """A JSON value that keeps the exact Python type: ``True`` -> ``["bool", true]``, tuples nested."""
    if value is None:
        return ["none", None]
    for kind in (bool, int, float, str):  # bool before int: bool is an int
        if type(value) is kind:
            return [kind.__name__, value]
    if isinstance(value, tuple):
        return ["tuple", [_encode(v, field) for v in value]]
    raise ValueError(f"{field} holds {value!r} ({type(value).__name__}), which cannot be saved as JSON; "
                     "use str, int, float, bool or tuples of them, or pickle")


def _decode(item: Any) -> Any:
    kind, value = item
    if kind == "tuple":
        return tuple(_decode(v) for v in value)
    if kind == "none":
        return None
    return {"bool": bool, "int": int, "float": float, "str": str}[kind](value)


def _a(name: str) -> str:
    """``name`` with its indefinite article: "an AMClassifier", "a BackpropRegressor"."""
    return f"{'an' if name[:1] in 'AEIOU' else 'a'} {name}"


#: estimator classes by name, filled as they are defined (``StreamEstimator.__init_subclass__`` registers
#: each subclass), so this module imports none of them
_CLASSES: dict[str, type] = {}


def register(cls: type) -> type:
    """Make ``cls`` loadable by its name (the class written to ``config.json``); returns ``cls``."""
    _CLASSES[cls.__name__] = cls
    return cls


def save(estimator: Any, path: str | Path) -> Path:
    """Write ``estimator`` to the directory ``path`` (created if needed); returns the directory."""
    from safetensors.numpy import save_file

    meta, arrays = estimator._payload()
    meta = dict(meta)
    meta["features"] = [_encode(c, "feature names") for c in meta["features"]]
    if "classes" in meta:
        meta["classes"] = [_encode(c, "classes") for c in meta["classes"]]
    config = {
        "format": FORMAT,
        "class": type(estimator).__name__,
        "params": {k: _encode(v, f"parameter {k}") for k, v in estimator._get_params().items()},
        "meta": meta,
    }
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / _CONFIG).write_text(json.dumps(config, indent=1, sort_keys=True))
    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(directory / _STATE))
    return directory


def load(path: str | Path, expected: type | None = None, device: str | None = None) -> Any:
    """Read an estimator written by :func:`save`; ``expected`` (a class) is checked when given.

    ``device`` replaces the saved ``device`` parameter (e.g. a model trained with ``"cuda"`` loaded where
    there is no GPU); the learned state is moved there.
    """
    from safetensors.numpy import load_file

    directory = Path(path)
    try:
        config = json.loads((directory / _CONFIG).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"path {str(path)!r} holds no readable {_CONFIG}: {err}") from err
    if config.get("format") != FORMAT:
        raise ValueError(f"path {str(path)!r}: format {config.get('format')!r} is not {FORMAT!r}")
    cls = _CLASSES.get(config["class"])
    if cls is None or inspect.isabstract(cls):
        raise ValueError(f"path {str(path)!r}: unknown estimator class {config['class']!r}")
    if expected is not None and not issubclass(cls, expected):
        raise ValueError(f"path {str(path)!r} holds {_a(cls.__name__)}, not {_a(expected.__name__)}")
    params = {k: _decode(v) for k, v in config["params"].items()}
    if device is not None:
        params["device"] = device
    estimator = cls(**params)
    meta = dict(config["meta"])
    meta["features"] = [_decode(c) for c in meta["features"]]
    if "classes" in meta:
        meta["classes"] = [_decode(c) for c in meta["classes"]]
    estimator._restore(meta, load_file(str(directory / _STATE)))
    return estimator
