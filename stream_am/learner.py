"""OnlineAM: one online step = forward codes, top-down code updates, then every layer fits its own weights.

The step reads top to bottom in :meth:`OnlineAM.partial_fit`; the code objectives are in
:mod:`stream_am.objectives`, the per-layer update rules in :mod:`stream_am.updaters`. Everything that
depends on the layout or the variant is decided once, in ``_build``: a step loops over objects.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from stream_am import checks
from stream_am.codes import forward_codes, update_codes
from stream_am.grad_mode import no_grad
from stream_am.hyperparameters import check_am_params
from stream_am.learner_state import LearnerState
from stream_am.network import Network, decompose
from stream_am.objectives import CodeObjective, build_objectives, one_hot_rows, output_loss
from stream_am.updaters import (
    ClassBatch,
    ClassClock,
    ClassMemoryUpdater,
    Reduce,
    Updater,
    class_clocked,
    fit_layers,
    fit_reduced,
    layer_streams,
    make_updaters,
)
from stream_am.variants import check_network, resolve_variants

__all__ = ["OnlineAM"]


class OnlineAM(LearnerState):
    """Online Alternating Minimization with auxiliary variables (Choromanska et al., ICML 2019).

    Parameters
    ----------
    module
        A ``torch.nn.Sequential`` (see :func:`stream_am.network.decompose` for the supported layouts). The
        learner trains it in place; it is moved to ``device`` on the first step.
    variant
        How each code layer fits its weights: ``"mem"`` (a co-activation memory solved by ridge least
        squares), ``"adam"`` (local Adam steps), a sequence with one of those per code layer, or ``"auto"``
        (the memory where it is cheap relative to the layer's backprop step, Adam elsewhere: see
        :mod:`stream_am.variants`; decided on the first step, from its batch size, with the memories' solve
        cadence when ``solve_every`` is ``None``). A memory is
        ``n_in x n_in``: cheap on narrow inputs, costly on wide ones (figures in ``benchmarks/README.md``).
    loss
        ``"cross_entropy"`` (integer class targets) or ``"mse"`` (float targets, any output width).
    readout
        How the output layer learns: ``"memory"`` (ridge fit of one-hot or regression targets from the last
        hidden layer, in the same statistics as AM-mem; the default for both variants, chosen by measurement)
        or ``"adam"`` (Adam steps on the loss).
    device
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when available).
    seed
        Seeds the learner's own ``torch.Generator`` (dropout masks, a late feature's weights); None seeds it
        from the operating system's entropy. No global RNG is touched.
    mu
        Weight of the code-coupling terms; the top code trades ``loss / mu`` against staying near its
        forward value.
    mu_growth, mu_max_factor
        ``mu`` grows by ``mu_growth`` after each step while below ``mu_max_factor * mu``.
    code_steps, code_lr, code_momentum
        Nesterov gradient steps on each code, per sample (independent of the mini-batch size).
    weight_steps, weight_lr
        Adam steps and step size for the code layers that use Adam.
    output_lr
        Adam step size of the output layer (``readout="adam"``); ``weight_steps`` steps per mini-batch.
    memory_decay
        Per-sample forgetting rate of every memory in ``[0, 1)``; settable between steps, as every number here.
    memory_clock
        What ``memory_decay`` counts. ``"class"`` (the default; classification): each memory keeps each class's
        statistics apart and ages a class only in the mini-batches that hold it (by ``memory_decay`` per sample
        of such a batch), so that a class the stream no longer shows is not erased by the others, while on a
        stream where every class keeps coming every class ages as with one clock for all
        (:mod:`stream_am.updaters.class_memory`).
        ``"sample"``: every remembered sample ages by ``(1 - memory_decay)`` per later sample, whatever its
        class (one statistic per memory: cheaper, but a class-incremental stream erases its first classes).
        A regressor's memories always use the sample clock.
    ridge
        Proximal ridge of the memory solves, in units of the inputs' mean square.
    solve_every
        Memories absorb every mini-batch, but are solved for new weights on every ``solve_every``-th step
        (the solve costs O(n_in^3 + n_out n_in^2) per layer). ``None`` (the default): every step, unless
        ``variant`` has ``"auto"`` entries, whose cost model then also chooses every step or every second step
        (:mod:`stream_am.variants`); the cadence in use is ``solve_every_``. A given value is always used.
    parallel_layers
        On CUDA, run the (independent) per-layer weight updates on separate CUDA streams.
    lambda_c, lambda_w
        L1 sparsity of codes and (Adam layers) weights.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from stream_am import OnlineAM
    >>> g = torch.Generator().manual_seed(0)
    >>> def xor_batch(n):                      # XOR of the signs: not linearly separable
    ...     x = torch.randn(n, 2, generator=g)
    ...     return x, ((x[:, 0] * x[:, 1]) > 0).long()
    >>> net = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2))
    >>> am = OnlineAM(net, variant="mem", seed=0)
    >>> for _ in range(100):                   # a stream of 100 mini-batches of 32
    ...     stats = am.partial_fit(*xor_batch(32))
    >>> x_test, y_test = xor_batch(1000)
    >>> acc = (am.predict(x_test).argmax(1) == y_test).float().mean().item()
    >>> acc > 0.85
    True
    """

    def __init__(
        self,
        module: nn.Module,
        variant: str | Sequence[str] = "auto",
        loss: str = "cross_entropy",
        readout: str = "memory",
        device: str = "cpu",
        seed: int | None = 0,
        mu: float = 0.1,
        mu_growth: float = 0.0,
        mu_max_factor: float = 10.0,
        code_steps: int = 1,
        code_lr: float = 0.05,
        code_momentum: float = 0.9,
        weight_steps: int = 1,
        weight_lr: float = 0.005,
        output_lr: float = 0.008,
        memory_decay: float = 1e-3,
        memory_clock: str = "class",
        ridge: float = 1e-2,
        solve_every: int | None = None,
        parallel_layers: bool = True,
        lambda_c: float = 0.0,
        lambda_w: float = 0.0,
    ):
        self.module = module
        self.variant = variant
        self.loss = loss
        self.readout = readout
        self.device = device
        self.seed = seed
        self.mu = mu
        self.mu_growth = mu_growth
        self.mu_max_factor = mu_max_factor
        self.code_steps = code_steps
        self.code_lr = code_lr
        self.code_momentum = code_momentum
        self.weight_steps = weight_steps
        self.weight_lr = weight_lr
        self.output_lr = output_lr
        self.memory_decay = memory_decay
        self.memory_clock = memory_clock
        self.ridge = ridge
        self.solve_every = solve_every
        self.parallel_layers = parallel_layers
        self.lambda_c = lambda_c
        self.lambda_w = lambda_w
        self._validate_params()
        self._net: Network = decompose(module, trainable=True)
        check_network(variant, self._net)
        self._built = False
        self.samples_seen = 0
        self.n_steps = 0

    def _validate_params(self) -> None:
        check_am_params(self, self.loss)
        checks.check_device(self.device)
        if self.seed is not None:
            checks.check_seed(self.seed)
        if not isinstance(self.parallel_layers, bool):
            raise ValueError(f"parallel_layers must be a bool, got {self.parallel_layers!r}")

    @property
    def n_inputs(self) -> int:
        return self._net.n_inputs

    @property
    def n_outputs(self) -> int:
        return self._net.out.out_features

    # ------------------------------------------------------------------ lazy state
    def _build(self, variants: Sequence[str], solve_every: int) -> None:
        """Objectives and updaters, once: ``variants`` holds ``"mem"`` or ``"adam"`` for each code layer, and
        every memory solves on every ``solve_every``-th step."""
        dev = checks.resolve_device(self.device)
        self.module.to(dev)
        self._device = dev
        self._generator = torch.Generator(device=dev)
        if self.seed is None:  # a fresh generator's seed is torch's default, the same in every process
            self._generator.seed()
        else:
            self._generator.manual_seed(self.seed)
        self._mu = float(self.mu)
        net = self._net
        self._onehot = self.loss == "cross_entropy" and self.readout == "memory"  # the readout fits one-hot rows
        self._objectives: list[CodeObjective] = build_objectives(net, "sq" if self._onehot else self.loss)
        clock = ClassClock() if class_clocked(self.memory_clock, self.loss) else None
        self._updaters: list[Updater] = make_updaters(
            net, variants, readout=self.readout, loss=self.loss, lr=self.weight_lr, output_lr=self.output_lr,
            steps=self.weight_steps, lambda_w=self.lambda_w, decay=self.memory_decay, ridge=self.ridge,
            solve_every=solve_every, clock=clock)  # one clock for every class-clocked memory
        self._solve_every = solve_every
        self._by_class = any(isinstance(u, ClassMemoryUpdater) for u in self._updaters)
        self._streams = layer_streams(dev, len(self._updaters))  # used when parallel_layers
        self._built = True

    # ------------------------------------------------------------------ public API
    def partial_fit(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """One AM step on the mini-batch ``(x, y)``; returns statistics measured *before* the update.

        ``loss`` and (classification) ``accuracy`` are those of the model's predictions on this batch before
        learning from it (test-then-train). Bad input raises ``ValueError`` and changes nothing.
        """
        return self._step(x, y, None)

    @no_grad  # once for the step: the functions it calls then skip their own (stream_am.grad_mode)
    def _step(self, x: torch.Tensor, y: torch.Tensor, reduce: Reduce | None) -> dict[str, float]:
        """The step; with ``reduce`` (a sum over data-parallel workers, see :mod:`stream_am.distributed`) the
        batch is this worker's share (possibly empty) and every updater applies the statistics of all shares."""
        device = self._device if self._built else checks.resolve_device(self.device)
        x, y = checks.check_batch(x, y, loss=self.loss, n_outputs=self.n_outputs, device=device,
                                  n_inputs=self.n_inputs if self._net.takes_rows else None,
                                  allow_empty=reduce is not None)
        first = not self._built
        if first:  # the first valid batch decides "auto" layers and cadence, from its (global) size
            batch = x.shape[0] if reduce is None else int(reduce(torch.tensor([x.shape[0]], dtype=torch.float64)))
            if batch == 0:
                return {"n": 0.0, "mu": float(self.mu)}
            self._build(*resolve_variants(self.variant, self._net, batch, self.solve_every, self.readout,
                                          class_clock=class_clocked(self.memory_clock, self.loss)))
        net, n = self._net, x.shape[0]
        masks: list[dict[int, torch.Tensor]] = [{} for _ in range(net.n_codes + 1)]
        try:
            with checks.shape_errors(x):  # nothing has changed yet if the network refuses x
                codes, before = forward_codes(net, x, masks, self._generator)
        except ValueError:
            self._built = not first  # a first batch the network refuses builds nothing either
            raise
        loss_sum = output_loss(before, y, self.loss)
        correct = (before.argmax(1) == y).sum() if self.loss == "cross_entropy" else None
        target = one_hot_rows(y, self.n_outputs, x.dtype) if self._onehot else y  # built once per batch
        new = update_codes(self._objectives, codes, target, masks, before, mu=self._mu, lambda_c=self.lambda_c,
                           steps=self.code_steps, lr=self.code_lr, momentum=self.code_momentum,
                           reduce=reduce)
        inputs = [net.preprocess(x, masks[0])] + [net.act(l, c, masks[l + 1]) for l, c in enumerate(new)]
        # known outputs at the updated inputs: block 1's (the forward code); each objective keeps the layer above's
        known = [codes[0] if codes else None] + [o.output for o in self._objectives]
        labels = None  # one-hot labels, for class-clocked memories
        if self._by_class:
            labels = ClassBatch(target if self._onehot else one_hot_rows(y, self.n_outputs, x.dtype), y)
        if reduce is None:
            fit_layers(self._updaters, inputs, [*new, target], known, n, labels,
                       self._streams if self.parallel_layers else ())
        else:  # the global count and sums of this step come back with the statistics
            local = torch.stack([loss_sum.new_tensor(float(n)), loss_sum,
                                 loss_sum.new_zeros(()) if correct is None else correct.to(loss_sum)])
            totals = fit_reduced(self._updaters, inputs, [*new, target], known, local, reduce, labels)
            n = int(round(float(totals[0])))
            if n == 0:
                return {"n": 0.0, "mu": self._mu}
            loss_sum, correct = totals[1], None if correct is None else totals[2]
        return self._end_step(inputs, n, loss_sum, correct)

    def _end_step(
        self, inputs: list[torch.Tensor], n: int, loss_sum: torch.Tensor, correct: torch.Tensor | None
    ) -> dict[str, float]:
        """After the weights of a step of ``n`` samples: BatchNorm running statistics, ``mu``, counters; the
        step's statistics (``loss_sum`` and ``correct``: sums over the samples, before the update)."""
        measured = {"loss": loss_sum} if correct is None else {"loss": loss_sum, "accuracy": correct}
        for l, block in enumerate(self._net.blocks):  # noqa: E741
            block.update_running_stats(inputs[l])
        stats = {"n": float(n), "mu": self._mu}
        if self.mu_growth > 0 and self._mu < self.mu_max_factor * self.mu:
            self._mu += self.mu_growth
        self.samples_seen += n
        self.n_steps += 1
        stats.update({k: float(v) / n for k, v in measured.items()})  # the step's only device-to-host copies
        return stats

    @no_grad
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Network outputs (logits or values) for ``x``, on the module's device; never changes any state."""
        dev = self._device if self._built else next(self.module.parameters()).device  # (built: moved there)
        x = checks.check_x(x, device=dev, n_inputs=self.n_inputs if self._net.takes_rows else None)
        with checks.shape_errors(x):
            return self._net.forward(x)

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (softmax of the outputs); classification only."""
        if self.loss != "cross_entropy":
            raise ValueError("predict_proba needs loss='cross_entropy'")
        return torch.softmax(self.predict(x), dim=1)
