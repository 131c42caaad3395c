"""The one place where the chapters turn numbers from a run into words.

Every generated sentence of the course goes through these functions, so that a count agrees
with its noun, a list reads as a list ("2, 8 and 32", never ``[2, 8, 32]``), and a sentence about
trained models says where they came from. They return plain text (Markdown where noted).
"""
from __future__ import annotations

import datetime
from typing import Iterable

__all__ = ["plural", "in_words", "provenance"]


def plural(n: int, noun: str, plural_form: str | None = None) -> str:
    """``"1 model"``, ``"3 models"``, ``"no models"`` (``plural_form`` for irregular nouns)."""
    many = plural_form or noun + "s"
    if n == 0:
        return f"no {many}"
    return f"{n} {noun if n == 1 else many}"


def in_words(items: Iterable, conjunction: str = "and") -> str:
    """A list in words: ``"a"``, ``"a and b"``, ``"a, b and c"``; ``"none"`` when empty.
    Numbers are written with ``str`` (``0.1``, not ``np.float64(0.1)``)."""
    words = [_word(item) for item in items]
    if not words:
        return "none"
    if len(words) == 1:
        return words[0]
    return f"{', '.join(words[:-1])} {conjunction} {words[-1]}"


def _word(item) -> str:
    if isinstance(item, bool) or item is None:
        raise TypeError(f"in_words takes numbers and text, got {item!r}")
    if hasattr(item, "item") and not isinstance(item, str):  # numpy / torch scalars
        item = item.item()
    if isinstance(item, float):
        return f"{item:g}"
    return str(item)


def provenance(results) -> str:
    """One sentence on where a chapter's models came from in this run: how many it trained and
    how many it loaded from the run store, and when and on what those were trained.

    Args:
        results: :class:`nsde_lib.Result` objects (a dict's values, or a list); a result loaded
            twice counts once.
    """
    unique = {}
    for result in results:  # a model this run trained and then loaded again counts as trained
        key = result.key or id(result)
        if key not in unique or not result.loaded:
            unique[key] = result
    results = list(unique.values())
    trained = [r for r in results if not r.loaded]
    loaded = [r for r in results if r.loaded]
    if not results:
        return "This run used no trained models."
    minutes = sum(r.seconds for r in trained) / 60
    parts = []
    if trained:
        parts.append(f"trained {plural(len(trained), 'model')} ({_duration(minutes)} of "
                     f"training on {_devices(trained)})")
    if loaded:
        days = sorted(_day(r.trained_at) for r in loaded)
        when = days[0] if days[0] == days[-1] else f"between {days[0]} and {days[-1]}"
        parts.append(f"loaded {plural(len(loaded), 'model')} from the run store (trained "
                     f"{when} on {_devices(loaded)})")
    text = " and ".join(parts)
    return f"This run {text}."


DEVICE_WORDS = {"cpu": "a CPU", "cuda": "a GPU", "mps": "an Apple GPU"}


def _devices(results) -> str:
    return in_words(sorted({DEVICE_WORDS.get(r.trained_on, r.trained_on) for r in results}),
                    "or")


def _duration(minutes: float) -> str:
    if minutes < 1:
        return "under a minute"
    return f"{minutes:.0f} min" if minutes >= 10 else f"{minutes:.1f} min"


def _day(stamp: str) -> str:
    try:
        when = datetime.datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return "at an unknown time"
    return when.strftime("%Y-%m-%d %H:%M UTC")
