"""The continual scenarios' accuracy matrix and joint reference are measured on learners that learnt every sample."""

from pathlib import Path

import numpy as np
from stream_am.scenarios import continual
from stream_am.scenarios._common import RunConfig, make_learner, prequential, rows

from stream_am import evaluate


def _tasks(seed: int, quick: bool) -> list[continual.Task]:
    """Three tasks of two gaussian classes each, 45 training samples (not a multiple of the batch of 32)."""
    rng = np.random.default_rng(seed)
    tasks = []
    for k in range(3):
        y = np.array([2 * k, 2 * k + 1] * 30)
        X = rng.normal(size=(60, 2)) + 3.0 * np.stack([np.cos(y), np.sin(y)], axis=1)
        xs = rows(X, "f")
        tasks.append(continual.Task(list(zip(xs[:45], y[:45].tolist(), strict=True)), xs[45:], y[45:].tolist()))
    return tasks


def _buffered(model) -> int:
    """Samples a learner (or the stream estimator it wraps) was given but has not learnt yet."""
    while model is not None:
        if hasattr(model, "n_buffered"):
            return int(model.n_buffered)
        model = getattr(model, "classifier", None)
    return 0


def test_every_row_of_r_and_the_joint_reference_come_after_every_training_sample_is_learnt(monkeypatch):
    # R[i, j] is the accuracy after learning tasks 0..i: a learner that buffers mini-batches (the AM learners, the
    # backprop baselines, replay around backprop) held up to 31 samples of task i unlearnt when row i was measured,
    # and the joint reference's last samples were never learnt. The learner that streams on is not stepped at a
    # task's end (that would tell it where tasks end): its prequential accuracy is that of a run never scored.
    seen: list[tuple[str, int]] = []

    def recording(model, xs, ys):
        seen.append((type(model).__name__, _buffered(model)))
        return evaluate.accuracy_on(model, xs, ys)

    monkeypatch.setattr(continual, "accuracy_on", recording)
    names = ("AM-mem", "AM-mem+drift", "Replay", "EWC")
    cfg = RunConfig(out=Path("unused"), quick=True, progress=False)
    out = continual._continual(_tasks, names)(cfg)
    assert len(seen) == len(names) * (3 * 3 + 3)  # every row of R, then the joint reference
    assert [b for _, b in seen] == [0] * len(seen), seen
    for name in names:
        R = np.asarray(out.learners[name]["accuracy_matrix"])
        assert R.shape == (3, 3) and ((R >= 0) & (R <= 1)).all()
    for name in ("AM-mem", "Replay"):
        model = make_learner(name, cfg, **continual._extra(135, 3))
        correct = [prequential(model, t.train, len(t.train), cfg, name).correct for t in _tasks(cfg.seed, True)]
        assert out.learners[name]["prequential_accuracy"] == float(np.concatenate(correct).mean())


def test_replay_around_the_backprop_baseline_learns_a_batch_then_its_replayed_sample_in_two_steps():
    # as scenarios/README.md says of Replay: one learn_many call, the batch first; BackpropClassifier steps every
    # batch_size rows it is given, so a batch and a replayed sample as large are two steps, not one mixed step
    import pandas as pd

    from stream_am.baselines import BackpropClassifier
    from stream_am.strategies import ReplayClassifier

    bp = BackpropClassifier(hidden_sizes=(4,), batch_size=4, seed=0)
    replay = ReplayClassifier(bp, buffer_size=8, batch_size=4, seed=0)
    for b in range(4):
        X = pd.DataFrame({"a": [float(4 * b + i) for i in range(4)]})
        before = bp.n_steps
        replay.learn_many(X, pd.Series([i % 2 for i in range(4)]))
        assert bp.n_steps - before == (1 if b == 0 else 2) and bp.n_buffered == 0
    assert len(replay.buffer_) == 8 and replay.n_seen_ == 16
