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
    parts = [
        u.statistics(a[:5], onehot[:5], 5, labels=onehot[:5]),
        u.statistics(a[5:], onehot[5:], 7, labels=onehot[5:]),
    ]
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
    assert other.Vc is not None and u.Vc is not None and torch.equal(other.Vc, u.Vc)  # exactly: it continues alike
    assert other.Mc is not None and torch.equal(other.Mc, u.Mc)
    with pytest.raises(ValueError, match="classes apart"):
        other.load_state_dict({k: v for k, v in state.items() if k[2:] in ("A", "B", "S", "updates")}, "m.")
    # a state saved with each class's means (Ac, Bc) loads to the same memory, up to rounding
    legacy = {k: v for k, v in state.items() if k[2:] in ("A", "B", "S", "updates", "Sc")}  # as first saved
    legacy.update({"m.Ac": u.Mc[:, :4], "m.Bc": u.Mc[:, 4:]})
    old = ClassMemoryUpdater(nn.Linear(3, 3), 0.01, 1e-2)
    old.load_state_dict(legacy, "m.")
    assert old.Mc is not None and old.A is not None and u.A is not None
    torch.testing.assert_close(old.Mc, u.Mc)
    torch.testing.assert_close(old.A, u.A)
    before = u.Mc.clone()
    with torch.no_grad():
        layer.weight = nn.Parameter(torch.cat([layer.weight, torch.zeros(3, 2)], dim=1))
    u.grow_inputs(2)
    assert u.Mc.shape == (3, 6 + 3, 6)
    assert u.A is not None and torch.equal(u.Mc[:, :4, :4], before[:, :4, :4])  # A_c kept, padded
    assert torch.equal(u.Mc[:, 6:, :4], before[:, 4:, :4]) and not u.Mc[:, :, 4:].any()  # B_c kept, padded
    _assert_sum_of_classes(u)  # T, grown beside the classes' sums and the waiting rows, still their sum
    u.fit(torch.randn(16, 5), c, 16, labels=labels)
    assert torch.isfinite(layer.weight).all()
    _assert_sum_of_classes(u)


def _assert_sum_of_classes(u):
    """The memory's A and B (the means of T, kept step by step) equal the classes' means weighted by their
    weights (from the stored sums and the waiting rows)."""
    assert u.Mc is not None and u.Sc is not None and u.A is not None and u.B is not None
    K = u.Mc.shape[0]
    M = (u.Mc * u.Sc[:K, None, None]).sum(0) / u.Sc.sum()
    torch.testing.assert_close(M, torch.cat([u.A, u.B]), rtol=1e-4, atol=1e-5)


def test_a_convolution_memory_weighs_each_image_patch_by_one_over_the_patches():
    """Rows of a Conv2d are image patches, each of weight 1 / patches: T, the classes' sums and the waiting rows
    agree, and the class weights count samples."""
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    u = ClassMemoryUpdater(conv, 0.01, 1e-2)
    g = torch.Generator().manual_seed(1)
    for i in range(11):
        y = torch.randint(0, 3 if i < 3 else 2, (4,), generator=g)
        x = torch.randn(4, 2, 5, 5, generator=g) + y[:, None, None, None]
        u.fit(x, torch.randn(4, 3, 5, 5, generator=g), 4, labels=F.one_hot(y, 3).float())
        if i == 9:  # 1,000 patches waiting; the next step passes
            assert len(u._pending) == 10 * 4 * 25 and u.Sc is not None
            assert 30.0 < float(u.Sc.sum()) < 40.0  # 40 samples (aged), not 1,000 patches
            _assert_sum_of_classes(u)
    assert len(u._pending) == 0
    _assert_sum_of_classes(u)
    assert torch.isfinite(conv.weight).all()


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


def _reference(decay, batches, K):
    """The class clock written out, in float64: each class's weighted sums aged by (1 - decay)^n in a batch of
    n samples that holds the class, kept in one that does not."""
    S = torch.zeros(K, dtype=torch.float64)
    U = None
    for a, c, onehot in batches:
        a1 = torch.cat([torch.ones(a.shape[0], 1), a], 1).double()
        k = onehot.double().sum(0)
        factor = torch.where(k > 0, (1 - decay) ** a.shape[0], 1.0)
        inc = torch.einsum("nk,ni,nj->kij", onehot.double(), a1, torch.cat([a1, c.double()], 1))
        U = inc if U is None else U * factor[:, None, None] + inc
        S = S * factor + k
    assert U is not None
    M = U.sum(0) / S.sum()
    d = a1.shape[1]
    return M[:, :d], M[:, d:].T


@pytest.mark.parametrize("d", [3, 130])  # one product over all classes; rows grouped by class
def test_lazily_scaled_sums_equal_the_class_clock_written_out_through_folds_of_the_scale(d):
    """With a fast decay the lazy scale falls below 1e-8 within the stream and is folded into the sums."""
    K, decay = 3, 0.05
    g = torch.Generator().manual_seed(4)
    batches = []
    for i in range(60):
        y = torch.randint(0, 2 if i < 30 else K, (8,), generator=g)  # class 2 arrives late
        onehot = F.one_hot(y, K).float()
        batches.append((torch.randn(8, d, generator=g) + y[:, None], onehot.clone(), onehot))
    u = ClassMemoryUpdater(nn.Linear(d, K), decay, 1e-2)
    for a, c, onehot in batches:
        u.fit(a, c, 8, labels=onehot)
    assert u.clock.folds > 0
    A, B = _reference(decay, batches, K)
    assert u.A is not None and u.B is not None
    torch.testing.assert_close(u.A.double(), A, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(u.B.double(), B, rtol=1e-4, atol=1e-5)


def test_memories_of_a_learner_share_one_clock_that_moves_once_per_step():
    from stream_am.updaters import ClassClock

    am = OnlineAM(mlp((4, 8, 8, 3)), variant="mem", memory_clock="class", memory_decay=0.05, seed=0)
    x, y = blobs(n=64, d=4, k=3, seed=1)
    once = ClassClock()
    for step, i in enumerate(range(0, 64, 16)):
        am.partial_fit(x[i : i + 16], y[i : i + 16])
        once.advance(F.one_hot(y[i : i + 16], 3).float().sum(0), 16, 0.05, step)
    memories = [u for u in am._updaters if isinstance(u, ClassMemoryUpdater)]
    assert len(memories) == 3 and all(u.clock is memories[0].clock for u in memories)
    S, expected = memories[0].clock.S, once.S
    assert S is not None and expected is not None and float(expected.max()) < 0.8 * 64 / 3  # it aged
    torch.testing.assert_close(S, expected)


def test_the_host_and_device_arithmetic_of_the_clock_agree():
    from stream_am.updaters import ClassClock

    host, device = ClassClock(), ClassClock()
    g = torch.Generator().manual_seed(5)
    for step in range(50):
        k = F.one_hot(torch.randint(0, 4, (16,), generator=g), 4).float().sum(0)
        host.advance(k, 16, 0.005, step)
        device._grow(4, k)
        device.factor = (1 - 0.005) ** 16
        device._advance_device(k)
    assert host.folds == 0 and host.scale is not None and float(host.scale.min()) < 0.5  # it aged, unfolded
    for a, b in ((host.S, device.S), (host.scale, device.scale)):
        assert a is not None and b is not None
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("d", [3, 130])  # one product over all classes, and rows grouped by class
@pytest.mark.parametrize("every", [1, 3])
def test_rows_wait_for_a_pass_while_the_sum_of_the_classes_is_kept_current(d, every, monkeypatch):
    """Between passes over the classes' sums (every FLUSH_ROWS rows) T is aged and added to step by step, by
    the classes a step aged or by those it kept, whichever is cheaper: on a class-incremental stream (both
    kinds of step) it equals the class clock written out; a state saved between passes continues bit for bit."""
    from stream_am.updaters import class_memory

    monkeypatch.setattr(class_memory, "FLUSH_ROWS", 256)  # a pass within this short stream
    K, decay, g = 4, 0.01, torch.Generator().manual_seed(4)
    tasks = [(0, 1)] * 12 + [(2,)] * 12 + [(3, 0)] * 12 + [(0, 1, 2, 3)] * 12  # 48 batches of 12 rows
    batches = []
    for task in tasks:
        y = torch.tensor(task)[torch.randint(0, len(task), (12,), generator=g)]
        onehot = F.one_hot(y, K).float()
        batches.append((torch.randn(12, d, generator=g) + y[:, None], onehot.clone(), onehot))
    layers = [nn.Linear(d, K) for _ in range(2)]
    u, copy = (ClassMemoryUpdater(layer, decay, 1e-2, every) for layer in layers)
    for i, (a, c, onehot) in enumerate(batches):
        u.fit(a, c, 12, labels=onehot)
        if i == 30:  # 31 * 12 = 372 rows: one pass at 264, 108 rows waiting
            assert len(u._pending) == 31 * 12 - 22 * 12 < 256
            state = {k: v.clone() for k, v in u.state_dict("m.").items()}
            copy.load_state_dict(state, "m.")
            copy.layer.load_state_dict(u.layer.state_dict())
            assert len(copy._pending) == len(u._pending) and torch.equal(copy.T, u.T)
        if i > 30:
            copy.fit(a, c, 12, labels=onehot)
    assert torch.equal(copy.layer.weight, u.layer.weight) and torch.equal(copy.T, u.T)
    A, B = _reference(decay, batches, K)
    assert u.A is not None and u.B is not None
    torch.testing.assert_close(u.A.double(), A, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(u.B.double(), B, rtol=1e-4, atol=1e-5)
    assert u.Mc is not None and len(u._pending)  # the classes' means, read with the rows still waiting
    torch.testing.assert_close((u.Mc * u.Sc[:, None, None]).sum(0).double() / u.Sc.sum(), torch.cat([A, B]).double(),
                               rtol=1e-4, atol=1e-5)
    bad = dict(state, **{"m.pending_classes": torch.full_like(state["m.pending_classes"], K)})
    with pytest.raises(ValueError, match="pending_classes"):
        ClassMemoryUpdater(nn.Linear(d, K), decay, 1e-2).load_state_dict(bad, "m.")


def test_folds_recompute_the_sum_of_the_classes_so_rounding_does_not_build_up():
    """With a fast decay the lazy scale is folded long before a window of rows fills: each fold recomputes T
    (an outlier taken off by subtraction would otherwise stay in T as rounding error)."""
    K, d, decay = 50, 6, 0.2
    g = torch.Generator().manual_seed(0)
    u = ClassMemoryUpdater(nn.Linear(d, 4), decay, 1e-2)
    U = torch.zeros(K, d + 1, d + 5, dtype=torch.float64)
    S = torch.zeros(K, dtype=torch.float64)
    for i in range(1500):
        y = i if i < 48 else 48 + i % 2  # 48 classes held, then two alternate, one sample a step
        a = (torch.randn(1, d, generator=g) + 1.0) * (300.0 if i % 500 == 250 else 1.0)  # an outlier now and then
        c = torch.randn(1, 4, generator=g)
        u.fit(a, c, 1, labels=F.one_hot(torch.tensor([y]), K).float())
        a1 = torch.cat([torch.ones(1, 1), a], 1).double()
        U[y] = U[y] * (1 - decay) + a1.T @ torch.cat([a1, c.double()], 1)
        S[y] = S[y] * (1 - decay) + 1
    assert u.clock.folds > 5 and u.A is not None
    A_ref = U.sum(0)[:, : d + 1] / S.sum()
    assert float((u.A.double() - A_ref).abs().max()) < 1e-5 * float(A_ref.abs().max())


def test_a_weight_that_underflows_to_zero_is_forgotten_not_divided_by():
    u = ClassMemoryUpdater(nn.Linear(3, 2), 0.5, 1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(2):  # 0.5 ** 200 underflows: the first batch's weight is 0, the memory holds the second
        onehot = F.one_hot(torch.randint(0, 2, (200,), generator=g), 2).float()
        u.fit(torch.randn(200, 3, generator=g), onehot, 200, labels=onehot)
    assert u.Sc is not None and float(u.Sc.sum()) == pytest.approx(200.0)
    u.forget(1e-46)  # a scale that underflows to 0 here too
    onehot = F.one_hot(torch.arange(8) % 2, 2).float()
    u.fit(torch.randn(8, 3, generator=g), onehot, 8, labels=onehot)
    assert torch.isfinite(u.layer.weight).all() and float(u.Sc.sum()) == pytest.approx(8.0, rel=1e-3)
    with pytest.raises(ValueError, match="labels have 1 classes"):
        u.fit(torch.randn(8, 3), torch.ones(8, 2), 8, labels=torch.ones(8, 1))


@pytest.mark.parametrize("key, value, match", [
    ("memory.out.pending_classes", lambda t: torch.full_like(t, 7), "pending_classes"),
    ("memory.out.Sc", lambda t: torch.full_like(t, float("nan")), "memory.out.Sc"),
    ("memory.out.scale", lambda t: torch.zeros_like(t), "memory.out.scale"),
    ("memory.0.pending_codes", None, "pending"),
])
def test_a_learner_refusing_a_state_keeps_its_own(key, value, match):
    """A state whose class-clocked memory refuses one of its tensors (checked as the memory loads it) leaves a
    trained learner as it was, and an untrained one untrained."""
    x, y = blobs(n=96, d=4, k=3, seed=2)
    am = OnlineAM(mlp((4, 8, 3)), variant="mem", seed=0)
    for i in range(0, 96, 16):
        am.partial_fit(x[i : i + 16], y[i : i + 16])
    before = {k: v.clone() for k, v in am.state_dict().items()}
    assert key in before
    bad = dict(before)
    if value is None:
        del bad[key]
    else:
        bad[key] = value(before[key])
    fresh = OnlineAM(mlp((4, 8, 3)), variant="mem", seed=0)
    weights = {k: v.clone() for k, v in fresh.module.state_dict().items()}
    for learner in (am, fresh):
        with pytest.raises(ValueError, match=match):
            learner.load_state_dict(bad)
    after = am.state_dict()
    assert set(after) == set(before) and all(torch.equal(after[k], before[k]) for k in before)
    assert fresh.variants_ == [] and all(torch.equal(fresh.module.state_dict()[k], v) for k, v in weights.items())
    am.partial_fit(x[:16], y[:16])  # and it goes on learning


@pytest.mark.parametrize("labels", ["balanced", "one class", "two of fifty"])
def test_waiting_rows_add_into_the_classes_sums_the_same_however_grouped(labels):
    """A pass groups the waiting rows by class (padded to the longest group, or one product per class when
    padding would more than double them: a class-incremental window); every way gives the product over all
    classes, and a kept flush leaves the rows waiting."""
    from stream_am.updaters.pending import PendingRows

    g = torch.Generator().manual_seed(7)
    K, d, m, n = 50, 9, 4, 300
    classes = {"balanced": torch.arange(n) % K, "one class": torch.full((n,), 3),
               "two of fifty": torch.tensor([7, 41])[torch.randint(0, 2, (n,), generator=g)]}[labels]
    rows, weights = torch.randn(n, d + m, generator=g, dtype=torch.float64), torch.rand(n, generator=g).double()
    sums = {}
    for grouped in (True, False):
        pending = PendingRows()
        for i in range(0, n, 64):  # added over several steps
            pending.add(rows[i : i + 64], classes[i : i + 64], weights[i : i + 64])
        kept = pending.flush_into(torch.zeros(K, d, d + m, dtype=torch.float64), d, grouped, keep=True)
        assert len(pending) == n
        sums[grouped] = pending.flush_into(torch.zeros(K, d, d + m, dtype=torch.float64), d, grouped)
        assert len(pending) == 0 and torch.equal(kept, sums[grouped])
    torch.testing.assert_close(sums[True], sums[False])
    expected = torch.zeros(K, d, d + m, dtype=torch.float64)
    for c in classes.unique().tolist():
        r, w = rows[classes == c], weights[classes == c]
        expected[c] = (r[:, :d] * w[:, None]).T @ r
    torch.testing.assert_close(sums[True], expected)
