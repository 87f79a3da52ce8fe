"""Found by a hostile review of the networks users hand to OnlineAM: each test failed before its fix."""

from __future__ import annotations

import copy

import pytest
import torch
from helpers_engine import blobs
from torch import nn

from stream_am import OnlineAM
from stream_am.network import CodeBlock, decompose


def _seq(*mods: nn.Module) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(*mods)


def _accuracy(am: OnlineAM, steps: int = 16) -> float:
    x, y = blobs(n=32 * steps + 256, seed=1)
    for i in range(0, 32 * steps, 32):
        am.partial_fit(x[i : i + 32], y[i : i + 32])
    return float((am.predict(x[-256:]).argmax(1) == y[-256:]).float().mean())


@pytest.mark.parametrize("variant", ["mem", "adam"])
def test_an_activation_object_used_twice_is_applied_both_times(variant):
    relu = nn.ReLU()  # one object in two places: children() listed it once, so the second ReLU was dropped
    seq = _seq(nn.Linear(4, 16), relu, nn.Linear(16, 16), relu, nn.Linear(16, 3))
    assert [len(a) for a in decompose(seq).acts] == [1, 1]
    am = OnlineAM(seq, variant=variant, seed=0)
    assert _accuracy(am) > 0.8
    x, _ = blobs(n=64, seed=2)
    torch.testing.assert_close(am.predict(x), seq(x))  # the engine computes what the module computes


def _tied_modules() -> nn.Sequential:
    t = nn.Linear(16, 16)
    return _seq(nn.Linear(4, 16), nn.ReLU(), t, nn.ReLU(), t, nn.ReLU(), nn.Linear(16, 3))


def _tied_parameters() -> nn.Sequential:
    a, b = nn.Linear(16, 16), nn.Linear(16, 16)
    b.weight = a.weight
    return _seq(nn.Linear(4, 16), nn.ReLU(), a, nn.ReLU(), b, nn.ReLU(), nn.Linear(16, 3))


def _block_used_twice() -> nn.Sequential:
    block = nn.Sequential(nn.Linear(16, 16), nn.ReLU())
    return _seq(nn.Linear(4, 16), nn.ReLU(), block, block, nn.Linear(16, 3))


@pytest.mark.parametrize("make", [_tied_modules, _tied_parameters, _block_used_twice])
@pytest.mark.parametrize("variant", ["mem", "adam", "auto"])
def test_weight_tying_is_refused(make, variant):
    # before: a layer used twice was applied once (silently another network), and two layers sharing a weight
    # were fitted each on its own into the same tensor
    with pytest.raises(ValueError, match=r"module\[4\].*shares its weights with module\[2\]"):
        OnlineAM(make(), variant=variant)


def _inplace_pairs():
    yield (lambda inplace: _seq(nn.Linear(4, 16), nn.ReLU(inplace=inplace), nn.Linear(16, 16), nn.Tanh(),
                                nn.Linear(16, 3)))
    yield (lambda inplace: _seq(nn.Linear(4, 16), nn.LeakyReLU(-0.5, inplace=inplace), nn.Flatten(),
                                nn.Linear(16, 3)))  # autograd objective (Flatten), negative slope


@pytest.mark.parametrize("make", list(_inplace_pairs()))
@pytest.mark.parametrize("variant", ["mem", "adam"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_inplace_activations_learn_as_their_out_of_place_twins(make, variant, loss):
    # before: an in-place activation overwrote the forward codes (AM-mem fitted other codes) or crashed the
    # autograd objective ("a leaf Variable that requires grad is being used in an in-place operation")
    x, y = blobs(n=96, seed=3)
    target = y if loss == "cross_entropy" else nn.functional.one_hot(y, 3).float()
    learned = []
    for inplace in (False, True):
        am = OnlineAM(make(inplace), variant=variant, loss=loss, seed=0)
        for i in range(0, 96, 32):
            am.partial_fit(x[i : i + 32], target[i : i + 32])
        learned.append(am.module.state_dict())
        assert all(p.grad is None for p in am.module.parameters())
    for k, v in learned[0].items():
        torch.testing.assert_close(learned[1][k], v, msg=k)


def test_a_conv_net_with_an_inplace_relu_learns():
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(36, 2))
    g = torch.Generator().manual_seed(0)

    def images(n):
        y = torch.randint(0, 2, (n,), generator=g)
        x = torch.randn(n, 1, 6, 6, generator=g) * 0.5
        x[y == 1, :, :3, :] += 1.5
        return x, y

    am = OnlineAM(seq, variant="adam", seed=0)
    for _ in range(20):
        am.partial_fit(*images(32))
    x, y = images(256)
    assert float((am.predict(x).argmax(1) == y).float().mean()) > 0.9


def _hooked() -> nn.Sequential:
    seq = _seq(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    seq[0].register_forward_hook(lambda m, i, o: o * 0)
    return seq


def _hooked_container() -> nn.Sequential:
    seq = _seq(nn.Linear(4, 16), nn.Sequential(nn.ReLU(), nn.Linear(16, 3)))
    seq[1].register_forward_pre_hook(lambda m, i: (i[0] * 0,))
    return seq


def _weight_norm() -> nn.Sequential:
    seq = _seq(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    nn.utils.parametrizations.weight_norm(seq[2])
    return seq


def _frozen() -> nn.Sequential:
    seq = _seq(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    seq[2].weight.requires_grad_(False)
    return seq


class _SineReLU(nn.ReLU):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)


class _Residual(nn.Sequential):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + super().forward(x)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: _seq(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3)).double(), r"module\[0\].*float64.*float32"),
        (lambda: _seq(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3).half()), r"module\[2\].*float16"),
        (lambda: _seq(nn.Linear(4, 16, device="meta"), nn.ReLU(), nn.Linear(16, 3)), r"module\[0\].*'meta'"),
        (lambda: _seq(nn.LazyLinear(16), nn.ReLU(), nn.Linear(16, 3)), r"module\[0\].*uninitialized \(lazy\)"),
        (_hooked, r"module\[0\].*forward hooks"),
        (_hooked_container, r"module\.1 \(Sequential\) has forward hooks"),
        (_weight_norm, r"(?s)module\[2\].*parametrizations"),
        (_frozen, r"module\[2\].*requires_grad=False"),
        (lambda: _seq(nn.Linear(4, 16), _SineReLU(), nn.Linear(16, 3)), r"module\[1\].*overrides forward"),
        (lambda: _Residual(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 3)), r"module \(_Residual\) overrides forward"),
        (lambda: _seq(nn.Linear(4, 16), nn.BatchNorm1d(16, track_running_stats=False), nn.ReLU(), nn.Linear(16, 3)),
         r"module\[1\].*track_running_stats=False"),
        (lambda: _seq(nn.Linear(4, 0), nn.ReLU(), nn.Linear(0, 3)), r"module\[0\].*has no outputs"),
        (lambda: _seq(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(1.0), nn.Linear(16, 3)), r"module\[2\].*p=1"),
    ],
)
@pytest.mark.parametrize("variant", ["adam", "auto"])
@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
def test_modules_the_engine_cannot_train_as_given_are_refused_up_front(make, match, variant):
    # before: crashes inside the first step (dtype mismatch, meta copy, leaf in-place, running_mean undefined,
    # an IndexError in the cost model) after the learner was built, NaN statistics (Dropout(p=1): a mask of
    # 0 / 0) that no state could save, or silent other results (hooks and
    # overridden forwards ignored by the closed-form objectives, weight_norm recomputing the weights the
    # memory wrote, a frozen layer trained)
    module = make()
    before = copy.deepcopy(module.state_dict()) if match != r"module\[0\].*'meta'" else None
    with pytest.raises(ValueError, match=match):
        OnlineAM(module, variant=variant)
    if before is not None and not isinstance(module[0], nn.LazyLinear):
        after = module.state_dict()
        assert all(torch.equal(after[k], v) and after[k].dtype == v.dtype for k, v in before.items())


def test_batchnorm_without_momentum_keeps_torchs_cumulative_average():
    torch.manual_seed(0)
    block = CodeBlock(nn.Linear(3, 4), nn.BatchNorm1d(4, momentum=None))
    ref = copy.deepcopy(block)
    ref.norm.train()
    for k in range(3):
        a = torch.randn(8, 3) + k
        block.update_running_stats(a)
        with torch.no_grad():
            ref.norm(ref.layer(a))
    torch.testing.assert_close(block.norm.running_mean, ref.norm.running_mean)  # before: momentum 0.1
    torch.testing.assert_close(block.norm.running_var, ref.norm.running_var)
    assert int(block.norm.num_batches_tracked) == 3


def test_a_layout_on_meta_is_read_but_not_trained():
    seq = _seq(nn.Linear(4, 16, device="meta"), nn.ReLU(), nn.Linear(16, 3, device="meta"))
    assert decompose(seq).n_codes == 1  # what a cost estimate reads (api.model_limits prices such a network)
    with pytest.raises(ValueError, match=r"module\[0\].*'meta'"):
        decompose(seq, trainable=True)
