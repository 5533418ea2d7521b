"""Turning a TOML file, flags and ``-c key=value`` overrides into a RunConfig."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from colearning.core.exceptions import ConfigError, ConfigTypeError
from colearning.tasks.runner import RunConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

# Aliases accepted in files and overrides, for the names the flags use.
ALIASES = {"threshold": "vote_threshold", "task_params": "params"}


def read_toml(path: str | Path) -> dict[str, Any]:
    """Settings from a TOML file (top-level keys, task options under ``[params]``)."""
    if not str(path).strip():
        raise ConfigError("the config file name is empty; pass a TOML file, or leave it out")
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
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(
            f"config file {p} cannot be read: {exc.strerror or exc}; check the path"
        ) from None
    return normalize(data, source=str(p))


def normalize(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Settings under their canonical names; two spellings of one setting in one file
    (``threshold`` and ``vote_threshold``, ``data-dir`` and ``data_dir``) are refused,
    naming both, rather than one silently winning."""
    out: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for given, value in data.items():
        key = ALIASES.get(given.replace("-", "_"), given.replace("-", "_"))
        if key in spelled:
            raise ConfigError(
                f"{source} sets {key} twice, as {spelled[key]!r} and as {given!r}; keep one"
            )
        spelled[key] = given
        if key == "params" and not isinstance(value, dict):
            raise ConfigTypeError(
                f"{source}: params must be a table of task options; got {_shown(value)}"
            )
        out[key] = value
    return out


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_override(text: str) -> tuple[list[str], Any]:
    """``key=value`` (``params.epochs=2`` for a task option); the value is read as
    TOML (``0.5``, ``true``, ``"x"``) and otherwise kept as a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if "\n" in text or "\r" in text:
        raise ConfigError(f"override {_shown(text)} spans several lines; give one KEY=VALUE per -c")
    if not sep or not key:
        raise ConfigError(
            f"override {text!r} must look like key=value, e.g. -c rounds=50 or -c params.epochs=2"
        )
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        value = raw.strip()
    path = [ALIASES.get(p.replace("-", "_"), p.replace("-", "_")) for p in key.split(".")]
    return path, value


def apply_override(settings: dict[str, Any], text: str) -> None:
    path, value = parse_override(text)
    if any(not part for part in path):
        raise ConfigError(
            f"override key {text.partition('=')[0]!r} has an empty part; use KEY=VALUE or "
            "params.OPTION=VALUE"
        )
    if len(path) == 1:
        if path[0] == "params" and not isinstance(value, dict):
            raise ConfigTypeError(
                f"-c params=... must be a table, e.g. -c 'params={{epochs=2}}', or set one "
                f"option with -c params.OPTION=VALUE; got {_shown(value)}"
            )
        settings[path[0]] = value
    elif len(path) == 2 and path[0] == "params":
        params = settings.setdefault("params", {})
        if not isinstance(params, dict):
            raise ConfigTypeError(f"params must be a table of task options; got {_shown(params)}")
        params[path[1]] = value
    else:
        raise ConfigError(
            f"override key {'.'.join(path)!r} is not a setting; use a top-level setting "
            "(rounds, learners, ...) or params.OPTION"
        )


def to_run_config(settings: dict[str, Any]) -> tuple[RunConfig, str | None]:
    """Split off ``out`` and build the RunConfig (unknown keys are refused)."""
    settings = dict(settings)
    out = settings.pop("out", None)
    if out is not None:
        if not isinstance(out, str):
            raise ConfigTypeError(
                f"out must be a directory path (a string); got {_shown(out)} ({type(out).__name__})"
            )
        if not out.strip():
            raise ConfigError("out must name a directory; got '' (leave it out for runs/TASK-TIME)")
    return RunConfig.from_dict(settings), out
