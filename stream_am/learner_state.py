"""State and growth of :class:`stream_am.learner.OnlineAM`: ``state_dict``, ``load_state_dict``, growing layers.

Kept apart from the step itself; the mixin reads the attributes that ``OnlineAM._build`` creates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from stream_am import checks

if TYPE_CHECKING:
    from stream_am.network import Network
    from stream_am.updaters import AdamRule, MemoryRule

__all__ = ["LearnerState"]


class LearnerState:
    """Mixin: everything learned, as a flat ``{name: tensor}``, and growth that keeps it."""

    module: nn.Module
    samples_seen: int
    n_steps: int
    _net: Network
    _built: bool
    _mu: float
    _adam: list[AdamRule]
    _memory: list[MemoryRule]
    _out_adam: AdamRule
    _out_memory: MemoryRule
    _generator: torch.Generator
    _device: torch.device

    def _build(self) -> None:  # provided by OnlineAM
        raise NotImplementedError

    def _first_is_linear(self) -> bool:  # provided by OnlineAM
        raise NotImplementedError

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Flat ``{name: tensor}`` of everything learned (module, memories, Adam moments, counters).

        Empty before the first step. Tensors are the live ones; copy them to keep a snapshot.
        """
        if not self._built:
            return {}
        sd: dict[str, torch.Tensor] = {f"module.{k}": v for k, v in self.module.state_dict().items()}
        for l in range(self._net.n_codes):  # noqa: E741
            sd.update(self._adam[l].state_dict(f"adam.{l}."))
            sd.update(self._memory[l].state_dict(f"memory.{l}."))
        sd.update(self._out_adam.state_dict("adam.out."))
        sd.update(self._out_memory.state_dict("memory.out."))
        sd["mu"] = torch.tensor(self._mu, dtype=torch.float64)
        sd["samples_seen"] = torch.tensor(self.samples_seen, dtype=torch.int64)
        sd["n_steps"] = torch.tensor(self.n_steps, dtype=torch.int64)
        sd["generator"] = self._generator.get_state()
        return sd

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_dict` returned; shapes are checked before anything changes."""
        if not state:
            return
        if not self._built:
            self._build()
        mod = {k[len("module.") :]: v for k, v in state.items() if k.startswith("module.")}
        own = self.module.state_dict()
        for k, v in own.items():
            if k not in mod:
                raise ValueError(f"state is missing module.{k}")
            if tuple(mod[k].shape) != tuple(v.shape):
                raise ValueError(
                    f"state[module.{k}] has shape {tuple(mod[k].shape)}, expected {tuple(v.shape)}"
                )
        self.module.load_state_dict(mod)
        for l, block in enumerate(self._net.blocks):  # noqa: E741
            self._adam[l].load_state_dict(state, f"adam.{l}.", list(block.parameters()))
            n_out = block.layer.weight.shape[0]
            n_in = block.layer.weight[0].numel()
            self._memory[l].load_state_dict(state, f"memory.{l}.", n_in, n_out, device=self._device)
        out = self._net.out
        self._out_adam.load_state_dict(state, "adam.out.", list(out.parameters()))
        self._out_memory.load_state_dict(state, "memory.out.", out.in_features, out.out_features, device=self._device)
        self._mu = float(state["mu"])
        self.samples_seen = int(state["samples_seen"])
        self.n_steps = int(state["n_steps"])
        self._generator.set_state(state["generator"].cpu())

    def grow_inputs(self, n_new: int) -> None:
        """Add ``n_new`` input features (zero weights) keeping everything learned."""
        checks.check_int("n_new", n_new, low=1)
        if not self._first_is_linear():
            raise ValueError("grow_inputs needs a network that starts with nn.Linear")
        layer = self._net.blocks[0].layer if self._net.blocks else self._net.out
        assert isinstance(layer, nn.Linear)
        with torch.no_grad():
            w = layer.weight
            layer.weight = nn.Parameter(torch.cat([w, w.new_zeros(w.shape[0], n_new)], dim=1))
        layer.in_features += n_new
        if self._built:
            if self._net.blocks:
                self._adam[0].grow(0, 1, n_new)
                self._memory[0].grow_inputs(n_new)
            else:
                self._out_adam.grow(0, 1, n_new)
                self._out_memory.grow_inputs(n_new)

    def grow_outputs(self, n_new: int) -> None:
        """Add ``n_new`` output units (zero weights and bias) keeping everything learned."""
        checks.check_int("n_new", n_new, low=1)
        out = self._net.out
        with torch.no_grad():
            w = out.weight
            out.weight = nn.Parameter(torch.cat([w, w.new_zeros(n_new, w.shape[1])], dim=0))
            if out.bias is not None:
                out.bias = nn.Parameter(torch.cat([out.bias, out.bias.new_zeros(n_new)]))
        out.out_features += n_new
        if self._built:
            self._out_adam.grow(0, 0, n_new)
            if out.bias is not None:
                self._out_adam.grow(1, 0, n_new)
            self._out_memory.grow_outputs(n_new)
