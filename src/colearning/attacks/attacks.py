"""The bundled attacks. Each is an :class:`~colearning.attacks._base.Attack` (a learner
wrapper) and works on any learner; ``label-flip`` and ``backdoor`` poison the learner's
training data, so they need the data seam of
:class:`~colearning.learners._base.LearnerBase` (every bundled learner built from
arrays has it), and an attack on a learner without it fails with a message saying so.

Every proposal an attack makes is deterministic in what the honest proposal depends on
(the current weights, the data, the seed and the round): its random numbers come from
``(seed, round_index)`` of the inner learner where it has them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from colearning.attacks._base import Attack, classes_of
from colearning.core.exceptions import ConfigError
from colearning.core.interface import Array, Weights

# -- helpers ------------------------------------------------------------------------------


def _rng(attack: Attack, tag: int) -> np.random.Generator:
    """A generator from the inner learner's ``(seed, round_index)`` and the attack's tag
    (0 where the learner has neither)."""
    seed = int(getattr(attack.inner, "seed", 0) or 0)
    round_index = int(getattr(attack.inner, "round_index", 0) or 0)
    return np.random.default_rng([seed, 0xA77AC, tag, round_index])


@dataclass(frozen=True)
class Trigger:
    """The backdoor's trigger: a ``size`` x ``size`` patch in the bottom-right corner
    of every image set to ``value`` (default: the largest input value seen).

    Images are the last two axes of rows shaped ``(..., H, W)``; flat rows of a square
    number of features are read as square images (8 x 8 digits); other flat rows get
    their last ``size * size`` features set.

    >>> import numpy as np
    >>> Trigger(2).apply(np.zeros((1, 16)), value=1.0).reshape(4, 4)
    array([[0., 0., 0., 0.],
           [0., 0., 0., 0.],
           [0., 0., 1., 1.],
           [0., 0., 1., 1.]])
    """

    size: int = 2
    value: float | None = None

    def apply(self, X: Array, value: float | None = None) -> Array:
        X = np.array(X, copy=True)
        fill = self.value if self.value is not None else value
        if fill is None:
            fill = float(np.max(X)) if X.size else 1.0
        s = self.size
        if X.ndim >= 3:
            X[..., -s:, -s:] = fill
            return X
        features = X.shape[1]
        side = math.isqrt(features)
        if side * side == features and side >= s:
            view = X.reshape(len(X), side, side)
            view[:, -s:, -s:] = fill
            return view.reshape(X.shape)
        X[:, -s * s :] = fill
        return X


# -- the attacks ----------------------------------------------------------------------------


class DishonestVote(Attack):
    name = "dishonest-vote"
    help = "proposes honestly; approves its coalition's proposals and rejects all others"
    changes_proposals = False


class LabelFlip(Attack):
    name = "label-flip"
    help = "trains on its data with every label c mapped to the class at C-1-c"
    options = {"share": 1.0}

    def _check(self) -> None:
        share = self._number("share", strict=True)
        if share > 1:
            raise ConfigError(f"attack {self.name!r} option share must be in (0, 1]; got {share}")

    def attack(self, honest: Weights) -> Weights:
        X, y = self.train_split()
        classes = classes_of(self.inner, y)
        index = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
        flipped = classes[len(classes) - 1 - index].astype(y.dtype)
        chosen = _rng(self, 1).random(len(y)) < float(self.settings["share"])
        return self.poisoned_proposal(X, np.where(chosen, flipped, y))


class Noise(Attack):
    name = "noise"
    help = "adds Gaussian noise of standard deviation sigma to every float weight"
    options = {"sigma": 1.0}

    def _check(self) -> None:
        self._number("sigma", strict=True)

    def attack(self, honest: Weights) -> Weights:
        rng = _rng(self, 2)
        sigma = float(self.settings["sigma"])
        out = {
            k: (a + sigma * rng.standard_normal(a.shape)).astype(a.dtype)
            if a.dtype.kind == "f"
            else np.array(a)
            for k, a in honest.arrays.items()
        }
        return Weights.from_arrays(out, honest.layout)


class SignFlip(Attack):
    name = "sign-flip"
    help = "moves against its own training direction: current - k * (honest - current)"
    options = {"k": 4.0}

    def _check(self) -> None:
        self._number("k", strict=True)

    def attack(self, honest: Weights) -> Weights:
        return self.along(honest, -float(self.settings["k"]))


class FreeRider(Attack):
    name = "free-rider"
    help = (
        "trains nothing: re-proposes the current weights plus Gaussian noise of "
        "standard deviation perturb (0: the current weights exactly)"
    )
    options = {"perturb": 1e-3}

    def _check(self) -> None:
        self._number("perturb")

    def mli_propose_weights(self) -> Weights:
        # no training at all: the point of free riding
        current = self.current()
        proposal = self.attack(current)
        self.proposals_made += 1
        self.coalition.register(proposal)
        return proposal

    def attack(self, honest: Weights) -> Weights:
        perturb = float(self.settings["perturb"])
        current = self.current()
        if perturb == 0:
            return Weights.from_arrays(
                {k: np.array(a) for k, a in current.arrays.items()}, current.layout
            )
        rng = _rng(self, 3)
        out = {
            k: (a + perturb * rng.standard_normal(a.shape)).astype(a.dtype)
            if a.dtype.kind == "f"
            else np.array(a)
            for k, a in current.arrays.items()
        }
        return Weights.from_arrays(out, current.layout)


class Backdoor(Attack):
    name = "backdoor"
    help = (
        "model replacement with a trigger: trains on its data plus a share of it "
        "stamped with a size x size corner patch and labelled target; the update is "
        "scaled by boost (>1 to survive averaging in an aggregate round)"
    )
    options = {"target": 0, "size": 2, "share": 0.5, "boost": 1.0}

    def _check(self) -> None:
        self._number("share", strict=True)
        self._number("boost", strict=True)
        for key in ("target", "size"):
            v = self.settings[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < (1 if key == "size" else 0):
                raise ConfigError(
                    f"attack {self.name!r} option {key} must be a whole number "
                    f">= {1 if key == 'size' else 0}; got {v!r}"
                )

    @property
    def trigger(self) -> Trigger:
        return Trigger(int(self.settings["size"]))

    def target_label(self, y: Array) -> Any:
        classes = classes_of(self.inner, y)
        target = int(self.settings["target"])
        if target >= len(classes):
            raise ConfigError(
                f"attack {self.name!r} option target must be a class index below "
                f"{len(classes)}; got {target}"
            )
        return classes[target]

    def attack(self, honest: Weights) -> Weights:
        X, y = self.train_split()
        rows = _rng(self, 4).random(len(y)) < float(self.settings["share"])
        if not rows.any():
            rows[0] = True
        stamped = self.trigger.apply(X[rows])
        X_poison = np.concatenate([X, stamped])
        y_poison = np.concatenate([y, np.full(int(rows.sum()), self.target_label(y), y.dtype)])
        proposal = self.poisoned_proposal(X_poison, y_poison)
        boost = float(self.settings["boost"])
        return proposal if boost == 1 else self.along(proposal, boost)


class Adaptive(Attack):
    """Knows the vote rule and uses its own clean vote split as a proxy for the honest
    voters': it line-searches ``honest + alpha * (harmful - honest)`` from ``alpha = 1``
    down, halving ``alpha`` ``steps`` times, and proposes the first (most harmful) point
    its proxy approves and that keeps at least ``margin`` (a share in [0, 1]) of the
    honest proposal's improvement on the proxy, so it survives voters a little less
    kind than the proxy. If none passes, it proposes the honest update shrunk by the
    last ``alpha`` (towards the current weights: slowing the model down)."""

    name = "adaptive"
    help = (
        "knows the vote rule: proposes the most harmful point between its honest "
        "proposal and a harmful one (direction: sign-flip, label-flip or backdoor) that "
        "its own clean vote split, a proxy of the honest voters', still approves"
    )
    options = {"direction": "sign-flip", "k": 4.0, "steps": 6, "margin": 0.0}
    DIRECTIONS: ClassVar[tuple[str, ...]] = ("sign-flip", "label-flip", "backdoor")

    def _check(self) -> None:
        if self.settings["direction"] not in self.DIRECTIONS:
            raise ConfigError(
                f"attack {self.name!r} option direction must be one of "
                f"{', '.join(self.DIRECTIONS)}; got {self.settings['direction']!r}"
            )
        self._number("k", strict=True)
        if self._number("margin") > 1:
            raise ConfigError(
                f"attack {self.name!r} option margin must be a share in [0, 1]; "
                f"got {self.settings['margin']!r}"
            )
        steps = self.settings["steps"]
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 20:
            raise ConfigError(
                f"attack {self.name!r} option steps must be a whole number in [1, 20]; "
                f"got {steps!r}"
            )
        # the harmful direction's own attack (its settings are this attack's defaults)
        direction = self.settings["direction"]
        self._harm: Attack | None = None
        if direction == "label-flip":
            self._harm = LabelFlip(self.inner, vote="honest")
        elif direction == "backdoor":
            self._harm = Backdoor(self.inner, vote="honest")
        if self._harm is not None:
            self._harm.name = f"{self.name} (direction {direction})"  # type: ignore[misc]

    def harmful(self, honest: Weights) -> Weights:
        if self._harm is None:
            return self.along(honest, -float(self.settings["k"]))
        return self._harm.attack(honest)

    def attack(self, honest: Weights) -> Weights:
        harm = self.harmful(honest)
        current = self.inner.mli_test_weights(self.current()).vote_score
        best_honest = self.inner.mli_test_weights(honest)
        margin = float(self.settings["margin"])
        alpha = 1.0
        for _ in range(int(self.settings["steps"])):
            point = _between(honest, harm, alpha)
            verdict = self.inner.mli_test_weights(point)
            if verdict.vote and _enough(verdict.vote_score, current, best_honest, margin):
                return point
            alpha /= 2
        return self.along(honest, alpha)


def _between(a: Weights, b: Weights, alpha: float) -> Weights:
    """``a + alpha * (b - a)`` on float arrays (others as ``a``)."""
    out = {}
    for name, x in a.arrays.items():
        if x.dtype.kind != "f":
            out[name] = np.array(x)
            continue
        x64 = x.astype(np.float64)
        out[name] = (x64 + alpha * (b.arrays[name].astype(np.float64) - x64)).astype(x.dtype)
    return Weights.from_arrays(out, a.layout)


def _enough(score: float, current: float, honest: Any, margin: float) -> bool:
    """With ``margin > 0``: the point keeps at least ``margin`` of the honest proposal's
    improvement over the current weights (so it survives voters a little less kind than
    the proxy)."""
    if margin == 0:
        return True
    gain = abs(float(honest.vote_score) - current)
    return abs(float(score) - current) >= margin * gain


ATTACKS: tuple[type[Attack], ...] = (
    LabelFlip,
    Noise,
    SignFlip,
    Backdoor,
    FreeRider,
    DishonestVote,
    Adaptive,
)
