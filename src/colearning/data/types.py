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


def pool_data(parts: list[LearnerData]) -> LearnerData:
    """Every learner's data together: the pooled reference that no party could build."""

    def cat(sets: list[XY]) -> XY:
        return np.concatenate([s[0] for s in sets]), np.concatenate([s[1] for s in sets])

    return LearnerData(
        train=cat([p.train for p in parts]),
        vote=cat([p.vote for p in parts]),
        test=cat([p.test for p in parts]),
    )
