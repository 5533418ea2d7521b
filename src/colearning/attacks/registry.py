"""The attack registry: names, options, and making the last ``n`` learners malicious.

An attack is named as ``NAME`` or ``NAME:OPTION=VALUE,OPTION=VALUE`` (what
``colearn run --attack`` takes), e.g. ``sign-flip:k=8`` or ``backdoor:target=3,boost=5``.
Values are read as integers, then numbers, else kept as text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from colearning.attacks._base import Attack, Coalition
from colearning.attacks.attacks import ATTACKS
from colearning.core.exceptions import ConfigError
from colearning.core.interface import MachineLearningInterface

_BY_NAME: dict[str, type[Attack]] = {a.name: a for a in ATTACKS}


def attack_names() -> list[str]:
    """Every bundled attack's name, in the order ``colearn attacks`` lists them."""
    return [a.name for a in ATTACKS]


def attack_class(name: str) -> type[Attack]:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ConfigError(
            f"unknown attack {name!r}; attacks are: {', '.join(attack_names())} "
            "(see `colearn attacks`)"
        ) from None


def describe_attacks() -> list[dict[str, Any]]:
    """Name, help and options (with defaults) of every attack."""
    return [
        {"name": a.name, "help": a.help, "options": {**a.options, "vote": "dishonest"}}
        for a in ATTACKS
    ]


@dataclass(frozen=True)
class AttackSpec:
    """An attack by name with its options, as the command line and a stored config
    give it.

    >>> AttackSpec.parse("sign-flip:k=8,vote=honest")
    AttackSpec(name='sign-flip', options={'k': 8, 'vote': 'honest'})
    >>> AttackSpec.parse("backdoor:boost=2.5").text
    'backdoor:boost=2.5'
    """

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> AttackSpec:
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(
                f"attack must be NAME or NAME:OPTION=VALUE,...; got {text!r} "
                "(see `colearn attacks`)"
            )
        name, _, rest = text.strip().partition(":")
        options: dict[str, Any] = {}
        for item in filter(None, (p.strip() for p in rest.split(","))):
            key, eq, value = item.partition("=")
            if not eq or not key.strip():
                raise ConfigError(
                    f"attack option {item!r} must be OPTION=VALUE (as in sign-flip:k=8); "
                    f"got it in {text!r}"
                )
            options[key.strip()] = _value(value.strip())
        spec = cls(name.strip(), options)
        spec.check()
        return spec

    @property
    def text(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.name}:{opts}" if opts else self.name

    def check(self) -> None:
        """Refuse an unknown name or option, or a bad value, before any data loads."""
        self.make(_Probe(), Coalition())

    def make(self, inner: MachineLearningInterface, coalition: Coalition) -> Attack:
        return attack_class(self.name)(inner, coalition=coalition, **dict(self.options))


def make_malicious(
    learners: Sequence[MachineLearningInterface], count: int, attack: str | AttackSpec
) -> list[MachineLearningInterface]:
    """``learners`` with the **last** ``count`` wrapped by ``attack``, sharing one
    coalition. The last, so learner 0, whose initial weights every learner starts from,
    stays honest, and ``learner-0 .. learner-{n-count-1}`` are the honest ones."""
    spec = attack if isinstance(attack, AttackSpec) else AttackSpec.parse(attack)
    check_count(count, len(learners))
    coalition = Coalition()
    cut = len(learners) - count
    return [*learners[:cut], *(spec.make(learner, coalition) for learner in learners[cut:])]


def check_count(count: object, learners: int) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count < learners:
        raise ConfigError(
            f"malicious must be a whole number of learners from 0 to {learners - 1} "
            f"(at least one learner stays honest); got {count!r}"
        )
    return count


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


class _Probe(MachineLearningInterface):
    """A stand-in learner for checking an attack's options (never called)."""

    def mli_propose_weights(self) -> Any:
        raise NotImplementedError

    def mli_test_weights(self, weights: Any) -> Any:
        raise NotImplementedError

    def mli_accept_weights(self, weights: Any) -> None:
        raise NotImplementedError

    def mli_get_current_weights(self) -> Any:
        raise NotImplementedError
