"""The exception tree of colearning.

Every error the library raises on purpose derives from :class:`ColearningError`, and
every message names the value, what was expected and the fix::

    ColearningError
    ├── ConfigError          a setting is out of range or unknown (user input)
    │   └── ConfigTypeError  ... of the wrong type (also a TypeError)
    ├── WeightsError         weights with the wrong names, shapes or dtypes, NaN/Inf,
    │   │                    or bytes that are not a colearning weights blob
    │   └── WeightsTypeError a payload that can never be weights (also a TypeError)
    ├── DataError            a data set or partition that cannot be used
    ├── StoreError           an experiment directory that cannot be read or resumed
    │   ├── StoreDamagedError ... because something in it is damaged (names what)
    │   └── StoreWriteError  ... or written (a full disk, a read-only file system)
    ├── LearnerError         a learner broke its contract or failed a call
    ├── LedgerError          a chain or contract refused or failed (names the reason)
    └── MissingExtraError    an optional dependency is not installed (names the pip line)
"""

from __future__ import annotations


class ColearningError(Exception):
    """Root of all errors raised on purpose by colearning."""


class ConfigError(ColearningError, ValueError):
    """A setting is out of range, unknown or inconsistent."""


class ConfigTypeError(ConfigError, TypeError):
    """A setting has the wrong type."""


class WeightsError(ColearningError, ValueError):
    """Weights do not match what the receiver expects, or hold NaN/Inf."""


class WeightsTypeError(WeightsError, TypeError):
    """A payload that can never be weights (bytes, strings, objects)."""


class DataError(ColearningError, ValueError):
    """A data set or a partition of it cannot be used."""


class StoreError(ColearningError):
    """An experiment directory cannot be created, read or resumed."""


class StoreDamagedError(StoreError):
    """Something in an experiment directory is damaged or was edited: a record, the
    chain of rounds, a blob; the message names the round or the file."""


class StoreWriteError(StoreError):
    """An experiment directory cannot be written (a full disk, a read-only file system,
    no permission); everything committed before is intact."""


class LearnerError(ColearningError):
    """A learner broke the interface contract or failed a call."""


class LedgerError(ColearningError):
    """A ledger chain or contract refused a call or cannot be reached; names why."""


class MissingExtraError(ColearningError, ImportError):
    """An optional dependency is missing; the message names the install command."""


def require_extra(module: str, extra: str, feature: str) -> None:
    """Raise :class:`MissingExtraError` unless ``module`` can be imported.

    Parameters
    ----------
    module
        Importable module name, e.g. ``"sklearn"``.
    extra
        The colearning extra that installs it, e.g. ``"sklearn"``.
    feature
        What needs it, for the message, e.g. ``"the scikit-learn learner"``.
    """
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(
            f"{feature} needs the '{module}' package, which is not installed; "
            f"run: pip install 'colearning[{extra}]'"
        )
