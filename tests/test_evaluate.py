"""Prequential evaluation, continual metrics and drift recovery (stream_am.evaluate)."""

import numpy as np
import pytest
from river import base, datasets, linear_model, naive_bayes

from stream_am.evaluate import Prequential, accuracy_on, continual_metrics, drift_recovery, rolling_accuracy


class LastLabel(base.Classifier):
    """Predicts the last label it learnt; records the order of calls."""

    def __init__(self):
        self.label = None
        self.calls = []

    def learn_one(self, x, y):
        self.calls.append(("learn", x["i"]))
        self.label = y

    def predict_one(self, x):
        self.calls.append(("predict", x["i"]))
        return self.label


def test_prequential_tests_then_trains_each_batch():
    model = LastLabel()
    stream = [({"i": i}, y) for i, y in enumerate([0, 0, 1, 1, 1, 0])]
    res = Prequential(model, batch_size=2).run(stream).result()
    # batch [0, 0]: nothing learnt yet; [1, 1]: last label 0; [1, 0]: last label 1
    assert res.correct.tolist() == [False, False, False, False, True, False]
    assert res.metrics["accuracy"] == pytest.approx(1 / 6)
    assert model.calls[:4] == [("predict", 0), ("predict", 1), ("learn", 0), ("learn", 1)]


def test_prequential_uses_learn_many_and_continues_across_runs():
    model = linear_model.LogisticRegression()
    ev = Prequential(model, batch_size=16)
    stream = [({"a": float(i % 2)}, i % 2 == 1) for i in range(64)]
    ev.run(stream[:32])
    ev.mark()
    res = ev.run(stream[32:]).result()
    assert res.n_samples == 64 and res.marks == [32]
    assert res.correct[32:].all()
    steps, acc = res.curve(window=8, n_points=4)
    assert steps.tolist() == [1, 22, 43, 64] and acc[-1] == 1.0


def test_prequential_stops_after_n_and_rejects_bad_batch():
    res = Prequential(LastLabel(), batch_size=3).run(iter([({"i": i}, 0) for i in range(100)]), n=10).result()
    assert res.n_samples == 10
    with pytest.raises(ValueError, match="batch_size"):
        Prequential(LastLabel(), batch_size=0)


def test_accuracy_on_does_not_learn():
    model = LastLabel()
    model.learn_one({"i": 0}, 1)
    assert accuracy_on(model, [{"i": 1}, {"i": 2}], [1, 0]) == 0.5
    assert model.label == 1 and all(c[0] == "predict" for c in model.calls[1:])
    with pytest.raises(ValueError, match="same length"):
        accuracy_on(model, [{"i": 1}], [1, 0])


def test_rolling_accuracy():
    assert rolling_accuracy(np.array([0, 1, 1, 1]), 3).tolist() == pytest.approx([0, 0.5, 2 / 3, 1])
    with pytest.raises(ValueError, match="window"):
        rolling_accuracy(np.ones(3), 0)


def test_continual_metrics_by_hand():
    R = np.array([[0.9, 0.0, 0.1], [0.6, 0.8, 0.2], [0.3, 0.7, 0.9]])
    m = continual_metrics(R, baseline=np.array([0.1, 0.1, 0.1]))
    assert m["final_avg_acc"] == pytest.approx((0.3 + 0.7 + 0.9) / 3)
    assert m["forgetting"] == pytest.approx(((0.9 - 0.3) + (0.8 - 0.7)) / 2)
    assert m["bwt"] == pytest.approx(((0.3 - 0.9) + (0.7 - 0.8)) / 2)
    assert m["fwt"] == pytest.approx(((0.0 - 0.1) + (0.2 - 0.1)) / 2)
    assert continual_metrics(np.array([[0.5]])) == {"final_avg_acc": 0.5, "forgetting": 0.0, "bwt": 0.0,
                                                   "fwt": 0.0}
    with pytest.raises(ValueError, match="square"):
        continual_metrics(np.zeros((2, 3)))


def test_drift_recovery_fast_and_slow():
    pre = [1] * 100
    fast = np.array(pre + [0] * 20 + [1] * 180)
    slow = np.array(pre + [0] * 100 + [1] * 100)
    rf, rs = drift_recovery(fast, [100], window=20, tol=0.0)[0], drift_recovery(slow, [100], window=20, tol=0.0)[0]
    assert rf.pre_acc == rs.pre_acc == 1.0 and rf.drop == rs.drop == 1.0
    assert rf.recovery == 40 and rs.recovery == 120
    unaffected = drift_recovery(np.ones(300), [100], window=20)[0]
    assert unaffected.drop == 0.0 and unaffected.recovery == 20


def test_drift_recovery_harder_concept_and_several_points():
    # the second concept tops out at 0.8: recovery is measured against that level, not the old 1.0
    seg2 = ([0] * 40 + ([1] * 4 + [0]) * 12)[:100]
    correct = np.array([1] * 100 + seg2 + [1] * 100)
    r1, r2 = drift_recovery(correct, [100, 200], window=20, tol=0.0)
    assert r1.pre_acc == 1.0 and r1.recovery < 100 and r1.drop == 1.0
    assert r2.point == 200
    with pytest.raises(ValueError, match="needs"):
        drift_recovery(correct, [10], window=20)


def test_a_model_whose_predict_many_answers_nothing_before_learning_is_asked_row_by_row():
    """river's GaussianNB answers an empty frame before it has learned: the first batch failed in a zip."""
    result = Prequential(naive_bayes.GaussianNB(), batch_size=32).run(datasets.Phishing(), n=200).result()
    assert len(result.correct) == 200 and 0.0 <= result.metrics["accuracy"] <= 1.0
