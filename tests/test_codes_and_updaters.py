import pytest
import torch
from helpers_engine import blobs, mlp
from torch import nn
from torch.nn import functional as F

from stream_am import OnlineAM
from stream_am.codes import _hidden_objective, _top_objective, forward_codes, nesterov_descent, update_codes
from stream_am.network import decompose
from stream_am.nn import Sign
from stream_am.updaters import AdamRule, MemoryRule, ridge_solve
from stream_am.updaters.adam import adam_update_many


@pytest.mark.parametrize("act", [nn.ReLU, nn.Tanh, Sign])
@pytest.mark.parametrize("lr", [0.01, 0.1, 5.0])
@pytest.mark.parametrize("loss", ["cross_entropy", "onehot_mse"])
def test_each_code_update_lowers_its_own_objective(act, lr, loss):
    x, y = blobs(n=64)
    net = decompose(mlp([4, 16, 16, 3], act=act))
    codes = forward_codes(net, x)
    new, _ = update_codes(net, codes, y, loss=loss, mu=0.1, steps=5, lr=lr, momentum=0.9, lambda_c=0.01)
    top = _top_objective(net, codes[1], y, loss, 0.1, 0.1, None)
    assert top(new[1]) <= top(codes[1])
    hidden = _hidden_objective(net, 0, codes[0], new[1], 0.1, None)
    assert hidden(new[0]) <= hidden(codes[0])
    if lr <= 0.1 and act is not Sign:
        assert top(new[1]) < top(codes[1])  # and it actually moves


def test_memory_solve_equals_closed_form_ridge_least_squares():
    g = torch.Generator().manual_seed(0)
    n, d, k, ridge = 300, 6, 4, 0.05
    a = torch.randn(n, d, generator=g, dtype=torch.float64)
    c = torch.randn(n, k, generator=g, dtype=torch.float64)
    w0 = torch.randn(k, d + 1, generator=g, dtype=torch.float64)
    rule = MemoryRule(decay=0.0, ridge=ridge)
    for i in range(0, n, 37):  # uneven batches
        rule.update(a[i : i + 37], c[i : i + 37], len(a[i : i + 37]))
    got = rule.solve(w0)
    # independent reference: lstsq of the stacked system [Xa/sqrt(n); sqrt(r) I] W^T = [C/sqrt(n); sqrt(r) W0^T]
    xa = torch.cat([torch.ones(n, 1, dtype=torch.float64), a], dim=1)
    lhs = torch.cat([xa / n**0.5, ridge**0.5 * torch.eye(d + 1, dtype=torch.float64)])
    rhs = torch.cat([c / n**0.5, ridge**0.5 * w0.T])
    want = torch.linalg.lstsq(lhs, rhs).solution.T
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


def test_memory_decay_weights_samples_exponentially():
    rule = MemoryRule(decay=0.5, ridge=1e-3)
    rule.update(torch.tensor([[1.0]]), torch.tensor([[1.0]]), 1)
    rule.update(torch.tensor([[2.0]]), torch.tensor([[2.0]]), 1)
    # weights 0.5 (old) and 1 (new): mean of a^2 = (0.5 * 1 + 4) / 1.5
    assert rule.S == pytest.approx(1.5)
    assert rule.A[1, 1].item() == pytest.approx(4.5 / 1.5)


def test_constant_and_dead_features_keep_weights_finite():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(200, 5, generator=g)
    a[:, 1] = 0.0  # dead
    a[:, 2] = 3.0  # constant (collinear with the bias)
    a[:, 3] = 1.0 + 1e-7 * torch.randn(200, generator=g)  # near-constant
    c = a[:, :1] * 2 + 1
    rule = MemoryRule(decay=0.0, ridge=1e-6)
    w0 = torch.zeros(1, 6)
    rule.update(a, c, 200)
    w = rule.solve(w0)
    assert torch.isfinite(w).all()
    assert w[0, 2].item() == 0.0  # the dead input keeps its previous weight
    pred = torch.cat([torch.ones(200, 1), a], 1) @ w.T
    assert (pred - c).abs().max() < 1e-2


def test_ridge_solve_survives_a_singular_matrix():
    A = torch.zeros(3, 3)
    w = ridge_solve(A, torch.ones(2, 3), torch.zeros(2, 3), 1e-12)
    assert torch.isfinite(w).all()


def test_am_adam_layer_step_matches_hand_computation():
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 2))
    am = OnlineAM(seq, variant="adam", weight_lr=0.01, seed=0)
    am._build()
    a = torch.tensor([[1.0, 2.0, -1.0], [0.5, 0.0, 1.0]])
    c = torch.tensor([[0.3, -0.2], [1.0, 0.5]])
    w, b = seq[0].weight.detach().clone(), seq[0].bias.detach().clone()
    am._fit_block(0, am._net.blocks[0], a, c, 2)
    r = a @ w.T + b - c  # residual; objective mean((.)^2) over 4 elements
    gw, gb = 2 * r.T @ a / 4, 2 * r.sum(0) / 4
    # first Adam step: m/(1-b1) = g, sqrt(v/(1-b2)) = |g|  ->  step = lr * g / (|g| + eps)
    torch.testing.assert_close(seq[0].weight.detach(), w - 0.01 * gw / (gw.abs() + 1e-8))
    torch.testing.assert_close(seq[0].bias.detach(), b - 0.01 * gb / (gb.abs() + 1e-8))


def test_memory_readout_is_the_ridge_fit_of_one_hot_targets():
    x, y = blobs(n=100)
    seq = mlp([4, 3])  # readout only
    am = OnlineAM(seq, variant="mem", ridge=1e-3, memory_decay=0.0, seed=0)
    w0 = torch.cat([seq[0].bias.detach()[:, None], seq[0].weight.detach()], 1)
    am.partial_fit(x, y)
    xa = torch.cat([torch.ones(100, 1), x], 1)
    A, B = xa.T @ xa / 100, F.one_hot(y, 3).float().T @ xa / 100
    want = torch.linalg.solve(A + 1e-3 * torch.eye(5), (B + 1e-3 * w0).T).T
    torch.testing.assert_close(seq[0].weight.detach(), want[:, 1:], rtol=1e-4, atol=1e-4)


def test_memory_fits_layers_without_bias():
    x, y = blobs(n=128)
    seq = nn.Sequential(nn.Linear(4, 8, bias=False), nn.ReLU(), nn.Linear(8, 3, bias=False))
    am = OnlineAM(seq, variant="mem", seed=0)
    for i in range(0, 128, 32):
        am.partial_fit(x[i : i + 32], y[i : i + 32])
    assert am.state_dict()["memory.0.A"].shape == (4, 4)
    assert (am.predict(x).argmax(1) == y).float().mean() > 0.8


@pytest.mark.parametrize(
    "act",
    [nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.GELU, Sign, lambda: nn.Sequential(nn.ReLU(), nn.Dropout(0.3))],
)
@pytest.mark.parametrize("loss", ["cross_entropy", "onehot_mse"])
def test_closed_form_code_gradients_match_autograd(act, loss):
    from stream_am.network import decompose as dec

    x, y = blobs(n=32)
    net = dec(mlp([4, 16, 16, 3], act=act))
    masks = [{} for _ in range(3)]
    codes = forward_codes(net, x, masks, torch.Generator().manual_seed(0))
    kw = dict(loss=loss, mu=0.2, steps=3, lr=0.05, momentum=0.9, lambda_c=0.01, masks=masks)
    fast, above = update_codes(net, codes, y, fast_path=True, **kw)
    slow, _ = update_codes(net, codes, y, fast_path=False, **kw)
    # what the closed-form path hands to the weight step is the layer above's output at the new code
    torch.testing.assert_close(above[0], net.blocks[1].layer(net.act(0, fast[0], masks[1])), rtol=1e-5, atol=1e-5)
    for f, s in zip(fast, slow, strict=True):
        torch.testing.assert_close(f, s, rtol=1e-4, atol=1e-5)


def test_regression_code_gradients_match_autograd():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 4, generator=g), torch.randn(16, 2, generator=g)
    net = decompose(mlp([4, 8, 2], act=nn.Tanh))
    codes = forward_codes(net, x)
    kw = dict(loss="mse", mu=0.5, steps=3, lr=0.1, momentum=0.9, lambda_c=0.0)
    (fast, _), (slow, _) = update_codes(net, codes, y, **kw), update_codes(net, codes, y, fast_path=False, **kw)
    torch.testing.assert_close(fast[0], slow[0])


def test_closed_form_weight_gradients_match_autograd():
    from stream_am.learner import _linear_mse_grads

    g = torch.Generator().manual_seed(0)
    layer = nn.Linear(5, 3)
    a, c = torch.randn(7, 5, generator=g), torch.randn(7, 3, generator=g)
    obj = F.mse_loss(layer(a), c) + 0.1 * layer.weight.abs().mean()
    want = torch.autograd.grad(obj, [layer.weight, layer.bias])
    got = _linear_mse_grads(layer, a, c, 0.1)
    for w, gt in zip(want, got, strict=True):
        torch.testing.assert_close(gt, w)


@pytest.mark.parametrize(("d", "k"), [(40, 3), (40, 64), (300, 10)])
def test_ridge_solve_both_triangular_orders_match_linalg_solve(d, k):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3 * d, d, generator=g, dtype=torch.float64)
    A, B, W = x.T @ x / (3 * d), torch.randn(k, d, generator=g, dtype=torch.float64), torch.randn(k, d, generator=g,
                                                                                                  dtype=torch.float64)
    want = torch.linalg.solve(A + 0.1 * torch.eye(d, dtype=torch.float64), (B + 0.1 * W).T).T
    torch.testing.assert_close(ridge_solve(A, B, W, 0.1), want)


def test_adam_rule_resumes_its_step_count_after_load_and_matches_the_op_by_op_formula():
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(4, 3, generator=gen), torch.randn(4, generator=gen)]
    grads = [[torch.randn(p.shape, generator=gen) for p in params] for _ in range(6)]
    first = AdamRule(0.05)
    for g in grads[:3]:
        first.step(params, g)
    # a restored rule continues at step 4 (its fused step counters are rebuilt from step_count)
    restored_params = [p.clone() for p in params]
    restored = AdamRule(0.05)
    restored.load_state_dict(first.state_dict("adam."), "adam.", restored_params)
    # the reference: the same three steps and the rest with the textbook formula, step by step
    ref_params = [p.clone() for p in params]
    ms, vs = [m.clone() for m in first.exp_avg], [v.clone() for v in first.exp_avg_sq]
    for k, g in enumerate(grads[3:], start=4):
        first.step(params, g)
        restored.step(restored_params, g)
        adam_update_many(ref_params, g, ms, vs, k, lr=0.05, fused=False)
    assert first.step_count == restored.step_count == 6
    for p, r, q in zip(params, restored_params, ref_params, strict=True):
        torch.testing.assert_close(p, r, rtol=0, atol=0)
        torch.testing.assert_close(p, q)


@pytest.mark.parametrize("lr", [0.05, 5.0])  # 5.0 overshoots: steps are undone, momentum reset, lr halved
def test_nesterov_branch_and_select_paths_agree_and_never_raise_the_objective(lr):
    gen = torch.Generator().manual_seed(0)
    target, c0 = torch.randn(6, 4, generator=gen), torch.randn(6, 4, generator=gen)
    calls = {True: 0, False: 0}

    def make(flag):
        def value_and_grad(c, need_grad):
            calls[flag] += 1
            r = c - target
            return (r * r).sum(), (2 * r if need_grad else None), c * 3

        return value_and_grad

    results = {
        flag: nesterov_descent(c0, make(flag), steps=5, lr=lr, momentum=0.9, host_branch=flag)
        for flag in (True, False)
    }
    (c_branch, aux_branch), (c_select, aux_select) = results[True], results[False]
    torch.testing.assert_close(c_branch, c_select, rtol=0, atol=0)
    torch.testing.assert_close(aux_branch, aux_select, rtol=0, atol=0)
    torch.testing.assert_close(aux_branch, c_branch * 3)
    assert ((c_branch - target) ** 2).sum() <= ((c0 - target) ** 2).sum()
    assert calls == {True: 6, False: 6}
