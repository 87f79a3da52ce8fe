import math

import pytest
import torch
from helpers_engine import assert_continue_identically, assert_same_state, blobs, mlp, snapshot, xor
from torch import nn

from stream_am import OnlineAM
from stream_am.nn import Sign


def _accuracy(am, x, y):
    return (am.predict(x).argmax(1) == y).float().mean().item()


@pytest.mark.parametrize("variant", ["mem", "adam"])
@pytest.mark.parametrize("readout", ["memory", "adam"])
def test_learns_a_separable_stream(variant, readout):
    x, y = blobs(n=600)
    am = OnlineAM(mlp([4, 16, 16, 3]), variant=variant, readout=readout, seed=0)
    for i in range(0, 600, 20):
        am.partial_fit(x[i : i + 20], y[i : i + 20])
    assert _accuracy(am, x, y) > 0.85
    assert am.samples_seen == 600 and am.n_steps == 30


@pytest.mark.parametrize("variant", ["mem", "adam"])
def test_sign_network_learns_xor(variant):
    x, y = xor()
    am = OnlineAM(mlp([2, 64, 64, 2], act=Sign), variant=variant, seed=0)
    for _ in range(8):
        for i in range(0, 512, 32):
            am.partial_fit(x[i : i + 32], y[i : i + 32])
    assert _accuracy(am, x, y) > 0.85  # a linear model cannot beat ~0.6 on XOR


def test_regression_with_mse_and_batch_of_one():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(400, 3, generator=g)
    y = torch.stack([x[:, 0] - 2 * x[:, 1], x[:, 2].abs()], dim=1)
    for variant in ("mem", "adam"):
        am = OnlineAM(mlp([3, 16, 2], act=nn.Tanh), variant=variant, loss="mse", seed=0)
        first = am.partial_fit(x[:1], y[:1])["loss"]
        for i in range(1, 400):
            am.partial_fit(x[i : i + 1], y[i : i + 1])
        mse = (am.predict(x) - y).pow(2).mean().item()
        assert mse < 0.5 * y.var(0).mean().item(), (variant, mse, first)


def test_conv_network_learns_with_both_variants():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (128,), generator=g)
    x = torch.randn(128, 1, 6, 6, generator=g) * 0.3
    x[y == 1, :, :3, :] += 1.0  # class 1: bright top half
    for variant in ("mem", "adam"):
        with torch.random.fork_rng():  # module init draws from the global RNG: pin it, leave it as it was
            torch.manual_seed(0)
            conv = nn.Conv2d(1, 4, 3, padding=1)
            seq = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 2))
        am = OnlineAM(seq, variant=variant, seed=0)
        for _ in range(5):
            for i in range(0, 128, 16):
                am.partial_fit(x[i : i + 16], y[i : i + 16])
        assert _accuracy(am, x, y) > 0.9, variant


def test_batchnorm_with_adam_including_batch_of_one():
    x, y = blobs(n=300)
    seq = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    am = OnlineAM(seq, variant="adam", seed=0)
    am.partial_fit(x[:1], y[:1])
    for i in range(1, 300, 20):
        am.partial_fit(x[i : i + 20], y[i : i + 20])
    assert _accuracy(am, x, y) > 0.85
    assert seq[1].num_batches_tracked.item() == 15  # one running-stat update per multi-sample step


def test_mem_refuses_batchnorm_by_name():
    seq = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    with pytest.raises(ValueError, match="BatchNorm1d"):
        OnlineAM(seq, variant="mem")


def test_seeded_runs_are_bitwise_identical_and_global_rng_untouched():
    x, y = blobs()
    modules = [mlp([4, 16, 3]), mlp([4, 16, 3])]  # built before the RNG check: nn.Linear() uses it
    torch_state = torch.random.get_rng_state()
    runs = []
    for seq in modules:
        am = OnlineAM(seq, seed=3)
        for i in range(0, 256, 32):
            am.partial_fit(x[i : i + 32], y[i : i + 32])
        runs.append(snapshot(am))
    assert_same_state(runs[0], runs[1])
    assert torch.equal(torch.random.get_rng_state(), torch_state)


def test_dropout_masks_come_from_the_learner_seed():
    x, y = blobs()

    seqs = iter([mlp([4, 16, 3]) for _ in range(4)])  # built before the RNG check: nn.Linear() uses it

    def run(seed):
        seq = next(seqs)
        am = OnlineAM(nn.Sequential(seq[0], seq[1], nn.Dropout(0.5), seq[2]), variant="adam", seed=seed)
        am.partial_fit(x, y)
        return snapshot(am)["module.3.weight"]

    state = torch.random.get_rng_state()
    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("variant", ["mem", "adam"])
def test_state_dict_round_trip_continues_bit_identically(variant):
    x, y = blobs()
    a = OnlineAM(mlp([4, 8, 8, 3]), variant=variant, seed=0)
    for i in range(0, 128, 32):
        a.partial_fit(x[i : i + 32], y[i : i + 32])
    b = OnlineAM(mlp([4, 8, 8, 3], seed=9), variant=variant, seed=5)
    b.load_state_dict(snapshot(a))
    assert_continue_identically(a, b, x, y, 128, 32)


def test_load_state_dict_checks_shapes_before_changing_anything():
    x, y = blobs()
    a = OnlineAM(mlp([4, 8, 3]), seed=0)
    a.partial_fit(x, y)
    b = OnlineAM(mlp([4, 9, 3]), seed=0)
    b.partial_fit(x, y)
    before = snapshot(b)
    with pytest.raises(ValueError, match=r"module\.0\.weight"):
        b.load_state_dict(snapshot(a))
    assert_same_state(before, snapshot(b))


def _bad_batches(x, y):
    return [
        (x[:, :3], y, "shape"),
        (x.long(), y, "floating"),
        (x[:0], y[:0], "empty"),
        (torch.where(torch.arange(len(x))[:, None] == 3, float("nan"), x), y, "NaN"),
        (x, y[:-1], "samples"),
        (x, torch.full_like(y, 7), "outside"),
        (x, y.float(), "integer"),
        (x.numpy(), y, "torch.Tensor"),
        (x.to_sparse(), y, "dense"),
        (x, y.to_sparse(), "dense"),
        (x, torch.full_like(y, 2**32 - 1).to(torch.uint32), "outside"),
    ]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_all_finite_sees_one_bad_entry_anywhere(bad):
    """The min/max check of the input must see a non-finite entry at every position (vectorised lanes and
    tails included), among large finite values too."""
    from stream_am.checks import all_finite

    for n in (1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 64, 65, 130):
        x = torch.linspace(-1e38, 1e38, n).reshape(1, n)
        assert all_finite(x)
        for i in range(n):
            z = x.clone()
            z[0, i] = bad
            assert not all_finite(z), (n, i)


@pytest.mark.parametrize("variant", ["mem", "adam"])
def test_bad_input_raises_and_changes_nothing(variant):
    x, y = blobs(n=64)
    am = OnlineAM(mlp([4, 8, 3]), variant=variant, seed=0)
    am.partial_fit(x, y)
    before = snapshot(am)
    for bx, by, match in _bad_batches(x, y):
        with pytest.raises(ValueError, match=match):
            am.partial_fit(bx, by)
        assert_same_state(before, snapshot(am))
    assert am.samples_seen == 64


@pytest.mark.parametrize("readout", ["memory", "adam"])
def test_learning_inside_inference_mode_is_refused_before_anything_changes(readout):
    x, y = blobs(n=64)
    am = OnlineAM(mlp([4, 8, 3]), variant="mem", readout=readout, seed=0)
    am.partial_fit(x[:32], y[:32])
    before = snapshot(am)
    with torch.inference_mode(), pytest.raises(ValueError, match="inference_mode"):
        am.partial_fit(x[32:], y[32:])
    assert_same_state(before, snapshot(am))
    assert am.n_steps == 1 and torch.is_grad_enabled()
    for dtype in (torch.uint8, torch.int16, torch.uint32, torch.uint64):  # any integer labels in range learn
        am.partial_fit(x[32:], y[32:].to(dtype))


def test_predict_never_changes_state():
    x, y = blobs()
    am = OnlineAM(mlp([4, 8, 3]), seed=0)
    am.partial_fit(x, y)
    before = snapshot(am)
    am.predict(x)
    am.predict_proba(x)
    assert_same_state(before, snapshot(am))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"variant": "sgd"}, "variant"),
        ({"loss": "hinge"}, "loss"),
        ({"readout": "ridge"}, "readout"),
        ({"mu": 0.0}, "mu"),
        ({"mu": float("nan")}, "mu"),
        ({"code_steps": -1}, "code_steps"),
        ({"code_steps": 1.5}, "code_steps"),
        ({"weight_steps": 0}, "weight_steps"),
        ({"memory_decay": 1.0}, "memory_decay"),
        ({"ridge": -1.0}, "ridge"),
        ({"code_momentum": 1.0}, "code_momentum"),
        ({"device": "tpu"}, "device"),
        ({"seed": "0"}, "seed"),
    ],
)
def test_hyperparameter_errors_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        OnlineAM(mlp([4, 8, 3]), **kwargs)


def test_cuda_request_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available on this machine")
    am = OnlineAM(mlp([4, 8, 3]), device="cuda")
    x, y = blobs()
    with pytest.raises(ValueError, match="CUDA is not available"):
        am.partial_fit(x, y)


def test_growth_keeps_everything_learned():
    x, y = blobs(k=3)
    am = OnlineAM(mlp([4, 8, 3]), variant="adam", readout="adam", seed=0)
    am.partial_fit(x, y)
    before = snapshot(am)
    am.grow_inputs(2)
    am.grow_outputs(1)
    after = snapshot(am)
    assert torch.equal(after["module.0.weight"][:, :4], before["module.0.weight"])
    fresh = after["module.0.weight"][:, 4:]  # drawn like an initialisation, from the learner's generator
    assert bool((fresh.abs() <= 1 / math.sqrt(8)).all()) and bool((fresh != 0).all())
    assert torch.equal(after["module.2.weight"][:3], before["module.2.weight"])
    assert torch.equal(after["adam.0.0.exp_avg_sq"][:, :4], before["adam.0.0.exp_avg_sq"])
    assert torch.equal(after["adam.out.1.exp_avg"][:3], before["adam.out.1.exp_avg"])
    x2 = torch.cat([x, torch.randn(len(x), 2)], dim=1)
    stats = am.partial_fit(x2, torch.full_like(y, 3))
    assert am.n_inputs == 6 and am.n_outputs == 4 and math.isfinite(stats["loss"])


@pytest.mark.parametrize("built", [True, False])
def test_growing_by_two_inputs_draws_what_growing_by_one_twice_does(built):
    x, y = blobs(k=3)
    ams = [OnlineAM(mlp([4, 8, 3]), variant="mem", seed=0) for _ in range(2)]
    for am in ams if built else []:
        am.partial_fit(x, y)
    ams[0].grow_inputs(2)
    ams[1].grow_inputs(1)
    ams[1].grow_inputs(1)
    w0, w1 = (am.module[0].weight for am in ams)
    assert torch.equal(w0, w1) and bool((w0[:, 4:] != 0).all())


def test_unseeded_learners_draw_their_own_generators():
    # a fresh torch.Generator starts from torch's default seed: every seed=None learner drew the same columns
    # for a late feature (and the same dropout masks)
    x, y = blobs(k=3)
    ams = [OnlineAM(mlp([4, 8, 3]), variant="mem", seed=None) for _ in range(2)]
    for am in ams:
        am.partial_fit(x, y)
        am.grow_inputs(1)
    a, b = (am.module[0].weight[:, 4] for am in ams)
    assert not torch.equal(a, b)


def test_memory_growth_keeps_statistics():
    x, y = blobs(k=3)
    am = OnlineAM(mlp([4, 8, 3]), variant="mem", seed=0)
    am.partial_fit(x, y)
    before = snapshot(am)
    am.grow_inputs(1)
    am.grow_outputs(2)
    after = snapshot(am)
    assert torch.equal(after["memory.0.A"][:5, :5], before["memory.0.A"])
    assert torch.equal(after["memory.out.B"][:3], before["memory.out.B"])
    assert torch.equal(after["memory.out.B"][3:], torch.zeros(2, 9))


def test_forget_and_runtime_memory_decay():
    x, y = blobs()
    am = OnlineAM(mlp([4, 8, 3]), seed=0)
    am.partial_fit(x, y)
    s = float(am.state_dict()["memory.0.S"])
    am.forget(0.5)
    assert float(am.state_dict()["memory.0.S"]) == pytest.approx(s / 2)
    am.memory_decay = 0.01
    assert am._updaters[0].decay == am._updaters[-1].decay == 0.01
    with pytest.raises(ValueError, match="memory_decay"):
        am.memory_decay = 2.0


@pytest.mark.parametrize(
    "conv",
    [
        lambda: nn.Conv2d(1, 2, 3, groups=1, padding="same"),
        lambda: nn.Conv2d(2, 2, 3, groups=2),
        lambda: nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"),
    ],
)
def test_mem_refuses_unsupported_convolutions_up_front(conv):
    layer = conv()
    seq = nn.Sequential(layer, nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))
    with pytest.raises(ValueError, match="Conv2d"):
        OnlineAM(seq, variant="mem")


def test_input_the_conv_network_cannot_take_is_a_value_error_and_changes_nothing():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        seq = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))
    am = OnlineAM(seq, variant="mem", seed=0)
    good = torch.randn(4, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"x has shape"):  # refused as the very first batch: nothing is built
        am.partial_fit(torch.randn(4, 1, 6, 6), torch.tensor([0, 1, 0, 1]))
    assert am.state_dict() == {}
    am.partial_fit(good, torch.tensor([0, 1, 0, 1]))
    before = snapshot(am)
    for bad in (torch.randn(4, 3, 4, 4), torch.randn(4, 1, 6, 6)):
        with pytest.raises(ValueError, match=r"x has shape"):
            am.partial_fit(bad, torch.tensor([0, 1, 0, 1]))
        with pytest.raises(ValueError, match=r"x has shape"):
            am.predict(bad)
    assert_same_state(before, snapshot(am))
