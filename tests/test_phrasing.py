"""The phrasing layer: counts agree with their nouns, lists read as lists, provenance is true."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import nsde_lib as nl


def test_plural_and_lists_in_words():
    assert [nl.plural(n, "model") for n in (0, 1, 2)] == ["no models", "1 model", "2 models"]
    assert nl.plural(3, "radius", "radii") == "3 radii"
    assert nl.in_words([]) == "none"
    assert nl.in_words([2]) == "2"
    assert nl.in_words([2, 8]) == "2 and 8"
    assert nl.in_words([0.01, np.float64(0.1), 1.0], "or") == "0.01, 0.1 or 1"
    with pytest.raises(TypeError, match="numbers and text"):
        nl.in_words([None])


def result(key, loaded, at="2026-12-07T04:12:00+00:00", on="cpu", seconds=30.0):
    return SimpleNamespace(key=key, loaded=loaded, trained_at=at, trained_on=on,
                           seconds=seconds)


def test_provenance_counts_each_model_once_and_says_where_it_came_from():
    assert nl.provenance([]) == "This run used no trained models."
    trained = [result("a", False), result("b", False, seconds=90.0)]
    assert nl.provenance(trained) == ("This run trained 2 models (2.0 min of training on a "
                                      "CPU).")
    loaded = [result("c", True), result("c", True), result("d", True, on="cuda",
                                                             at="2026-12-08T10:00:00+00:00")]
    assert nl.provenance(trained[:1] + loaded) == (
        "This run trained 1 model (under a minute of training on a CPU) and loaded 2 models "
        "from the run store (trained between 2026-12-07 04:12 UTC and 2026-12-08 10:00 UTC on "
        "a CPU or a GPU).")
