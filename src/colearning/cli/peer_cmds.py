"""``colearn peer`` and ``colearn ledger deploy``: peer mode (one party, no coordinator)."""

from __future__ import annotations

import argparse
from typing import Any

from colearning.core.exceptions import ConfigError


def add_parsers(sub: Any, ledger_sub: Any) -> None:
    sub.add_parser("peer", help="run one party of a peer-mode experiment (no coordinator)")
    ledger_sub.add_parser("deploy", help="deploy a ledger contract for a peer-mode experiment")


def cmd_peer(args: argparse.Namespace) -> int:
    raise ConfigError("peer mode is not built yet")


def cmd_deploy(args: argparse.Namespace) -> int:
    raise ConfigError("peer mode is not built yet")
