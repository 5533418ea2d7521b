"""One thread per numeric call while learners run in parallel.

Learners in one process validate (and accept) on several worker threads at once. Left
alone, each BLAS (OpenBLAS, MKL) or PyTorch call starts its own team of threads and the
teams fight for the cores: on 2 busy cores an mnist-mlp proposal took 0.94 s instead of
0.10 s, and a Keras-on-torch training step 12 ms instead of 15 us. So
:class:`~colearning.core.pool.LocalPool` runs every batch of parallel calls inside
:func:`parallel_section`, which limits BLAS and PyTorch to one thread per call and
restores the settings afterwards; a lone call (the proposer's training) keeps every
core. Nothing is imported here: PyTorch is limited only if a learner imported it, BLAS
only if threadpoolctl (which scikit-learn brings) is installed.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
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
def parallel_section() -> Iterator[None]:
    """Limit BLAS and PyTorch intra-op threads to one while the block runs."""
    torch = sys.modules.get("torch")
    torch_threads = torch.get_num_threads() if torch is not None else None
    controller = _blas_controller()
    limits = controller.limit(limits=1, user_api="blas") if controller else nullcontext()
    try:
        if torch is not None:
            torch.set_num_threads(1)
        with limits:
            yield
    finally:
        if torch is not None and torch_threads is not None:
            torch.set_num_threads(torch_threads)
