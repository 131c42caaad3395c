"""The Neural ODE / SDE classifier against independent implementations: a concatenated time
channel, the reference drift written with torch.nn.functional, explicit Euler by hand, torchsde on
the same Brownian increments, and statistics of the noise it draws."""
import math

import pytest
import torch
import torch.nn.functional as F
import torchsde

import nsde_lib as nl
from nsde_lib import (CLASSIFIER_NOISES, SDEClassifier, TimeConv2d,
                                 ensemble_predict)


NOISY = ("additive", "multiplicative", "dropout", "jump-dropout")


def small(noise="none", dtype=torch.float64, seed=0, **kw):
    torch.manual_seed(seed)
    args = dict(channels=8, noise=noise, sigma=0.7, p=0.3, rate=2.0, steps=4, T=1.0) | kw
    return SDEClassifier(3, 5, **args).to(dtype)


def images(B=3, size=9, dtype=torch.float64, seed=1):
    return torch.rand(B, 3, size, size, generator=torch.Generator().manual_seed(seed),
                      dtype=dtype)


# --- the drift is the reference model's ----------------------------------------------------------

def test_time_conv_equals_concatenating_a_constant_time_channel():
    """The time map trick must give exactly what conv([t, x]) gives, borders included."""
    torch.manual_seed(0)
    conv = TimeConv2d(4, 6).double()
    x = torch.randn(2, 4, 5, 7, dtype=torch.float64)
    for t in (0.0, 0.37, 1.0):
        tt = torch.full((2, 1, 5, 7), t, dtype=torch.float64)
        expected = F.conv2d(torch.cat([tt, x], 1), conv.weight, conv.bias, padding=1)
        torch.testing.assert_close(conv(torch.tensor(t, dtype=torch.float64), x), expected,
                                   rtol=1e-12, atol=1e-12)


def test_drift_is_three_norm_relu_timeconv_blocks_and_a_closing_norm():
    model = small()
    d = model.drift
    h = torch.randn(3, 8, 6, 6, dtype=torch.float64)
    t = torch.tensor(0.4, dtype=torch.float64)

    def reference(h):
        out = h
        for i in range(3):
            out = F.relu(F.group_norm(out, 8, d.norms[i].weight, d.norms[i].bias, eps=1e-5))
            tt = torch.full_like(out[:, :1], float(t))
            out = F.conv2d(torch.cat([tt, out], 1), d.convs[i].weight, d.convs[i].bias,
                           padding=1)
        return F.group_norm(out, 8, d.norms[3].weight, d.norms[3].bias, eps=1e-5)

    torch.testing.assert_close(d(t, h), reference(h), rtol=1e-12, atol=1e-12)
    assert [c.weight.shape[1] for c in d.convs] == [9, 9, 9]  # C + the time channel


def test_stem_and_head_shapes_follow_the_reference():
    model = SDEClassifier(3, 10)  # paper scale: 64 channels
    x = torch.rand(1, 3, 32, 32)
    assert model.brownian_shape(x) == (10, 1, 64, 30, 30)  # 3x3 stem without padding
    with torch.no_grad():
        assert model(x).shape == (1, 10)
        assert model.hidden_states(x).shape == (11, 1, 64, 30, 30)


# --- the block is the SDE of paper 000, eq. 3 ---------------------------------------------------

def test_ode_block_is_explicit_euler_with_dt_equal_T_over_steps():
    model = small("none", T=0.8, steps=5)
    x = images()
    h = model.stem(x)
    expected = [h]
    for k in range(5):
        t = torch.tensor(0.8 * k / 5, dtype=torch.float64)
        h = h + 0.16 * model.drift(t, h)
        expected.append(h)
    path = model.hidden_states(x)
    torch.testing.assert_close(path, torch.stack(expected), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(model(x), model.head(path[-1]), rtol=1e-10, atol=1e-12)


class Flat(torch.nn.Module):
    """torchsde wants (B, D) states: the same SDE seen through a reshape."""

    noise_type, sde_type = "diagonal", "ito"

    def __init__(self, sde, shape):
        super().__init__()
        self.sde, self.shape = sde, shape

    def f(self, t, y):
        return self.sde.f(t, y.view(-1, *self.shape)).flatten(1)

    def g(self, t, y):
        return self.sde.g(t, y.view(-1, *self.shape)).flatten(1)


@pytest.mark.parametrize("noise", ["additive", "multiplicative", "dropout"])
def test_block_matches_torchsde_on_the_same_increments(noise):
    model = small(noise)
    x = images()
    shape = model.brownian_shape(x)
    dw = torch.randn(shape, generator=torch.Generator().manual_seed(2),
                     dtype=torch.float64) * math.sqrt(model.dt)
    ours = model.hidden_states(x, bm=dw)
    ts = torch.tensor([k / model.steps for k in range(model.steps + 1)], dtype=torch.float64)
    grid = nl.time_grid(ts, model.dt)[0]
    bm = nl.TabulatedBrownian(grid, dw.flatten(2))
    h0 = model.stem(x)
    theirs = torchsde.sdeint(Flat(model.sde, h0.shape[1:]), h0.flatten(1), ts, bm=bm,
                             dt=model.dt, method="euler")
    torch.testing.assert_close(ours.flatten(2), theirs, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(ours, model.hidden_states(x, noise_on=False))  # the noise mattered


@pytest.mark.parametrize("channels_last", [False, True])
def test_additive_increments_have_variance_sigma2_dt(channels_last):
    """After one step noisy − noise-free = σ·ΔW exactly: check its law, in both layouts."""
    sigma = 0.7
    model = small("additive", dtype=torch.float32, sigma=sigma, channels=16)
    x = images(B=64, size=12, dtype=torch.float32)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    torch.manual_seed(3)
    with torch.no_grad():
        diff = (model.hidden_states(x)[1] - model.hidden_states(x, noise_on=False)[1]).double()
    n = diff.numel()  # 64·16·10·10 = 102400 draws
    assert abs(float(diff.mean())) < 4 * sigma * math.sqrt(model.dt / n)
    var = float(diff.var())
    assert abs(var / (sigma ** 2 * model.dt) - 1) < 4 * math.sqrt(2 / n)
    # independent across steps and samples: no two steps share increments
    with torch.no_grad():
        path = model.hidden_states(x) - model.hidden_states(x, noise_on=False)
    assert not torch.allclose(path[2] - path[1], path[1])


def test_zero_increments_give_the_noise_free_path():
    for noise in ("additive", "multiplicative", "dropout"):
        model = small(noise)
        x = images()
        zero = torch.zeros(model.brownian_shape(x), dtype=torch.float64)
        torch.testing.assert_close(model.hidden_states(x, bm=zero),
                                   model.hidden_states(x, noise_on=False), rtol=0, atol=0)


def test_jump_dropout_without_noise_uses_the_jumps_mean():
    """Noise off: drift ½f + λ·E[Z]·½f = (½ + λ(1 − 2p)/2)·f (eq. 4 with Z's mean)."""
    p, rate = 0.3, 2.0
    model = small("jump-dropout", p=p, rate=rate)
    x = images()
    path = model.hidden_states(x, noise_on=False)
    h0 = model.stem(x)
    f0 = model.drift(torch.tensor(0.0, dtype=torch.float64), h0)
    scale = 0.5 + rate * (1 - 2 * p) / 2
    torch.testing.assert_close(path[1] - path[0], model.dt * scale * f0, rtol=1e-10, atol=1e-12)
    noisy = model.hidden_states(x, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(noisy, path)


# --- the noise switch -------------------------------------------------------------------------

@pytest.mark.parametrize("noise", NOISY)
def test_noise_is_on_in_eval_mode_and_off_only_when_asked(noise):
    model = small(noise).eval()  # what an attack does
    x = images()
    assert model.noise_on
    a, b = model(x), model(x)
    assert not torch.allclose(a, b), "eval() must not switch the noise off"
    model.train()
    c, d = model(x, noise_on=False), model(x, noise_on=False)
    assert torch.equal(c, d)
    model.noise_on = False
    assert not model.sde.noise_on, "one switch: the model's is its NeuralSDE's"
    model.train()  # training mode does not switch it back on
    assert torch.equal(model(x), c)
    assert not torch.allclose(model(x, noise_on=True), c)
    assert not model.noise_on, "noise_on=True for one call leaves the switch as it was"


@pytest.mark.parametrize("noise", ["additive", "multiplicative", "dropout"])
def test_noise_free_diffusion_models_equal_the_ode_with_the_same_weights(noise):
    noisy, ode = small(noise), small("none", seed=9)
    ode.load_state_dict(noisy.state_dict())  # one state dict for every noise type
    x = images()
    torch.testing.assert_close(noisy(x, noise_on=False), ode(x), rtol=0, atol=0)


def test_generator_and_shared_paths_are_reproducible():
    model = small("multiplicative")
    x = images()
    def run(seed):
        return model.hidden_states(x, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(run(4), run(4)) and not torch.allclose(run(4), run(5))
    bm = torch.randn(model.brownian_shape(x), dtype=torch.float64) * math.sqrt(model.dt)
    x2 = x + 0.01 * torch.randn_like(x)
    # a shared path: the two inputs differ only through the input perturbation
    eps = model.hidden_states(x2, bm=bm) - model.hidden_states(x, bm=bm)
    assert eps.abs().max() < 0.5 and eps[0].abs().max() > 0
    with pytest.raises(ValueError, match="bm"):
        model.hidden_states(x, bm=bm[1:])


# --- test-time-noise ensembles ------------------------------------------------------------------

def test_ensemble_is_the_mean_softmax_of_K_noisy_passes():
    """K draws go through as one batch of K·B images, draw k at rows k·B .. k·B + B − 1."""
    model = small("dropout").eval()
    x = images()
    torch.manual_seed(11)
    with torch.no_grad():
        ens = ensemble_predict(model, x, 5)
        torch.manual_seed(11)
        running = ensemble_predict(model, x, 5, running=True)
    torch.manual_seed(11)
    with torch.no_grad():
        draws = F.softmax(model(x.repeat(5, 1, 1, 1), noise_on=True), 1).view(5, len(x), -1)
    torch.testing.assert_close(ens, draws.mean(0).to(ens.dtype), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(ens.sum(1), torch.ones(3, dtype=ens.dtype))
    for k in range(1, 6):  # the running means are the ensembles of the first k draws
        torch.testing.assert_close(running[k - 1], draws[:k].mean(0).to(ens.dtype))
    assert not torch.allclose(draws[0], draws[1])  # the draws differ


def test_ensemble_spread_shrinks_like_one_over_sqrt_K():
    """40 copies of one image in a batch: 40 independent ensembles (noise is per sample)."""
    model = small("multiplicative", dtype=torch.float32, sigma=1.5).eval()
    x = images(B=1, dtype=torch.float32).expand(40, -1, -1, -1)
    torch.manual_seed(0)
    with torch.no_grad():
        one, many = ensemble_predict(model, x, 1), ensemble_predict(model, x, 16)
    ratio = float(one.std(0).mean() / many.std(0).mean())
    assert 2.8 < ratio < 5.5, f"spread ratio {ratio:.2f}, expected about sqrt(16) = 4"


def test_ensemble_of_an_ode_is_its_softmax_and_K_must_be_positive():
    model = small("none")
    x = images()
    torch.testing.assert_close(ensemble_predict(model, x, 7), F.softmax(model(x), 1))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="K"):
            ensemble_predict(model, x, bad)


def test_ensemble_passes_gradients_for_attacks():
    model = small("additive").eval()
    x = images().requires_grad_(True)
    ensemble_predict(model, x, 3)[:, 0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


# --- training-relevant properties -----------------------------------------------------------

def test_every_parameter_gets_a_gradient_and_appears_once():
    model = small("multiplicative")
    F.cross_entropy(model(images()), torch.tensor([0, 1, 2])).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing
    keys = list(model.state_dict())
    assert len(keys) == len(set(keys)) and not any(k.startswith("sde.") for k in keys)


def test_spectral_norm_bounds_the_drift_convs():
    torch.manual_seed(0)
    model = SDEClassifier(3, 5, channels=8, steps=2, spectral_norm=True)
    x = images(B=1, size=5, dtype=torch.float32)
    for conv in model.drift.convs:  # start far from norm 1
        conv.parametrizations.weight.original.data *= 5
    for conv in model.drift.convs:
        for _ in range(150):  # in training mode each read of the weight is one power iteration
            conv.weight
    model(x)
    model.eval()  # reading the weight now runs no further iteration
    t, h = torch.tensor(0.5), torch.randn(2, 8, 5, 5)
    for conv in model.drift.convs:
        expected = F.conv2d(torch.cat([torch.full_like(h[:, :1], 0.5), h], 1), conv.weight,
                            conv.bias, padding=1)
        torch.testing.assert_close(conv(t, h), expected)  # the forward uses the normalised weight
        assert nn_has_spectral_norm(conv)
        w = conv.weight.detach().flatten(1)
        assert abs(float(torch.linalg.matrix_norm(w, 2)) - 1.0) < 0.01
        original = conv.parametrizations.weight.original.detach().flatten(1)
        assert float(torch.linalg.matrix_norm(original, 2)) > 2
    plain = SDEClassifier(3, 5, channels=8, steps=2)
    assert not any(nn_has_spectral_norm(c) for c in plain.drift.convs)


def nn_has_spectral_norm(module):
    return torch.nn.utils.parametrize.is_parametrized(module, "weight")


def test_bf16_autocast_keeps_the_state_and_norms_in_float32():
    model = small("multiplicative", dtype=torch.float32)
    x = images(dtype=torch.float32)
    bm = torch.randn(model.brownian_shape(x)) * math.sqrt(model.dt)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        path = model.hidden_states(x, bm=bm)
        logits = model(x, noise_on=False)
    assert path.dtype == torch.float32
    reference = model(x, noise_on=False)
    err = (logits.float() - reference).abs().max().item()
    assert err < 0.05 * reference.abs().max().item()
    torch.testing.assert_close(path, model.hidden_states(x, bm=bm), rtol=0.05, atol=0.05)


def test_channels_last_gives_the_same_logits():
    model = small("dropout", dtype=torch.float32)
    x = images(dtype=torch.float32)
    expected = model(x, noise_on=False)
    model = model.to(memory_format=torch.channels_last)
    got = model(x.contiguous(memory_format=torch.channels_last), noise_on=False)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_divergence_is_reported_not_returned_as_nan():
    model = small("multiplicative", dtype=torch.float32, sigma=1e15)
    with pytest.raises(nl.DivergenceError):
        model(images(dtype=torch.float32))


# --- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,match", [
    (dict(noise="gaussian"), "noise"), (dict(noise="stochastic-depth"), "noise"),
    (dict(sigma=-0.1), "sigma"), (dict(p=1.0), "p"), (dict(rate=-1.0), "rate"),
    (dict(steps=0), "steps"), (dict(steps=2.5), "steps"), (dict(T=0.0), "T"),
    (dict(T=float("inf")), "T"), (dict(channels=0), "channels"), (dict(method="rk4"), "method"),
    (dict(method="milstein", noise="dropout"), "milstein"),
])
def test_bad_arguments_are_clear_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SDEClassifier(3, 10, **kwargs)


def test_wrong_input_shape_is_named():
    with pytest.raises(ValueError, match="x must have shape"):
        small()(torch.rand(2, 1, 9, 9, dtype=torch.float64))


def test_the_noise_names_are_the_papers():
    assert CLASSIFIER_NOISES == ("none", "additive", "multiplicative", "dropout", "jump-dropout")
