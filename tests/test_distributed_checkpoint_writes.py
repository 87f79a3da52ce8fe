"""A checkpoint that cannot be written whole leaves the previous one, and no partial temporary file."""

from __future__ import annotations

import os

import pytest
import torch

from stream_am.distributed.checkpoint import load_checkpoint, save_checkpoint


@pytest.mark.parametrize("fails", ["fsync", "replace"])
def test_a_failed_write_leaves_the_previous_checkpoint_and_no_temporary_file(fails, tmp_path, monkeypatch):
    save_checkpoint(tmp_path, {"w": torch.zeros(3)}, {"step": 1})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, fails, full)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(tmp_path, {"w": torch.ones(3)}, {"step": 2})
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # (a partial .tmp was left beside it)
    found = load_checkpoint(tmp_path)
    assert found is not None and found[1]["step"] == 1
