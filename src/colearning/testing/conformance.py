"""The conformance suite: named checks, chosen by what a learner declares.

Run it on your own learner in one line::

    from colearning.testing import check_learner
    check_learner(MyLearner(...))

or as one pytest test per check, each on a fresh learner::

    from colearning.testing import parametrize_with_checks

    @parametrize_with_checks({"MyLearner": lambda: MyLearner(...)})
    def test_my_learner(learner, check):
        check(learner)

Which checks run depends on the learner's
:meth:`~colearning.MachineLearningInterface.mli_tags` (a :class:`~colearning.LearnerTags`):

==========================================  =====================
check (in :mod:`colearning.testing.checks`)  runs when
==========================================  =====================
``check_current_weights``                   always
``check_propose_keeps_current``             always
``check_proposal_fits``                     always
``check_test_keeps_current``                always
``check_verdict``                           always
``check_no_self_approval``                  always
``check_accept_installs_weights``           always
``check_encoded_model``                     ``encoded_model``
``check_proposals_are_deterministic``       ``deterministic``
``check_proposals_depend_on_round``         ``deterministic``
``check_exports_model``                     ``exports_model``
``check_privacy_budget``                    ``private``
``check_restores_progress``                 ``restores_progress``
``check_test_refuses_garbage``              always
``check_accept_refuses_garbage``            always
==========================================  =====================

Exporting a model is optional: a learner that does not declare ``exports_model`` is not
asked for one (the default ``mli_tags`` declares it exactly when
``mli_get_current_model`` is implemented).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar, cast

from colearning.core.codec import id_of
from colearning.core.exceptions import ConfigTypeError
from colearning.core.interface import MachineLearningInterface
from colearning.testing import checks as _c
from colearning.testing.checks import LearnerContractError, _current, _tags

__all__ = [
    "LearnerContractError",
    "check_learner",
    "learner_checks",
    "parametrize_with_checks",
]

#: A check as :func:`learner_checks` gives it: call it with a learner.
Check = Callable[[MachineLearningInterface], None]
#: Builds a new learner each time it is called.
LearnerFactory = Callable[[], MachineLearningInterface]
_Test = TypeVar("_Test", bound=Callable[..., Any])

# (check, the tag that selects it; None: every learner), in the order they run.
_REGISTRY: tuple[tuple[Callable[..., None], str | None], ...] = (
    (_c.check_current_weights, None),
    (_c.check_propose_keeps_current, None),
    (_c.check_proposal_fits, None),
    (_c.check_test_keeps_current, None),
    (_c.check_verdict, None),
    (_c.check_no_self_approval, None),
    (_c.check_accept_installs_weights, None),
    (_c.check_encoded_model, "encoded_model"),
    (_c.check_proposals_are_deterministic, "deterministic"),
    (_c.check_proposals_depend_on_round, "deterministic"),
    (_c.check_exports_model, "exports_model"),
    (_c.check_privacy_budget, "private"),
    (_c.check_restores_progress, "restores_progress"),
    # Last: a learner that takes bad weights in may not recover from them.
    (_c.check_test_refuses_garbage, None),
    (_c.check_accept_refuses_garbage, None),
)


def learner_checks(
    learner: MachineLearningInterface, *, round_index: int = 0
) -> Iterator[tuple[str, Check]]:
    """The ``(name, check)`` pairs that apply to ``learner``, chosen by its tags.

    Parameters
    ----------
    learner
        The learner whose :meth:`~colearning.MachineLearningInterface.mli_tags` pick
        the checks (it is not changed here).
    round_index
        The round index the checks propose at (and the next ones, where a check needs
        several rounds).

    Raises
    ------
    LearnerContractError
        If ``mli_tags()`` fails or does not return a :class:`~colearning.LearnerTags`.

    Examples
    --------
    >>> from colearning import LearnerTags
    >>> from colearning.testing import QuadraticLearner
    >>> class Plain(QuadraticLearner):
    ...     def mli_tags(self):
    ...         return LearnerTags()
    >>> [name for name, _ in learner_checks(Plain(target=[1.0]))][:3]
    ['check_current_weights', 'check_propose_keeps_current', 'check_proposal_fits']
    >>> "check_proposals_are_deterministic" in dict(learner_checks(Plain(target=[1.0])))
    False
    """
    tags = _tags(learner)
    for check, tag in _REGISTRY:
        if tag is None or getattr(tags, tag):
            bound = check if round_index == 0 else functools.partial(check, round_index=round_index)
            yield check.__name__, bound


def check_learner(learner: MachineLearningInterface, *, round_index: int = 0) -> None:
    """Run every check that applies to ``learner`` and report every broken rule at once.

    The checks run one after another on this one learner (see :func:`learner_checks`
    for which); the learner ends with the weights it started with. To run each check
    as its own test on a fresh learner, use :func:`parametrize_with_checks`.

    Parameters
    ----------
    learner
        Any :class:`~colearning.MachineLearningInterface`.
    round_index
        The round index to propose at.

    Raises
    ------
    LearnerContractError
        Listing each broken rule as ``check_name: what was seen; what to change``
        (also in its ``failures``).

    Examples
    --------
    >>> from colearning.testing import QuadraticLearner
    >>> check_learner(QuadraticLearner(target=[1.0, -1.0]))
    >>> class ApprovesAll(QuadraticLearner):
    ...     def mli_test_weights(self, weights):
    ...         verdict = super().mli_test_weights(weights)
    ...         return type(verdict)(weights, verdict.vote_score, verdict.test_score, True)
    >>> check_learner(ApprovesAll(target=[1.0]))
    Traceback (most recent call last):
    ...
    colearning.testing.checks.LearnerContractError: ApprovesAll breaks the learner contract (1 ...
      - check_no_self_approval: mli_test_weights voted True on weights equal to the ...
    """
    name = type(learner).__name__
    if not isinstance(learner, MachineLearningInterface):
        raise LearnerContractError(
            f"{name} is not a MachineLearningInterface; subclass "
            "colearning.MachineLearningInterface and implement its mli_ methods"
        )
    checks = list(learner_checks(learner, round_index=round_index))
    try:
        original = _current(learner)
        start = id_of(original)
    except Exception as exc:
        # Without current weights no other check can run; say what is wrong with them.
        try:
            _c.check_current_weights(learner)
            found: tuple[str, ...] = (str(exc),)
        except LearnerContractError as err:
            found = err.failures
        listed = [f"check_current_weights: {f}" for f in found]
        lines = "\n".join(f"  - {f}" for f in listed)
        raise LearnerContractError(f"{name} breaks the learner contract:\n{lines}", listed) from exc

    failures: list[str] = []
    failed: set[str] = set()
    for check_name, check in checks:
        try:
            check(learner)
        except LearnerContractError as exc:
            failures.extend(f"{check_name}: {failure}" for failure in exc.failures)
            failed.add(check_name)
        except Exception as exc:
            failures.append(f"{check_name}: raised {type(exc).__name__}: {exc}")
            failed.add(check_name)
    if not _holds(learner, start):
        with contextlib.suppress(Exception):  # judged by the weights it holds after
            learner.mli_accept_weights(original)
        if not _holds(learner, start):
            failures.append(
                "the checks could not put the starting weights back: after "
                "mli_accept_weights(original) the current weights still differ"
            )
    if failures:
        lines = "\n".join(f"  - {f}" for f in failures)
        raise LearnerContractError(
            f"{name} breaks the learner contract ({len(failed)} of {len(checks)} checks "
            f"failed):\n{lines}",
            failures,
        )


def _holds(learner: MachineLearningInterface, weights_id: str) -> bool:
    try:
        return id_of(learner.mli_get_current_weights()) == weights_id
    except Exception:
        return False


class _FreshLearner:
    """A factory standing in for the ``learner`` argument until the test runs."""

    def __init__(self, factory: LearnerFactory, label: str) -> None:
        self.factory = factory
        self.label = label

    def __call__(self) -> MachineLearningInterface:
        return self.factory()

    def __repr__(self) -> str:
        return f"<a new {self.label}>"


def _labelled(
    factories: Mapping[str, LearnerFactory] | Iterable[LearnerFactory],
) -> Iterator[tuple[str, LearnerFactory, MachineLearningInterface]]:
    pairs: Iterable[tuple[str | None, Any]] = (
        factories.items() if isinstance(factories, Mapping) else ((None, f) for f in factories)
    )
    seen: dict[str, int] = {}
    for given, factory in pairs:
        if isinstance(factory, MachineLearningInterface) or not callable(factory):
            raise ConfigTypeError(
                "parametrize_with_checks takes factories (callables that build a new "
                f"learner), not {type(factory).__name__}: every check changes a learner's "
                "state, so each gets its own; pass e.g. lambda: MyLearner(...)"
            )
        learner = factory()
        if not isinstance(learner, MachineLearningInterface):
            raise ConfigTypeError(
                f"a learner factory returned {type(learner).__name__}; it must return a "
                "new colearning.MachineLearningInterface"
            )
        label = given if given is not None else type(learner).__name__
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label = f"{label}_{seen[label]}"
        yield label, factory, learner


def parametrize_with_checks(
    factories: Mapping[str, LearnerFactory] | Iterable[LearnerFactory],
    *,
    round_index: int = 0,
) -> Callable[[_Test], _Test]:
    """A pytest decorator: one test per (learner, applicable check), each on a new learner.

    The decorated test takes ``learner`` and ``check`` and calls ``check(learner)``.
    Each factory is called once now, to read the learner's tags (which pick its
    checks), and once more for every test, so that no check sees another's state.
    pytest is imported here, not when :mod:`colearning.testing` is.

    Parameters
    ----------
    factories
        Callables that each build a new learner: a mapping ``{label: factory}``, or a
        sequence of factories, labelled by the learner's class name (``_2``, ``_3``,
        ... tell repeats apart). Test ids read ``label-check_name``.
    round_index
        Passed to every check.

    Raises
    ------
    ConfigTypeError
        If a factory is a learner rather than a callable building one, or builds
        something else; or if the test does not take ``learner`` and ``check``.

    Examples
    --------
    >>> from colearning.testing import QuadraticLearner
    >>> @parametrize_with_checks({"Quadratic": lambda: QuadraticLearner(target=[1.0])})
    ... def test_quadratic(learner, check):
    ...     check(learner)
    >>> [p.id for p in test_quadratic.pytestmark[0].args[1]][:2]
    ['Quadratic-check_current_weights', 'Quadratic-check_propose_keeps_current']
    """
    import pytest

    params = [
        pytest.param(_FreshLearner(factory, label), check, id=f"{label}-{check_name}")
        for label, factory, learner in _labelled(factories)
        for check_name, check in learner_checks(learner, round_index=round_index)
    ]

    def decorate(test: _Test) -> _Test:
        wanted = inspect.signature(test).parameters
        if "learner" not in wanted or "check" not in wanted:
            raise ConfigTypeError(
                f"a test decorated with parametrize_with_checks takes (learner, check); "
                f"{test.__name__} takes ({', '.join(wanted)})"
            )

        @functools.wraps(test)
        def run(*args: Any, **kwargs: Any) -> Any:
            # pytest passes the factory under "learner"; the test gets a new learner.
            fresh = kwargs.get("learner")
            if isinstance(fresh, _FreshLearner):
                kwargs["learner"] = fresh()
            return test(*args, **kwargs)

        return cast(_Test, pytest.mark.parametrize(("learner", "check"), params)(run))

    return decorate
