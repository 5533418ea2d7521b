"""What every attack shares: the coalition, the malicious wrapper, the data seam.

A malicious learner is a :class:`~colearning.core.wrapper.LearnerWrapper` (the same
mechanism as ``colearning.testing.FaultyLearner``) that changes two calls:

- ``mli_propose_weights``: the inner learner trains as usual, then the attack turns
  that honest proposal into its own (:meth:`Attack.attack`). Every proposal a member
  makes is registered with its :class:`Coalition`;
- ``mli_test_weights``: with ``vote="dishonest"`` (the default) the member approves
  exactly the weights its coalition proposed and rejects everything else, whatever its
  data says. The scores it reports are its honest ones. (A candidate combined from
  several proposals is not a member's proposal: voters are not told the round, so a
  member cannot tell whether one of its own is inside, and rejects it.)

Colluders talk out of band, so the coalition is one shared object; it recognises its
proposals by a SHA-256 of their arrays (names, dtypes, shapes, bytes), which survives
the wire (a remote pool decodes a copy).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from colearning.core.exceptions import ConfigError, LearnerError
from colearning.core.interface import Array, MachineLearningInterface, ProposedWeights, Weights
from colearning.core.wrapper import LearnerWrapper

#: How a malicious learner votes.
VOTES = ("dishonest", "honest")


def fingerprint(weights: Weights) -> str:
    """SHA-256 over the arrays' names, dtypes, shapes and bytes.

    >>> import numpy as np
    >>> a = Weights({"w": np.zeros(2)})
    >>> fingerprint(a) == fingerprint(Weights({"w": np.zeros(2)})) != fingerprint(
    ...     Weights({"w": np.ones(2)}))
    True
    """
    h = hashlib.sha256()
    for name, array in weights.arrays.items():
        a = np.ascontiguousarray(array)
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class Coalition:
    """The malicious learners of one run: which proposals, and rounds, are theirs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proposals: set[str] = set()
        self.members: list[Attack] = []

    def register(self, weights: Weights) -> None:
        with self._lock:
            self._proposals.add(fingerprint(weights))

    def owns(self, weights: Weights) -> bool:
        """Whether ``weights`` are (a copy of) a member's proposal."""
        key = fingerprint(weights)
        with self._lock:
            return key in self._proposals


class Attack(LearnerWrapper):
    """A malicious learner: a proposal attack (:meth:`attack`) with dishonest voting.

    Subclasses set ``name``, ``options`` (the defaults of their settings, which
    ``__init__`` takes as keyword arguments) and ``help``, and override :meth:`attack`.

    Parameters
    ----------
    inner
        Any learner.
    coalition
        The members' shared :class:`Coalition` (a fresh one of its own by default).
    vote
        ``"dishonest"`` (approve the coalition's proposals, reject all others) or
        ``"honest"`` (vote as the inner learner does).
    """

    name: ClassVar[str] = "honest"
    help: ClassVar[str] = "proposes honestly"
    #: The attack's own settings and their defaults (``vote`` is common to all).
    options: ClassVar[Mapping[str, Any]] = {}
    #: Whether the attack changes what the learner proposes (``dishonest-vote`` does not).
    changes_proposals: ClassVar[bool] = True

    def __init__(
        self,
        inner: MachineLearningInterface,
        *,
        coalition: Coalition | None = None,
        vote: str = "dishonest",
        **settings: Any,
    ) -> None:
        super().__init__(inner)
        if vote not in VOTES:
            raise ConfigError(
                f"attack {self.name!r} option vote must be one of {', '.join(VOTES)}; got {vote!r}"
            )
        unknown = sorted(set(settings) - set(self.options))
        if unknown:
            known = ", ".join(["vote", *self.options])
            raise ConfigError(
                f"attack {self.name!r} has no option {unknown[0]!r}; its options are: {known}"
            )
        self.settings: dict[str, Any] = {**self.options, **settings}
        self.vote = vote
        self.coalition = coalition if coalition is not None else Coalition()
        self.coalition.members.append(self)
        self.proposals_made = 0
        self._check()

    def _check(self) -> None:
        """Check ``self.settings``; raise ``ConfigError`` naming the bad one."""

    def _number(self, key: str, *, low: float = 0.0, strict: bool = False) -> float:
        value = self.settings[key]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and np.isfinite(value) and (value > low if strict else value >= low):
            return float(value)
        bound = f"> {low:g}" if strict else f">= {low:g}"
        raise ConfigError(
            f"attack {self.name!r} option {key} must be a number {bound}; got {value!r}"
        )

    # -- the two calls an attack changes -----------------------------------------------

    def mli_propose_weights(self) -> Weights:
        honest = self.inner.mli_propose_weights()
        proposal = self.attack(honest)
        self.proposals_made += 1
        self.coalition.register(proposal)
        return proposal

    def mli_test_weights(self, weights: Weights) -> ProposedWeights:
        verdict = self.inner.mli_test_weights(weights)
        if self.vote == "honest":
            return verdict
        mine = self.coalition.owns(weights)
        return ProposedWeights(weights, verdict.vote_score, verdict.test_score, mine)

    # -- what a subclass provides ------------------------------------------------------

    def attack(self, honest: Weights) -> Weights:
        """The proposal made instead of ``honest`` (the inner learner's proposal from the
        current weights)."""
        return honest

    # -- helpers -----------------------------------------------------------------------

    def current(self) -> Weights:
        return self.inner.mli_get_current_weights()

    def _float_names(self, weights: Weights) -> list[str]:
        return [k for k, a in weights.arrays.items() if a.dtype.kind == "f"]

    def along(self, honest: Weights, scale: float) -> Weights:
        """``current + scale * (honest - current)`` on the float arrays (others as
        ``honest``): ``scale=-k`` is a sign flip scaled by ``k``."""
        current = self.current().arrays
        out: dict[str, Array] = {}
        for name, a in honest.arrays.items():
            if a.dtype.kind != "f":
                out[name] = np.array(a)
                continue
            c = current[name].astype(np.float64)
            out[name] = (c + scale * (a.astype(np.float64) - c)).astype(a.dtype)
        return Weights.from_arrays(out, honest.layout)

    def poisoned_proposal(self, X: Array, y: Array) -> Weights:
        """The inner learner's proposal trained on ``(X, y)`` instead of its train split."""
        with _training_on(self.inner, self.name)(X, y):
            return self.inner.mli_propose_weights()

    def train_split(self) -> tuple[Array, Array]:
        """The inner learner's train split (see :func:`_training_on` for the seam)."""
        return _train_split(self.inner, self.name)

    def describe(self) -> dict[str, Any]:
        return {"attack": self.name, "vote": self.vote, **self.settings}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if k != "attack")
        return f"{type(self).__name__}({self.inner!r}, {opts})"


def _missing_seam(inner: MachineLearningInterface, attack: str) -> LearnerError:
    return LearnerError(
        f"attack {attack!r} poisons the learner's training data, and "
        f"{type(inner).__name__} gives no access to it; use a learner built on "
        "colearning.learners._base.LearnerBase from arrays (every bundled learner is), "
        "give yours train_split() and training_on(X, y) (see LearnerBase), or choose an "
        "attack on the weights (sign-flip, noise, free-rider, adaptive)"
    )


def _train_split(inner: MachineLearningInterface, attack: str) -> tuple[Array, Array]:
    get = getattr(inner, "train_split", None)
    if get is None:
        raise _missing_seam(inner, attack)
    X, y = get()
    return np.asarray(X), np.asarray(y)


def _training_on(inner: MachineLearningInterface, attack: str) -> Any:
    # Wrapped learners forward attribute look-ups, so the seam is found through them.
    seam = getattr(inner, "training_on", None)
    if seam is None or getattr(inner, "train_split", None) is None:
        raise _missing_seam(inner, attack)
    return seam


def classes_of(inner: MachineLearningInterface, y: Array) -> Array:
    """The task's class labels: the learner's ``classes`` where it has them, else
    ``0 .. max(y)`` for integer labels."""
    classes = getattr(inner, "classes", None)
    if classes is not None:
        return np.asarray(classes)
    if y.dtype.kind not in "iu":
        raise LearnerError(
            f"a label attack needs class labels; {type(inner).__name__} trains on "
            f"{y.dtype} targets (a regression task?). Choose an attack on the weights"
        )
    return np.arange(int(y.max()) + 1, dtype=y.dtype)
