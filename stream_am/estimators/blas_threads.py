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
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from threadpoolctl import ThreadpoolController

__all__ = ["one_blas_thread", "blas_thread_limit"]

P = ParamSpec("P")
R = TypeVar("R")


@functools.cache
def _controller() -> ThreadpoolController:
    """The BLAS libraries loaded by then (numpy's and scipy's: the companion imports both before it runs)."""
    return ThreadpoolController().select(user_api="blas")


def blas_thread_limit() -> Any:
    """A context in which the BLAS libraries run on one thread (module docstring)."""
    return _controller().limit(limits=1)


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
