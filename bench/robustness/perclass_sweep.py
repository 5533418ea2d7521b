"""How the per-class vote check (``vote+perclass``: PerClassVoter) depends on its
settings: the recall ``tolerance`` a class may lose, the ``min_rows`` below which a
class of a voter's vote set is skipped, and ``min_right`` (a class is skipped too while
the current model classifies fewer of its vote rows right).

Plays the vote and the per-class voters under each setting on the partition files of
a ``colearn bench robustness`` results directory (the same cells, judge and seeds), at
0% and one malicious share of ``label-flip`` and ``backdoor``, and writes
``OUT/sweep.md`` and ``OUT/sweep.json``. The bench's column plays the setting of
``robustness.PERCLASS_TOLERANCE``, ``PERCLASS_MIN_ROWS`` and ``PERCLASS_MIN_RIGHT``.

    OMP_NUM_THREADS=1 .venv/bin/python bench/robustness/perclass_sweep.py \
        bench/robustness/results-perclass --seeds 0 --jobs 2 \
        --settings 0.1:3 0.25:5 0.5:5 0.25:8 0.25:5:3   # TOLERANCE:MIN_ROWS[:MIN_RIGHT]
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ATTACKS = (None, "label-flip", "backdoor")
Setting = tuple[float, int, int]


def play(job: dict[str, Any]) -> dict[str, Any]:
    import colearning.bench.robustness as R

    tolerance, min_rows, min_right = job["setting"]
    R.PERCLASS_TOLERANCE, R.PERCLASS_MIN_ROWS = tolerance, min_rows
    R.PERCLASS_MIN_RIGHT = min_right
    attack = job["attack"]
    cell = R.Cell(
        "digits-mlp",
        job["learners"],
        job["partition"],
        job["seed"],
        job["share"] if attack else 0.0,
        attack,
        job["rounds"],
        defences=(),
        variants=("vote", "vote+perclass"),
    )
    result = R.run_cell(cell, Path(job["partitions"]) / f"{cell.group.key}.json")
    return {**job, "vote": result["protocol"], "perclass": result["vote+perclass"]}


def _setting(text: str) -> Setting:
    """``TOLERANCE:MIN_ROWS[:MIN_RIGHT]``."""
    parts = text.split(":")
    return float(parts[0]), int(parts[1]), int(parts[2]) if len(parts) > 2 else 0


def _cell(got: list[dict[str, Any]], attacked: bool) -> str:
    """Mean accuracy; malicious accepted; honest rejected; backdoor success if >= 5%."""
    text = f"{sum(g['final'] for g in got) / len(got):.3f}"
    if attacked:
        text += f", {sum(g['malicious_accepted'] for g in got)}"
        text += f"/{sum(g['malicious_proposals'] for g in got)}"
    text += f", hon {sum(g['honest_rejected'] for g in got)}"
    text += f"/{sum(g['honest_proposals'] for g in got)}"
    bd = sum(g["backdoor"] for g in got) / len(got)
    return text + (f", bd {100 * bd:.0f}%" if bd >= 0.05 else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--learners", nargs="+", type=int, default=[5, 10])
    ap.add_argument("--partitions", nargs="+", default=["iid", "dirichlet:0.5"])
    ap.add_argument(
        "--settings",
        nargs="+",
        default=["0.1:3", "0.25:5", "0.5:5", "0.25:8", "0.25:5:3"],
        help="TOLERANCE:MIN_ROWS[:MIN_RIGHT] of PerClassVoter, each played",
    )
    ap.add_argument("--share", type=float, default=0.4)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    settings = [_setting(s) for s in args.settings]
    jobs = [
        {
            "learners": n,
            "partition": p,
            "seed": seed,
            "share": args.share,
            "attack": attack,
            "setting": list(setting),
            "rounds": args.rounds,
            "partitions": str(args.out / "partitions"),
        }
        for n in args.learners
        for p in args.partitions
        for seed in args.seeds
        for attack in ATTACKS
        for setting in settings
    ]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(play, jobs))
    (args.out / "sweep.json").write_text(json.dumps(results, indent=1))
    # one row per (n, partition, attack), one column per setting; sums/means over seeds
    lines = [
        "| n | partition | attack | vote | "
        + " | ".join("perclass {:g}:{}:{}".format(*s) for s in settings)
        + " |",
        "|---|---|---|---|" + "---|" * len(settings),
    ]
    for n in args.learners:
        for p in args.partitions:
            for attack in ATTACKS:
                # the vote is the same under every setting: the first setting's runs
                columns = [("vote", settings[0]), *(("perclass", s) for s in settings)]
                cells = []
                for field, setting in columns:
                    got = [
                        x[field]
                        for x in results
                        if (x["learners"], x["partition"], x["attack"]) == (n, p, attack)
                        and tuple(x["setting"]) == setting
                    ]
                    cells.append(_cell(got, attack is not None))
                lines.append(f"| {n} | {p} | {attack or 'none'} | " + " | ".join(cells) + " |")
    (args.out / "sweep.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
