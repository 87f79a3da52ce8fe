"""BackpropLearner: the tensor API shared with OnlineAM, growth with padded moments, state round trips."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from stream_am.backprop import BackpropLearner
from stream_am.estimators import build_mlp
from stream_am.updaters.adam import adam_step


def _data(n=32, n_in=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, n_in, generator=g)
    return x, (x[:, 0] > 0).long()


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_learns_a_separable_problem(optimizer):
    x, y = _data()
    bp = BackpropLearner(build_mlp(3, 2, (8,), seed=0), optimizer=optimizer, lr=0.05, momentum=0.5)
    first = bp.partial_fit(x, y)["loss"]
    for _ in range(60):
        last = bp.partial_fit(x, y)["loss"]
    assert last < first / 3
    assert (bp.predict(x).argmax(1) == y).float().mean() > 0.9
    assert bp.samples_seen == 61 * 32 and bp.n_steps == 61


@pytest.mark.parametrize("fused", [True, False])
def test_adam_step_fused_and_single_tensor_agree_with_torch_adam(fused):
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(5, 4, generator=gen), torch.randn(5, generator=gen)]
    ref = [p.clone().requires_grad_(True) for p in params]
    opt = torch.optim.Adam(ref, lr=0.01, betas=(0.8, 0.99), eps=1e-6)
    ms, vs = [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params]
    steps = [torch.zeros(()) for _ in params]
    for _ in range(1, 6):
        grads = [torch.randn(p.shape, generator=gen) for p in params]
        for r, g in zip(ref, grads, strict=True):
            r.grad = g.clone()
        opt.step()
        adam_step(params, grads, ms, vs, steps, lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6, fused=fused)
    for p, m, v, r in zip(params, ms, vs, ref, strict=True):
        torch.testing.assert_close(p, r.detach())
        torch.testing.assert_close(m, opt.state[r]["exp_avg"])
        torch.testing.assert_close(v, opt.state[r]["exp_avg_sq"])
    assert [float(t) for t in steps] == [5.0, 5.0]


def test_regression_loss():
    x, _ = _data()
    y = x.sum(1, keepdim=True)
    bp = BackpropLearner(build_mlp(3, 1, (), seed=0), loss="mse", lr=0.1)
    for _ in range(100):
        stats = bp.partial_fit(x, y[:, 0])  # 1-d targets are accepted for one output
    assert stats["loss"] < 1e-2


def test_state_is_lazy_and_round_trips_exactly():
    x, y = _data()
    bp = BackpropLearner(build_mlp(3, 2, (4,), seed=0))
    assert bp.state_dict() == {}
    bp.partial_fit(x, y)
    other = BackpropLearner(build_mlp(3, 2, (4,), seed=9))
    other.load_state_dict(bp.state_dict())
    assert torch.equal(other.predict(x), bp.predict(x))
    bp.partial_fit(x, y)
    other.partial_fit(x, y)
    for k, v in bp.state_dict().items():
        assert torch.equal(v, other.state_dict()[k]), k


def test_load_state_dict_checks_keys_and_shapes():
    x, y = _data()
    bp = BackpropLearner(build_mlp(3, 2, (4,), seed=0))
    bp.partial_fit(x, y)
    sd = bp.state_dict()
    with pytest.raises(ValueError, match="has shape"):
        BackpropLearner(build_mlp(3, 2, (5,), seed=0)).load_state_dict(sd)
    with pytest.raises(ValueError, match="missing"):
        fresh = BackpropLearner(build_mlp(3, 2, (4,), seed=0))
        fresh.load_state_dict({k: v for k, v in sd.items() if k != "optim.step"})


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_growth_keeps_weights_and_pads_moments(optimizer):
    x, y = _data()
    bp = BackpropLearner(build_mlp(3, 2, (4,), seed=0), optimizer=optimizer, momentum=0.9)
    bp.partial_fit(x, y)
    before = bp.state_dict()
    out_before = bp.predict(x)
    bp.grow_inputs(2)
    bp.grow_outputs(1)
    after = bp.state_dict()
    assert (bp.n_inputs, bp.n_outputs) == (5, 3)
    for k, old in before.items():
        new = after[k]
        assert torch.equal(new[tuple(slice(0, s) for s in old.shape)], old), k
        if new.shape != old.shape:
            assert torch.count_nonzero(new) == torch.count_nonzero(old)  # the new part is zero
    assert after["module.0.weight"].shape == (4, 5) and after["module.2.bias"].shape == (3,)
    moments = [k for k in after if k.startswith("optim.") and k != "optim.step"]
    assert moments and all(after[k].shape == after["module." + k.split(".", 2)[2]].shape for k in moments)
    x5 = torch.cat([x, torch.ones(32, 2)], 1)
    out_after = bp.predict(x5)
    torch.testing.assert_close(out_after[:, :2], out_before, rtol=1e-6, atol=1e-6)  # new inputs: zero weights
    assert torch.equal(out_after[:, 2], torch.zeros(32))  # new output unit: zero weights and bias
    bp.partial_fit(x5, torch.where(y == 0, 2, y))  # keeps learning with the new unit


def test_growth_before_learning_and_bad_growth():
    bp = BackpropLearner(build_mlp(2, 1, (3,), seed=0))
    bp.grow_inputs(1)
    bp.grow_outputs(2)
    assert (bp.n_inputs, bp.n_outputs, bp.state_dict()) == (3, 3, {})
    with pytest.raises(ValueError, match="n_new"):
        bp.grow_inputs(-1)
    conv = BackpropLearner(nn.Sequential(nn.Conv2d(1, 1, 1), nn.Flatten(), nn.Linear(4, 2)))
    with pytest.raises(ValueError, match="grow_inputs needs an nn.Linear first layer"):
        conv.grow_inputs(1)


def test_predict_is_pure_and_no_global_rng():
    x, y = _data()
    rng = torch.random.get_rng_state()
    net = build_mlp(3, 2, (4,), seed=0)
    net.insert(2, nn.Dropout(0.5))  # Dropout is skipped: it would draw from the global RNG
    bp = BackpropLearner(net)
    bp.partial_fit(x, y)
    before = bp.state_dict()
    bp.predict(x)
    bp.predict_proba(x)
    assert all(torch.equal(v, bp.state_dict()[k]) for k, v in before.items())
    assert all(p.grad is None for p in bp.module.parameters())
    assert torch.equal(rng, torch.random.get_rng_state())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"optimizer": "rmsprop"}, "optimizer"), ({"loss": "hinge"}, "loss"), ({"lr": 0}, "lr"),
     ({"momentum": 1.0}, "momentum"), ({"betas": (0.9, 1.0)}, "betas"), ({"device": "nope"}, "device"),
     ({"seed": -1}, "seed"), ({"eps": float("nan")}, "eps")],
)
def test_bad_hyperparameters_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        BackpropLearner(build_mlp(2, 2, seed=0), **kwargs)


def test_bad_batches_change_nothing():
    x, y = _data()
    bp = BackpropLearner(build_mlp(3, 2, (4,), seed=0))
    bp.partial_fit(x, y)
    before = bp.state_dict()
    bad = [(x[:, :2], y, "shape"), (x, y[:5], "samples"), (x, y.float(), "integer"), (x, y + 5, "outside"),
           (x.long(), y, "floating"), (x[:0], y[:0], "empty"), (x * float("nan"), y, "NaN")]
    for bad_x, bad_y, match in bad:
        with pytest.raises(ValueError, match=match):
            bp.partial_fit(bad_x, bad_y)
    assert all(torch.equal(v, bp.state_dict()[k]) for k, v in before.items())


def test_adam_step_handles_transposed_gradients_and_parameters():
    """torch's fused kernel reads tensors as flat memory: strided inputs must not be misread."""
    gen = torch.Generator().manual_seed(1)
    grad_t = torch.randn(4, 5, generator=gen).T  # a (5, 4) gradient that is not contiguous
    for param in (torch.randn(5, 4, generator=gen), torch.randn(4, 5, generator=gen).T):
        results = []
        for fused in (None, False):
            p, m, v, step = param.clone(), torch.zeros_like(param), torch.zeros_like(param), torch.zeros(())
            for _ in (1, 2):
                adam_step([p], [grad_t], [m], [v], [step], lr=0.1, fused=fused)
            results.append((p, m, v))
        for auto, reference in zip(*results, strict=True):
            torch.testing.assert_close(auto, reference)
