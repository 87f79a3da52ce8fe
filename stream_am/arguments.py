"""Argument types for the command lines (``stream-am demo``, ``stream-am scenario``): whole numbers in a range
and seeds, refused by argparse with a message naming the option (``prog: error: argument --seed: ...``).

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="demo")
>>> _ = parser.add_argument("--seed", type=seed, default=0)
>>> _ = parser.add_argument("--every", type=whole(1), default=300)
>>> parser.parse_args(["--seed", "7", "--every", "5"])
Namespace(seed=7, every=5)
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from stream_am.checks import MAX_SEED

__all__ = ["seed", "whole"]


def whole(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number in ``[low, high]`` (no upper end when ``high`` is ``None``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            where = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"expected a whole number {where}, got {text!r}")
        return value

    return parse


#: an argparse type: a seed, a whole number in ``[0, 2**63 - 1]`` (what torch's and numpy's generators take)
seed = whole(0, MAX_SEED)
