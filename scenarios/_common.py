"""Shared pieces of the scenarios: run configuration, the learners compared, data, and the runner."""

from __future__ import annotations

import functools
import math
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from river import forest, linear_model, metrics, preprocessing, tree
from stream_am.scenarios import _checks, _html, _report
from tqdm.auto import tqdm

from stream_am.evaluate import Prequential, PrequentialResult

__all__ = [
    "RunConfig", "UnknownLearners", "Outcome", "Scenario", "make_learner", "prequential", "digits", "rows", "execute",
    "summary", "BASE_LEARNERS", "warm_up",
]

BASE_LEARNERS = ("AM-mem", "AM-Adam", "BP-Adam", "BP-SGD")
Stream = Iterable[tuple[dict, Any]]


class UnknownLearners(ValueError):
    """``RunConfig.learners`` (``--learners``) names none of a scenario's learners."""


@dataclass(frozen=True)
class RunConfig:
    """How a scenario runs: ``quick`` shrinks data and networks to seconds; ``seed`` fixes data and models."""

    out: Path
    quick: bool = False
    seed: int = 0
    progress: bool = True
    batch_size: int = 32
    hidden: tuple[int, ...] | None = None
    html: bool = False
    learners: tuple[str, ...] | None = None
    memory_decay: float | None = None  # the AM learners' (but "eta=0"), if not their default

    def pick(self, names: Sequence[str]) -> list[str]:
        """The scenario's learners ``names`` that ``learners`` asks for (all of them when it is ``None``)."""
        if self.learners is None:
            return list(names)
        chosen = [n for n in names if n in self.learners]
        if not chosen:
            raise UnknownLearners(f"RunConfig.learners: none of the learners {list(self.learners)} runs in this "
                                  f"scenario; its learners: {', '.join(names)}")
        return chosen

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        """``hidden`` if given, else two layers of 64 (one of 16 in quick mode)."""
        if self.hidden is not None:
            return self.hidden
        return (16,) if self.quick else (64, 64)


@dataclass
class Outcome:
    """What a scenario measured, before it is written out."""

    config: dict[str, Any]
    learners: dict[str, dict[str, Any]]
    curves: dict[str, tuple[np.ndarray, np.ndarray]]
    marks: list[int] = field(default_factory=list)
    mark_label: str = "drift"
    matrices: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    """A scenario: ``run`` measures the ``learners`` (the names ``--learners`` picks from) on its stream."""

    name: str
    family: str
    description: str
    run: Callable[[RunConfig], Outcome]
    learners: tuple[str, ...]


def make_learner(name: str, cfg: RunConfig, activation: str = "relu", **extra: Any) -> Any:
    """A fresh learner by its table name; every neural learner gets the same network, batch size and seed."""
    from stream_am import strategies
    from stream_am.drift import DriftAware

    net: dict[str, Any] = {"hidden_sizes": cfg.hidden_sizes, "activation": activation, "batch_size": cfg.batch_size,
           "seed": cfg.seed}
    if name.startswith("AM-"):
        from stream_am import AMClassifier

        if name not in ("AM-mem", "AM-Adam", "AM-mem+drift", "AM-Adam+drift", "AM-mem eta=0", "AM-mem 3 steps",
                        "AM-mem class", "AM-mem sample"):
            raise ValueError(f"unknown learner {name!r}")
        decay: dict[str, Any] = {} if cfg.memory_decay is None else {"memory_decay": cfg.memory_decay}
        if name.endswith("eta=0"):
            decay["memory_decay"] = 0.0
        if name.endswith("3 steps"):
            decay["code_steps"] = 3
        if name.endswith(("class", "sample")):  # the memory clock, named
            decay["memory_clock"] = name.rsplit(" ", 1)[1]
        am = AMClassifier(variant="adam" if "Adam" in name else "mem", **net, **decay)
        if not name.endswith("+drift"):
            return am
        return DriftAware(am, forget_factor=extra.get("forget_factor", 0.1))
    if name in ("BP-Adam", "BP-SGD", "Replay"):
        from stream_am.baselines import BackpropClassifier

        opt = {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9} if name == "BP-SGD" else {"optimizer": "adam"}
        bp = BackpropClassifier(**net, **opt)
        if name == "Replay":
            size = extra.get("buffer_size", 500)
            return strategies.ReplayClassifier(bp, buffer_size=size, batch_size=cfg.batch_size, seed=cfg.seed)
        return bp
    if name == "EWC":
        every = extra.get("consolidate_every", 500)
        ewc = strategies.EWCClassifier(**net, consolidate_every=every, ewc_lambda=extra.get("ewc_lambda", 100.0))
        return preprocessing.StandardScaler() | ewc
    if name == "LogReg":
        return preprocessing.StandardScaler() | linear_model.SoftmaxRegression()
    if name == "HAT":
        return tree.HoeffdingAdaptiveTreeClassifier(seed=cfg.seed)
    if name == "ARF":
        return forest.ARFClassifier(n_models=3 if cfg.quick else 10, seed=cfg.seed)
    raise ValueError(f"unknown learner {name!r}")


class MacroF1(metrics.MacroF1):
    """river's macro-averaged F1, its per-class scores summed exactly (``math.fsum``): river sums them in the
    order of a set of the labels, which for str labels changes with the process's hash seed, so that two runs
    of one seed differed in the last digit of ``macro_f1``."""

    def get(self) -> float:
        classes = self.cm.classes
        scores = []
        for c in classes:
            tp, predicted, actual = self.cm[c][c], self.cm.sum_col[c], self.cm.sum_row[c]
            p, r = (tp / predicted if predicted else 0.0), (tp / actual if actual else 0.0)
            scores.append(2 * p * r / (p + r) if p + r else 0.0)
        return math.fsum(scores) / len(classes) if classes else 0.0


def prequential(
    model: Any, stream: Stream, total: int, cfg: RunConfig, desc: str, marks: Sequence[int] = ()
) -> PrequentialResult:
    """Test-then-train ``model`` over ``stream`` (``total`` samples) with a progress bar."""
    with tqdm(total=total, desc=desc, disable=not cfg.progress, leave=False) as bar:
        ev = Prequential(model, cfg.batch_size, {"macro_f1": MacroF1()}, on_batch=bar.update)
        ev.run(stream, n=total)
    res = ev.result()
    res.marks = list(marks)
    return res


def summary(res: PrequentialResult) -> dict[str, Any]:
    """Metrics every learner reports: prequential accuracy, macro F1, time and throughput."""
    return {
        "accuracy": res.metrics["accuracy"],
        "macro_f1": res.metrics["macro_f1"],
        "time_s": res.seconds,
        "samples_per_s": res.n_samples / max(res.seconds, 1e-9),
    }


def rows(X: np.ndarray, prefix: str = "x") -> list[dict[str, float]]:
    """Feature rows of a matrix as river dicts ``{"x00": ..., ...}``."""
    width = len(str(X.shape[1] - 1))
    names = [f"{prefix}{j:0{width}d}" for j in range(X.shape[1])]
    return [dict(zip(names, map(float, r), strict=True)) for r in X]


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits: 1797 samples, 64 pixels in ``[0, 16]``, 10 classes."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.data.astype(float), data.target.astype(int)


@functools.cache  # once per process
def warm_up() -> None:
    """Take this process's first AM (memory and Adam) and backprop steps on throwaway data (a generator of its
    own), so that the first learner a scenario times does not pay torch's one-time start, about half a second
    on a CPU (the loading of kernels and of the linear-algebra library), which made it look several times
    slower than the same learner timed second."""
    from stream_am import AMClassifier
    from stream_am.baselines import BackpropClassifier

    X = np.random.default_rng(0).normal(size=(48, 4))
    learners = [AMClassifier(hidden_sizes=(8,), batch_size=16, variant=v, seed=0) for v in ("mem", "adam")]
    for model in [*learners, BackpropClassifier(hidden_sizes=(8,), batch_size=16, seed=0)]:
        for x, y in zip(rows(X), (X[:, 0] > 0).astype(int), strict=True):
            model.predict_one(x)
            model.learn_one(x, int(y))


def execute(scenario: Scenario, cfg: RunConfig) -> dict[str, Any]:
    """Run ``scenario`` and write ``results.json``, ``results.md``, its plots (and ``report.html``) into ``cfg.out``.

    The files an earlier run wrote there (:data:`~stream_am.scenarios._report.OUTPUTS`) are removed once the
    scenario has run, before this run's are written, so that none is left beside this run's results (a plot or
    report of another scenario, or of other options), and a run cut short (interrupted, or failing) leaves the
    earlier run's files as they were. Before anything runs, ``cfg`` is checked
    (:mod:`~stream_am.scenarios._checks`): a ``ValueError`` naming a field it cannot run with or a learner no
    scenario has, :class:`UnknownLearners` when the scenario has none of ``cfg.learners``, or one naming ``out``
    when that directory cannot be created and written, or an output name there is not a file; a refused run
    removes nothing. The check creates ``cfg.out`` and keeps it, so that a path such as ``dir/new/..`` names the
    directory the system resolves it to (``dir``) when the earlier run's files are removed.
    """
    _checks.check_config(cfg)
    cfg.pick(scenario.learners)
    from stream_am.scenarios import REGISTRY  # (here: the registry imports this module)

    known = {n for s in (scenario, *REGISTRY.values()) for n in s.learners}  # as the command line refuses it
    if unknown := [n for n in cfg.learners or () if n not in known]:
        raise ValueError(f"RunConfig.learners: unknown learner {unknown[0]!r} (no scenario has it)")
    problem = _checks.out_problem(cfg.out, keep=True)
    if problem:
        raise ValueError(f"RunConfig.out: {problem}")
    warm_up()  # (not counted in any learner's time, nor in the run's wall time)
    t0 = time.perf_counter()
    outcome = scenario.run(cfg)
    config = {"seed": cfg.seed, "quick": cfg.quick, "hidden_sizes": list(cfg.hidden_sizes),
              "batch_size": cfg.batch_size, **({} if cfg.memory_decay is None else {"memory_decay": cfg.memory_decay}),
              **outcome.config,
              "machine": f"{platform.machine()} {platform.system()} {platform.python_version()}",
              "wall_time_s": round(time.perf_counter() - t0, 2)}
    _report.clear_outputs(cfg.out)  # (only now: a run cut short leaves the earlier run's files)
    doc = _report.write_results(cfg.out, scenario.name, config, outcome.learners, scenario.description)
    if outcome.curves:
        _report.plot_curves(cfg.out / "accuracy.png", outcome.curves, outcome.marks, scenario.name,
                            outcome.mark_label, config.get("window"))
    if outcome.matrices:
        _report.plot_matrices(cfg.out / "accuracy_matrix.png", outcome.matrices, scenario.name)
    if cfg.html:
        _html.write_html(cfg.out / "report.html", doc, scenario.description, outcome.curves, outcome.marks,
                         outcome.mark_label, outcome.matrices)
    return doc
