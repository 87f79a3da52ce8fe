"""Atomic checkpoints of a data-parallel job: the learner's tensors (safetensors) and the job's JSON.

``DIR/checkpoint.safetensors`` holds the learner's ``state_dict`` and, in its metadata, the job's description
(``{"format", "step", "world_size", "config"}``); a copy of that JSON is written beside it as
``DIR/checkpoint.json`` for people. Each file is written to a temporary name, flushed to disk and renamed over
the old one, so a reader (or a job restarted after a crash) sees the previous checkpoint or the new one,
never half of one. The safetensors file is the one a restart reads.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from stream_am.arguments import unseen

__all__ = ["FORMAT", "save_checkpoint", "load_checkpoint"]

FORMAT = "stream_am.distributed/1"
_STATE, _JSON = "checkpoint.safetensors", "checkpoint.json"


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:  # (a full disk, an interrupt: no partial file is left beside the previous checkpoint)
        tmp.unlink(missing_ok=True)
        raise


def save_checkpoint(directory: Path, state: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
    """Write ``state`` and ``info`` (JSON-serialisable) to ``directory`` atomically."""
    from safetensors.torch import save

    directory.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, **info}
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    _replace(directory / _STATE, save(tensors, metadata={"job": json.dumps(meta)}))
    _replace(directory / _JSON, (json.dumps(meta, indent=2) + "\n").encode())


def load_checkpoint(directory: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """``(state, info)`` of the checkpoint in ``directory``, or ``None`` when there is none.

    A file that is not a checkpoint of this format (unreadable, truncated, foreign metadata) raises a
    ``ValueError`` naming it.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = directory / _STATE
    why = unseen(path)
    if why:
        raise ValueError(f"{path} cannot be looked at ({why})")
    if not path.exists():
        return None
    try:  # (from the bytes: safetensors' own open refuses a path that is not UTF-8, which the save took)
        data = path.read_bytes()
        state = load(data)  # (the header checked: 8 bytes of its length, then its JSON)
        header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
        meta = json.loads((header.get("__metadata__") or {}).get("job", "{}"))
    except (OSError, SafetensorError, ValueError, AttributeError) as exc:  # (JSONDecodeError is a ValueError)
        raise ValueError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else meta
        raise ValueError(f"checkpoint {path} has format {found!r}, expected {FORMAT!r}")
    return state, meta
