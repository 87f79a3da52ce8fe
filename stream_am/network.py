"""Split a ``torch.nn.Sequential`` into code blocks, nonlinear blocks and an output layer.

A network is read as ``x -> pre -> [block_1 -> act_1] -> ... -> [block_L -> act_L] -> output``, where each
*code block* is a ``Linear`` or ``Conv2d`` optionally followed by a ``BatchNorm``; its output is the code
``c_l``. ``act_l`` is a (possibly empty) chain of weightless modules. The output layer is the last
``Linear`` and must end the network (the loss is applied to its raw outputs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from stream_am.grad_mode import no_grad
from stream_am.network_checks import check_modules
from stream_am.nn import Sign, Step

__all__ = ["CodeBlock", "Network", "decompose", "flatten", "NONLINEAR_TYPES", "CODE_TYPES"]

CODE_TYPES = (nn.Linear, nn.Conv2d)
NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d)
NONLINEAR_TYPES = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.GELU,
    nn.Flatten,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.Dropout,
    nn.Identity,
    Sign,
    Step,
)


@dataclass
class CodeBlock:
    """A layer with weights (``Linear``/``Conv2d``) and an optional ``BatchNorm`` after it."""

    layer: nn.Linear | nn.Conv2d
    norm: nn.BatchNorm1d | nn.BatchNorm2d | None = None

    def parameters(self) -> list[torch.Tensor]:
        params: list[torch.Tensor] = list(self.layer.parameters())
        if self.norm is not None:
            params += list(self.norm.parameters())
        return params

    def forward(self, a: torch.Tensor, *, batch_stats: bool = False) -> torch.Tensor:
        """Code of input ``a``.

        With ``batch_stats`` (learning) a BatchNorm normalises with the batch's own moments (running
        statistics are left alone; see :meth:`update_running_stats`), except for a batch of one sample,
        which uses the running statistics.
        """
        z = self.layer(a)
        bn = self.norm
        if bn is None:
            return z
        use_batch = batch_stats and z.shape[0] > 1
        return nn.functional.batch_norm(
            z,
            None if use_batch else bn.running_mean,
            None if use_batch else bn.running_var,
            bn.weight,
            bn.bias,
            training=use_batch,
            eps=bn.eps,
        )

    @no_grad
    def update_running_stats(self, a: torch.Tensor) -> None:
        """Fold the batch moments of ``layer(a)`` into the BatchNorm running statistics."""
        bn = self.norm
        if bn is None or a.shape[0] < 2 or bn.running_mean is None or bn.running_var is None:
            return
        z = self.layer(a)
        dims = [0] + list(range(2, z.ndim))
        if bn.num_batches_tracked is not None:
            bn.num_batches_tracked.add_(1)
        m = bn.momentum
        if m is None:  # a cumulative average, as torch keeps it
            m = 1.0 / float(bn.num_batches_tracked) if bn.num_batches_tracked is not None else 0.1
        bn.running_mean.mul_(1 - m).add_(z.mean(dims), alpha=m)
        bn.running_var.mul_(1 - m).add_(z.var(dims, unbiased=True), alpha=m)


def _apply(
    mods: list[nn.Module],
    x: torch.Tensor,
    masks: dict[int, torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Apply weightless modules; ``Dropout`` is active only when ``masks`` is given (learning).

    Dropout masks are drawn once per learning step from the learner's own ``generator`` and cached in
    ``masks`` so that the code and weight updates of one step see the same mask; no global RNG is used.
    """
    for k, m in enumerate(mods):
        if isinstance(m, nn.Dropout):
            if masks is None or m.p == 0:
                continue
            if k not in masks:
                keep = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) >= m.p
                masks[k] = keep.to(x.dtype) / (1.0 - m.p)
            x = x * masks[k]
        elif isinstance(m, (nn.ReLU, nn.LeakyReLU)) and m.inplace:  # never in place: ``x`` may be a code kept
            x = F.leaky_relu(x, m.negative_slope) if isinstance(m, nn.LeakyReLU) else torch.relu(x)
        else:
            x = m(x)
    return x


@dataclass
class Network:
    """A decomposed network (see module docstring)."""

    pre: list[nn.Module]
    blocks: list[CodeBlock]
    acts: list[list[nn.Module]]
    out: nn.Linear

    @property
    def n_codes(self) -> int:
        return len(self.blocks)

    @property
    def first(self) -> nn.Linear | nn.Conv2d:
        """The first layer with weights (the output layer when there is no code block)."""
        return self.blocks[0].layer if self.blocks else self.out

    @property
    def n_inputs(self) -> int:
        """Input features (``Linear``) or channels (``Conv2d``) of the first layer with weights."""
        first = self.first
        return first.in_features if isinstance(first, nn.Linear) else first.in_channels

    @property
    def takes_rows(self) -> bool:
        """Whether the input is rows of features read by an ``nn.Linear`` directly (so their width is checked
        and can grow)."""
        return isinstance(self.first, nn.Linear) and not self.pre

    def act(
        self,
        l: int,  # noqa: E741
        c: torch.Tensor,
        masks: dict[int, torch.Tensor] | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Nonlinear block after code ``l`` (0-based)."""
        return _apply(self.acts[l], c, masks, generator)

    def preprocess(
        self,
        x: torch.Tensor,
        masks: dict[int, torch.Tensor] | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        return _apply(self.pre, x, masks, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Inference forward pass (running BatchNorm statistics)."""
        a = self.preprocess(x)
        for l, block in enumerate(self.blocks):  # noqa: E741
            a = self.act(l, block.forward(a))
        return self.out(a)


def flatten(module: nn.Module) -> list[nn.Module]:
    """The modules of ``module`` in order, nested ``nn.Sequential`` containers flattened; a module that appears
    twice is listed twice, as ``nn.Sequential`` runs it (``children()`` would list it once)."""
    out: list[nn.Module] = []
    for m in module if isinstance(module, nn.Sequential) else module.children():
        if isinstance(m, nn.Sequential):
            out.extend(flatten(m))
        else:
            out.append(m)
    return out


def _norm_after(mods: list[nn.Module], i: int, last: int) -> nn.BatchNorm1d | nn.BatchNorm2d | None:
    """The BatchNorm right after the code layer ``mods[i]``, if any (it must match the layer's kind)."""
    norm = mods[i + 1] if i + 1 < last else None
    if not isinstance(norm, NORM_TYPES):
        return None
    want = nn.BatchNorm1d if isinstance(mods[i], nn.Linear) else nn.BatchNorm2d
    if not isinstance(norm, want):
        raise ValueError(f"module[{i + 1}] ({norm!r}) does not match the layer before it ({mods[i]!r})")
    if norm.running_mean is None or norm.running_var is None:
        raise ValueError(f"module[{i + 1}] ({norm!r}) keeps no running statistics (track_running_stats=False), "
                         "which the engine predicts with")
    return norm


def decompose(module: nn.Module, trainable: bool = False) -> Network:
    """Split ``module`` (a ``torch.nn.Sequential``, nested ones flattened) into a :class:`Network`.

    Raises ``ValueError`` naming the offending module when the layout is not supported or a module cannot be
    trained as given (:func:`~stream_am.network_checks.check_modules`; ``meta`` tensors too with ``trainable``).

    Examples
    --------
    >>> from torch import nn
    >>> from stream_am.network import decompose
    >>> seq = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3))
    >>> net = decompose(seq)
    >>> net.n_codes, net.out.out_features
    (2, 3)
    """
    if not isinstance(module, nn.Sequential):
        raise ValueError(f"module must be a torch.nn.Sequential, got {type(module).__name__}")
    mods = flatten(module)
    check_modules(module, mods, CODE_TYPES + NORM_TYPES + NONLINEAR_TYPES, CODE_TYPES + NORM_TYPES, trainable)
    weighted = [i for i, m in enumerate(mods) if isinstance(m, CODE_TYPES)]
    if not weighted:
        raise ValueError("module must contain at least one nn.Linear (the output layer)")
    last = weighted[-1]
    if not isinstance(mods[last], nn.Linear):
        raise ValueError(f"module[{last}] ({mods[last]!r}): the output layer must be an nn.Linear")
    if last != len(mods) - 1:
        raise ValueError(
            f"module[{last + 1}] ({mods[last + 1]!r}): nothing may follow the output nn.Linear "
            "(the loss is applied to its raw outputs)"
        )
    pre: list[nn.Module] = []
    blocks: list[CodeBlock] = []
    acts: list[list[nn.Module]] = []
    current = pre
    i = 0
    while i < last:
        m = mods[i]
        if isinstance(m, CODE_TYPES):
            if m.weight.shape[0] == 0:
                raise ValueError(f"module[{i}] ({m!r}) has no outputs: a hidden layer needs at least one unit")
            norm = _norm_after(mods, i, last)
            i += norm is not None
            blocks.append(CodeBlock(m, norm))  # type: ignore[arg-type]
            acts.append([])
            current = acts[-1]
        elif isinstance(m, NORM_TYPES):
            raise ValueError(f"module[{i}] ({m!r}): BatchNorm must directly follow a Linear or Conv2d")
        elif isinstance(m, NONLINEAR_TYPES):
            if any(p.requires_grad for p in m.parameters()):
                raise ValueError(
                    f"module[{i}] ({m!r}) has trainable parameters; nonlinear blocks must have none"
                )
            current.append(m)
        else:
            supported = ", ".join(t.__name__ for t in CODE_TYPES + NORM_TYPES + NONLINEAR_TYPES)
            raise ValueError(f"module[{i}] ({m!r}) is not supported; supported modules: {supported}")
        i += 1
    out = mods[last]
    assert isinstance(out, nn.Linear)  # checked above
    return Network(pre=pre, blocks=blocks, acts=acts, out=out)
