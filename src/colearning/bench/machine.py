"""How fast this machine is right now, for benchmarks to print beside their figures.

The project's 2-core machine does not always run at one speed: the same code has taken
two to three times as long in one hour as in another, with nothing else running and
its CPU seconds grown by the same factor. A figure in milliseconds therefore says
little without the speed it was measured at. :func:`speed_line` times two fixed pieces
of work, the kind each figure depends on:

- *interpreter*: a loop of Python calls, attribute reads and small objects, the work a
  round's overhead is made of;
- *numpy*: a single-threaded 256 x 256 float64 matrix product, the kind of work a
  learner's compute is made of.

Each is the median of several repetitions; lower is faster. Two runs whose
*interpreter* figures differ by a factor of two have overheads that differ by about
that factor, whatever the code did.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class _Item:
    key: str
    value: float


def _interpreter_work() -> float:
    total = 0.0
    for i in range(20_000):
        item = _Item("k", float(i))
        total += item.value if item.key else 0.0
    return total


def _numpy_work() -> float:
    import numpy as np
    from threadpoolctl import threadpool_limits

    a = np.linspace(0.0, 1.0, 256 * 256).reshape(256, 256)
    with threadpool_limits(1):
        for _ in range(8):
            b = a @ a
    return float(b[0, 0])


def median_ms(work: Callable[[], object], repeats: int) -> float:
    """Median milliseconds of ``repeats`` calls of ``work``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def machine_speed(repeats: int = 7) -> dict[str, float]:
    """Milliseconds for the two fixed pieces of work (medians of ``repeats``)."""
    _interpreter_work()  # warm
    return {
        "interpreter_ms": median_ms(_interpreter_work, repeats),
        "numpy_ms": median_ms(_numpy_work, repeats),
    }


def speed_line(speed: Mapping[str, float] | None = None, repeats: int = 7) -> str:
    """One line for a benchmark's output: ``speed`` (from :func:`machine_speed`), or the
    machine's speed measured now."""
    if speed is None:
        speed = machine_speed(repeats)
    return (
        f"machine speed now (colearning.bench.machine; lower is faster): interpreter "
        f"{speed['interpreter_ms']:.2f} ms, numpy {speed['numpy_ms']:.2f} ms"
    )
