"""The answers of the chapters' exercises, computed from what each notebook hands to
:func:`nsde_lib.check` (kept here so that the call a learner sees does not give them away).

One function per exercise, registered under "NN.k"; its arguments are the objects the notebook
must pass. Every answer is computed from the learner's own run, so it holds on any machine and
for any seed.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..models.ensemble import ensemble_accuracy
from ..robust.attacks import fgsm, pgd
from ..robust.smoothing import hidden_smooth, radius_cap
from ..theory.euler import euler_factor, euler_stability_limit
from ..theory.gbm import critical_moment_order
from ..theory.lipschitz import lipschitz_bound
from ..theory.propagation import prop1_bound, prop2_bound, product_bound
from ..sde.jumps import compound_poisson_moments, dropout_block_moments
from .exercises import exercise

# --- 01 · a residual network is an Euler method ------------------------------------------------


@exercise("01.1")
def _largest_stable_step():
    return euler_stability_limit(-5.0)


@exercise("01.2")
def _four_linear_blocks():
    return euler_factor(-2.3, 0.5) ** 4


@exercise("01.3")
def _mean_step_length(states):
    """states: (D + 1, N, 2), the test points after every block."""
    return float(np.linalg.norm(np.diff(np.asarray(states), axis=0), axis=2).mean())


# --- 02 · the step factor h --------------------------------------------------------------------


@exercise("02.1")
def _prop1_factors():
    return [prop1_bound(1.0, 0.5, 20), prop1_bound(0.1, 0.5, 20)]


@exercise("02.2")
def _prop1_over_product():
    return prop1_bound(0.1, 0.5, 20) / product_bound(0.1, [0.5] * 20)


@exercise("02.3")
def _prop2_bound():
    return prop2_bound(0.1, 0.1, 32, 1.0)


# --- 03 · diffusion and jumps ----------------------------------------------------------------


@exercise("03.1", rtol=1e-3)
def _critical_moment():
    return critical_moment_order(1.0, 2.8)


@exercise("03.2")
def _jump_and_block_variances():
    return (compound_poisson_moments(1.0, 1.0, 1.0, 0.3)[1], dropout_block_moments(2.0, 0.3)[1])


@exercise("03.3", rtol=1e-4)
def _corollary_threshold(drift):
    return math.sqrt(2 * lipschitz_bound(drift))


# --- 04 · training Neural SDEs -----------------------------------------------------------------


@exercise("04.1")
def _noise_off_drift_scale(model, x):
    """The first noise-free step of a jump model divided by dt·f(0, y0): the drift's scale."""
    with torch.no_grad():
        path = model.hidden_states(x, noise_on=False)
        f0 = model.drift(torch.tensor(0.0, device=x.device, dtype=path.dtype), path[0])
        step = model.dt * f0
        return float(((path[1] - path[0]) * step).sum() / step.pow(2).sum())


@exercise("04.2", rtol=0, atol=1e-6)
def _ensemble_by_hand(model, x, y):
    # one batch of 5·B images after torch.manual_seed(0): what ensemble_predict(model, x, 5) does
    return ensemble_accuracy(model, (x, y), [5], seed=0, batch_size=5 * len(x))[0]


@exercise("04.3", rtol=0, atol=1e-9)
def _ensemble_gain(acc_k):
    """acc_k: {seed: accuracies for K_LIST}; the gain of the largest K over K = 1, in points."""
    return float(np.mean([100 * (a[-1] - a[0]) for a in acc_k.values()]))


# --- 05 · attacks and robustness ---------------------------------------------------------------


@exercise("05.1")
def _fgsm_l2_norm(model, image, label):
    return float((fgsm(model, image, label, 0.1) - image).flatten(1).norm())


@exercise("05.2", rtol=0, atol=1e-9)
def _linf_pgd_accuracy(model, x, y, eps, steps):
    adv = pgd(model, x, y, eps, norm="linf", steps=steps, random_start=False)
    with torch.no_grad():
        return float((model(adv).argmax(1) == y).double().mean())


@exercise("05.3")
def _corollary_sigma(L):
    return math.sqrt(2 * L)


# --- 06 · certified robustness ------------------------------------------------------------------


@exercise("06.1", rtol=1e-4)
def _largest_certifiable_radius(sigma, n, alpha):
    return radius_cap(sigma, n, alpha)


@exercise("06.2", rtol=0, atol=0.5)
def _draws_for_radius(sigma, r, alpha):
    """The fewest draws whose unanimous votes certify r: alpha^(1/n) >= Phi(r / sigma)."""
    from scipy.stats import norm

    return math.ceil(math.log(alpha) / math.log(norm.cdf(r / sigma)))


@exercise("06.3", rtol=1e-4)
def _matching_hidden_sigma(model, image_shape, sigma):
    """Image radius sigma_0 * Phi^-1(p_A) / L equals sigma * Phi^-1(p_A) when sigma_0 = sigma * L."""
    return sigma * hidden_smooth(model, image_shape).lipschitz
