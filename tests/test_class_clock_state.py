"""A class-clocked memory's state as it is copied, pickled, saved and loaded, and its rarer paths: a loaded
memory (or a Conv2d one, whose waiting rows are counted on the device) giving back the share of a class
above every waiting row's, and a CPU memory whose clock cannot step on the host."""

import copy
import pickle

import torch
from torch import nn
from torch.nn import functional as F

from stream_am import OnlineAM
from stream_am.estimators import build_mlp
from stream_am.updaters import ClassMemoryUpdater


def _linear_batch(labels, K, g, d=3, m=2):
    y = torch.tensor(labels)
    a = torch.randn(len(y), d, generator=g) + y[:, None]
    return a, torch.randn(len(y), m, generator=g), F.one_hot(y, K).float()


def test_a_loaded_memory_steps_on_classes_above_those_of_its_waiting_rows_as_the_original():
    K, g = 4, torch.Generator().manual_seed(0)
    stream = [_linear_batch([0, 1, 2, 3] * 256, K, g)]  # 1,024 rows: a pass, nothing waits
    stream += [_linear_batch([1] * 8, K, g) for _ in range(10)] + [_linear_batch([0, 0], K, g)]
    after = [_linear_batch(labels, K, g) for labels in ([0, 3, 0, 3], [2, 3], [1, 2, 3, 3])]
    torch.manual_seed(0)
    u = ClassMemoryUpdater(nn.Linear(3, 2), 0.01, 1e-2)
    for a, c, onehot in stream:
        u.fit(a, c, a.shape[0], labels=onehot)
    loaded = ClassMemoryUpdater(nn.Linear(3, 2), 0.01, 1e-2)
    loaded.load_state_dict({k: v.clone() for k, v in u.state_dict("m.").items()}, "m.")
    loaded.layer.load_state_dict(u.layer.state_dict())
    loaded.n_updates = u.n_updates
    for a, c, onehot in after:  # the first ages classes 0 and 3; only 0 and 1 have waiting rows
        u.fit(a, c, a.shape[0], labels=onehot)
        loaded.fit(a, c, a.shape[0], labels=onehot)
    assert u.T is not None and loaded.T is not None
    assert torch.equal(loaded.T, u.T) and torch.equal(loaded.layer.weight, u.layer.weight)


def test_a_conv_memory_gives_a_class_above_its_waiting_rows_its_share_back():
    """Conv2d rows (25 per sample) are counted on the device; the share of class 5 is read from its sums."""
    K, g = 6, torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    u = ClassMemoryUpdater(nn.Conv2d(2, 3, 3, padding=1), 0.01, 1e-2)

    def step(labels):
        y = torch.tensor(labels)
        x = torch.randn(len(y), 2, 5, 5, generator=g) + y[:, None, None, None]
        u.fit(x, torch.randn(len(y), 3, 5, 5, generator=g), len(y), labels=F.one_hot(y, K).float())

    step(list(range(K)) * 7)  # 1,050 rows: a pass
    for labels in [[1] * 4] * 3 + [[0], [0, 5], [3, 5, 1]]:
        step(labels)
    assert u.T is not None and u.Vc is not None and u.clock.scale is not None
    T = u.T.clone()
    u._pass()  # T recomputed from the classes' sums: what it was kept at, step by step
    torch.testing.assert_close(T, u.T, rtol=1e-5, atol=1e-5)


def _stream(n_batches, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n_batches):
        y = torch.randint(0, 2 if i < n_batches // 2 else 4, (16,), generator=g)  # classes 2, 3 come late
        out.append((torch.randn(16, 6, generator=g) + y[:, None], y))
    return out


def test_a_learner_with_class_clocked_memories_deep_copies_and_pickles_and_each_copy_continues_alone():
    am = OnlineAM(build_mlp(6, 4, (8,), seed=0), variant="mem", memory_decay=0.02, seed=0)
    stream = _stream(40)
    for x, y in stream[:25]:
        am.partial_fit(x, y)
    copies = [copy.deepcopy(am), pickle.loads(pickle.dumps(am))]
    for x, y in stream[25:]:
        for learner in [am, *copies]:
            learner.partial_fit(x, y)
    for other in copies:  # each copy stepped its own clock (none shares the original's memory)
        for p, q in zip(am.module.parameters(), other.module.parameters(), strict=True):
            assert torch.equal(p, q)


def test_a_state_dict_taken_with_one_waiting_row_keeps_that_row():
    g = torch.Generator().manual_seed(0)

    def batch(n):
        y = torch.randint(0, 3, (n,), generator=g)
        return torch.randn(n, 10, generator=g) + y[:, None], y

    am = OnlineAM(build_mlp(10, 3, (16,), seed=0), variant="mem", memory_decay=0.01, seed=0)
    am.partial_fit(*batch(1024))  # a pass: nothing waits
    am.partial_fit(*batch(1))  # one waiting row
    sd = am.state_dict()
    kept = {k: v.clone() for k, v in sd.items() if "pending" in k}
    assert kept
    am.partial_fit(*batch(1023))  # a pass: the buffers are emptied, then written from their start
    am.partial_fit(*batch(1))
    assert all(torch.equal(sd[k], v) for k, v in kept.items())


def test_a_cpu_clock_that_cannot_step_on_the_host_passes_every_step():
    """float16 on the CPU: no host views, so T is recomputed from the classes' sums at every step."""
    K, g = 3, torch.Generator().manual_seed(0)
    u = ClassMemoryUpdater(nn.Linear(3, 2).to(torch.float16), 0.05, 1e-2)
    u._solve = lambda: None  # type: ignore[method-assign]  # (no half-precision Cholesky on the CPU)
    for labels in ([0, 1, 2, 0], [0, 0], [1, 1, 0], [2]):
        a, c, onehot = _linear_batch(labels, K, g)
        u.fit(a.half(), c.half(), len(labels), labels=onehot.half())
        assert not u.clock.hosted and len(u._pending) == 0
    assert u.T is not None and u.Vc is not None and u.clock.scale is not None
    expected = (u.clock.scale[:, None, None].float() * u.Vc.float()).sum(0)
    torch.testing.assert_close(u.T.float(), expected, rtol=1e-2, atol=1e-2)


def test_labels_given_one_hot_with_weights_count_as_weights():
    K, g = 2, torch.Generator().manual_seed(0)
    u = ClassMemoryUpdater(nn.Linear(3, 2), 0.01, 1e-2)
    a, c, onehot = _linear_batch([0, 1, 1, 1], K, g)
    u.fit(a, c, 4, labels=0.5 * onehot)
    assert u.Sc is not None and u.Sc.tolist() == [0.5, 1.5]


def test_a_loaded_learner_folds_its_clock_when_the_original_does_on_the_device_path(monkeypatch):
    """Found by a review: on a GPU the clock bounds its smallest scale by the product of every step's factor (no
    device-to-host copy), which a class absent from some steps does not follow; a loaded clock took the smallest
    scale as its bound, so it folded the scale into the sums later than the original, whose weights it then left.
    The device path is run on the CPU here (no host views)."""
    monkeypatch.setattr("stream_am.updaters.class_clock.ClassClock._host_views", lambda self: None)
    g = torch.Generator().manual_seed(0)

    def learner(seed: int) -> OnlineAM:
        torch.manual_seed(seed)
        return OnlineAM(nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 3)), variant="mem",
                        memory_decay=0.02, seed=seed)

    def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:  # class 0 alone, then class 1 alone: 0 stops aging
        return torch.randn(8, 3, generator=g), torch.full((8,), int(step >= 30))

    am = learner(0)
    for step in range(45):
        am.partial_fit(*batch(step))
    assert not am._updaters[0].clock.hosted and am._updaters[0].clock.folds == 0
    loaded = learner(1)
    loaded.load_state_dict({k: v.clone() for k, v in am.state_dict().items()})
    for step in range(45, 130):  # the clock's bound falls below LOWEST_SCALE, and both fold, at step 113
        x, y = batch(step)
        am.partial_fit(x, y)
        loaded.partial_fit(x, y)
        assert torch.equal(am.module[0].weight, loaded.module[0].weight), step
    assert am._updaters[0].clock.folds == loaded._updaters[0].clock.folds == 1
