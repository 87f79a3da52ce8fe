"""Build the feed-forward networks that the estimators and the baselines train.

Both the AM estimators and the backprop baselines call :func:`build_mlp`, so a comparison between them is
like for like: same layers, same initialisation, same seed. Weights are drawn from a private
``torch.Generator``; the global torch RNG is never touched.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import nn

from stream_am import checks
from stream_am.nn import Sign, Step

__all__ = ["ACTIVATIONS", "build_mlp", "check_hidden_sizes", "check_network_params"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "sign": Sign,
    "step": Step,
}



def check_hidden_sizes(hidden_sizes: Any) -> None:
    """``hidden_sizes`` must be a tuple of positive ints (``()`` is a linear model)."""
    if not isinstance(hidden_sizes, tuple) or any(not checks.is_int(h) or h < 1 for h in hidden_sizes):
        raise ValueError(f"hidden_sizes must be a tuple of positive ints, got {hidden_sizes!r}")


def check_network_params(hidden_sizes: Any, activation: Any, batch_size: Any, standardize: Any) -> None:
    """The network parameters every stream estimator shares; ``ValueError`` naming the field otherwise."""
    check_hidden_sizes(hidden_sizes)
    checks.check_choice("activation", activation, sorted(ACTIVATIONS))
    checks.check_int("batch_size", batch_size, low=1)
    if not isinstance(standardize, bool):
        raise ValueError(f"standardize must be a bool, got {standardize!r}")

def _linear(n_in: int, n_out: int, generator: torch.Generator) -> nn.Linear:
    """An ``nn.Linear`` initialised like torch's default (uniform in +-1/sqrt(fan_in)) from ``generator``."""
    with warnings.catch_warnings():  # an empty layer (no features yet) makes torch warn that init is a no-op
        warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
        layer = nn.Linear(n_in, n_out, device="meta")  # no global-RNG draw on the meta device
    # its parameters replaced, not moved: moving a meta module (nn.utils.skip_init's to_empty) imports sympy
    # through torch.fx, which a process's first model paid for (benchmarks/README.md, "the first model")
    bound = 1.0 / math.sqrt(n_in) if n_in > 0 else 0.0
    layer.weight = nn.Parameter(torch.empty(n_out, n_in).uniform_(-bound, bound, generator=generator))
    layer.bias = nn.Parameter(torch.empty(n_out).uniform_(-bound, bound, generator=generator))
    return layer


def build_mlp(
    n_inputs: int,
    n_outputs: int,
    hidden_sizes: tuple[int, ...] = (64,),
    activation: str = "relu",
    seed: int = 0,
) -> nn.Sequential:
    """A multilayer perceptron ``Linear -> act -> ... -> Linear`` on the CPU.

    Parameters
    ----------
    n_inputs
        Number of input features (may be 0: the first layer then has no weights yet and grows later).
    n_outputs
        Number of outputs (classes, or regression targets).
    hidden_sizes
        Width of each hidden layer; ``()`` gives a linear model.
    activation
        One of ``relu``, ``tanh``, ``sigmoid``, ``gelu``, ``leaky_relu``, ``sign``, ``step``.
    seed
        Seed of the private generator that draws the initial weights.

    Examples
    --------
    >>> from stream_am.estimators import build_mlp
    >>> net = build_mlp(3, 2, hidden_sizes=(4,), activation="sign", seed=0)
    >>> net
    Sequential(
      (0): Linear(in_features=3, out_features=4, bias=True)
      (1): Sign()
      (2): Linear(in_features=4, out_features=2, bias=True)
    )
    >>> round(net[0].weight.detach()[0, 0].item(), 3)
    -0.004
    """
    for name, value in (("n_inputs", n_inputs), ("n_outputs", n_outputs)):
        if not checks.is_int(value) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    sizes = tuple(hidden_sizes)
    if any(not checks.is_int(h) or h < 1 for h in sizes):
        raise ValueError(f"hidden_sizes must be a tuple of positive ints, got {hidden_sizes!r}")
    n_inputs, n_outputs, sizes = checks.native((n_inputs, n_outputs, sizes))
    checks.check_seed(seed)
    generator = torch.Generator().manual_seed(int(seed))
    layers: list[nn.Module] = []
    width = n_inputs
    for h in sizes:
        layers += [_linear(width, h, generator), ACTIVATIONS[activation]()]
        width = h
    layers.append(_linear(width, n_outputs, generator))
    return nn.Sequential(*layers)
