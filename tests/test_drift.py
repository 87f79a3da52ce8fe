"""Drift-aware AM (stream_am.drift.DriftAware): detector on the loss -> engine.forget / memory_decay boost."""

import pickle
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from fake_engine import FixedClassifier as Constant
from river import drift

from stream_am import AMClassifier
from stream_am.drift import CHUNK, DriftAware


def _stream(n=2000, switch=1000):
    """Label 1 once in ten samples, then nine in ten from ``switch``: both labels known before it."""
    X = pd.DataFrame({"a": np.zeros(n)})
    i = np.arange(n)
    y = pd.Series(np.where(i < switch, i % 10 == 5, i % 10 != 5).astype(int))
    return X, y


@pytest.mark.parametrize("signal", ["error", "log_loss"])
def test_forgets_once_after_an_abrupt_switch(signal):
    inner = Constant()
    model = DriftAware(inner, signal=signal, forget_factor=0.25)
    X, y = _stream()
    for s in range(0, len(X), 50):
        model.learn_many(X[s : s + 50], y[s : s + 50])
    assert inner.engine.forgets == [0.25] and inner.learnt == 2000
    assert len(model.drifts_) == 1 and 1000 < model.drifts_[0] <= 1100


def test_boost_raises_decay_then_restores_it():
    inner = Constant()
    model = DriftAware(inner, detector=drift.ADWIN(), forget_factor=1.0, boost_decay=0.05, boost_samples=200)
    X, y = _stream()
    decays = []
    for s in range(0, len(X), 50):
        model.learn_many(X[s : s + 50], y[s : s + 50])
        decays.append(inner.engine.memory_decay)
    assert 0.05 in decays and decays[-1] == 1e-3
    assert sum(d == 0.05 for d in decays) == 4


def test_learn_one_path_and_delegation():
    inner = Constant()
    model = DriftAware(inner, detector=drift.PageHinkley(min_instances=10, threshold=3.0))
    for i in range(100):
        model.learn_one({"a": 0.0}, int(i >= 50 or i % 10 == 5))
    assert model.drifts_ and inner.engine.forgets
    assert model.predict_one({"a": 0.0}) == 0 and model.predict_proba_one({"a": 0.0}) == {0: 0.9, 1: 0.1}


def test_needs_an_engine_and_valid_params():
    class NoEngine(Constant):
        def __init__(self):
            super().__init__()
            del self.engine

    with pytest.raises(TypeError, match="engine"):
        DriftAware(NoEngine()).learn_one({"a": 0.0}, 1)
    for kwargs in [{"signal": "x"}, {"forget_factor": 0.0}, {"boost_decay": 1.0}, {"boost_samples": -1}]:
        with pytest.raises(ValueError, match=f"^{next(iter(kwargs))} must"):
            DriftAware(Constant(), **kwargs)
    assert DriftAware(Constant(), forget_factor=1.0).forget_factor == 1.0  # the upper bound is closed


def test_wraps_a_real_am_classifier():
    model = DriftAware(AMClassifier(hidden_sizes=(8,), batch_size=16, seed=0), forget_factor=0.5)
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=1200), "b": rng.normal(size=1200)})
    y = pd.Series(np.where(np.arange(1200) < 600, X["a"] > 0, X["a"] < 0))
    for s in range(0, 1200, 16):
        model.learn_many(X[s : s + 16], y[s : s + 16])
    assert any(600 < d <= 900 for d in model.drifts_)  # the switch is found (early false alarms aside)
    assert model.classifier.engine is not None
    assert model.clone().drifts_ == []


def test_a_falling_loss_is_not_a_drift():
    inner = Constant()
    model = DriftAware(inner)
    X = pd.DataFrame({"a": np.zeros(2000)})
    y = pd.Series((np.arange(2000) < 1000).astype(int))  # errors first, then none: ADWIN fires, no forgetting
    for s in range(0, 2000, 50):
        model.learn_many(X[s : s + 50], y[s : s + 50])
    assert model.drifts_ == [] and inner.engine.forgets == []


def test_a_detection_reaches_the_classifiers_companion(monkeypatch):
    """DriftAware forgets through the AM estimator's ``forget``: the engine's memories and the companions' sums
    (the quadratic one's, then the linear one's: one class, patched once)."""
    calls = []
    model = DriftAware(AMClassifier(hidden_sizes=(8,), batch_size=16, seed=0), forget_factor=0.5)
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=1200), "b": rng.normal(size=1200)})
    y = pd.Series(np.where(np.arange(1200) < 600, X["a"] > 0, X["a"] < 0))
    model.learn_many(X[:16], y[:16])
    companion = model.classifier._companion
    assert companion is not None
    monkeypatch.setattr(type(companion), "forget", lambda self, f: calls.append(("companion", f)))
    monkeypatch.setattr(type(model.classifier.engine), "forget", lambda self, f: calls.append(("engine", f)))
    for s in range(16, 1200, 16):
        model.learn_many(X[s : s + 16], y[s : s + 16])
    assert model.drifts_ and calls == [("engine", 0.5), ("companion", 0.5), ("companion", 0.5)] * len(model.drifts_)


def test_a_new_class_starts_the_detector_again_and_is_not_a_drift():
    inner = Constant()  # always predicts 0: every sample of class 1 or 2 is an error
    model = DriftAware(inner, forget_factor=0.25)
    X = pd.DataFrame({"a": np.zeros(3000)})
    y = pd.Series(np.repeat([0, 1, 2], 1000))  # three tasks of one new class each
    for s in range(0, 3000, 50):
        model.learn_many(X[s : s + 50], y[s : s + 50])
    assert model.drifts_ == [] and inner.engine.forgets == [] and inner.learnt == 3000
    assert model._seen == {0, 1, 2}
    for s in range(0, 1000, 50):  # class 0 again, now an error too: not new, so the known classes' error rose
        model.learn_many(X[s : s + 50], pd.Series(np.zeros(50, dtype=int) + (np.arange(50) % 2)))
    assert model.drifts_ == []  # (the detector restarted at class 2 and has seen errors only since)


def test_a_class_incremental_stream_keeps_its_first_classes():
    """Two tasks of two classes each, linearly separable: the second task's start is not a drift, so nothing
    learnt of the first task is forgotten (the first task's accuracy at the end stays high)."""
    rng = np.random.default_rng(0)
    centres = {0: (-4, 0), 1: (4, 0), 2: (0, -4), 3: (0, 4)}
    labels = np.concatenate([rng.integers(0, 2, 800), rng.integers(2, 4, 800)])
    points = np.array([centres[c] for c in labels]) + rng.normal(size=(1600, 2))
    X, y = pd.DataFrame(points, columns=["a", "b"]), pd.Series(labels)
    model = DriftAware(AMClassifier(hidden_sizes=(16,), batch_size=16, seed=0), forget_factor=0.1)
    for s in range(0, 1600, 16):
        model.learn_many(X[s : s + 16], y[s : s + 16])
    assert model.drifts_ == []
    first = labels < 2
    assert (model.classifier.predict_many(X[first]).to_numpy() == labels[first]).mean() > 0.9


_LATER = ("domain_shift", "shifts_", "_seen", "_recent", "_held_samples", "_held_at", "_features", "_a_label")


def _as_pickled_before(model):
    """``model`` as unpickled from a version that kept none of :data:`_LATER`."""
    state = pickle.loads(pickle.dumps(model)).__dict__
    old = DriftAware.__new__(DriftAware)
    old.__setstate__({k: v for k, v in state.items() if k not in _LATER})
    return old


def test_a_wrapper_pickled_before_it_kept_the_labels_learns_on():
    X, y = _stream()
    model = DriftAware(Constant(), forget_factor=0.25)
    model.learn_many(X[:500], y[:500])
    model = _as_pickled_before(model)
    assert model.domain_shift is None and model.shifts_ == [] and "domain_shift=None" in repr(model)
    assert model.clone().drifts_ == [] and model._seen == set()
    for s in range(500, len(X), 50):
        model.learn_many(X[s : s + 50], y[s : s + 50])
    assert model._seen == {0, 1} and model.classifier.engine.forgets == [0.25] and model.n_seen_ == len(X)


def test_a_stream_classifier_wrapper_pickled_before_learns_one_by_one_on():
    model = DriftAware(AMClassifier(hidden_sizes=(4,), batch_size=4, seed=0))
    for k in range(8):  # (two steps: nothing held, as before the wrapper held samples)
        model.learn_one({"a": float(k)}, k % 2)
    model = _as_pickled_before(model)
    for k in range(8, 30):
        model.learn_one({"a": float(k)}, k % 2)
    assert model.n_seen_ + len(model._held_samples) == 30 and model._seen == {0, 1}


def test_learn_many_feeds_the_known_samples_before_a_new_label_as_learn_one_does():
    """Label 2 first comes at the end of the batch holding the switch: the switch's errors before it are fed to the
    detector they belong to (sample by sample and batch by batch alike) before it starts again."""
    n = 1500
    i = np.arange(n)
    y = pd.Series(np.where(i < 1000, i % 10 == 5, i % 10 != 5).astype(int))
    y[1049] = 2
    X = pd.DataFrame({"a": np.zeros(n)})
    one, many = DriftAware(Constant(), forget_factor=0.25), DriftAware(Constant(), forget_factor=0.25)
    for k in range(n):
        one.learn_one({"a": 0.0}, int(y[k]))
    for s in range(0, n, 50):
        many.learn_many(X[s : s + 50], y[s : s + 50])
    assert one.drifts_ == many.drifts_ and len(one.drifts_) == 1 and 1000 < one.drifts_[0] < 1049


@pytest.mark.parametrize("where", ["held", "step", "flushed"])
def test_a_refused_sample_changes_nothing(where):
    """A sample the classifier refuses (an undeclared label, a NaN) changes nothing, whether it would have been held,
    stepped the classifier (scoring the held ones, with a boost ending), or come after the classifier's own flush."""
    inner = AMClassifier(hidden_sizes=(4,), batch_size=8, seed=0)
    inner.partial_fit(np.zeros((8, 1)), [0, 1] * 4, classes=[0, 1])  # declared: label 2 is refused
    model = DriftAware(inner, detector=drift.PageHinkley(min_instances=10, threshold=3.0), boost_decay=0.5,
                       boost_samples=1000)
    k = 0
    while k < 150 or inner.n_buffered != (7 if where == "step" else 3):
        model.learn_one({0: 0.0}, int(k >= 100 or k % 10 == 5))
        k += 1
    assert model.drifts_ and model._saved_decay is not None and model._held_samples
    if where == "flushed":
        inner.flush()  # (the held samples' answers are gone)
    before = pickle.dumps(model)
    for x, y in (({0: 0.0}, 2), ({0: float("nan")}, 0), ({0: 1e30}, 1)):
        with pytest.raises(ValueError):
            model.learn_one(x, y)
    with pytest.raises(ValueError, match="y"):
        model.learn_many(pd.DataFrame({0: [0.0, 0.0]}), pd.Series([0, 2]))
    assert pickle.dumps(model) == before


class _Novel(Constant):
    """A constant classifier that reads every input as ``score`` standard deviations new, and keeps what it read."""

    def __init__(self, score):
        super().__init__()
        self.score, self.read = score, []

    def input_novelty(self, X):
        self.read.append(X.copy())
        return self.score


@pytest.mark.parametrize("score, forgets", [(9.9, True), (10.0, False), (None, True)])
def test_a_detection_on_new_inputs_is_a_new_domain_and_forgets_nothing(score, forgets):
    inner = _Novel(score)
    model = DriftAware(inner, forget_factor=0.25)
    X, y = _stream()
    X["a"] = np.arange(len(X), dtype=float)
    for s in range(0, len(X), 50):
        model.learn_many(X[s : s + 50], y[s : s + 50])
    assert (inner.engine.forgets == [0.25]) is forgets and (len(model.drifts_) == 1) is forgets
    assert (len(model.shifts_) == 1) is not forgets and 1000 < (model.drifts_ + model.shifts_)[0] <= 1100
    assert len(inner.read) == 1  # asked once, at the detection: the latest inputs learnt, then the batch's to it
    read = inner.read[0]["a"].to_numpy()
    assert np.array_equal(read, np.arange(read[-1] - 63, read[-1] + 1))
    assert read[-1] == (model.drifts_ + model.shifts_)[0] - 1 and read[-1] % 50 != 49  # (the detected sample's)


def test_a_new_domain_restarts_the_detector_and_none_always_forgets():
    inner = _Novel(1e9)
    model = DriftAware(inner, forget_factor=0.25)
    X, y = _stream()
    for s in range(0, len(X), 50):
        model.learn_many(X[s : s + 50], y[s : s + 50])
    assert model.drifts_ == [] and inner.engine.forgets == [] and len(model.shifts_) == 1
    plain = DriftAware(_Novel(1e9), forget_factor=0.25, domain_shift=None)
    for s in range(0, len(X), 50):
        plain.learn_many(X[s : s + 50], y[s : s + 50])
    assert len(plain.drifts_) == 1 and plain.classifier.read == []  # not asked
    with pytest.raises(ValueError, match="^domain_shift must"):
        DriftAware(Constant(), domain_shift=-1.0)


def test_learn_one_keeps_the_latest_inputs_learnt_and_a_refused_one_is_not():
    inner = AMClassifier(hidden_sizes=(4,), batch_size=4, seed=0)
    inner.partial_fit(np.zeros((4, 1)), [0, 1, 0, 1], classes=[0, 1])
    model = DriftAware(inner)
    for k in range(70):
        model.learn_one({0: float(k)}, k % 2)
    with pytest.raises(ValueError, match="y"):
        model.learn_one({0: 1e3}, 2)
    assert [r[0] for r, _ in model._held_samples] == [68.0, 69.0]  # (scored at the classifier's next step)
    assert [x[0] for x in model._recent] == [float(k) for k in range(4, 68)]


def test_a_new_domain_keeps_the_first_one():
    """Two tasks with the same two labels on inputs far apart (a domain-incremental stream): the second task's
    start raises the loss, but its inputs are new to the model, so nothing of the first task is forgotten (it is
    without the check)."""
    rng = np.random.default_rng(0)
    n = 1600
    points = rng.normal(size=(n, 2))
    points[n // 2 :] += 12.0  # the second domain
    labels = np.where(np.arange(n) < n // 2, points[:, 0] > 0, points[:, 1] > 12.0).astype(int)
    X, y = pd.DataFrame(points, columns=["a", "b"]), pd.Series(labels)
    first = np.arange(n) < n // 2
    models = {shift: DriftAware(AMClassifier(hidden_sizes=(16,), batch_size=16, seed=0), forget_factor=0.1,
                                domain_shift=shift) for shift in (10.0, None)}
    for model in models.values():
        for s in range(0, n, 16):
            model.learn_many(X[s : s + 16], y[s : s + 16])
    guarded, plain = models[10.0], models[None]
    assert plain.drifts_ and any(d > n // 2 for d in plain.drifts_)  # without the check: a drift, forgotten
    assert guarded.shifts_ and all(d <= n // 2 for d in guarded.drifts_)
    novelty = guarded.classifier.input_novelty(X[first][:64])
    assert novelty is not None and novelty < 10.0  # the first domain's inputs are still remembered


def _held_and_single(rows, labels, signal="error", batch_size=8, direct=None, **kwargs):
    """The wrapper with ``learn_one`` holding its samples, after it checked the losses it fed to the detector and its
    detections against one scoring each sample on its own; and the samples it held that went unscored (``direct``:
    sample -> a call on the classifier itself just before it)."""
    fed, models = {}, {}
    for defers in (True, False):
        model = DriftAware(AMClassifier(hidden_sizes=(8,), batch_size=batch_size, seed=0), signal=signal,
                           forget_factor=0.5, **kwargs)
        model._defers = lambda defers=defers: defers
        fed[defers] = {}  # sample -> loss fed (a later call scores the samples after a forget anew: the last counts)
        detect = model._detect
        model._detect = lambda *args, detect=detect, into=fed[defers]: (into.update(enumerate(args[2], args[4])),
                                                                       detect(*args))[1]
        for k, (x, y) in enumerate(zip(rows, labels, strict=True)):
            if direct and k in direct:
                direct[k](model.classifier)
            model.learn_one(x, y)
        models[defers] = model
    n = len(rows)
    assert set(fed[True]) <= set(range(n - len(models[True]._held_samples))) and sorted(fed[False]) == list(range(n))
    # (the same answers: 0/1 losses equal; probabilities of a batch's rows equal to float32 rounding)
    held, single = (np.array([fed[d][k] for k in sorted(fed[True])]) for d in (True, False))
    assert np.allclose(held, single, rtol=0, atol=1e-6 if signal == "log_loss" else 0)
    assert models[True].drifts_ == models[False].drifts_ and models[True].shifts_ == models[False].shifts_
    assert models[True].n_seen_ + len(models[True]._held_samples) == models[False].n_seen_ == n
    if not direct:
        assert pickle.dumps(models[True].classifier) == pickle.dumps(models[False].classifier)
    return models[True], set(range(n - len(models[True]._held_samples))) - set(fed[True])


@pytest.mark.parametrize("signal", ["error", "log_loss"])
def test_learn_one_scores_a_batch_at_the_step_as_sample_by_sample(signal):
    """``learn_one`` on a stream estimator scores its samples together when the classifier steps (or a label is
    new): the same losses, so the same detections, as scoring each before it is learnt (the answers only change at
    a step), through a new label, a new feature and a drift."""
    rng = np.random.default_rng(1)
    n = 1400
    rows = [{"a": float(a), "b": float(b), **({"c": float(c)} if k >= 150 else {})}
            for k, (a, b, c) in enumerate(rng.normal(size=(n, 3)))]
    labels = [2 if k >= 300 and r["b"] > 1.2 else int((r["a"] > 0) == (k < 700)) for k, r in enumerate(rows)]
    model, unscored = _held_and_single(rows, labels, signal)
    assert not unscored and (signal == "log_loss" or any(700 < d < 900 for d in model.drifts_))


@pytest.mark.parametrize("signal", ["error", "log_loss"])
def test_held_samples_of_any_accepted_kind_score_as_sample_by_sample(signal):
    """Values the classifier accepts but pandas would not make one float column of (a bool beside floats, a Fraction,
    an int beyond 2**63), names it would not make one column of (None, a tuple), features coming one by one past the
    quadratic companion's limit (the sample that brings one is scored before it changes the answers), and a
    detection inside the held samples (the forget changes the answers of those after it: scored anew)."""
    rng = np.random.default_rng(2)
    n = 900
    rows = []
    for k, (a, b) in enumerate(rng.normal(size=(n, 2))):
        row = {"a": float(a) if k % 5 else bool(a > 0), None: Fraction(k % 3, 2), ("t", 1): float(b),
               "big": 2**64 if k % 7 == 0 else 0}
        row.update({f"g{j}": float(a * j) for j in range(min(max(k - 200, 0) // 9, 20))})
        rows.append(row)
    labels = [int((float(r["a"]) > 0) == (k < 450)) for k, r in enumerate(rows)]
    model, unscored = _held_and_single(rows, labels, signal, batch_size=16)
    assert not unscored
    assert model.classifier._quadratic is None and model.classifier.n_features_in_ == 24
    assert model.shifts_ if signal == "log_loss" else [d % 16 for d in model.drifts_] == [2]  # (at a held sample)


def test_a_detection_before_the_first_step_forgets_nothing_and_the_detector_reads_on():
    """Before the classifier's first step there is nothing to forget: a detection is not a drift, and the samples
    after it are fed to the same detector, held or not (it detects again once the engine is built, and forgets)."""
    labels = [0] * 10 + [1] + [0] * 10 + [1] * 43 + [0, 1] * 32  # (the first step at the 64th sample)
    rows = [{"a": float(k % 3)} for k in range(len(labels))]
    model, unscored = _held_and_single(rows, labels, batch_size=64,
                                       detector=drift.PageHinkley(min_instances=5, threshold=2.0))
    assert not unscored and model.drifts_ and all(d > 64 for d in model.drifts_)


@pytest.mark.parametrize("call", ["flush", "new label", "new feature"])
def test_held_samples_whose_answers_a_direct_call_changed_count_as_seen_unscored(call):
    """A direct call on the classifier that changes its answers (a step, a new label, a new feature) leaves the held
    samples unscored: they count as seen, their inputs are recent, a boost counts them; the rest score as before."""
    rng = np.random.default_rng(3)
    rows = [{"a": float(a), "b": float(b)} for a, b in rng.normal(size=(300, 2))]
    labels = [int(r["a"] > 0) for r in rows]
    direct = {"flush": lambda c: c.flush(), "new label": lambda c: c.learn_one({"a": 0.0}, 2),
              "new feature": lambda c: c.learn_one({"a": 0.0, "c": 1.0}, 0)}[call]
    model, unscored = _held_and_single(rows, labels, signal="log_loss", direct={205: direct})
    assert unscored == set(range(200, 205))  # (held since the step at the 200th sample)
    model = DriftAware(AMClassifier(hidden_sizes=(8,), batch_size=8, seed=0))
    for x, y in zip(rows[:205], labels[:205], strict=True):
        model.learn_one(x, y)
    held = [r for r, _ in model._held_samples]
    direct(model.classifier)
    model.learn_one(rows[205], labels[205])
    assert len(held) == 5 and list(model._recent)[-5:] == held and model.n_seen_ == 205


def test_a_pickle_round_trip_during_a_boost_continues_the_same():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 2))
    y = [int((X[k, 0] > 0) == (k < 200)) for k in range(400)]
    a = DriftAware(AMClassifier(hidden_sizes=(8,), batch_size=8, seed=0), forget_factor=0.5,
                   detector=drift.PageHinkley(min_instances=10, threshold=3.0), boost_decay=0.3, boost_samples=40)
    for k in range(208):
        a.learn_one({"a": X[k, 0], "b": X[k, 1]}, y[k])
    assert a._saved_decay is not None and a.classifier.engine.memory_decay == 0.3  # (a boost is on)
    b = pickle.loads(pickle.dumps(a))
    assert b.classifier.engine.memory_decay == 0.3
    for model in (a, b):
        for k in range(208, 400):
            model.learn_one({"a": X[k, 0], "b": X[k, 1]}, y[k])
    assert a.drifts_ == b.drifts_ and len(a.drifts_) > 3 and a.n_seen_ == b.n_seen_
    grid = pd.DataFrame(X[:50], columns=["a", "b"])
    assert np.array_equal(a.predict_proba_many(grid).to_numpy(), b.predict_proba_many(grid).to_numpy())


class _Counting(Constant):
    """A constant classifier that counts the rows it is asked to score."""

    def __init__(self):
        super().__init__()
        self.rows = 0

    def predict_proba_many(self, X):
        self.rows += len(X)
        return super().predict_proba_many(X)


def test_a_large_batch_with_many_detections_is_scored_in_linear_time():
    """After a forget only the next :data:`~stream_am.drift.CHUNK` samples are scored anew, not all the batch's."""
    n = 4000
    model = DriftAware(_Counting(), detector=drift.PageHinkley(min_instances=5, threshold=1.0), forget_factor=0.5)
    model.learn_many(pd.DataFrame({"a": np.zeros(2)}), pd.Series([0, 1]))
    model.learn_many(pd.DataFrame({"a": np.zeros(n)}), pd.Series(np.arange(n) // 10 % 2))  # (ten 1s: errors)
    assert len(model.drifts_) > 100 and model.classifier.rows <= 2 + n + CHUNK * len(model.drifts_)
    assert model.classifier.rows < n * 30  # (scoring all the rest after each detection: about n * n / 20)


def test_the_constructor_names_a_wrong_classifier_or_detector():
    from stream_am import AMRegressor

    for kwargs, field in (({"classifier": None}, "classifier"), ({"classifier": AMRegressor()}, "classifier"),
                          ({"classifier": Constant(), "detector": "adwin"}, "detector"),
                          ({"classifier": Constant(), "detector": drift.binary.DDM(), "signal": "log_loss"},
                           "detector")):
        with pytest.raises(ValueError, match=f"^{field}"):
            DriftAware(**kwargs)
    assert DriftAware(Constant(), drift.binary.DDM()).detector is not None


@pytest.mark.parametrize("many", [False, True])
def test_a_step_the_classifier_cannot_run_is_refused_before_anything_changes(many):
    """An engine on a device this machine lacks is refused at the first step, which the wrapper foresees: a detection
    among the held samples before it commits nothing (there was nothing to forget)."""
    labels = [0] * 10 + [1] + [0] * 10 + [1] * 42
    model = DriftAware(AMClassifier(hidden_sizes=(4,), batch_size=64, device="cuda:99"),
                       detector=drift.PageHinkley(min_instances=5, threshold=2.0))
    for k, y in enumerate(labels):
        model.learn_one({"a": float(k % 3)}, y)
    assert model.classifier.n_buffered == 63 and model._held_samples
    before = pickle.dumps(model)
    with pytest.raises(ValueError, match="device"):
        if many:
            model.learn_many(pd.DataFrame({"a": [0.0, 1.0]}), pd.Series([1, 1]))
        else:
            model.learn_one({"a": 0.0}, 1)
    assert pickle.dumps(model) == before


class _Refusing(_Novel):
    def learn_many(self, X, y):
        raise ValueError("X refused")


def test_a_refusal_after_a_new_domain_detection_changes_nothing():
    """A detection taken for a new domain forgets nothing, so nothing is committed before the classifier accepts."""
    model = DriftAware(_Refusing(1e9), forget_factor=0.25)
    X, y = _stream()
    state = lambda: pickle.dumps({k: v for k, v in model.__dict__.items() if k != "classifier"})  # noqa: E731
    before = state()
    with pytest.raises(ValueError, match="refused"):
        model.learn_many(X, y)
    assert state() == before and len(model.classifier.read) == 1  # (asked at the detection)


def test_a_sample_whose_learning_changed_the_answers_is_not_held():
    """After a direct ``fit`` the classifier knows less than the wrapper: a sample the wrapper would hold brings it
    features, which change its answers; it counts as seen, unscored, and the next ones are held again."""
    model = DriftAware(AMClassifier(hidden_sizes=(4,), batch_size=8, seed=0))
    for k in range(20):
        model.learn_one({"a": float(k % 3), "b": 1.0}, k % 2)
    model.classifier.fit(np.zeros((8, 1)), [0, 1] * 4)  # (afresh: feature 0 only)
    model.learn_one({"a": 1.0, "b": 1.0}, 1)
    assert model._held_samples == [] and model.n_seen_ == 21
    model.learn_one({"a": 2.0, "b": 1.0}, 0)
    assert len(model._held_samples) == 1 and model.n_seen_ == 21


def test_samples_without_features_are_held_and_scored_as_sample_by_sample():
    """A sample with no feature (an empty dict) is one a classifier learns: before any feature, and among others."""
    rows = [{} for _ in range(40)] + [{"a": float(k % 2)} for k in range(80)] + [{} for _ in range(20)]
    labels = [k % 2 for k in range(len(rows))]
    model, unscored = _held_and_single(rows, labels)
    assert not unscored and model.classifier.n_features_in_ == 1
    model.learn_many(pd.DataFrame(index=range(3)), pd.Series([0, 1, 0]))
    model.learn_one({}, 1)



class _NoForget:
    memory_decay = 1e-3


class _NoDecay:
    def forget(self, factor):
        pass


class _Unforgetting(Constant):
    """A constant classifier whose engine is ``engine`` (one without ``forget``, or without ``memory_decay``)."""

    def __init__(self, engine):
        super().__init__()
        self.engine = engine


def test_a_classifier_it_cannot_make_forget_is_refused_before_it_learns():
    """Before, a backprop baseline (an engine without ``forget``) learnt until the first detection, which raised an
    AttributeError in the middle of the commit: the detection counted, the batch was not learnt."""
    from stream_am.baselines import BackpropClassifier

    with pytest.raises(ValueError, match="^classifier .*BackpropClassifier has no forget"):
        DriftAware(BackpropClassifier())
    X, y = _stream(n=40)
    for engine, kwargs, match in ((_NoForget(), {}, "forget"), (_NoDecay(), {"boost_decay": 0.5}, "memory_decay")):
        model = DriftAware(_Unforgetting(engine), **kwargs)
        before = pickle.dumps(model)
        with pytest.raises(TypeError, match=match):
            model.learn_many(X, y)
        with pytest.raises(TypeError, match=match):
            model.learn_one({"a": 0.0}, 0)
        assert pickle.dumps(model) == before and model.classifier.learnt == 0


@pytest.mark.parametrize("signal", [np.array(["error"]), np.array(["error", "log_loss"]), ["error"]])
def test_a_signal_that_is_not_one_string_is_refused_naming_it(signal):
    """An array compared elementwise: one of one entry was taken for its entry, one of two raised numpy's
    'truth value of an array is ambiguous' without naming the field."""
    with pytest.raises(ValueError, match="^signal must be one of"):
        DriftAware(Constant(), signal=signal)


@pytest.mark.parametrize("field, value", [("forget_factor", 2.0), ("boost_decay", 5.0), ("boost_samples", -3),
                                          ("signal", "loss"), ("domain_shift", "x"), ("detector", "adwin"),
                                          ("classifier", None)])
def test_a_parameter_set_invalid_after_construction_is_refused_before_anything_changes(field, value):
    """Before, such a value was used unchecked: a forget_factor of 2 or a boost_decay of 5 learnt until the first
    detection, which raised in the middle of the commit (the detection counted, the batch was not learnt); a
    signal of 'loss' was read as 'log_loss', a negative boost_samples as 0."""
    inner = Constant()
    model = DriftAware(inner, forget_factor=0.5, boost_decay=0.1)
    X, y = _stream()
    model.learn_many(X[:500], y[:500])
    setattr(model, field, value)
    before = pickle.dumps(model)
    with pytest.raises(ValueError, match=f"^{field}"):
        model.learn_many(X[500:], y[500:])
    with pytest.raises(ValueError, match=f"^{field}"):
        model.learn_one({"a": 0.0}, 1)
    assert pickle.dumps(model) == before and inner.learnt == 500
