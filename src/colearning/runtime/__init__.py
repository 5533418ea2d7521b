"""Process-level tuning shared by every place that runs learner calls: the in-process
pool, a learner server, a Ray actor.

- :mod:`colearning.runtime.threads`: one BLAS thread per call while calls run in
  parallel; PyTorch threads set in the worker that runs each call.
- :mod:`colearning.runtime.allocator`: one glibc malloc arena for processes that run
  learners on worker threads.

Nothing here imports an ML framework or anything else of colearning.
"""

from colearning.runtime.allocator import share_malloc_arena
from colearning.runtime.threads import one_blas_thread, torch_threads

__all__ = ["one_blas_thread", "share_malloc_arena", "torch_threads"]
