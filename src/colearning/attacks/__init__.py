"""Attacks as learner wrappers: what a dishonest party does, to measure what voting keeps
out (``docs/robustness.md``).

Every attack is an :class:`Attack`, a :class:`~colearning.core.wrapper.LearnerWrapper`
around any learner, combining a proposal attack with dishonest voting (approve the
coalition's proposals, reject the rest; ``vote=honest`` turns that off)::

    from colearning.attacks import make_malicious
    learners = make_malicious(learners, 2, "sign-flip:k=4")   # the last 2 learners

``colearn attacks`` lists them with their options; ``colearn run --malicious 2 --attack
NAME[:OPTION=VALUE,...]`` runs one.
"""

from colearning.attacks._base import VOTES, Attack, Coalition, fingerprint
from colearning.attacks.attacks import (
    ATTACKS,
    Adaptive,
    Backdoor,
    DishonestVote,
    FreeRider,
    LabelFlip,
    Noise,
    SignFlip,
    Trigger,
)
from colearning.attacks.registry import (
    AttackSpec,
    attack_class,
    attack_names,
    describe_attacks,
    make_malicious,
)

__all__ = [
    "ATTACKS",
    "VOTES",
    "Adaptive",
    "Attack",
    "AttackSpec",
    "Backdoor",
    "Coalition",
    "DishonestVote",
    "FreeRider",
    "LabelFlip",
    "Noise",
    "SignFlip",
    "Trigger",
    "attack_class",
    "attack_names",
    "describe_attacks",
    "fingerprint",
    "make_malicious",
]
