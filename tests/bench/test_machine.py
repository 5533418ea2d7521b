"""The machine-speed line the benchmarks print beside their figures."""

from __future__ import annotations

import math

from colearning.bench.collaboration import speed_table
from colearning.bench.machine import machine_speed, speed_line


def test_machine_speed_times_both_pieces_of_work():
    speed = machine_speed(repeats=3)
    assert set(speed) == {"interpreter_ms", "numpy_ms"}
    assert all(math.isfinite(v) and v > 0 for v in speed.values())
    line = speed_line(repeats=1)
    assert line.startswith("machine speed now") and "interpreter" in line and "numpy" in line
    given = speed_line({"interpreter_ms": 12.345, "numpy_ms": 6.789})
    assert "interpreter 12.35 ms, numpy 6.79 ms" in given


def test_the_speed_table_says_how_fast_the_machine_was():
    results = {
        "sizes": [5],
        "ours": {
            "single": {
                "5": {
                    "round_seconds": [1.0, 0.001, 0.001],
                    "first_round_end": 0.3,
                    "peak_rss_mib": 40,
                }
            }
        },
        "flower": {},
        "machine_speed": [
            {"interpreter_ms": 10.0, "numpy_ms": 5.0},
            {"interpreter_ms": 12.5, "numpy_ms": 6.0},
        ],
    }
    table = speed_table(results)
    assert "interpreter 10.00 / 12.50 ms, numpy 5.00 / 6.00 ms" in table
    del results["machine_speed"]
    assert "Machine speed" not in speed_table(results)  # results saved before it existed
