"""The exercises' self-checks: the answer is computed out of sight, an unanswered exercise says so
(and prints no stray value), a wrong one gets a hint that does not give the answer away."""
import pytest
import torch

import nsde_lib as nl


def run(capsys, *args, **kwargs):
    assert nl.check(*args, **kwargs) is None  # nothing for a notebook cell to echo
    return capsys.readouterr().out.strip()


def test_unanswered_right_and_wrong(capsys):
    assert "not answered yet" in run(capsys, "01.1", None)
    assert run(capsys, "01.1", 0.4) == "Exercise 01.1: correct"
    wrong = run(capsys, "01.1", 0.5)
    assert wrong.startswith("Exercise 01.1: not yet") and "25.0%" in wrong and "0.4" not in wrong


def test_answers_come_from_the_learners_own_run(capsys):
    states = torch.tensor([[[0.0, 0.0]], [[3.0, 4.0]], [[3.0, 4.0]]])  # steps of length 5 and 0
    assert run(capsys, "01.3", 2.5, states=states) == "Exercise 01.3: correct"
    assert "not yet" in run(capsys, "01.3", 5.0, states=states)


def test_names_and_shapes_are_compared_as_such(capsys):
    assert "shape" in run(capsys, "02.1", 3.0)              # a list of two numbers expected
    assert "correct" in run(capsys, "02.1", [1.5 ** 20, 0.9 + 0.1 * 1.5 ** 20])


def test_unknown_exercise_and_wrong_context_are_clear_errors():
    with pytest.raises(ValueError, match="exercise must be one of"):
        nl.check("99.9", 1.0)
    with pytest.raises(ValueError, match="states"):
        nl.check("01.3", 1.0)                               # the run's states are missing
    with pytest.raises(ValueError, match="no context"):
        nl.check("01.1", 1.0, model=None)


def test_every_exercise_has_an_id_of_chapter_and_number():
    nl.check("01.1", None)  # loads the registry
    assert nl.EXERCISES and all(len(k) == 4 and k[2] == "." for k in nl.EXERCISES)
