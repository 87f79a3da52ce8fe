"""Inputs in new coordinates: memories re-expressed exactly, the network's function kept, and the estimators'
standardisation refreshed on a schedule (``stream_am.updaters.coordinates``, ``stream_am.estimators.frame``)."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from stream_am import AMClassifier, OnlineAM
from stream_am.estimators import build_mlp, frame
from stream_am.updaters import ClassMemoryUpdater, MemoryUpdater
from stream_am.updaters.class_memory import FLUSH_ROWS


def _memories(kind: str, d: int = 4, k: int = 3):
    """Two memories of the same kind on two identical float64 layers."""
    torch.manual_seed(0)
    layers = [nn.Linear(d, k).double() for _ in range(2)]
    layers[1].load_state_dict(layers[0].state_dict())
    make = {"plain": MemoryUpdater, "class": ClassMemoryUpdater}[kind]
    return [make(layer, 0.01, 1e-2) for layer in layers]


@pytest.mark.parametrize("kind", ["plain", "class"])
@pytest.mark.parametrize("batches", [3, FLUSH_ROWS // 16 + 5])  # rows waiting for a pass; and after a pass
def test_a_memory_reexpressed_holds_the_sums_of_the_reexpressed_rows(kind, batches):
    g = torch.Generator().manual_seed(1)
    scale = torch.rand(4, generator=g, dtype=torch.float64) + 0.5
    shift = torch.randn(4, generator=g, dtype=torch.float64)
    old, new = _memories(kind)
    for _ in range(batches):
        a = torch.randn(16, 4, generator=g, dtype=torch.float64) * 3 + 1
        y = torch.randint(0, 3, (16,), generator=g)
        c, labels = torch.randn(16, 3, generator=g, dtype=torch.float64), F.one_hot(y, 3).double()
        old.fit(a, c, 16, labels=labels if kind == "class" else None)
        new.fit(a * scale + shift, c, 16, labels=labels if kind == "class" else None)  # fed the new coordinates
    old.reexpress_inputs(scale, shift)
    assert old.A is not None and new.A is not None and old.B is not None and new.B is not None
    torch.testing.assert_close(old.A, new.A)
    torch.testing.assert_close(old.B, new.B)
    if kind == "class":
        assert isinstance(old, ClassMemoryUpdater) and isinstance(new, ClassMemoryUpdater)
        assert len(old._pending) == len(new._pending) == (16 * batches) % FLUSH_ROWS
        assert old.Mc is not None and new.Mc is not None
        torch.testing.assert_close(old.Mc, new.Mc)  # every class's sums, the waiting rows included


@pytest.mark.parametrize("clock", ["class", "sample"])
@pytest.mark.parametrize("variant", ["mem", "adam"])
def test_reexpressing_the_inputs_keeps_the_network_function(clock, variant):
    g = torch.Generator().manual_seed(0)
    am = OnlineAM(build_mlp(6, 3, (8,), seed=0), variant=variant, memory_clock=clock)
    for i in range(12):
        x = torch.randn(32 if i % 3 else 7, 6, generator=g)
        am.partial_fit(x, torch.randint(0, 3, (x.shape[0],), generator=g))
    x = torch.randn(50, 6, generator=g)
    before = am.predict(x)
    scale = torch.rand(6, generator=g, dtype=torch.float64) + 0.5
    shift = torch.randn(6, generator=g, dtype=torch.float64)
    am.reexpress_inputs(scale, shift)
    torch.testing.assert_close(am.predict((x.double() * scale + shift).float()), before, rtol=1e-4, atol=1e-5)
    stats = am.partial_fit((x.double() * scale + shift).float(), torch.randint(0, 3, (50,), generator=g))
    assert np.isfinite(stats["loss"])


@pytest.mark.parametrize(
    ("scale", "shift", "match"),
    [
        (torch.ones(5, dtype=torch.float64), torch.zeros(6, dtype=torch.float64), r"scale must be .* shape \(6,\)"),
        (torch.ones(6), torch.zeros(6, dtype=torch.int64), "shift must be a floating-point"),
        ([1.0] * 6, torch.zeros(6), "scale must be a floating-point tensor"),
        (torch.full((6,), float("nan")), torch.zeros(6), "scale must be finite"),
        (torch.ones(6), torch.full((6,), float("inf")), "shift must be finite"),
        (torch.zeros(6), torch.zeros(6), "scale must be > 0"),
    ],
)
def test_bad_coordinates_are_refused_and_change_nothing(scale, shift, match):
    am = OnlineAM(build_mlp(6, 3, (8,), seed=0))
    am.partial_fit(torch.randn(32, 6), torch.randint(0, 3, (32,)))
    before = {k: v.clone() for k, v in am.state_dict().items()}
    with pytest.raises(ValueError, match=match):
        am.reexpress_inputs(scale, shift)
    after = am.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_a_first_layer_without_bias_takes_only_a_scale():
    am = OnlineAM(nn.Sequential(nn.Linear(4, 5, bias=False), nn.ReLU(), nn.Linear(5, 2)))
    am.partial_fit(torch.randn(16, 4), torch.randint(0, 2, (16,)))
    with pytest.raises(ValueError, match="shift must be 0"):
        am.reexpress_inputs(torch.ones(4), torch.ones(4))
    x = torch.randn(8, 4)
    before = am.predict(x)
    am.reexpress_inputs(torch.full((4,), 2.0), torch.zeros(4))
    torch.testing.assert_close(am.predict(2.0 * x), before)


def _class_incremental(seed: int = 0) -> pd.DataFrame:
    """Two tasks of two classes; the second moves the mean and spread of the second feature far away."""
    rng = np.random.default_rng(seed)
    parts = []
    for task, (lo, hi) in enumerate([(0, 1), (2, 3)]):
        for label in (lo, hi):
            x0 = rng.normal(2.0 * label - 3.0, 0.4, 400)
            x1 = rng.normal(0.0, 1.0, 400) if task == 0 else rng.normal(30.0, 8.0, 400)
            parts.append(pd.DataFrame({"x0": x0, "x1": x1, "y": label}))
        rows = pd.concat(parts[-2:]).sample(frac=1.0, random_state=seed)
        parts[-2:] = [rows]
    return pd.concat(parts, ignore_index=True)


def test_a_refreshed_frame_keeps_the_first_task_where_moments_applied_as_they_move_lose_it(monkeypatch):
    data = _class_incremental()
    first = data[data.y < 2]
    first_x = first[["x0", "x1"]].copy()
    first_x["x1"] = np.random.default_rng(1).normal(0.0, 1.0, len(first))

    def final_accuracy_on_the_first_task() -> float:
        model = AMClassifier(hidden_sizes=(16,), seed=0)
        for i in range(0, len(data), 32):
            part = data.iloc[i : i + 32]
            model.learn_many(part[["x0", "x1"]], part.y)
        return float((model.predict_many(first_x).to_numpy() == first.y.to_numpy()).mean())

    refreshed = final_accuracy_on_the_first_task()
    monkeypatch.setattr("stream_am.estimators.base.frame_for", lambda engine, start: frame.InputFrame(
        start.mean, start.scale, start.new))  # the moments of every step, no re-expression
    moving = final_accuracy_on_the_first_task()
    assert refreshed > 0.9 and refreshed > moving + 0.1, (refreshed, moving)


def test_the_frame_refreshes_every_early_step_then_on_its_schedule_and_after_new_features(monkeypatch):
    calls = []
    original = OnlineAM.reexpress_inputs
    monkeypatch.setattr(OnlineAM, "reexpress_inputs", lambda self, scale, shift, **kw: (
        calls.append(self.n_steps), original(self, scale, shift, **kw)))
    model = AMClassifier(hidden_sizes=(4,), batch_size=2, seed=0, companion=False)  # (its own calls)
    rng = np.random.default_rng(0)
    late = frame.EARLY + frame.EVERY + 5  # steps completed when a feature appears
    for i in range(2 * (frame.EARLY + 2 * frame.EVERY) + 2):
        x = {"a": float(rng.normal()), "b": float(rng.normal())}
        if i >= 2 * late:
            x["c"] = float(rng.normal())
        model.learn_one(x, int(i % 2))
    every = [frame.EARLY + k * frame.EVERY for k in range(3)]
    assert calls == [*range(1, frame.EARLY), *every[:2], late, every[2]]
    assert model._frame is not None and model._frame.mean.shape == (3,) and model._frame.new == 0


def test_the_frame_is_saved_and_restored_and_an_older_state_takes_the_moments(tmp_path):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(5.0, 2.0, (200, 3)), columns=["a", "b", "c"])
    y = pd.Series((X.a > 5).astype(int))
    model = AMClassifier(hidden_sizes=(8,), seed=0)
    model.learn_many(X.iloc[:170], y.iloc[:170])  # 5 steps and 10 samples waiting
    model.learn_many(X.iloc[170:], y.iloc[170:])  # the moments move past the frame of the last step
    loaded = AMClassifier.load(model.save(tmp_path / "m"))
    assert loaded._frame is not None and model._frame is not None
    for k in ("mean", "scale", "gain"):
        assert np.array_equal(getattr(loaded._frame, k), getattr(model._frame, k))
    assert np.array_equal(model.predict_proba_many(X).to_numpy(), loaded.predict_proba_many(X).to_numpy())
    meta, arrays = model._payload()
    del arrays["frame.gain"]  # as saved before gains were: none applied yet
    before_gains = AMClassifier(hidden_sizes=(8,), seed=0)
    before_gains._restore(meta, arrays)
    assert before_gains._frame is not None and np.array_equal(before_gains._frame.gain, np.ones(3))
    for k in ("mean", "scale"):  # as saved before frames were
        del arrays[f"frame.{k}"]
    older = AMClassifier(hidden_sizes=(8,), seed=0)
    older._restore(meta, arrays)
    assert older._frame is not None and np.array_equal(older._frame.mean, model._moments.mean_scale()[0])



@pytest.mark.parametrize(("params", "kind"), [
    ({}, frame.ReexpressedFrame),  # "auto" takes a memory on 3 inputs
    ({"variant": "adam"}, frame.InputFrame),
    ({"variant": ("adam", "mem"), "hidden_sizes": (4, 4)}, frame.InputFrame),
    ({"variant": ("mem", "adam"), "hidden_sizes": (4, 4)}, frame.ReexpressedFrame),
    ({"standardize": False}, type(None)),
])
def test_a_memory_first_layer_is_re_expressed_and_an_adam_one_restandardised(params, kind, tmp_path):
    model = AMClassifier(**{"hidden_sizes": (4,), "seed": 0, **params})
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(64, 3)), columns=["a", "b", "c"])
    model.learn_many(X, pd.Series(np.arange(64) % 2))
    assert type(model._frame) is kind
    if model._frame is not None:  # a re-expressed frame waits for its schedule; the other refreshes every step
        assert model._frame.due(frame.EARLY + 1, np.zeros((1, 3))) == (kind is frame.InputFrame)
    assert type(AMClassifier.load(model.save(tmp_path / "m"))._frame) is kind


def _recorded(monkeypatch) -> list:
    calls: list = []
    original = OnlineAM.reexpress_inputs
    monkeypatch.setattr(OnlineAM, "reexpress_inputs", lambda self, scale, shift, **kw: (
        calls.append((self.n_steps, scale.clone(), shift.clone())), original(self, scale, shift, **kw)))
    return calls


def test_a_feature_added_late_is_not_re_expressed_at_its_first_refresh(monkeypatch):
    calls = _recorded(monkeypatch)
    model = AMClassifier(hidden_sizes=(4,), batch_size=4, seed=0, companion=False)  # (its own calls)
    rng = np.random.default_rng(0)
    for i in range(4 * 40):  # past the early refreshes, between two periodic ones
        model.learn_one({"a": float(rng.normal())}, i % 2)
    calls.clear()
    for i in range(8):  # then "b" arrives, around 50
        model.learn_one({"a": float(rng.normal()), "b": float(rng.normal(50.0, 10.0))}, i % 2)
    assert [c[0] for c in calls] == [40]  # refreshed before the step that brings it, and only then
    _, scale, shift = calls[0]
    assert scale[1] == 1.0 and shift[1] == 0.0  # the earlier rows had no value for it: they stay at its mean, 0
    assert scale[0] != 1.0 and model._frame is not None and model._frame.new == 0


def test_max_gain_bounds_how_much_a_weight_grows_and_keeps_the_function_elsewhere():
    am = OnlineAM(build_mlp(3, 2, (4,), seed=0))
    am.partial_fit(torch.randn(32, 3), torch.randint(0, 2, (32,)))
    w = am.module[0].weight.detach().clone()
    x = torch.randn(20, 3)
    x[:, 0] = 0.0  # rows without feature 0 (the one whose gain is clipped): their outputs stay the same
    before = am.predict(x)
    scale = torch.tensor([1e-6, 0.5, 2.0], dtype=torch.float64)  # feature 0's spread jumped a millionfold
    for bad in (0.5, float("nan"), "10"):
        with pytest.raises(ValueError, match="max_gain"):
            am.reexpress_inputs(scale, torch.zeros(3, dtype=torch.float64), max_gain=bad)
    assert torch.equal(am.module[0].weight, w)  # refused: nothing changed
    am.reexpress_inputs(scale, torch.zeros(3, dtype=torch.float64), max_gain=10.0)
    torch.testing.assert_close(am.module[0].weight, w * torch.tensor([10.0, 2.0, 0.5]))
    torch.testing.assert_close(am.predict(x * scale.float()), before)


def test_an_outlier_far_outside_the_frame_refreshes_it_before_the_step(monkeypatch):
    calls = _recorded(monkeypatch)
    model = AMClassifier(hidden_sizes=(8,), batch_size=1, seed=0, companion=False)  # (its own calls)
    rng = np.random.default_rng(0)
    for i in range(40):
        model.learn_one({"x": float(rng.normal())}, i % 2)
    calls.clear()
    model.learn_one({"x": 1e12}, 0)  # 1e12 scales from the frame's mean: the step would see an input of 1e12
    model.learn_one({"x": 0.1}, 1)
    assert [c[0] for c in calls] == [40] and model.n_buffered == 0 and model.n_steps == 42
    assert all(np.isfinite(p) for p in model.predict_proba_one({"x": 0.5}).values())


def test_a_late_feature_of_huge_constant_value_keeps_the_memory_finite(tmp_path):
    import copy

    model = AMClassifier(hidden_sizes=(8,), batch_size=4, seed=0)
    rng = np.random.default_rng(0)
    for i in range(4 * 80):
        x = {"a": float(rng.normal())} if i < 4 * 40 else {"a": float(rng.normal()), "b": 1e19}
        model.learn_one(x, i % 2)
    state = model.engine.state_dict()
    assert all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())
    restored = AMClassifier.load(copy.deepcopy(model).save(tmp_path / "m"))
    assert restored.predict_proba_one({"a": 0.0, "b": 1e19}) == model.predict_proba_one({"a": 0.0, "b": 1e19})


@pytest.mark.parametrize("big", [1e12, 1e20])
def test_learning_goes_on_finite_after_outliers_that_inflate_a_scale(big, tmp_path):
    import copy

    model = AMClassifier(hidden_sizes=(16,), batch_size=1, seed=0)
    rng = np.random.default_rng(0)
    rows = [rng.normal(size=2) for _ in range(440)]
    for i, x in enumerate(rows):
        if i == 40:
            model.learn_one({"x": big, "z": 0.0}, 1)
            model.learn_one({"x": -big, "z": 0.0}, 0)
        model.learn_one({"x": float(x[0]), "z": float(x[1])}, int(x.sum() > 0))
    state = model.engine.state_dict()
    assert all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())
    assert float(model.engine.module[0].weight.detach().abs().max()) < 1e4  # (the first version: 1e19)
    restored = AMClassifier.load(copy.deepcopy(model).save(tmp_path / "m"))
    assert restored.predict_proba_one({"x": 0.3, "z": -0.2}) == model.predict_proba_one({"x": 0.3, "z": -0.2})


def test_a_feature_whose_scale_grows_over_19_decades_keeps_the_model_finite(tmp_path):
    import copy

    model = AMClassifier(hidden_sizes=(8,), batch_size=2, seed=0)  # (before origins: memory.out.A overflowed)
    for t, v in enumerate(np.logspace(0, 19, 4000)):
        model.learn_one({"x": float(v)}, t % 2)
    state = model.engine.state_dict()
    assert all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())
    assert float(model.engine.module[0].weight.detach().abs().max()) < 1e9  # (before: 7e17, following x)
    assert model._frame is not None and model._frame.gain[0] == pytest.approx(frame.REACH**-1)  # all it may
    restored = AMClassifier.load(copy.deepcopy(model).save(tmp_path / "m"))
    assert restored.predict_proba_one({"x": 1e19}) == model.predict_proba_one({"x": 1e19})


def test_no_feature_s_rows_are_scaled_by_more_than_the_reach_in_all():
    class Recorder:
        def reexpress_inputs(self, scale, shift, max_gain=None):
            self.scale, self.shift = scale.numpy(), shift.numpy()

    class Moments:
        def mean_scale(self):
            return np.array([1.0, 1.0, 1.0]), np.array([2.0, 2.0e4, 1e-4])

    engine = Recorder()
    f = frame.ReexpressedFrame(np.zeros(3), np.ones(3), gain=np.array([1.0, 0.1, 1.0]))
    f.refresh(Moments(), engine)
    np.testing.assert_allclose(engine.scale, [0.5, 1e-2, 1e3])  # 2x: exact; 2e4x after 0.1: to 1e-3 in all
    np.testing.assert_allclose(engine.shift, [-0.5, -5e-5, -1e4])  # the shifts stay exact
    np.testing.assert_allclose(f.gain, [0.5, 1e-3, 1e3])


@pytest.mark.parametrize("change", ["scale", "shift"])
def test_a_change_that_would_overflow_the_sums_is_refused_and_changes_nothing(change):
    """helper-57's review: a scale or shift of 1e30 was taken, and the memory's sums became inf (a state no
    load accepts)."""
    engine = OnlineAM(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), seed=0)
    engine.partial_fit(torch.randn(5, 3, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 0, 1, 1]))
    before = {k: v.clone() for k, v in engine.state_dict().items()}
    big, unit = torch.full((3,), 1e30), torch.ones(3)
    with pytest.raises(ValueError, match="^scale and shift would take"):
        engine.reexpress_inputs(big if change == "scale" else unit, torch.zeros(3) if change == "scale" else big)
    assert all(torch.equal(before[k], v) for k, v in engine.state_dict().items())
