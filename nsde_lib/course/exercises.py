"""Self-checks for the exercises of every chapter: ``nl.check("04.1", answer, model=net)``.

The expected value of each exercise is computed here, out of sight, from the objects the
notebook hands over (a trained model, a path of states): the call a learner sees names the
exercise, never its answer. The answers themselves are registered in
:mod:`nsde_lib.course.answers`, one function per exercise. A check prints one line and returns
nothing, so an unanswered exercise prints "not answered yet" and no stray ``False``.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["check", "exercise", "EXERCISES", "Exercise"]


@dataclass(frozen=True)
class Exercise:
    """One registered exercise: how to compute its answer, and how close is close enough."""

    expected: Callable[..., Any]
    rtol: float = 1e-2
    atol: float = 1e-8

    @property
    def needs(self) -> tuple[str, ...]:
        """The names of the objects the notebook must pass to :func:`check`."""
        return tuple(inspect.signature(self.expected).parameters)


EXERCISES: dict[str, Exercise] = {}


def exercise(exercise_id: str, *, rtol: float = 1e-2, atol: float = 1e-8):
    """Register ``fn(**context) -> expected answer`` as exercise ``exercise_id`` ("NN.k")."""
    def register(fn):
        if exercise_id in EXERCISES:
            raise ValueError(f"exercise {exercise_id!r} is registered twice")
        EXERCISES[exercise_id] = Exercise(fn, rtol, atol)
        return fn
    return register


def check(exercise_id: str, answer, **context) -> None:
    """Compare a learner's ``answer`` with exercise ``exercise_id``'s and print a verdict.

    ``answer`` may be ``None`` (not attempted yet). Numbers and arrays are compared with the
    exercise's tolerances, anything else (a name, a bool) with ``==``. A wrong answer never
    raises, so a notebook with unfinished exercises still runs top to bottom.

    Args:
        exercise_id: ``"NN.k"``, chapter and number, e.g. ``"03.2"``.
        answer: the learner's answer, or ``None``.
        **context: the objects the exercise's answer is computed from (its ``needs``).

    Raises:
        ValueError: an unknown exercise, or a missing or unexpected context object.
    """
    if exercise_id not in EXERCISES:
        raise ValueError(f"exercise must be one of {sorted(EXERCISES)}, got {exercise_id!r}")
    ex = EXERCISES[exercise_id]
    if set(context) != set(ex.needs):
        raise ValueError(f"exercise {exercise_id} is checked with {', '.join(ex.needs) or 'no'} "
                         f"context argument(s), got {', '.join(sorted(context)) or 'none'}")
    label = f"Exercise {exercise_id}"
    if answer is None:
        print(f"{label}: not answered yet (replace None with your answer and run the cell)")
        return
    expected = ex.expected(**context)
    if _close(answer, expected, ex.rtol, ex.atol):
        print(f"{label}: correct")
    else:
        print(f"{label}: not yet - {_how_far(answer, expected)}")


def _close(answer, expected, rtol, atol) -> bool:
    if isinstance(expected, (str, bool)) or isinstance(answer, (str, bool)):
        return answer == expected
    try:
        return bool(np.allclose(np.asarray(answer, dtype=float),
                                np.asarray(expected, dtype=float), rtol=rtol, atol=atol))
    except (TypeError, ValueError):
        return answer == expected


def _how_far(answer, expected) -> str:
    """A hint that does not give the answer away: the relative error, when numbers."""
    if isinstance(expected, (str, bool)):
        return "not the expected answer"
    try:
        a, e = np.asarray(answer, dtype=float), np.asarray(expected, dtype=float)
    except (TypeError, ValueError):
        return "not the expected kind of answer"
    if a.shape != e.shape:
        return f"expected {e.size} number{'s' * (e.size != 1)} (shape {e.shape}), got shape {a.shape}"
    rel = np.abs(a - e).max() / max(np.abs(e).max(), 1e-12)
    return f"off by {100 * rel:.1f}% (relative)"
