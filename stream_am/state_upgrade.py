"""States that earlier versions of :class:`~stream_am.learner.OnlineAM` saved, rewritten as today's before
:meth:`~stream_am.learner.OnlineAM.load_state_dict` checks them: each difference is handled here, once, and the
updaters read only today's keys.

Before 2026-11-30 a state recorded neither its layers' rules (``variants``: read from its keys here) nor a
memory's update count (``updates``: the memories then solved every step, so the count is moot: 0), and kept one
Adam step count per layer (``adam.{l}.step``: every parameter of the layer stepped with it).
"""

from __future__ import annotations

import re

import torch

__all__ = ["upgraded"]

_RULES = ("memory.", "adam.")  # in the order of ``variants``' codes ("mem", "adam")


def _rules(state: dict[str, torch.Tensor], n_codes: int) -> list[int] | None:
    """Each code layer's rule, from the prefixes of its keys; ``None`` unless each has the keys of exactly one."""
    rules = []
    for layer in range(n_codes):
        held = [i for i, rule in enumerate(_RULES) if any(k.startswith(f"{rule}{layer}.") for k in state)]
        if len(held) != 1:
            return None
        rules.append(held[0])
    return rules


def upgraded(state: dict[str, torch.Tensor], n_codes: int) -> dict[str, torch.Tensor]:
    """``state`` with what an earlier version left out or wrote otherwise put as today's learner of ``n_codes``
    code layers writes it; today's state unchanged (a state that cannot be read either way is left for the
    checks to refuse, naming the key).

    Examples
    --------
    >>> old = {"adam.0.step": torch.tensor([3.0]), "adam.0.0.exp_avg": torch.zeros(2),
    ...        "memory.out.A": torch.eye(2), "n_steps": torch.tensor(3)}
    >>> new = upgraded(old, n_codes=1)
    >>> new["variants"].tolist(), new["adam.0.0.step"].tolist(), new["memory.out.updates"].item(), "adam.0.step" in new
    ([1], [3.0], 0, False)
    """
    if not state:
        return state
    out = dict(state)
    if "variants" not in out and (rules := _rules(out, n_codes)) is not None:
        out["variants"] = torch.tensor(rules, dtype=torch.int8)
    for key in list(out):
        layer = re.fullmatch(r"adam\.(\d+)\.step", key)
        if layer:
            shared = out.pop(key)
            params = {m.group(1) for k in out if (m := re.fullmatch(rf"adam\.{layer.group(1)}\.(\d+)\.exp_avg", k))}
            for i in params:
                out.setdefault(f"adam.{layer.group(1)}.{i}.step", shared)
        memory = re.fullmatch(r"(memory\.\w+\.)A", key)
        if memory and f"{memory.group(1)}updates" not in out:
            out[f"{memory.group(1)}updates"] = torch.tensor(0, dtype=torch.int64)
    return out
