"""The linear companion's array work runs on one BLAS thread (stream_am.estimators.blas_threads): a second thread
cannot speed its small products up, and one that spins between them takes a core from torch's threads."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from stream_am import AMClassifier
from stream_am.estimators import blas_threads
from stream_am.estimators import companion as companion_module
from stream_am.estimators.blas_threads import blas_thread_limit, one_blas_thread


def _blas_threads() -> set[int]:
    return {info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}


@pytest.fixture
def two_blas_threads():
    """BLAS libraries set to two threads for the test, as on a machine of two or more cores."""
    if not _blas_threads():
        pytest.skip("no BLAS library whose threads threadpoolctl controls")
    with threadpool_limits(2, user_api="blas"):
        assert _blas_threads() == {2}
        yield


def test_the_limit_holds_inside_and_the_setting_is_restored_after(two_blas_threads):
    @one_blas_thread
    def inside():
        return _blas_threads()

    assert inside() == {1}
    assert _blas_threads() == {2}
    with blas_thread_limit():
        assert _blas_threads() == {1}
    assert _blas_threads() == {2}

    @one_blas_thread
    def fails():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fails()
    assert _blas_threads() == {2}


def test_the_companions_block_solve_and_answers_run_on_one_blas_thread(two_blas_threads, monkeypatch):
    """Every call, but the answers for one row (whose products never take a second thread: no limit is paid)."""
    seen: dict[tuple[str, bool], set[int]] = {}
    for name in ("_solve", "_familiar", "_answer"):
        original = getattr(companion_module.LinearCompanion, name)

        def spy(self, *args, _original=original, _name=name):
            one_row = _name != "_solve" and args[0].shape[0] == 1
            seen.setdefault((_name, one_row), set()).update(_blas_threads())
            return _original(self, *args)

        monkeypatch.setattr(companion_module.LinearCompanion, name, spy)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(512, 4))
    y = (X[:, 0] > 0).astype(int)
    model = AMClassifier(hidden_sizes=(8,), batch_size=16, seed=0).partial_fit(X, y)
    assert model._companion is not None
    model._companion.scores = [-1.0, 0.0]  # trusted, so that it answers and reads the recent inputs
    model._companion.accuracy = [0.5, 1.0]
    model._companion._watch()
    model.predict(X[:64])
    model.predict(X[:1])
    assert seen == {("_solve", False): {1}, ("_familiar", False): {1}, ("_answer", False): {1},
                    ("_familiar", True): {2}, ("_answer", True): {2}}
    assert _blas_threads() == {2}


class _FakeBlas:
    """One process-wide thread count, as a BLAS library keeps it; ``limit`` saves it and sets the limit, and the
    limiter it returns restores what it saved (as threadpoolctl's does)."""

    def __init__(self) -> None:
        self.threads = 2

    def limit(self, limits: int):
        saved, self.threads = self.threads, limits
        blas = self

        class Limiter:
            def restore_original_limits(self) -> None:
                blas.threads = saved

        return Limiter()


def test_threads_that_overlap_restore_the_setting_when_the_last_one_leaves(monkeypatch):
    """The thread count is one setting for the process: a thread leaving while another is inside keeps the limit,
    and the last one out restores the setting from before the first one came in (two limiters, each restoring
    what it saw, would leave the other thread's limit in place for good)."""
    blas = _FakeBlas()
    monkeypatch.setattr(blas_threads, "_controller", lambda: blas)
    inside, leave_first, first_left = threading.Event(), threading.Event(), threading.Event()
    seen: list[int] = []

    def first():
        with blas_thread_limit():
            inside.set()
            leave_first.wait(10)
        first_left.set()

    thread = threading.Thread(target=first)
    thread.start()
    assert inside.wait(10) and blas.threads == 1
    with blas_thread_limit():  # entered while the first thread holds the limit
        leave_first.set()
        assert first_left.wait(10)
        seen.append(blas.threads)  # the first one left: still one thread for this one
    thread.join(10)
    assert seen == [1] and blas.threads == 2
    with blas_thread_limit(), blas_thread_limit():  # nested in one thread (a decorated method calling another)
        assert blas.threads == 1
    assert blas.threads == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_child_forked_while_a_thread_holds_the_limit_starts_unlimited_and_never_waits(monkeypatch):
    """A forked child has only the thread that forked: the parent's holders are not there and the lock may have
    been copied held (a fork landing inside another thread's enter or exit hung the child). The child starts
    with the setting from before the limit, no holder and a free lock."""
    blas = _FakeBlas()
    monkeypatch.setattr(blas_threads, "_controller", lambda: blas)
    inside, leave = threading.Event(), threading.Event()

    def hold():
        with blas_thread_limit():
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    assert inside.wait(10) and blas.threads == 1
    blas_threads._Limit.lock.acquire()  # as if the fork landed inside another thread's enter or exit
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status, never return into pytest
        ok = blas.threads == 2 and blas_threads._Limit.holders == 0
        if ok:
            with blas_thread_limit():  # would hang on the copied, held lock
                ok = blas.threads == 1
            ok = ok and blas.threads == 2
        os._exit(0 if ok else 1)
    blas_threads._Limit.lock.release()
    deadline = time.monotonic() + 60
    while not (done := os.waitpid(pid, os.WNOHANG))[0] and time.monotonic() < deadline:
        time.sleep(0.01)
    if not done[0]:  # the child hangs: end it, and fail rather than hang the suite
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    status = done[1]
    leave.set()
    thread.join(10)
    assert done[0] and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert blas.threads == 2 and blas_threads._Limit.holders == 0
