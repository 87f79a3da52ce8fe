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

from stream_am import checks

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


#: the Python types each tag of :func:`_encode` accepts when read back (a float may be written as an integer)
_TAGS: dict[str, tuple[type, ...]] = {"bool": (bool,), "int": (int,), "float": (float, int), "str": (str,)}


def _decode(item: Any, field: str) -> Any:
    """The value :func:`_encode` wrote as ``item``; ``ValueError`` naming ``field`` when ``item`` is malformed."""
    if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
        raise ValueError(f"{field} must be a [type tag, value] pair, got {item!r}")
    kind, value = item
    if kind == "tuple" and isinstance(value, list):
        return tuple(_decode(v, f"{field}[{i}]") for i, v in enumerate(value))
    if kind == "none" and value is None:
        return None
    if kind not in _TAGS and kind not in ("tuple", "none"):
        raise ValueError(f"{field} has the unknown type tag {kind!r} (expected one of "
                         f"{sorted([*_TAGS, 'tuple', 'none'])})")
    if kind not in _TAGS or isinstance(value, bool) != (kind == "bool") or not isinstance(value, _TAGS[kind]):
        raise ValueError(f"{field} = {item!r}: the value does not match its type tag {kind!r}")
    if kind == "float" and isinstance(value, int):
        try:
            return float(value)
        except OverflowError as err:
            raise ValueError(f"{field} = {item!r} does not fit a float") from err
    return value


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
        # (numpy's numbers as Python's: a parameter from a grid of numpy.arange loads back as the same number)
        "params": {k: _encode(checks.native(v), f"parameter {k}") for k, v in estimator._get_params().items()},
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
    there is no GPU); the learned state is moved there. A checkpoint that is malformed or inconsistent (an
    edited ``config.json``, arrays that do not fit it) raises ``ValueError`` naming the file and the field.
    """
    where = f"path {str(path)!r}"
    directory = Path(path)
    config = _read_config(directory, where)
    cls = _estimator_class(config, where, expected)
    params = _params(cls, config, where, device)
    meta = _meta(config, where)
    arrays = _read_arrays(directory, where)
    try:
        estimator = cls(**params)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {_CONFIG} params do not make {_a(cls.__name__)}: {err}") from err
    try:
        estimator._restore(meta, arrays)
    except ValueError as err:
        raise ValueError(f"{where}: {_CONFIG} meta and {_STATE} do not make a valid {cls.__name__}: {err}") from err
    return estimator


def _read_config(directory: Path, where: str) -> dict[str, Any]:
    try:
        config = json.loads((directory / _CONFIG).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{where} holds no readable {_CONFIG}: {err}") from err
    if not isinstance(config, dict):
        raise ValueError(f"{where}: {_CONFIG} must hold a JSON object, got {type(config).__name__}")
    if config.get("format") != FORMAT:
        raise ValueError(f"{where}: format {config.get('format')!r} is not {FORMAT!r}")
    for key, kind in (("class", str), ("params", dict), ("meta", dict)):
        if not isinstance(config.get(key), kind):
            raise ValueError(f'{where}: {_CONFIG} needs a "{key}" {kind.__name__}, got {config.get(key)!r}')
    return config


def _estimator_class(config: dict[str, Any], where: str, expected: type | None) -> type:
    cls = _CLASSES.get(config["class"])
    if cls is None or inspect.isabstract(cls):
        raise ValueError(f"{where}: unknown estimator class {config['class']!r}")
    if expected is not None and not issubclass(cls, expected):
        raise ValueError(f"{where} holds {_a(cls.__name__)}, not {_a(expected.__name__)}")
    return cls


def with_absent(cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` of a model saved or pickled by an earlier version, with each parameter it lacks at the value that
    reproduces that model (``cls._absent_params``; one not named there takes its default)."""
    return {**getattr(cls, "_absent_params", {}), **params}


def _params(cls: type, config: dict[str, Any], where: str, device: str | None) -> dict[str, Any]:
    """The constructor arguments: parameters of ``cls`` only (``device`` replaces the saved one). One the file
    lacks takes the value that reproduces a model saved before the parameter existed (``cls._absent_params``),
    else its default, so that such a model still loads, as it was."""
    params = {k: _decode(v, f"{where}: {_CONFIG} params.{k}") for k, v in config["params"].items()}
    params = with_absent(cls, params)
    if device is not None:
        params["device"] = device
    accepted = inspect.signature(cls).parameters
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"{where}: {_CONFIG} params has the unknown parameter {unknown[0]!r} (the parameters of "
                         f"{cls.__name__} are {sorted(accepted)})")
    return params


def _meta(config: dict[str, Any], where: str) -> dict[str, Any]:
    """``config["meta"]`` with its feature names and labels decoded (the rest is checked when restoring)."""
    meta = dict(config["meta"])
    for key in ("features", "classes"):
        if key not in meta:
            continue
        if not isinstance(meta[key], list):
            raise ValueError(f"{where}: {_CONFIG} meta.{key} must be a list, got {meta[key]!r}")
        meta[key] = [_decode(c, f"{where}: {_CONFIG} meta.{key}[{i}]") for i, c in enumerate(meta[key])]
    return meta


def _read_arrays(directory: Path, where: str) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(str(directory / _STATE))
    except (OSError, SafetensorError, TypeError, ValueError) as err:
        raise ValueError(f"{where} holds no readable {_STATE}: {err}") from err
