"""``colearn attacks`` and the attack options of ``colearn run`` (docs/robustness.md).

    colearn attacks
    colearn run --task digits-mlp --malicious 2 --attack sign-flip:k=8 --out runs/attacked

The last ``--malicious N`` learners attack; the attack is part of the stored config, so
``colearn run --resume DIR`` rebuilds them.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from colearning.core.exceptions import ConfigError


def add_run_options(run: argparse.ArgumentParser) -> None:
    """The attack options of ``colearn run``."""
    group = run.add_argument_group("attacks (docs/robustness.md)")
    group.add_argument(
        "--malicious",
        type=int,
        metavar="N",
        help="the last N learners are malicious (they attack with --attack)",
    )
    group.add_argument(
        "--attack",
        metavar="NAME[:OPTION=VALUE,...]",
        help="what the malicious learners do, e.g. sign-flip:k=8 (see `colearn attacks`)",
    )


def settings_from(args: argparse.Namespace, settings: dict[str, Any]) -> None:
    """Put the attack flags into ``colearn run``'s settings; refuse them where the
    learners are not built here."""
    flags = {"malicious": args.malicious, "attack": args.attack}
    given = {k: v for k, v in flags.items() if v is not None}
    elsewhere = (
        getattr(args, "processes", False)
        or getattr(args, "remote", None)
        or getattr(args, "pool", "local") not in (None, "local")
        or getattr(args, "ray_address", None)
    )
    if given and elsewhere:
        raise ConfigError(
            "--malicious/--attack wrap learners built in this process; they cannot "
            "reach learner servers or Ray actors (--processes, --remote, --pool ray): "
            "drop one or the other"
        )
    settings.update(given)


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    attacks = sub.add_parser("attacks", help="list the attacks --attack takes, with options")
    attacks.add_argument("--format", choices=["text", "json"], default="text")


def cmd_attacks(args: argparse.Namespace) -> int:
    from colearning.attacks import describe_attacks

    described = describe_attacks()
    if args.format == "json":
        json.dump(described, sys.stdout, indent=1)
        print()
        return 0
    width = max(len(a["name"]) for a in described) + 2
    for a in described:
        print(f"{a['name']:<{width}}{a['help']}")
        opts = ", ".join(f"{k}={v!r}" for k, v in a["options"].items())
        print(f"{'':<{width}}options: {opts}")
    print(
        "\nuse: colearn run --malicious N --attack NAME[:OPTION=VALUE,...]  "
        "(the last N learners attack; vote=honest keeps their votes honest)"
    )
    return 0
