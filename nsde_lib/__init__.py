"""nsde_lib: the library under the course on noise, step size and robust residual networks.

The numerical core is :func:`sdeint`, a fixed-step solver for drift + diffusion + Poisson-jump
SDEs on states of any shape; :class:`NeuralSDE` and :func:`make_sde` build the models of
paper 000 from a drift network and a noise preset.
"""
from .jumps import (JumpDropout, PoissonJump, StochasticDepth, compound_poisson_moments,
                    counting_paths, dropout_block, dropout_block_moments, jump_rewrite_block,
                    poisson_events)
from .noise import DIFFUSIONS, Additive, GaussianDropout, Multiplicative, make_diffusion
from .runtime import device_report, is_quick, pick_device, seed_everything
from .sde import NOISES, NeuralSDE, make_sde
from .brownian import TabulatedBrownian, brownian_increments
from .classifier import SDEClassifier, ensemble_predict
from .data import load, mnist5k, moons
from .solver import (METHODS, DivergenceError, euler_factor, euler_stability_limit, sdeint,
                     time_grid)
from .stability import (LyapunovEstimate, gbm_lyapunov, gbm_moment_exponent, lipschitz_bound,
                        local_lipschitz, lyapunov_exponent, perturbation, spectral_norms)
from .train import History, evaluate, fit
from .resnet import EulerResNet
from .propagation import (WeightNormRecorder, jacobian_norms, perturbation_growth, product_bound,
                          prop1_bound, prop2_bound, state_grad_norms)
from .sweeps import summarize, sweep
from . import adaptive, attacks, corruptions, robustness  # noqa: E402  (nl.attacks.pgd, ...)

__version__ = "0.1.0"

__all__ = [
    "sdeint", "time_grid", "DivergenceError", "METHODS", "TabulatedBrownian",
    "brownian_increments",
    "lyapunov_exponent", "LyapunovEstimate", "perturbation", "lipschitz_bound",
    "spectral_norms", "local_lipschitz", "gbm_lyapunov", "gbm_moment_exponent",
    "NeuralSDE", "make_sde", "NOISES",
    "Additive", "Multiplicative", "GaussianDropout", "make_diffusion", "DIFFUSIONS",
    "PoissonJump", "JumpDropout", "StochasticDepth", "dropout_block", "jump_rewrite_block",
    "poisson_events", "counting_paths", "compound_poisson_moments", "dropout_block_moments",
    "pick_device", "device_report", "is_quick", "seed_everything",
    "SDEClassifier", "ensemble_predict",
    "moons", "mnist5k", "load", "fit", "evaluate", "History",
    "euler_factor", "euler_stability_limit", "EulerResNet", "state_grad_norms", "jacobian_norms",
    "prop1_bound", "prop2_bound", "product_bound", "perturbation_growth", "WeightNormRecorder",
    "sweep", "summarize",
    "adaptive", "attacks", "corruptions", "robustness",
]
