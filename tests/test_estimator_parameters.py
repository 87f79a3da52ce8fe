"""A stream estimator's parameters set as attributes: checked before it learns, refused after (parameters.py)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stream_am import AMClassifier, AMRegressor
from stream_am.baselines import BackpropClassifier

ROWS = [{"a": float(v), "b": float(w)} for v, w in np.random.default_rng(0).normal(size=(40, 2))]
NEW = {"hidden_sizes": (8,), "activation": "tanh", "variant": "adam", "readout": "adam", "batch_size": 4,
       "standardize": False, "mu": 1.0, "code_steps": 2, "memory_decay": 0.0, "memory_clock": "sample",
       "ridge": 5.0, "solve_every": 3, "companion": False, "device": "auto", "seed": 3}


def _learned(cls=AMClassifier, **kw):
    model = cls(hidden_sizes=(4,), batch_size=8, seed=0, **kw)
    for i, x in enumerate(ROWS[:20]):
        model.learn_one(x, i % 2 if cls is not AMRegressor else float(i))
    return model


@pytest.mark.parametrize("name", sorted(NEW))
def test_a_learned_model_refuses_a_new_parameter_naming_it_and_keeps_going(name):
    model = _learned()
    before = pickle.dumps(model)
    with pytest.raises(ValueError, match=f"^{name} cannot change once the model has learned"):
        setattr(model, name, NEW[name])
    assert pickle.dumps(model) == before and model.get_params()[name] != NEW[name]
    setattr(model, name, model.get_params()[name])  # its own value again: no change
    model.learn_many(pd.DataFrame(ROWS[20:]), pd.Series([i % 2 for i in range(20)]))
    assert model.n_steps == 5
    assert model.clone({name: NEW[name]}).get_params()[name] == NEW[name]  # the way to a model that has it


def test_a_smaller_batch_size_after_learn_many_is_refused_instead_of_looping():
    model = AMClassifier(hidden_sizes=(4,), batch_size=8, seed=0)
    model.learn_many(pd.DataFrame(ROWS[:4]), pd.Series([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="batch_size"):
        model.batch_size = 4
    model.learn_many(pd.DataFrame(ROWS[4:]), pd.Series([i % 2 for i in range(36)]))
    assert model.n_steps == 5 and model.n_buffered == 0


@pytest.mark.parametrize(("name", "bad"), [("memory_decay", 2.0), ("variant", "sgd"), ("hidden_sizes", [8]),
                                           ("activation", "swish"), ("batch_size", 0), ("seed", -1),
                                           ("companion", "yes"), ("device", "tpu"), ("epochs", 0)])
def test_before_learning_a_bad_parameter_is_refused_naming_it_and_the_model_still_learns(name, bad):
    model = AMClassifier(hidden_sizes=(4,), batch_size=4, seed=0)
    old = model.get_params()[name]
    with pytest.raises(ValueError, match=name):
        setattr(model, name, bad)
    assert model.get_params()[name] == old
    for i, x in enumerate(ROWS[:8]):
        model.learn_one(x, i % 2)
    assert model.n_steps == 2


def test_before_learning_a_good_parameter_is_taken_and_used():
    model = AMClassifier(hidden_sizes=(4,), batch_size=8, seed=0)
    model.batch_size, model.hidden_sizes, model.companion = 4, (6, 5), False
    for i, x in enumerate(ROWS[:8]):
        model.learn_one(x, i % 2)
    assert model.n_steps == 2 and model.engine.module[0].out_features == 6 and model._companion is None


def test_a_regressor_keeps_its_target_scaling(tmp_path: Path):
    model = _learned(AMRegressor)
    value = model.predict_one(ROWS[0])
    with pytest.raises(ValueError, match="standardize_target"):
        model.standardize_target = False
    assert model.predict_one(ROWS[0]) == value
    assert AMRegressor.load(model.save(tmp_path / "m")).predict_one(ROWS[0]) == value


def test_the_backprop_baseline_is_guarded_too():
    model = _learned(BackpropClassifier)
    with pytest.raises(ValueError, match="^batch_size cannot change"):
        model.batch_size = 2


def test_set_params_with_nothing_keeps_what_was_learned():
    model = _learned()
    before = pickle.dumps(model)
    assert model.set_params() is model and pickle.dumps(model) == before


def test_numpy_feature_names_are_learned_as_python_ones_and_saved(tmp_path: Path):
    model = AMClassifier(hidden_sizes=(4,), batch_size=4, seed=0)
    names = np.array(["a", "b"])
    for i, x in enumerate(ROWS[:8]):
        model.learn_one(dict(zip(names, x.values(), strict=True)), i % 2)
    model.learn_many(pd.DataFrame(ROWS[8:12]).set_axis(names, axis=1), pd.Series([0, 1, 0, 1]))
    assert [type(n) for n in model.feature_names_in_] == [str, str]
    loaded = AMClassifier.load(model.save(tmp_path / "m"))
    assert loaded.predict_proba_one(ROWS[0]) == model.predict_proba_one(ROWS[0])


def test_a_setting_made_on_the_engine_survives_save_load_and_pickle(tmp_path: Path):
    model = _learned(companion=False)
    model.engine.memory_decay = 0.2  # the live engine's (DriftAware does this): the estimator's stays 0.001
    copies = [AMClassifier.load(model.save(tmp_path / "m")), pickle.loads(pickle.dumps(model))]
    assert [c.engine.memory_decay for c in copies] == [0.2, 0.2] and copies[0].memory_decay == 0.001
    for m in (model, *copies):
        m.learn_many(pd.DataFrame(ROWS[20:]), pd.Series([i % 2 for i in range(20)]))
    probe = pd.DataFrame(ROWS[:5])
    want = model.predict_proba_many(probe).to_numpy()
    assert all(np.array_equal(c.predict_proba_many(probe).to_numpy(), want) for c in copies)


@pytest.mark.parametrize(("settings", "named"), [
    ({"memory_decay": 2.0}, "memory_decay"), ({"nope": 1}, "engine_settings"), ([1], "engine_settings")])
def test_a_saved_engine_setting_is_checked_before_anything_is_restored(settings, named):
    model = _learned()
    state = model.__getstate__()
    state["meta"]["engine_settings"] = settings
    fresh = AMClassifier(hidden_sizes=(4,), batch_size=8, seed=0)
    with pytest.raises(ValueError, match=named):
        fresh.__setstate__(state)


def test_epochs_may_change_after_learning_as_fit_forgets_first():
    model = _learned()
    model.epochs = 2
    with pytest.raises(ValueError, match="epochs"):
        model.epochs = 0
    assert model.epochs == 2 and model.n_steps == 2


@pytest.mark.parametrize("name", ["batch_size", "hidden_sizes", "activation", "companion"])
def test_clone_with_attributes_refuses_a_new_parameter_once_learned(name):
    model = _learned()
    with pytest.raises(ValueError, match=f"include_attributes=True: {name} cannot change"):
        model.clone({name: NEW[name]}, include_attributes=True)
    assert model.clone({name: NEW[name]}).get_params()[name] == NEW[name]  # a new model: allowed
    fresh = AMClassifier(hidden_sizes=(4,), batch_size=8, seed=0)  # nothing learned: a clone may take it
    assert fresh.clone({name: NEW[name]}, include_attributes=True).get_params()[name] == NEW[name]


def test_a_subclass_may_set_its_own_parameter_after_the_base_constructor():
    class Tagged(AMClassifier):
        def __init__(self, tag: str = "a", **kw):
            super().__init__(**kw)
            self.tag = tag

    model = Tagged(tag="b", hidden_sizes=(4,), batch_size=4)
    assert model.tag == "b" and model.clone().tag == "b"


def test_the_message_shows_the_value_tried():
    model = _learned()
    with pytest.raises(ValueError, match=r"it is 0, got np.int64\(3\)|it is 0, got 3"):
        model.seed = np.int64(3)


@pytest.mark.parametrize(("built", "live"), [
    ({"mu": 1e-34}, [("mu", 1.0), ("lambda_c", 1e5)]),  # config.json sorts its keys: lambda_c would come first
    ({"lambda_c": 1e5, "mu": 1.0}, [("lambda_c", 0.0), ("mu", 1e-34)]),  # a pickle keeps this order: mu first
])
def test_engine_settings_are_checked_together_whatever_their_order(built, live, tmp_path: Path):
    model = _learned(**built)
    for k, v in live:
        setattr(model.engine, k, v)
    for copy in (AMClassifier.load(model.save(tmp_path / "m")), pickle.loads(pickle.dumps(model))):
        assert all(getattr(copy.engine, k) == v for k, v in live)


def test_engine_settings_without_an_engine_are_refused():
    model = AMClassifier(hidden_sizes=(4,), batch_size=8, seed=0)
    model.learn_one(ROWS[0], 0)
    state = model.__getstate__()
    state["meta"]["engine_settings"] = {"memory_decay": 0.1}
    with pytest.raises(ValueError, match="engine_settings"):
        AMClassifier(hidden_sizes=(4,), batch_size=8, seed=0).__setstate__(state)


def test_the_backprop_engine_checks_its_numbers_and_saves_those_set_on_it(tmp_path: Path):
    model = _learned(BackpropClassifier)
    engine = model.engine
    for name, bad in (("lr", float("nan")), ("lr", -1.0), ("momentum", 1.5), ("betas", (0.9, 1.0)), ("eps", 0.0)):
        with pytest.raises(ValueError, match=name):
            setattr(engine, name, bad)
    with pytest.raises(ValueError, match="^optimizer is fixed by the first step"):
        engine.optimizer = "sgd"
    engine.lr, engine.betas = 0.05, [0.8, 0.99]
    assert engine.betas == (0.8, 0.99)
    copies = [BackpropClassifier.load(model.save(tmp_path / "m")), pickle.loads(pickle.dumps(model))]
    assert all((c.engine.lr, c.engine.betas, c.lr) == (0.05, (0.8, 0.99), model.lr) for c in copies)
    for m in (model, *copies):
        m.learn_many(pd.DataFrame(ROWS[20:]), pd.Series([i % 2 for i in range(20)]))
    probe = pd.DataFrame(ROWS[:5])
    want = model.predict_proba_many(probe).to_numpy()
    assert all(np.array_equal(c.predict_proba_many(probe).to_numpy(), want) for c in copies)
