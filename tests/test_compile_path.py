"""The path `sdeint` takes while torch.compile traces it (no host reads but the final finiteness
check, so the solve stays one graph): it gives what the eager path gives. Tracing itself takes
minutes on a CPU, so the test runs that path eagerly, by telling the solver it is being compiled;
benchmarks/gpu_check.sh compiles the real thing on a GPU."""
import math

import pytest
import torch

import nsde_lib as nl
import nsde_lib.sde.solver as solver


def jump_model(seed=0):
    torch.manual_seed(seed)
    return nl.SDEClassifier(1, 10, channels=4, steps=6, noise="jump-dropout", p=0.2, rate=1.5)


def test_jumps_added_at_every_step_equal_jumps_added_where_there_are_events(monkeypatch):
    model = jump_model()
    x = torch.rand(8, 1, 10, 10)
    drawn = []
    jump_sums = solver._jump_sums

    def spy(*args):
        out = jump_sums(*args)
        drawn.append(out[1])
        return out

    monkeypatch.setattr(solver, "_jump_sums", spy)
    eager = model.hidden_states(x, generator=torch.Generator().manual_seed(5))
    # rate·dt = 0.25 per sample and step: in this draw some steps have events, some have none
    assert 0 < int((drawn[0] == 0).sum()) < len(drawn[0])
    monkeypatch.setattr(solver, "_compiling", lambda: True)
    traced = model.hidden_states(x, generator=torch.Generator().manual_seed(5))
    assert torch.equal(drawn[0], drawn[1])  # the same events...
    assert torch.equal(eager, traced)  # ...and a jump of zero events adds exactly zero


def test_a_bad_initial_state_still_fails_when_compiled(monkeypatch):
    monkeypatch.setattr(solver, "_compiling", lambda: True)
    sde = nl.make_sde(lambda t, y: -y, "additive", sigma=0.1)
    with pytest.raises(ValueError, match="y0 holds NaN or Inf"):  # at the end, not at once
        nl.sdeint(sde, torch.tensor([1.0, math.nan]), [0.0, 1.0], dt=0.25)
    blow_up = nl.make_sde(lambda t, y: y * y, "additive", sigma=0.0)
    with pytest.raises(nl.DivergenceError):
        nl.sdeint(blow_up, torch.tensor([1e30]), [0.0, 1.0], dt=0.25)


def test_the_eager_path_does_not_ask_torch_compile_anything(monkeypatch):
    """Outside tracing the solver's shortcuts stay on: the jump counts are read once."""
    calls = []
    tolist = torch.Tensor.tolist

    def spy(self):
        calls.append(self.shape)
        return tolist(self)

    monkeypatch.setattr(torch.Tensor, "tolist", spy)
    model = jump_model()
    model(torch.rand(4, 1, 10, 10))
    assert len(calls) == 1
