"""Per-layer variants: explicit sequences, the refusals, and the cost model behind variant="auto"."""

import pytest
from helpers_engine import assert_continue_identically, assert_same_state, blobs, mlp, snapshot
from torch import nn

from stream_am import AMClassifier, OnlineAM
from stream_am.estimators import build_mlp
from stream_am.network import decompose
from stream_am.updaters import AdamUpdater, ClassMemoryUpdater
from stream_am.variants import backprop_cost, memory_extra_cost, resolve_variants, step_cost


def test_a_sequence_sets_each_layers_rule_and_the_state_keys():
    x, y = blobs(n=64)
    am = OnlineAM(mlp([4, 8, 8, 3]), variant=["adam", "mem"], seed=0)
    am.partial_fit(x, y)
    assert am.variants_ == ["adam", "mem"]
    assert [type(u) for u in am._updaters] == [AdamUpdater, ClassMemoryUpdater, ClassMemoryUpdater]  # the class clock
    keys = set(am.state_dict())
    assert {"adam.0.0.exp_avg", "adam.0.1.step", "memory.1.A", "memory.out.B"} <= keys
    assert not any(k.startswith(("memory.0.", "adam.1.", "adam.out.")) for k in keys)  # no empty twin rules
    assert am.state_dict()["variants"].tolist() == [1, 0]


@pytest.mark.parametrize(
    ("variant", "match"),
    [(["mem"], "variant has 1 entries"), (["mem", "sgd"], "variant must be"), ("memory", "variant must be"),
     (("mem", 1), "variant must be")],
)
def test_bad_variants_name_the_field(variant, match):
    with pytest.raises(ValueError, match=match):
        OnlineAM(mlp([4, 8, 8, 3]), variant=variant)
    with pytest.raises(ValueError, match="variant"):
        AMClassifier(hidden_sizes=(8, 8), variant=variant)


def test_memory_refused_by_name_where_it_cannot_fit_and_auto_takes_adam_there():
    def seq():
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.BatchNorm1d(8), nn.ReLU(),
                             nn.Linear(8, 3))

    with pytest.raises(ValueError, match="code layer 1.*BatchNorm1d"):
        OnlineAM(seq(), variant=["mem", "mem"])
    x, y = blobs(n=64)
    am = OnlineAM(seq(), variant="auto", seed=0)
    am.partial_fit(x, y)
    assert am.variants_ == ["adam", "adam"]  # the top layer cannot take a memory: the search ends there
    mixed = OnlineAM(seq(), variant=["mem", "auto"], seed=0)
    mixed.partial_fit(x, y)
    assert mixed.variants_ == ["mem", "adam"]


def _net(widths):
    return decompose(build_mlp(widths[0], widths[-1], tuple(widths[1:-1]), seed=0))


def test_auto_puts_memories_on_top_and_adam_where_a_memory_costs_too_much():
    assert resolve_variants("auto", _net([10, 64, 2]), 32, 1) == (["mem"], 1)  # narrow input: a cheap memory
    assert resolve_variants("auto", _net([784, 64, 10]), 32, 1) == (["adam"], 1)  # 785 x 785 memory: too costly
    deep, every = resolve_variants("auto", _net([784, *[256] * 10, 10]), 128, None)
    assert deep[0] == "adam" and "mem" in deep and every == 1  # the top memory fits at every step
    assert deep == sorted(deep)  # "adam" < "mem": every memory sits above every Adam layer
    # the cost grows with the input width faster than the backprop step, and solving less often is cheaper
    layer, wide = nn.Linear(64, 64), nn.Linear(784, 64)
    assert memory_extra_cost(wide, 32) / backprop_cost(wide, 32) > memory_extra_cost(layer, 32) / backprop_cost(
        layer, 32)
    assert memory_extra_cost(wide, 32, solve_every=4) < memory_extra_cost(wide, 32)


def test_auto_spaces_the_solves_only_where_the_top_memory_needs_it_and_never_overrides_a_given_cadence():
    digits, narrow = _net([64, 256, 256, 10]), _net([64, 64, 64, 10])
    assert resolve_variants("auto", digits, 32, None) == (["mem", "mem"], 2)
    assert resolve_variants("auto", narrow, 32, None) == (["mem", "mem"], 1)  # narrow: memories every step
    assert resolve_variants("auto", _net([18, 64, 64, 10]), 32, None) == (["mem", "mem"], 1)
    assert resolve_variants("auto", _net([784, 64, 10]), 32, None) == (["adam"], 1)  # no memory pays there
    assert resolve_variants("auto", digits, 32, 1) == (["adam", "adam"], 1)  # a given cadence is kept
    assert resolve_variants("auto", digits, 32, 4) == (["mem", "mem"], 4)
    for explicit in ("mem", ["adam", "mem"], ["adam", "adam"]):  # nothing to decide: every step, as before
        assert resolve_variants(explicit, digits, 32, None) == (list(resolve_variants(explicit, digits, 32, 1)[0]), 1)
    # the cadence reaches the readout's memory as well, and the model sees it
    assert step_cost(digits, ["adam", "adam"], 32, 2) < step_cost(digits, ["adam", "adam"], 32, 1)
    assert step_cost(digits, ["adam", "adam"], 32, 2, readout="adam") == step_cost(
        digits, ["adam", "adam"], 32, 1, readout="adam")


def test_auto_prices_the_class_clock_where_the_memories_keep_classes_apart():
    digits, narrow = _net([64, 256, 256, 10]), _net([64, 64, 64, 10])
    for net, variants in ((digits, ["mem", "adam"]), (narrow, ["adam", "mem"]), (_net([10, 64, 2]), ["mem"])):
        assert step_cost(net, variants, 32, 1, class_clock=True) > step_cost(net, variants, 32, 1)
    # no memory anywhere (an Adam readout): the clock has nothing to age and costs nothing
    assert step_cost(narrow, ["adam", "adam"], 32, 1, "adam", class_clock=True) == step_cost(
        narrow, ["adam", "adam"], 32, 1, "adam")
    # what auto chooses with class-clocked memories (the learner's default for classification)
    # every layer's memory solved every second step rather than an Adam layer under a memory at every step
    # (an Adam hidden layer forgets what the class clock keeps); not where every step already has them all
    assert resolve_variants("auto", narrow, 32, None, class_clock=True) == (["mem", "mem"], 2)
    assert resolve_variants("auto", narrow, 32, None) == (["mem", "mem"], 1)
    assert resolve_variants("auto", _net([784, 64, 64, 10]), 32, None, class_clock=True) == (["adam", "mem"], 1)
    # only when *every* code layer gets its memory: never a memory under a fixed Adam layer
    assert resolve_variants(["auto", "adam"], narrow, 64, None, "adam") == (["adam", "adam"], 1)
    assert resolve_variants(["adam", "auto"], narrow, 32, None, class_clock=True) == (["adam", "mem"], 1)
    assert resolve_variants("auto", digits, 32, None, class_clock=True) == (["mem", "mem"], 2)
    assert resolve_variants("auto", _net([10, 64, 2]), 32, None, class_clock=True) == (["mem"], 1)
    # a class-clocked pass multiplies the rows again (CLASS_RATE near the fold's): the b128 network spaces its
    # solves to keep its top memory, and the widest one spaces its readout's
    assert resolve_variants("auto", _net([784, 256, 256, 10]), 128, None, class_clock=True) == (["adam", "mem"], 2)
    assert resolve_variants("auto", _net([784, 1024, 1024, 10]), 256, None, class_clock=True) == (
        ["adam", "adam"], 2)
    # the learner asks for the class clock's price exactly when its memories keep classes apart
    x, y = blobs(n=32, d=64, k=10)
    for clock, every in (("class", 2), ("sample", 1)):
        am = OnlineAM(mlp([64, 64, 64, 10]), memory_clock=clock, seed=0)
        am.partial_fit(x, y)
        assert am.variants_ == ["mem", "mem"] and am.solve_every_ == every


def test_the_chosen_cadence_is_saved_and_a_restored_learner_solves_on_the_same_steps():
    x, y = blobs(n=32 * 7, d=64, k=10)
    a = OnlineAM(mlp([64, 256, 256, 10]), seed=0)  # variant="auto", solve_every=None: the defaults
    for i in range(0, 96, 32):  # three steps: the next one does not solve
        a.partial_fit(x[i : i + 32], y[i : i + 32])
    assert (a.variants_, a.solve_every_, a.solve_every) == (["mem", "mem"], 2, None)
    assert [u.solve_every for u in a._updaters] == [2, 2, 2]
    state = snapshot(a)
    assert int(state["solve_every"]) == 2
    b = OnlineAM(mlp([64, 256, 256, 10], seed=3), seed=1)
    b.load_state_dict(state)
    assert b.solve_every_ == 2
    assert_continue_identically(a, b, x, y, 96, 32)
    c = OnlineAM(mlp([64, 256, 256, 10]), solve_every=1, seed=0)  # a given cadence is never overridden
    with pytest.raises(ValueError, match="solve_every=2, but this learner's solve_every is 1"):
        c.load_state_dict(state)
    assert c.state_dict() == {}
    given = OnlineAM(mlp([64, 256, 256, 10]), solve_every=1, seed=0)
    given.partial_fit(x[:32], y[:32])
    assert given.solve_every_ == 1 and int(given.state_dict()["solve_every"]) == 1
    for bad in (0, 1.5, "2"):  # None is "decide"; anything else must be an int >= 1
        with pytest.raises(ValueError, match="solve_every"):
            OnlineAM(mlp([4, 8, 3]), solve_every=bad)
        with pytest.raises(ValueError, match="solve_every"):
            AMClassifier(solve_every=bad)


def test_estimator_learn_one_equals_learn_many_and_a_loaded_model_keeps_the_cadence(tmp_path):
    import pandas as pd

    x, y = blobs(n=32 * 4 + 5, d=64, k=10)
    rows = [({f"f{j}": float(v) for j, v in enumerate(r)}, int(t)) for r, t in zip(x.tolist(), y, strict=True)]
    one = AMClassifier(hidden_sizes=(256, 256), seed=0)
    many = AMClassifier(hidden_sizes=(256, 256), seed=0)
    for xi, yi in rows[:100]:
        one.learn_one(xi, yi)
    many.learn_many(pd.DataFrame([r for r, _ in rows[:100]]), pd.Series([t for _, t in rows[:100]]))
    assert one.engine is not None and many.engine is not None
    assert one.engine.solve_every_ == many.engine.solve_every_ == 2
    assert_same_state(snapshot(one.engine), snapshot(many.engine))
    one.save(tmp_path / "m")
    loaded = AMClassifier.load(tmp_path / "m")
    assert loaded.solve_every is None and loaded.engine is not None and loaded.engine.solve_every_ == 2
    for xi, yi in rows[100:]:
        one.learn_one(xi, yi)
        loaded.learn_one(xi, yi)
    assert_same_state(snapshot(one.engine), snapshot(loaded.engine))


def test_auto_decides_once_and_a_restored_learner_keeps_the_decision():
    x, y = blobs(n=256)
    a = OnlineAM(mlp([4, 8, 8, 3]), variant="auto", seed=0)
    a.partial_fit(x[:32], y[:32])
    chosen = a.variants_
    a.partial_fit(x[32:33], y[32:33])  # a batch of one would cost differently: nothing is re-decided
    assert a.variants_ == chosen
    b = OnlineAM(mlp([4, 8, 8, 3], seed=3), variant="auto", seed=1)
    b.load_state_dict(snapshot(a))
    assert b.variants_ == chosen
    assert_continue_identically(a, b, x, y, 64, 64)


def test_a_state_of_other_variants_is_refused_before_anything_changes():
    x, y = blobs(n=64)
    a = OnlineAM(mlp([4, 8, 8, 3]), variant=["adam", "mem"], seed=0)
    a.partial_fit(x, y)
    b = OnlineAM(mlp([4, 8, 8, 3]), variant="mem", seed=0)
    with pytest.raises(ValueError, match="code layer 0"):
        b.load_state_dict(snapshot(a))
    assert b.state_dict() == {}
    c = OnlineAM(mlp([4, 8, 8, 3]), variant="mem", seed=0)
    c.partial_fit(x, y)
    before = snapshot(c)
    with pytest.raises(ValueError, match="variant"):
        c.load_state_dict(snapshot(a))
    assert_same_state(before, snapshot(c))


def test_estimator_with_a_per_layer_variant_saves_and_loads(tmp_path):
    rows = [({"a": float(i % 3), "b": float(i % 5)}, i % 2) for i in range(40)]
    model = AMClassifier(hidden_sizes=(6, 6), variant=("adam", "mem"), batch_size=8, seed=0)
    for x, y in rows:
        model.learn_one(x, y)
    model.save(tmp_path / "m")
    loaded = AMClassifier.load(tmp_path / "m")
    assert loaded.engine is not None and loaded.engine.variants_ == ["adam", "mem"]
    assert [loaded.predict_proba_one(x) for x, _ in rows] == [model.predict_proba_one(x) for x, _ in rows]


def test_a_bad_first_batch_builds_nothing_and_decides_nothing():
    x, y = blobs(n=32)
    am = OnlineAM(mlp([4, 8, 3]), variant="auto", seed=0)
    with pytest.raises(ValueError, match="outside"):
        am.partial_fit(x, y + 10)
    assert am.state_dict() == {} and am.variants_ == []
    am.partial_fit(x, y)
    assert am.variants_ == ["mem"]
