"""Turning a TOML file, flags and ``-c key=value`` overrides into a RunConfig."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from colearning.core.exceptions import ConfigError
from colearning.tasks.runner import RunConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

# Aliases accepted in files and overrides, for the names the flags use.
ALIASES = {"threshold": "vote_threshold", "task_params": "params"}


def read_toml(path: str | Path) -> dict[str, Any]:
    """Settings from a TOML file (top-level keys, task options under ``[params]``)."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {p} does not exist; check the path") from None
    except IsADirectoryError:
        raise ConfigError(
            f"{p} is a directory, not a TOML config file; to continue an experiment "
            f"use --resume {p}"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
    return normalize(data, source=str(p))


def normalize(data: dict[str, Any], source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        key = ALIASES.get(key.replace("-", "_"), key.replace("-", "_"))
        if key == "out":
            out["out"] = value
            continue
        if key == "params" and not isinstance(value, dict):
            raise ConfigError(f"{source}: params must be a table of task options; got {value!r}")
        out[key] = value
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """``key=value`` (``params.epochs=2`` for a task option); the value is read as
    TOML (``0.5``, ``true``, ``"x"``) and otherwise kept as a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(
            f"override {text!r} must look like key=value, e.g. -c rounds=50 or -c params.epochs=2"
        )
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    path = [ALIASES.get(p.replace("-", "_"), p.replace("-", "_")) for p in key.split(".")]
    return path, value


def apply_override(settings: dict[str, Any], text: str) -> None:
    path, value = parse_override(text)
    if len(path) == 1:
        settings[path[0]] = value
    elif len(path) == 2 and path[0] == "params":
        settings.setdefault("params", {})[path[1]] = value
    else:
        raise ConfigError(
            f"override key {'.'.join(path)!r} is not a setting; use a top-level setting "
            "(rounds, learners, ...) or params.OPTION"
        )


def to_run_config(settings: dict[str, Any]) -> tuple[RunConfig, str | None]:
    """Split off ``out`` and build the RunConfig (unknown keys are refused)."""
    settings = dict(settings)
    out = settings.pop("out", None)
    return RunConfig.from_dict(settings), out
