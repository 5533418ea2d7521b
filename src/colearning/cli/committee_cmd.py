"""``colearn committee``: how large a sampled committee must be, and the risk of a size;
and the ``colearn run`` options of the scale layer (``--committee``, ``--pool ray``).

Nothing here imports Ray until a run asks for the Ray pool.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from colearning.cli import exit_codes
from colearning.core.exceptions import ConfigError


def add_run_options(run: argparse.ArgumentParser) -> None:
    """``--committee`` and the Ray pool options of ``colearn run``."""
    group = run.add_argument_group("many learners")
    group.add_argument(
        "--committee",
        type=int,
        metavar="K",
        help="each round K voters drawn from the non-proposers vote instead of everyone "
        "(size it with `colearn committee`)",
    )
    group.add_argument(
        "--pool",
        choices=["local", "ray"],
        default="local",
        help="where the learners run: this process (default), or Ray actors (starts a "
        "local Ray unless --ray-address; needs colearning[ray])",
    )
    group.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="join this Ray cluster (auto, HOST:6379 or ray://HOST:10001); implies --pool ray",
    )
    group.add_argument(
        "--ray-actors",
        type=int,
        metavar="N",
        help="Ray actors holding the learners (default: one per CPU of the cluster)",
    )


def add_parser(sub: Any) -> None:
    """``colearn committee``."""
    committee = sub.add_parser(
        "committee",
        help="the smallest committee for a risk, or the risk of a committee size",
        description="The probability that a committee drawn from the non-proposers holds "
        "enough malicious voters to pass a proposal on their own (exact, hypergeometric; "
        "worst case: every malicious learner is a non-proposer). Without --size: the "
        "smallest committee whose risk is below --risk.",
    )
    committee.add_argument("--learners", type=int, required=True, help="learners in all (N)")
    committee.add_argument(
        "--malicious-share",
        type=float,
        required=True,
        metavar="F",
        help="share of the learners that are malicious, in [0, 1) (rounded up to learners)",
    )
    committee.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        dest="vote_threshold",
        help="share of the committee that must approve (default 0.5, as colearn run)",
    )
    what = committee.add_mutually_exclusive_group()
    what.add_argument("--risk", type=float, default=1e-6, help="the risk to stay below (1e-6)")
    what.add_argument("--size", type=int, metavar="K", help="the risk of this committee size")
    committee.add_argument("--format", choices=["text", "json"], default="text")


def cmd_committee(args: argparse.Namespace) -> int:
    from colearning.scale.committees import (
        CommitteeSize,
        approvals_needed,
        committee_risk,
        committee_size,
        malicious_count,
    )

    if args.size is not None:
        malicious = malicious_count(args.learners, args.malicious_share)
        risk = committee_risk(args.learners, malicious, args.size, args.vote_threshold)
        result = CommitteeSize(
            args.size,
            risk,
            args.learners,
            malicious,
            args.vote_threshold,
            approvals_needed(args.size, args.vote_threshold),
        )
        target = None
    else:
        result = committee_size(args.learners, args.malicious_share, args.risk, args.vote_threshold)
        target = args.risk
    if args.format == "json":
        document = result.to_dict()
        if target is not None:
            document["target_risk"] = target
        json.dump(document, sys.stdout)
        sys.stdout.write("\n")
        return exit_codes.OK
    voters = f"{result.committee:,} voters of the {result.learners - 1:,} non-proposers"
    odds = (
        f"{result.risk:.3g}" + (f" < {target:g}" if target is not None else "")
        if result.risk
        else "0 (impossible)"
    )
    head = "smallest committee: " if target is not None else "committee: "
    print(
        f"{head}{voters}\n"
        f"risk that {result.malicious:,} malicious learners of {result.learners:,} hold "
        f"{result.approvals_needed:,} of its seats (enough to pass a proposal at threshold "
        f"{result.vote_threshold:g}): {odds}"
    )
    return exit_codes.OK


def ray_pool(args: argparse.Namespace) -> Any:
    """The ``pool_factory`` of ``--pool ray`` (None for the in-process pool)."""
    if args.pool != "ray" and not args.ray_address:
        if args.ray_actors is not None:
            raise ConfigError("--ray-actors is for the Ray pool; add --pool ray")
        return None
    if args.processes or args.remote:
        raise ConfigError(
            "--pool ray and --processes/--remote are different places for the learners; choose one"
        )
    if args.ray_actors is not None and args.ray_actors < 1:
        raise ConfigError(f"--ray-actors must be >= 1; got {args.ray_actors}")
    from colearning.scale.ray_pool import ray_pool_factory

    return ray_pool_factory(address=args.ray_address, actors=args.ray_actors)
