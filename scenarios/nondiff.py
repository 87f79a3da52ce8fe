"""Non-differentiable hidden units: a Sign network trained by AM versus backprop with a straight-through
estimator (``stream_am.nn.Sign`` back-propagates the gradient of a hard tanh). ReLU runs are the reference.
"""

from __future__ import annotations

from collections.abc import Callable

from stream_am.scenarios._common import Outcome, RunConfig, Scenario, make_learner, prequential, summary
from stream_am.scenarios.stationary import QUICK_SAMPLES, _digits, _river

__all__ = ["SCENARIOS"]

LEARNERS = (("AM-mem", "sign"), ("AM-Adam", "sign"), ("BP-Adam", "sign"), ("BP-SGD", "sign"),
            ("AM-mem", "relu"), ("BP-Adam", "relu"))
NAMES = tuple(dict.fromkeys(name for name, _ in LEARNERS))  #: the names ``--learners`` picks from


def _runner(load: Callable[[int], list]) -> Callable[[RunConfig], Outcome]:
    def run(cfg: RunConfig) -> Outcome:
        data = load(cfg.seed)
        n = min(len(data), QUICK_SAMPLES) if cfg.quick else len(data)
        window = max(20, n // 10)
        learners, curves = {}, {}
        chosen = cfg.pick(NAMES)
        for name, act in (pair for pair in LEARNERS if pair[0] in chosen):
            label = f"{name} ({act}{', STE' if name.startswith('BP') and act == 'sign' else ''})"
            res = prequential(make_learner(name, cfg, activation=act), data, n, cfg, label)
            learners[label] = summary(res)
            learners[label]["final_window_accuracy"] = float(res.correct[-window:].mean())
            curves[label] = res.curve(window)
        return Outcome({"n_samples": n, "window": window}, learners, curves)

    return run


def _bananas(seed: int) -> list:
    from river import datasets

    return _river(datasets.Bananas, seed)


SCENARIOS = [
    Scenario("sign-digits", "non-differentiable", "Sign-activation MLP on scikit-learn digits (1797, 10 classes).",
             _runner(_digits), NAMES),
    Scenario("sign-bananas", "non-differentiable", "Sign-activation MLP on river Bananas (5300, binary).",
             _runner(_bananas), NAMES),
]
