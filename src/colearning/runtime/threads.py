"""One thread per numeric call while learners run in parallel.

Learners in one process validate (and accept) on several worker threads at once. Left
alone, each BLAS (OpenBLAS, MKL) or PyTorch call starts its own team of threads and the
teams fight for the cores: on 2 busy cores an mnist-mlp proposal took 0.94 s instead of
0.10 s, and a Keras-on-torch training step 12 ms instead of 15 us. So
:class:`~colearning.core.pool.LocalPool` runs every call with BLAS limited to one
thread (:func:`one_blas_thread`; even a lone mnist-mlp proposal was no faster with two,
67 ms against 71 ms, and OpenBLAS threads spin when other processes hold the cores),
and each call of a parallel batch with one PyTorch thread (:func:`torch_threads`),
while a lone call, the proposer's training, gets every core for PyTorch. Nothing is
imported here: PyTorch is limited only if a learner imported it, BLAS only if
threadpoolctl (which scikit-learn brings) is installed.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_controllers: dict[int, Any] = {}


def _blas_controller() -> Any:
    """A cached threadpoolctl controller, rebuilt when new modules were imported (a
    framework loaded later may bring its own BLAS or OpenMP)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    key = len(sys.modules)
    with _lock:
        controller = _controllers.get(key)
        if controller is None:
            _controllers.clear()
            controller = _controllers[key] = ThreadpoolController()
    return controller


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Limit BLAS (OpenBLAS, MKL as threadpoolctl sees them) to one thread while the
    block runs; process-wide, so set by the thread that dispatches the calls.

    Each BLAS library is asked and set directly (``get_num_threads`` and
    ``set_num_threads`` of threadpoolctl's library controllers), and only one that is
    not at one thread already is changed and restored: a round of a thousand cheap
    calls enters this twice, and threadpoolctl's ``limit`` re-reads every library's
    whole description each time."""
    controller = _blas_controller()
    changed = []
    for lib in _blas_libraries(controller):
        threads = lib.get_num_threads()
        if threads is not None and threads != 1:
            lib.set_num_threads(1)
            changed.append((lib, threads))
    try:
        yield
    finally:
        for lib, threads in reversed(changed):
            lib.set_num_threads(threads)


def _blas_libraries(controller: Any) -> tuple[Any, ...]:
    if controller is None:
        return ()
    libraries = _blas_by_controller.get(id(controller))
    if libraries is None or libraries[0] is not controller:
        libraries = (
            controller,
            tuple(lib for lib in controller.lib_controllers if lib.user_api == "blas"),
        )
        _blas_by_controller.clear()
        _blas_by_controller[id(controller)] = libraries
    return libraries[1]


_blas_by_controller: dict[int, tuple[Any, tuple[Any, ...]]] = {}


def _all_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@contextmanager
def torch_threads(single: bool) -> Iterator[None]:
    """In the calling worker thread: one torch thread if ``single``, else every core.

    PyTorch's CPU thread count lives in each thread (OpenMP's settings are per thread
    once a thread has run parallel work), so it is set in the worker that runs the
    call, not by the thread that dispatches it.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    target = 1 if single else _all_cores()
    if target != before:
        torch.set_num_threads(target)
    try:
        yield
    finally:
        if target != before:
            torch.set_num_threads(before)
