"""The shapes data takes on its way to learners."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]
XY = tuple[Array, Array]


@dataclass(frozen=True)
class Dataset:
    """A whole data set before it is shared out among learners.

    ``classes`` lists the labels of a classification set (``None`` for regression);
    every learner gets the full list, even if its share holds only some of them.
    """

    name: str
    X: Array
    y: Array
    kind: Literal["classification", "regression"] = "classification"
    classes: Array | None = None

    def __post_init__(self) -> None:
        if len(self.X) != len(self.y):
            raise ValueError(f"{self.name}: X has {len(self.X)} rows but y has {len(self.y)}")
        if self.kind == "classification" and self.classes is None:
            object.__setattr__(self, "classes", np.unique(self.y))

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class LearnerData:
    """One learner's private data: what it trains on, votes with and tests on."""

    train: XY
    vote: XY
    test: XY

    @property
    def sizes(self) -> tuple[int, int, int]:
        return len(self.train[1]), len(self.vote[1]), len(self.test[1])


@dataclass(frozen=True)
class Shares:
    """Every learner's rows in one read-only buffer: learner 0's train, vote and test
    rows, then learner 1's, and so on. Each learner's :class:`LearnerData` is made of
    views into it (:meth:`part`), so the learners of one process share one copy of the
    data set, and the whole can cross to another process (a Ray object store) once.

    ``bounds[i]`` holds learner ``i``'s four offsets: where its train, vote and test
    rows start and where its test rows end.
    """

    X: Array
    y: Array
    bounds: Array

    def __post_init__(self) -> None:
        for array in (self.X, self.y, self.bounds):
            if array.flags.writeable:
                array.setflags(write=False)

    def __len__(self) -> int:
        return len(self.bounds)

    def part(self, learner_index: int) -> LearnerData:
        """Learner ``learner_index``'s data, as views."""
        a, b, c, d = (int(v) for v in self.bounds[learner_index])
        X, y = self.X, self.y
        return LearnerData(train=(X[a:b], y[a:b]), vote=(X[b:c], y[b:c]), test=(X[c:d], y[c:d]))

    def parts(self) -> list[LearnerData]:
        """Every learner's data, in learner order."""
        return [self.part(i) for i in range(len(self))]


def pool_data(parts: list[LearnerData]) -> LearnerData:
    """Every learner's data together: the pooled reference that no party could build."""

    def cat(sets: list[XY]) -> XY:
        return np.concatenate([s[0] for s in sets]), np.concatenate([s[1] for s in sets])

    return LearnerData(
        train=cat([p.train for p in parts]),
        vote=cat([p.vote for p in parts]),
        test=cat([p.test for p in parts]),
    )
