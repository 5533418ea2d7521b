"""``colearn bench robustness``: how many dishonest parties the vote takes, per attack,
beside the standard aggregation defences on the same partitions.

For every group (task, learners, partition, seed) the partition is written once as row
indices (:mod:`colearning.bench.partitions`); then for every malicious share (0 is the
clean run) and attack the **protocol** plays ``rounds`` rounds of its mode (``single``:
DESIGN.md's rounds, round-robin; ``aggregate:COMBINER`` or ``screened:COMBINER``: every
learner proposes and the combined candidate is voted on, as ``colearn run --mode``
plays them; docs/modes.md) under the vote threshold of ``--threshold`` (default
DESIGN.md's 0.5) with the last
``round(share * n)`` learners wrapped by the attack (:mod:`colearning.attacks`), and
each **defence** (FedAvg, coordinate-wise median, trimmed mean, Multi-Krum, FLTrust)
plays as many rounds of plain federated averaging: every learner proposes from the
shared model, the defence combines all the proposals, everyone adopts the result (no
vote). The defences are given the true number of malicious learners (Multi-Krum's F,
the trimmed mean's trim), their best case; FLTrust's server trains on a clean root set
of 100 rows drawn from the pooled vote splits (which nothing else in a defence run
uses). Each defence plays ``defence_rounds`` rounds (``--defence-rounds``): every
learner trains in every one of them, so even with fewer rounds than the vote's the
defences get more local training than the protocol's one proposal a round. The
backdoor attacker scales its update by ``n / m`` against the defences, as
model replacement against a mean does (Bagdasaryan et al. 2020), and by 1 against the
vote (a single proposal replaces the model outright).

Measured per cell: final clean test accuracy (the judge: a learner on the union of all
learners' test splits), backdoor success (the share of test images of other classes
that the trigger turns into the target class), malicious proposals accepted (proposals
an attack changed that were a source of an adopted candidate: in a single round the
proposal itself, in an aggregate round every usable proposal, in a screened round
those that passed screening) and honest proposals rejected (not a source of an adopted
candidate). Raw numbers go
to ``OUT/raw/CELL.json`` as each cell finishes (a stopped grid resumes); ``OUT/
robustness.md``, ``OUT/robustness.json`` and ``OUT/robustness.png`` are made from them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from colearning.core.combiners import Combiner
from colearning.core.exceptions import ConfigError

#: The attacks of the grid, with the options they run with against the vote.
ATTACK_SPECS: Mapping[str, str] = {
    "label-flip": "label-flip",
    "noise": "noise",
    "sign-flip": "sign-flip",
    "backdoor": "backdoor",
    "free-rider": "free-rider",
    "dishonest-vote": "dishonest-vote",
    "adaptive": "adaptive",
}
DEFENCES = ("fedavg", "median", "trimmed-mean", "multi-krum", "fltrust")
#: Rows of FLTrust's root data set (Cao et al. use 100).
ROOT_ROWS = 100
#: The backdoor's target class index (the attack's default).
TARGET = 0
#: The protocol variants a cell can play: DESIGN.md's vote, honest voters that need a
#: minimum improvement (:class:`colearning.attacks.defences.MarginVoter`), and honest
#: voters that also refuse a drop of any class's recall
#: (:class:`colearning.attacks.defences.PerClassVoter`, opt-in: ``--variants``).
VOTE_MARGIN = 1e-3
PERCLASS_TOLERANCE = 0.25
PERCLASS_MIN_ROWS = 5
PERCLASS_MIN_RIGHT = 0
VARIANTS: tuple[str, ...] = ("vote", "vote+margin", "vote+perclass")
#: What a cell plays unless told otherwise (the keys of cells that play these are the
#: keys cells had before ``--variants`` existed).
DEFAULT_VARIANTS: tuple[str, ...] = ("vote", "vote+margin")


def honest_voter(variant: str, learner: Any) -> Any:
    """An honest learner as it votes under ``variant`` (itself under ``vote``)."""
    from colearning.attacks.defences import MarginVoter, PerClassVoter

    if variant == "vote":
        return learner
    if variant == "vote+margin":
        return MarginVoter(learner, VOTE_MARGIN)
    if variant == "vote+perclass":
        return PerClassVoter(
            learner, PERCLASS_TOLERANCE, PERCLASS_MIN_ROWS, min_right=PERCLASS_MIN_RIGHT
        )
    raise ConfigError(f"variant must be among {', '.join(VARIANTS)}; got {variant!r}")


#: The round mode of DESIGN.md's protocol; other modes are ``MODE:COMBINER``.
SINGLE = "single"


def parse_mode(spec: str) -> tuple[str, str]:
    """``(mode, combiner)`` of a benchmark mode: ``single``, or ``aggregate`` or
    ``screened`` with an optional combiner (default ``mean``), checked as
    ``Experiment(mode=, combiner=)`` checks them.

    >>> parse_mode("screened:trimmed-mean:0.3")
    ('screened', 'trimmed-mean:0.3')
    >>> parse_mode("aggregate")
    ('aggregate', 'mean')
    """
    from colearning.core.plans import planner_for_mode

    mode, _, combiner = spec.partition(":")
    if mode == SINGLE and combiner:
        raise ConfigError(f"a single round combines nothing: write 'single'; got {spec!r}")
    combiner = combiner or "mean"
    planner_for_mode(mode, combiner=combiner)
    return mode, combiner


def accepted_sources(record: Any) -> set[str]:
    """The proposers whose proposals went into the weights a round adopted (none in a
    rejected round): the candidate's sources, the proposal itself in a single round."""
    if not record.accepted or record.candidate is None:
        return set()
    return set(record.candidate.sources)


@dataclass(frozen=True)
class Group:
    """The cells sharing one partition."""

    task: str
    learners: int
    partition: str
    seed: int
    #: each learner's train, vote and test shares (``colearn run --split``; None: default)
    split: str | None = None

    @property
    def key(self) -> str:
        s = "" if self.split is None else "-split" + self.split.replace(",", "-")
        return f"{self.task}-n{self.learners}-{self.partition.replace(':', '')}-s{self.seed}{s}"


@dataclass(frozen=True)
class Cell:
    """One cell: a group, a malicious share and an attack (``None``: the clean run)."""

    task: str
    learners: int
    partition: str
    seed: int
    share: float
    attack: str | None
    rounds: int
    threshold: float = 0.5
    defences: tuple[str, ...] = DEFENCES
    #: Rounds of each defence run (default ``rounds``); every learner proposes in each.
    defence_rounds: int | None = None
    #: The protocol's round mode (:func:`parse_mode`).
    mode: str = SINGLE
    #: The protocol variants played (``vote`` first; single rounds only play others).
    variants: tuple[str, ...] = DEFAULT_VARIANTS
    #: Each learner's train, vote and test shares, "TRAIN,VOTE,TEST" (None: the default).
    split: str | None = None

    @property
    def group(self) -> Group:
        return Group(self.task, self.learners, self.partition, self.seed, self.split)

    @property
    def malicious(self) -> int:
        return malicious_count(self.share, self.learners)

    @property
    def key(self) -> str:
        what = "clean" if self.attack is None else f"{self.attack}-m{self.malicious}"
        t = "" if self.threshold == 0.5 else f"-t{self.threshold:g}"
        d = "" if self.defence_rounds is None else f"-d{self.defence_rounds}"
        if not self.defences:
            d = "-vote-only"
        # single cells keep the keys they had before modes existed
        mode = "" if self.mode == SINGLE else "-" + self.mode.replace(":", "-")
        # e.g. "-v-vote-margin-perclass" for vote, vote+margin and vote+perclass
        v = ""
        if self.variants != DEFAULT_VARIANTS:
            v = "-v-" + "-".join(x.removeprefix("vote+") for x in self.variants)
        return f"{self.group.key}-{what}-r{self.rounds}{mode}{t}{d}{v}"


def malicious_count(share: float, learners: int) -> int:
    """``round(share * learners)``, half up: 40% of 5 is 2, 20% of 5 is 1."""
    return int(np.floor(share * learners + 0.5 + 1e-9))


def cells_for(
    tasks: Sequence[str],
    learners: Sequence[int],
    partitions: Sequence[str],
    shares: Sequence[float],
    attacks: Sequence[str],
    seeds: Sequence[int],
    rounds: int | None,
    threshold: float = 0.5,
    defences: Sequence[str] = DEFENCES,
    defence_rounds: int | None = None,
    defence_seeds: Sequence[int] | None = None,
    defence_shares: Sequence[float] | None = None,
    modes: Sequence[str] = (SINGLE,),
    variants: Sequence[str] = DEFAULT_VARIANTS,
    split: str | None = None,
) -> list[Cell]:
    """Every cell of the grid, clean runs first; a share of 0 is one clean cell per
    group and mode, whatever the attacks. The defences run on the seeds of
    ``defence_seeds`` and the shares of ``defence_shares`` (default: all), with the
    first mode only (they play no protocol rounds), and not against
    ``dishonest-vote`` (they take no votes, so that run is the clean one)."""
    from colearning.tasks.registry import get_task

    for a in attacks:
        if a not in ATTACK_SPECS:
            raise ConfigError(f"attack must be among {', '.join(ATTACK_SPECS)}; got {a!r}")
    for d in defences:
        if d not in DEFENCES:
            raise ConfigError(f"defence must be among {', '.join(DEFENCES)}; got {d!r}")
    for s in shares:
        if not 0 <= s < 0.5:
            raise ConfigError(f"malicious shares must be in [0, 0.5); got {s}")
    if not modes:
        raise ConfigError("name at least one round mode, such as 'single'")
    for spec in modes:
        parse_mode(spec)
    for v in variants:
        if v not in VARIANTS:
            raise ConfigError(f"variant must be among {', '.join(VARIANTS)}; got {v!r}")
    if split is not None:
        from colearning.data.partition import DEFAULT_FRACTIONS, parse_split

        fractions = parse_split(split)
        # the default written out is the default: same cells, same keys
        split = None if fractions == DEFAULT_FRACTIONS else ",".join(f"{f:g}" for f in fractions)
    # the vote is always played: it is the benchmark's reference
    chosen_variants = tuple(dict.fromkeys(["vote", *variants]))
    cells = []
    for task in tasks:
        r = rounds if rounds is not None else int(get_task(task).defaults.get("rounds", 20))
        for n in learners:
            for partition in partitions:
                for seed, mode in ((s, m) for s in seeds for m in modes):
                    base = dict(
                        task=task,
                        learners=n,
                        partition=partition,
                        seed=seed,
                        rounds=r,
                        mode=mode,
                        split=split,
                    )
                    seeded = mode == modes[0] and (defence_seeds is None or seed in defence_seeds)

                    def extra(
                        share: float, attack: str | None, seeded: bool = seeded
                    ) -> dict[str, Any]:
                        chosen = (
                            seeded
                            and (defence_shares is None or share in defence_shares)
                            and attack != "dishonest-vote"
                        )
                        return dict(
                            threshold=threshold,
                            defences=tuple(defences) if chosen else (),
                            defence_rounds=defence_rounds,
                            variants=chosen_variants,
                        )

                    cells.append(Cell(**base, share=0.0, attack=None, **extra(0.0, None)))  # type: ignore[arg-type]
                    for share in sorted(s for s in shares if s > 0):
                        if malicious_count(share, n) == 0:
                            continue
                        for attack in attacks:
                            these = extra(share, attack)
                            cells.append(Cell(**base, share=share, attack=attack, **these))  # type: ignore[arg-type]
    return cells


# -- one cell ------------------------------------------------------------------------------


class _Judges:
    """The clean judge and the backdoor judge of one partition."""

    def __init__(self, spec: Any) -> None:
        from colearning.attacks import Trigger
        from colearning.bench.partitions import POOLED, build_learners, learner_shares, no_vote
        from colearning.data.types import LearnerData, pool_data
        from colearning.tasks.registry import BuildContext, get_task

        self.clean = build_learners(spec, [POOLED], no_vote(spec))[0]
        pooled = pool_data(learner_shares(spec))
        X, y = pooled.test
        classes = np.unique(np.concatenate([pooled.train[1], y]))
        target = classes[TARGET]
        dataset = get_task(spec.task).load_dataset(None, dict(spec.params))
        value = float(np.max(dataset.X))
        others = y != target
        stamped = Trigger(2).apply(X[others], value=value)
        data = LearnerData(
            pooled.train, pooled.vote, (stamped, np.full(int(others.sum()), target, y.dtype))
        )
        context = BuildContext(
            seed=spec.seed,
            learner_index=POOLED,
            dataset=dataset,
            params={**spec.params, **no_vote(spec)},
        )
        self.backdoor = get_task(spec.task).make_learner(data, context)

    def score(self, weights: Any) -> tuple[float, float]:
        from colearning.bench.partitions import judge_score

        return judge_score(self.clean, weights), judge_score(self.backdoor, weights)


def _attack_spec(attack: str, learners: int, malicious: int, against_vote: bool) -> str:
    spec = ATTACK_SPECS[attack]
    if attack == "backdoor" and not against_vote:
        spec += f":boost={learners / malicious:g}"
    return spec


def run_cell(cell: Cell, partition_file: str | os.PathLike[str]) -> dict[str, Any]:
    """The protocol and every defence on one cell."""
    from colearning.attacks import make_malicious
    from colearning.bench.partitions import build_learners, read_partition
    from colearning.core.experiment import Experiment

    spec = read_partition(partition_file)
    judges = _Judges(spec)
    n, m = spec.learners, cell.malicious if cell.attack else 0
    ids = [f"learner-{i}" for i in range(n)]
    bad = set(ids[n - m :])
    changes = cell.attack not in (None, "dishonest-vote")

    def learners(against_vote: bool) -> list[Any]:
        made = build_learners(spec, range(n))
        if not m:
            return made
        return make_malicious(made, m, _attack_spec(str(cell.attack), n, m, against_vote))

    mode, combiner = parse_mode(cell.mode)
    sizes = dict(zip(ids, (float(p["train_rows"]) for p in spec.parts), strict=True))
    out: dict[str, Any] = {"cell": {**asdict(cell), "malicious": m}}
    # the stricter voters are single rounds' alone: other modes play the vote as it is
    variants = cell.variants if mode == SINGLE else ("vote",)
    for variant in variants:
        t0 = time.perf_counter()
        members = learners(True)
        members = [honest_voter(variant, x) for x in members[: n - m]] + members[n - m :]
        with Experiment(
            members,
            vote_threshold=cell.threshold,
            seed=spec.seed,
            learner_ids=ids,
            mode=mode,
            combiner=Combiner.parse(combiner, sizes),
        ) as experiment:
            result = experiment.run(cell.rounds)
        final, backdoor = judges.score(result.final_weights)
        out["protocol" if variant == "vote" else variant] = {
            "final": final,
            "backdoor": backdoor,
            **proposal_counts(result.rounds, bad, changes),
            "seconds": time.perf_counter() - t0,
        }
    out["defences"] = {}
    for name in cell.defences:
        t0 = time.perf_counter()
        weights = _defence_run(name, learners(False), spec, cell, m)
        final, backdoor = judges.score(weights)
        out["defences"][name] = {
            "final": final,
            "backdoor": backdoor,
            "seconds": time.perf_counter() - t0,
        }
    return out


def proposal_counts(records: Sequence[Any], bad: set[str], changes: bool) -> dict[str, int]:
    """Rounds accepted, and the malicious and honest proposals made, adopted (a source of
    an adopted candidate) and rejected, over every usable proposal of every round.
    Without ``changes`` (a clean run, ``dishonest-vote``) no proposal is malicious."""
    made = {"malicious": 0, "honest": 0}
    adopted = {"malicious": 0, "honest": 0}
    for record in records:
        sources = accepted_sources(record)
        for p in record.proposals:
            if not p.usable:
                continue
            kind = "malicious" if changes and p.proposer_id in bad else "honest"
            if p.proposer_id in bad and not changes:
                continue  # an honest proposal of a dishonest voter: neither side's
            made[kind] += 1
            adopted[kind] += p.proposer_id in sources
    return {
        "accepted": sum(r.accepted for r in records),
        "malicious_proposals": made["malicious"],
        "malicious_accepted": adopted["malicious"],
        "honest_proposals": made["honest"],
        "honest_rejected": made["honest"] - adopted["honest"],
    }


def _defence_run(name: str, learners: Sequence[Any], spec: Any, cell: Cell, m: int) -> Any:
    """Plain federated rounds: everyone proposes from the shared model, ``name``
    combines all proposals, everyone adopts the result."""
    from colearning.core.combiners import (
        coordinate_median,
        fltrust,
        multi_krum,
        trimmed_mean,
        weighted_mean,
    )
    from colearning.core.interface import Weights

    sizes = [float(p["train_rows"]) for p in spec.parts]
    server = _root_learner(spec) if name == "fltrust" else None
    trim = max(0.2, m / len(learners))
    current = learners[0].mli_get_current_weights()
    for learner in learners[1:]:
        learner.mli_accept_weights(current)
    rounds = cell.rounds if cell.defence_rounds is None else cell.defence_rounds
    for r in range(rounds):
        proposals = []
        for learner in learners:
            learner.mli_set_round(r)
            proposals.append(learner.mli_propose_weights().arrays)
        if name == "fedavg":
            combined = weighted_mean(proposals, sizes)
        elif name == "median":
            combined = coordinate_median(proposals)
        elif name == "trimmed-mean":
            combined = trimmed_mean(proposals, min(trim, 0.49))
        elif name == "multi-krum":
            combined = multi_krum(proposals, m)
        else:
            assert server is not None
            server.mli_accept_weights(current)
            server.mli_set_round(r)
            reference = server.mli_propose_weights().arrays
            combined = fltrust(proposals, current.arrays, reference)
        current = Weights.from_arrays(combined, current.layout)
        for learner in learners:
            learner.mli_accept_weights(current)
    return current


def _root_learner(spec: Any) -> Any:
    """FLTrust's server: a learner on ``ROOT_ROWS`` rows drawn from the pooled vote
    splits (seeded by the partition's seed)."""
    from colearning.bench.partitions import POOLED, learner_shares, no_vote
    from colearning.data.types import LearnerData, pool_data
    from colearning.tasks.registry import BuildContext, get_task

    vote_X, vote_y = pool_data(learner_shares(spec)).vote
    rows = np.random.default_rng([spec.seed, 0xF1]).permutation(len(vote_y))[:ROOT_ROWS]
    root = (vote_X[rows], vote_y[rows])
    data = LearnerData(root, root, (vote_X[:0], vote_y[:0]))
    task = get_task(spec.task)
    context = BuildContext(
        seed=spec.seed,
        learner_index=POOLED,
        dataset=task.load_dataset(None, dict(spec.params)),
        params={**spec.params, **no_vote(spec)},
    )
    return task.make_learner(data, context)


# -- the grid ------------------------------------------------------------------------------


def _job(args: tuple[dict[str, Any], str, str]) -> dict[str, Any]:
    cell_dict, partition_file, path = args
    cell = Cell(
        **{
            **cell_dict,
            "defences": tuple(cell_dict["defences"]),
            "variants": tuple(cell_dict.get("variants", DEFAULT_VARIANTS)),
        }
    )
    text = json.dumps(run_cell(cell, partition_file))
    Path(path).write_text(text)
    return dict(json.loads(text))  # as a resumed grid reads it back


def run_grid(
    cells: Sequence[Cell],
    out: Path,
    *,
    jobs: int = 1,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Play every cell not yet in ``out/raw`` (on ``jobs`` processes) and return every
    cell's raw numbers."""
    from colearning.bench.partitions import write_partition

    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    done: dict[str, dict[str, Any]] = {}
    todo = []
    for cell in cells:
        path = raw / f"{cell.key}.json"
        if path.exists():
            done[cell.key] = json.loads(path.read_text())
            continue
        partition_file = out / "partitions" / f"{cell.group.key}.json"
        if not partition_file.exists():
            write_partition(
                partition_file,
                cell.task,
                cell.learners,
                cell.partition,
                cell.seed,
                split=cell.split,
            )
        todo.append((asdict(cell), str(partition_file), str(path)))
    # the vote's cells first: they are the benchmark; the defences are its reference
    todo.sort(key=lambda job: bool(job[0]["defences"]))
    total = len(todo)

    def report(i: int, result: dict[str, Any]) -> None:
        p = result["protocol"]
        d = ", ".join(
            f"{k} {v['final']:.3f}/{v['backdoor']:.2f}" for k, v in result["defences"].items()
        )
        log(
            f"[{i}/{total}] {result_key(result)}: "
            f"vote {p['final']:.3f} (backdoor {p['backdoor']:.2f}, malicious accepted "
            f"{p['malicious_accepted']}/{p['malicious_proposals']}, honest rejected "
            f"{p['honest_rejected']}/{p['honest_proposals']}); {d}"
        )

    if jobs <= 1 or total <= 1:
        for i, job in enumerate(todo, start=1):
            result = _job(job)
            done[result_key(result)] = result
            report(i, result)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # one BLAS/OpenMP thread per worker process: the workers share the cores
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(jobs, mp_context=context) as pool:
            futures = [pool.submit(_job, job) for job in todo]
            for i, future in enumerate(as_completed(futures), start=1):
                result = future.result()
                done[result_key(result)] = result
                report(i, result)
    return [done[c.key] for c in cells if c.key in done]


def result_key(result: Mapping[str, Any]) -> str:
    c = dict(result["cell"])
    c.pop("malicious", None)
    variants = tuple(c.pop("variants", DEFAULT_VARIANTS))
    return Cell(**{**c, "defences": tuple(c["defences"]), "variants": variants}).key
