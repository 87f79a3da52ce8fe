"""One BLAS thread for the small array work of the linear companion (:mod:`stream_am.estimators.companion`).

numpy and scipy call OpenBLAS (or another BLAS), which splits a product over every core once its size passes a
small threshold (the companion's products of a block's rows pass OpenBLAS's), and whose worker threads then
wait for more work by spinning. The companion's products are too small to gain from a second thread, and a
thread that spins between them takes a core from the network's own step (torch's threads), from a server's
other threads and from the machine: the companion's CPU time, and its wall time beside torch's threads, were
several times what they are with one BLAS thread (``benchmarks/README.md``, "One BLAS thread for the
companion"). The decorated methods therefore run with one BLAS thread, through ``threadpoolctl`` (the library
scikit-learn uses for the same purpose); the limit holds while they run, and the process's own setting is
restored after.

The controller that finds the loaded BLAS libraries is built once, at the first call: finding them reads the
process's loaded libraries, which costs far more than applying a limit with them.

Known limit: OpenBLAS ignores a thread count set from a thread other than the main one once the main thread has
set one itself (through threadpoolctl, as some scikit-learn functions do); a companion learning in such a thread
then runs its larger products on every core again (measured in ``benchmarks/README.md``). A server's writer is
such a thread; stream_am itself never sets BLAS's thread count from the main thread. And the count is one
setting for the process: a caller's own limit (threadpoolctl's) that starts before the companion's and ends
while it holds leaves the process, once both end, at the caller's limit; the two cannot see each other.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from threadpoolctl import ThreadpoolController

__all__ = ["one_blas_thread", "blas_thread_limit"]

P = ParamSpec("P")
R = TypeVar("R")


@functools.cache
def _controller() -> ThreadpoolController:
    """The BLAS libraries loaded by then (numpy's and scipy's: the companion imports both before it runs)."""
    return ThreadpoolController().select(user_api="blas")


class _Limit:
    """The process's one BLAS limit, held while any thread is inside :func:`blas_thread_limit` (a count under a
    lock): BLAS's thread count is one setting for the whole process, so two threads that each saved and restored
    it could restore the other's limit for good (a server's writer learning while a request is answered)."""

    lock = threading.Lock()
    holders = 0
    limiter: Any = None

    @classmethod
    def after_fork(cls) -> None:
        """In a forked child, which has only the thread that forked: the holders that were inside in the parent
        are not there, and the lock may have been copied held. Restore the setting they held, start unlimited."""
        limiter, cls.lock, cls.holders, cls.limiter = cls.limiter, threading.Lock(), 0, None
        if limiter is not None:
            limiter.restore_original_limits()


if hasattr(os, "register_at_fork"):  # (POSIX)
    os.register_at_fork(after_in_child=_Limit.after_fork)


@contextmanager
def blas_thread_limit() -> Iterator[None]:
    """A context in which the BLAS libraries run on one thread; the setting before the first thread entered is
    restored when the last one leaves (module docstring)."""
    with _Limit.lock:
        if _Limit.holders == 0:
            _Limit.limiter = _controller().limit(limits=1)
        _Limit.holders += 1
    try:
        yield
    finally:
        with _Limit.lock:
            _Limit.holders -= 1
            if _Limit.holders == 0:
                _Limit.limiter.restore_original_limits()
                _Limit.limiter = None


def one_blas_thread(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn``, run with one BLAS thread (module docstring).

    Examples
    --------
    >>> from threadpoolctl import threadpool_info
    >>> @one_blas_thread
    ... def threads():
    ...     return {info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}
    >>> threads() <= {1}
    True
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with blas_thread_limit():
            return fn(*args, **kwargs)

    return wrapper
