import pytest
import torch
from helpers_engine import blobs, mlp
from torch import nn
from torch.nn import functional as F

from stream_am import OnlineAM
from stream_am.codes import forward_codes, nesterov_descent, update_codes
from stream_am.network import CodeBlock, decompose
from stream_am.nn import Sign
from stream_am.objectives import AutogradObjective, LinearObjective, build_objectives
from stream_am.updaters import (
    AdamReadout,
    AdamState,
    AdamUpdater,
    MemoryUpdater,
    Updater,
    memory_fold,
    memory_increments,
    ridge_solve,
)
from stream_am.updaters.adam import linear_mse_grads


def _codes(net, x, y, kind, masks=None, objective=None, **kw):
    """Forward codes, the objectives (of class ``objective`` for every layer, else as built) and new codes."""
    masks = masks if masks is not None else [{} for _ in range(net.n_codes + 1)]
    codes, top_out = forward_codes(net, x, masks, torch.Generator().manual_seed(0))
    target = F.one_hot(y, net.out.out_features).float() if kind == "sq" else y
    objs = build_objectives(net, kind)
    if objective is not None:
        objs = [objective(net, l, kind) for l in range(net.n_codes)]
    params = {"mu": 0.1, "steps": 5, "lr": 0.05, "momentum": 0.9, "lambda_c": 0.01, **kw}
    return codes, objs, update_codes(objs, codes, target, masks, top_out, **params)


def _memory(a, c, decay=0.0, S=0.0, A=None, B=None):
    """Fold rows ``a`` (augmented with a leading 1) and ``c`` into a memory; returns ``(A, B, S)``."""
    a = torch.cat([torch.ones(len(a), 1, dtype=a.dtype), a], 1)
    inc = memory_increments(a, c)
    A = torch.zeros_like(inc[0]) if A is None else A
    B = torch.zeros_like(inc[1]) if B is None else B
    return A, B, memory_fold(A, B, S, inc, len(a), len(a), decay)


@pytest.mark.parametrize("act", [nn.ReLU, nn.Tanh, Sign])
@pytest.mark.parametrize("lr", [0.01, 0.1, 5.0])
@pytest.mark.parametrize("kind", ["cross_entropy", "sq"])
def test_each_code_update_lowers_its_own_objective(act, lr, kind):
    x, y = blobs(n=64)
    net = decompose(mlp([4, 16, 16, 3], act=act))
    codes, objs, new = _codes(net, x, y, kind, lr=lr)
    for l in (1, 0):
        # evaluate with an independent autograd objective started on the same data
        ref = AutogradObjective(net, l, kind)
        target = (F.one_hot(y, 3).float() if kind == "sq" else y) if l == 1 else new[1]
        ref.start(codes[l], target, {}, 0.1, 0.1, None)
        assert ref.value(new[l]) <= ref.value(codes[l])
        if l == 1 and lr <= 0.1 and act is not Sign:
            assert ref.value(new[l]) < ref.value(codes[l])  # and it actually moves


def test_memory_solve_equals_closed_form_ridge_least_squares():
    g = torch.Generator().manual_seed(0)
    n, d, k, ridge = 300, 6, 4, 0.05
    a = torch.randn(n, d, generator=g, dtype=torch.float64)
    c = torch.randn(n, k, generator=g, dtype=torch.float64)
    w0 = torch.randn(k, d + 1, generator=g, dtype=torch.float64)
    A = B = None
    S = 0.0
    for i in range(0, n, 37):  # uneven batches
        A, B, S = _memory(a[i : i + 37], c[i : i + 37], S=S, A=A, B=B)
    got = ridge_solve(A, B, w0, ridge)
    # independent reference: lstsq of the stacked system [Xa/sqrt(n); sqrt(r) I] W^T = [C/sqrt(n); sqrt(r) W0^T]
    xa = torch.cat([torch.ones(n, 1, dtype=torch.float64), a], dim=1)
    lhs = torch.cat([xa / n**0.5, ridge**0.5 * torch.eye(d + 1, dtype=torch.float64)])
    rhs = torch.cat([c / n**0.5, ridge**0.5 * w0.T])
    want = torch.linalg.lstsq(lhs, rhs).solution.T
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


def test_memory_decay_weights_samples_exponentially():
    A, B, S = _memory(torch.tensor([[1.0]]), torch.tensor([[1.0]]), decay=0.5)
    A, B, S = _memory(torch.tensor([[2.0]]), torch.tensor([[2.0]]), decay=0.5, S=S, A=A, B=B)
    # weights 0.5 (old) and 1 (new): mean of a^2 = (0.5 * 1 + 4) / 1.5
    assert S == pytest.approx(1.5)
    assert A[1, 1].item() == pytest.approx(4.5 / 1.5)


def test_constant_and_dead_features_keep_weights_finite():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(200, 5, generator=g)
    a[:, 1] = 0.0  # dead
    a[:, 2] = 3.0  # constant (collinear with the bias)
    a[:, 3] = 1.0 + 1e-7 * torch.randn(200, generator=g)  # near-constant
    c = a[:, :1] * 2 + 1
    layer = nn.Linear(5, 1)
    nn.init.zeros_(layer.weight), nn.init.zeros_(layer.bias)
    MemoryUpdater(layer, decay=0.0, ridge=1e-6).fit(a, c, 200)
    w = torch.cat([layer.bias.detach()[:, None], layer.weight.detach()], 1)
    assert torch.isfinite(w).all()
    assert w[0, 2].item() == 0.0  # the dead input keeps its previous weight
    pred = torch.cat([torch.ones(200, 1), a], 1) @ w.T
    assert (pred - c).abs().max() < 1e-2


def test_ridge_solve_survives_a_singular_matrix():
    A = torch.zeros(3, 3)
    w = ridge_solve(A, torch.ones(2, 3), torch.zeros(2, 3), 1e-12)
    assert torch.isfinite(w).all()


def test_ridge_solve_never_enlarges_the_weights_along_a_direction_rounding_made_negative():
    # float32 sums of inputs of very different sizes: an eigenvalue rounded to -0.9 ridge (the fuzzed stream's
    # readout memory); without the rounding margin the solve multiplied W_prev by 10 there, at every solve
    A = torch.diag(torch.tensor([1e6, -0.009]))
    w = ridge_solve(A, torch.zeros(1, 2), torch.tensor([[0.0, 1.0]]), 0.01)
    assert 0.0 < w[0, 1].item() < 1.0
    w = ridge_solve(torch.diag(torch.tensor([2.0, 1.0])), torch.tensor([[2.0, 3.0]]), torch.zeros(1, 2), 1e-12)
    torch.testing.assert_close(w, torch.tensor([[1.0, 3.0]]))  # (a margin of 1e-6 of the largest entry)


def test_a_failed_factorisation_keeps_the_layer_weights():
    layer = nn.Linear(3, 2)
    before = [p.detach().clone() for p in layer.parameters()]
    memory = MemoryUpdater(layer, decay=0.0, ridge=1e-2)
    stats = memory.statistics(torch.ones(4, 3), torch.ones(4, 2), 4)
    memory.apply([-s for s in stats], 4)  # a memory that is not positive definite (as a NaN-free stand-in)
    assert all(torch.equal(p, q) for p, q in zip(layer.parameters(), before, strict=True))


def test_am_adam_layer_step_matches_hand_computation():
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 2))
    am = OnlineAM(seq, variant="adam", weight_lr=0.01, seed=0)
    am._build(["adam"], 1)
    a = torch.tensor([[1.0, 2.0, -1.0], [0.5, 0.0, 1.0]])
    c = torch.tensor([[0.3, -0.2], [1.0, 0.5]])
    w, b = seq[0].weight.detach().clone(), seq[0].bias.detach().clone()
    am._updaters[0].fit(a, c, 2)
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
@pytest.mark.parametrize("kind", ["cross_entropy", "sq"])
def test_closed_form_code_gradients_match_autograd(act, kind):
    x, y = blobs(n=32)
    net = decompose(mlp([4, 16, 16, 3], act=act))
    kw = dict(mu=0.2, steps=3, lambda_c=0.01, masks=[{} for _ in range(3)])
    _, objs, fast = _codes(net, x, y, kind, **kw)
    assert [type(o) for o in objs] == [LinearObjective, LinearObjective]  # decided once, from the layout
    _, _, slow = _codes(net, x, y, kind, objective=AutogradObjective, **kw)
    # what the closed-form objective keeps for the weight step is the layer above's output at the new code
    want = net.blocks[1].layer(net.act(0, fast[0], kw["masks"][1]))
    torch.testing.assert_close(objs[0].output, want, rtol=1e-5, atol=1e-5)
    for f, s in zip(fast, slow, strict=True):
        torch.testing.assert_close(f, s, rtol=1e-4, atol=1e-5)


def test_regression_code_gradients_match_autograd():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 4, generator=g), torch.randn(16, 2, generator=g)
    net = decompose(mlp([4, 8, 2], act=nn.Tanh))
    kw = dict(mu=0.5, steps=3, lr=0.1, lambda_c=0.0)
    _, _, fast = _codes(net, x, y, "mse", **kw)
    _, _, slow = _codes(net, x, y, "mse", objective=AutogradObjective, **kw)
    torch.testing.assert_close(fast[0], slow[0])


def test_layouts_without_a_closed_form_get_autograd_objectives():
    seq = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3))
    kinds = [type(o) for o in build_objectives(decompose(seq), "cross_entropy")]
    assert kinds == [AutogradObjective, LinearObjective]  # code 0 feeds a BatchNorm block
    with pytest.raises(ValueError, match="top_kind"):
        build_objectives(decompose(seq), "hinge")


def test_closed_form_weight_gradients_match_autograd():
    g = torch.Generator().manual_seed(0)
    layer = nn.Linear(5, 3)
    a, c = torch.randn(7, 5, generator=g), torch.randn(7, 3, generator=g)
    obj = F.mse_loss(layer(a), c, reduction="none").mean(1).sum()  # the sum over samples of each one's mse
    want = torch.autograd.grad(obj, [layer.weight, layer.bias])
    got = linear_mse_grads(layer, a, c)
    for w, gt in zip(want, got, strict=True):
        torch.testing.assert_close(gt, w)


def _updaters(kind):
    layer = nn.Linear(5, 4)
    if kind == "mem":
        return layer, MemoryUpdater(layer, decay=1e-3, ridge=1e-2)
    if kind == "readout":
        return layer, AdamReadout(layer, 0.01, 1, "mse")
    return layer, AdamUpdater(CodeBlock(layer), 0.01, lambda_w=0.1)


@pytest.mark.parametrize("kind", ["mem", "adam", "readout"])
def test_statistics_of_shards_add_up_to_the_batchs_and_apply_equals_fit(kind):
    """What a data-parallel learner relies on: one sum of every shard's statistics, then apply."""
    g = torch.Generator().manual_seed(0)
    a, c = torch.randn(12, 5, generator=g), torch.randn(12, 4, generator=g)
    whole, u = _updaters(kind)
    assert isinstance(u, Updater)
    parts = [u.statistics(a[:5], c[:5], 5), u.statistics(a[5:], c[5:], 7)]
    full = u.statistics(a, c, 12)
    summed = [p + q for p, q in zip(*parts, strict=True)]
    for s, f in zip(summed, full, strict=True):
        torch.testing.assert_close(s, f)
    other, v = _updaters(kind)
    other.load_state_dict(whole.state_dict())
    before = whole.weight.detach().clone()
    u.apply(summed, 12)
    v.fit(a, c, 12)
    for p, q in zip(whole.parameters(), other.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    assert not torch.equal(whole.weight, before)  # and it did learn


@pytest.mark.parametrize(("d", "k"), [(40, 3), (40, 64), (300, 10)])
def test_ridge_solve_both_triangular_orders_match_linalg_solve(d, k):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3 * d, d, generator=g, dtype=torch.float64)
    A, B, W = x.T @ x / (3 * d), torch.randn(k, d, generator=g, dtype=torch.float64), torch.randn(k, d, generator=g,
                                                                                                  dtype=torch.float64)
    want = torch.linalg.solve(A + 0.1 * torch.eye(d, dtype=torch.float64), (B + 0.1 * W).T).T
    torch.testing.assert_close(ridge_solve(A, B, W, 0.1), want)


def test_adam_state_matches_torch_optim_adam_and_resumes_after_load():
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(4, 3, generator=gen), torch.randn(4, generator=gen)]
    grads = [[torch.randn(p.shape, generator=gen) for p in params] for _ in range(6)]
    first = AdamState(0.05)
    for g in grads[:3]:
        first.step(params, g)
    restored_params = [p.clone() for p in params]
    restored = AdamState(0.05)
    restored.load_state_dict({k: v.clone() for k, v in first.state_dict("adam.").items()}, "adam.", restored_params)
    for g in grads[3:]:
        first.step(params, g)
        restored.step(restored_params, g)
    for p, r in zip(params, restored_params, strict=True):
        torch.testing.assert_close(p, r, rtol=0, atol=0)
    assert [float(s["step"]) for s in first.state] == [float(s["step"]) for s in restored.state] == [6.0, 6.0]


def test_adam_state_is_torch_optim_adam():
    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(4, 3, generator=gen), torch.randn(4, generator=gen)]
    grads = [[torch.randn(p.shape, generator=gen) for p in start] for _ in range(5)]
    ours = [p.clone() for p in start]
    state = AdamState(0.05)
    ref = [nn.Parameter(p.clone()) for p in start]
    opt = torch.optim.Adam(ref, lr=0.05)
    for g in grads:
        state.step(ours, g)
        for p, gp in zip(ref, g, strict=True):
            p.grad = gp.clone()
        opt.step()
    for p, r in zip(ours, ref, strict=True):
        torch.testing.assert_close(p, r.detach())
    for s, (_, r) in zip(state.state, opt.state.items(), strict=True):
        assert float(s["step"]) == float(r["step"]) == 5.0
        torch.testing.assert_close(s["exp_avg_sq"], r["exp_avg_sq"])


@pytest.mark.parametrize("lr", [0.05, 5.0])  # 5.0 overshoots: steps are undone, momentum reset, lr halved
def test_nesterov_never_raises_the_objective_and_returns_the_accepted_aux(lr):
    gen = torch.Generator().manual_seed(0)
    target, c0 = torch.randn(6, 4, generator=gen), torch.randn(6, 4, generator=gen)
    calls = []

    def value_and_grad(c, need_grad):
        calls.append(need_grad)
        r = c - target
        return (r * r).sum(), (2 * r if need_grad else None), c * 3

    c, aux = nesterov_descent(c0, value_and_grad, steps=5, lr=lr, momentum=0.9)
    torch.testing.assert_close(aux, c * 3)
    assert ((c - target) ** 2).sum() <= ((c0 - target) ** 2).sum()
    assert calls == [True] * 5 + [False]
    if lr < 1:
        assert ((c - target) ** 2).sum() < ((c0 - target) ** 2).sum()


@pytest.mark.parametrize("lr", [0.05, 5.0])
def test_a_single_nesterov_step_is_the_general_step_from_a_zero_buffer(lr):
    """One step (the default) takes the short path, c0 - lr (1 + momentum) g; it must agree with the
    general formula (up to rounding) and, when it raises the objective, return c0 and its aux unchanged."""
    gen = torch.Generator().manual_seed(1)
    target, c0 = torch.randn(5, 3, generator=gen), torch.randn(5, 3, generator=gen)

    def value_and_grad(c, need_grad):
        r = c - target
        return (r * r).sum(), (2 * r if need_grad else None), c + 1

    c, aux = nesterov_descent(c0, value_and_grad, steps=1, lr=lr, momentum=0.5)
    trial = c0 - lr * 1.5 * 2 * (c0 - target)
    accepted = ((trial - target) ** 2).sum() <= ((c0 - target) ** 2).sum()
    assert bool(accepted) == (lr < 1)
    expected = trial if accepted else c0
    torch.testing.assert_close(c, expected)
    torch.testing.assert_close(aux, expected + 1)
    if not accepted:
        assert torch.equal(c, c0)


def test_elementwise_skips_the_derivative_only_when_asked():
    from stream_am.fastgrad import elementwise

    c = torch.tensor([[-1.0, 2.0]])
    for mods in ([nn.ReLU()], [nn.Tanh(), nn.ReLU()], [nn.LeakyReLU(0.1)]):
        a, d = elementwise(mods, c, None)
        a_only, none = elementwise(mods, c, None, derivative=False)
        assert torch.equal(a, a_only) and d is not None and none is None


def test_fit_layers_fits_each_updater_once_with_its_own_pair_and_no_streams_on_the_cpu():
    from stream_am.updaters import fit_layers, layer_streams

    calls = []

    class Recorder:
        def __init__(self, name):
            self.name = name

        def fit(self, a, target, n, known=None, labels=None):
            calls.append((self.name, a, target, n, known, labels))

    a, t, k, labels = [torch.full((2, 1), float(i)) for i in range(4)]
    fit_layers([Recorder("first"), Recorder("out")], [a, t], [t, k], [None, k], 2, labels)
    assert calls == [("first", a, t, 2, None, labels), ("out", t, k, 2, k, labels)]  # the same tensor objects
    assert layer_streams(torch.device("cpu"), 3) == []


@pytest.mark.parametrize("norm", [False, True])
def test_adam_fit_equals_apply_of_statistics_and_runs_with_gradients_on(norm):
    """fit (mean gradients by scaled residuals, or a scaled loss) and apply(statistics) (sums divided in place)
    take the same Adam step, called directly with gradients on, BatchNorm and the L1 term included."""
    import copy

    g = torch.Generator().manual_seed(3)
    a, c = torch.randn(16, 7, generator=g), torch.randn(16, 5, generator=g)
    start = CodeBlock(nn.Linear(7, 5), nn.BatchNorm1d(5) if norm else None)
    weights = {}
    for how in ("fit", "apply"):
        block = copy.deepcopy(start)
        u = AdamUpdater(block, lr=0.01, steps=2, lambda_w=0.01)
        if how == "fit":
            u.fit(a, c, 16)
        else:
            for _ in range(2):
                u.apply(u.statistics(a, c, 16), 16)
        weights[how] = block.layer.weight.detach().clone()
        assert torch.is_grad_enabled() and block.layer.weight.requires_grad
    torch.testing.assert_close(weights["fit"], weights["apply"], rtol=1e-5, atol=1e-6)
