"""The class-clocked memory: a class ages only by its own samples; otherwise the plain memory's behaviour."""

import pytest
import torch
from helpers_engine import blobs, mlp
from torch import nn
from torch.nn import functional as F

from stream_am import OnlineAM
from stream_am.updaters import ClassMemoryUpdater, MemoryUpdater, Updater


def _pair(decay=0.01, d=3, k=2):
    torch.manual_seed(0)
    layer = nn.Linear(d, k)
    other = nn.Linear(d, k)
    other.load_state_dict(layer.state_dict())
    return (layer, ClassMemoryUpdater(layer, decay, 1e-2)), (other, MemoryUpdater(other, decay, 1e-2))


def _batch(label, n=16, d=3, K=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d, generator=g) + 3.0 * label
    y = torch.full((n,), label)
    return a, F.one_hot(y, K).float(), F.one_hot(y, K).float()


def test_an_absent_class_keeps_its_share_while_the_sample_clock_erases_it():
    (_, cls), (_, plain) = _pair(decay=0.01)
    a, c, labels = _batch(0)
    cls.fit(a, c, 16, labels=labels)
    plain.fit(a, c, 16)
    for i in range(40):  # 640 samples of class 1 only
        a, c, labels = _batch(1, seed=i + 1)
        cls.fit(a, c, 16, labels=labels)
        plain.fit(a, c, 16)
    assert cls.Sc is not None
    assert cls.Sc[0].item() == pytest.approx(16.0)  # class 0 has not aged at all
    share_cls = cls.Sc[0].item() / cls.Sc.sum().item()
    assert share_cls > 0.1
    # the plain memory keeps class 0's 16 rows at weight 0.99^640 ~ 0.002: B's column for class 0 is erased
    assert plain.B is not None and cls.B is not None
    assert plain.B[0, 0].item() < 1e-3 < 0.05 < cls.B[0, 0].item()


def test_when_every_class_keeps_coming_it_forgets_like_the_sample_clock():
    (_, cls), (_, plain) = _pair(decay=0.005)
    g = torch.Generator().manual_seed(1)
    for i in range(300):
        y = torch.randint(0, 2, (16,), generator=g)
        a = torch.randn(16, 3, generator=g) + 2.0 * y[:, None] + (0.01 * i)  # a slowly moving input
        onehot = F.one_hot(y, 2).float()
        cls.fit(a, onehot, 16, labels=onehot)
        plain.fit(a, onehot, 16)
    assert cls.A is not None and plain.A is not None
    torch.testing.assert_close(cls.A, plain.A, rtol=0.05, atol=0.05)
    assert cls.Sc is not None and cls.Sc.sum().item() == pytest.approx(plain.S, rel=0.15)


def test_statistics_add_up_over_shards_and_apply_equals_fit():
    (_, u), _ = _pair()
    (_, v), _ = _pair()
    assert isinstance(u, Updater)
    g = torch.Generator().manual_seed(0)
    a, y = torch.randn(12, 3, generator=g), torch.randint(0, 2, (12,), generator=g)
    onehot = F.one_hot(y, 2).float()
    parts = [u.statistics(a[:5], onehot[:5], 5, labels=onehot[:5]), u.statistics(a[5:], onehot[5:], 7,
                                                                                  labels=onehot[5:])]
    summed = [p + q for p, q in zip(*parts, strict=True)]
    for s, f in zip(summed, u.statistics(a, onehot, 12, labels=onehot), strict=True):
        torch.testing.assert_close(s, f)
    u.apply(summed, 12)
    v.fit(a, onehot, 12, labels=onehot)
    torch.testing.assert_close(u.layer.weight, v.layer.weight)
    with pytest.raises(ValueError, match="labels"):
        u.statistics(a, onehot, 12)


def test_state_round_trips_and_classes_and_inputs_grow():
    (layer, u), _ = _pair()
    a, c, labels = _batch(1)
    u.fit(a, c, 16, labels=labels)
    # a third class arrives: the layer gains an output, the labels a column
    with torch.no_grad():
        layer.weight = nn.Parameter(torch.cat([layer.weight, torch.zeros(1, 3)]))
        layer.bias = nn.Parameter(torch.cat([layer.bias, torch.zeros(1)]))
    u.grow_outputs(1)
    a, c, labels = _batch(2, K=3, seed=5)
    u.fit(a, c, 16, labels=labels)
    assert u.Mc is not None and u.Mc.shape == (3, 4 + 3, 4) and u.Sc is not None and u.Sc.tolist()[0] == 0.0
    state = {k: v.clone() for k, v in u.state_dict("m.").items()}
    other = ClassMemoryUpdater(nn.Linear(3, 3), 0.01, 1e-2)
    other.load_state_dict(state, "m.")
    assert other.Mc is not None and torch.equal(other.Mc, u.Mc)
    assert torch.equal(state["m.Ac"], u.Mc[:, :4]) and torch.equal(state["m.Bc"], u.Mc[:, 4:])
    with pytest.raises(ValueError, match="classes apart"):
        other.load_state_dict({k: v for k, v in state.items() if not k.endswith("c")}, "m.")
    before = u.Mc.clone()
    with torch.no_grad():
        layer.weight = nn.Parameter(torch.cat([layer.weight, torch.zeros(3, 2)], dim=1))
    u.grow_inputs(2)
    assert u.Mc.shape == (3, 6 + 3, 6)
    assert u.A is not None and torch.equal(u.Mc[:, :4, :4], before[:, :4, :4])  # A_c kept, padded
    assert torch.equal(u.Mc[:, 6:, :4], before[:, 4:, :4]) and not u.Mc[:, :, 4:].any()  # B_c kept, padded
    u.fit(torch.randn(16, 5), c, 16, labels=labels)
    assert torch.isfinite(layer.weight).all()


def test_online_am_with_the_class_clock_keeps_the_first_classes_of_a_class_incremental_stream():
    x, y = blobs(n=1200, d=4, k=4, seed=3)
    accuracy = {}
    for clock in ("sample", "class"):
        am = OnlineAM(mlp((4, 16, 4)), variant="mem", memory_clock=clock, memory_decay=0.01, seed=0)
        for task in ((0, 1), (2, 3)):  # 300 samples of 0-1, then 300 of 2-3: 0.99^300 ~ 0.05 for the first
            xs, ys = x[(y == task[0]) | (y == task[1])], y[(y == task[0]) | (y == task[1])]
            for i in range(0, len(ys), 16):
                am.partial_fit(xs[i : i + 16], ys[i : i + 16])
        first = (y == 0) | (y == 1)
        accuracy[clock] = (am.predict(x[first]).argmax(1) == y[first]).float().mean().item()
    assert accuracy["class"] > accuracy["sample"] + 0.2
    with pytest.raises(ValueError, match="memory_clock"):
        OnlineAM(mlp((4, 16, 4)), memory_clock="task")


def test_on_an_imbalanced_stream_class_weights_follow_the_class_frequencies():
    """A class seen one time in five keeps a fifth of the weight (not more: it ages on the stream's clock)."""
    (_, cls), (_, plain) = _pair(decay=0.002)
    g = torch.Generator().manual_seed(2)
    ratios = []
    for i in range(400):
        y = (torch.rand(32, generator=g) < 0.2).long()
        a = torch.randn(32, 3, generator=g) + 2.0 * y[:, None]
        onehot = F.one_hot(y, 2).float()
        cls.fit(a, onehot, 32, labels=onehot)
        plain.fit(a, onehot, 32)
        if i >= 200:  # the weights follow a window of about 500 samples: average their ratio over 6,400
            assert cls.Sc is not None
            ratios.append(cls.Sc[0].item() / cls.Sc[1].item())
    assert 3.0 < sum(ratios) / len(ratios) < 5.5
    assert cls.A is not None and plain.A is not None
    torch.testing.assert_close(cls.A, plain.A, rtol=0.1, atol=0.1)
