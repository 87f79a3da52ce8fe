"""Weight update rules: a functional core and a thin stateful class for each."""

from stream_am.updaters.adam import AdamRule, adam_update
from stream_am.updaters.memory import MemoryRule, memory_update, ridge_solve

__all__ = ["AdamRule", "adam_update", "MemoryRule", "memory_update", "ridge_solve"]
