"""nsde_lib: the library under the course on noise, step size and robust residual networks.

The numerical core is :func:`sdeint`, a fixed-step solver for drift + diffusion + Poisson-jump
SDEs on states of any shape; :class:`NeuralSDE` and :func:`make_sde` build the models of
paper 000 from a drift network and a noise preset.
"""
from .jumps import (JumpDropout, PoissonJump, StochasticDepth, counting_paths, dropout_block,
                    jump_rewrite_block, poisson_events)
from .noise import DIFFUSIONS, Additive, GaussianDropout, Multiplicative, make_diffusion
from .runtime import device_report, is_quick, pick_device, seed_everything
from .sde import NOISES, NeuralSDE, make_sde
from .brownian import TabulatedBrownian
from .solver import (METHODS, DivergenceError, euler_factor, euler_stability_limit, sdeint,
                     time_grid)
from .data import load, mnist5k, moons
from .train import History, evaluate, fit
from .resnet import EulerResNet
from .propagation import (WeightNormRecorder, jacobian_norms, perturbation_growth, product_bound,
                          prop1_bound, prop2_bound, state_grad_norms)
from .sweeps import summarize, sweep

__version__ = "0.1.0"

__all__ = [
    "sdeint", "time_grid", "DivergenceError", "METHODS", "TabulatedBrownian",
    "NeuralSDE", "make_sde", "NOISES",
    "Additive", "Multiplicative", "GaussianDropout", "make_diffusion", "DIFFUSIONS",
    "PoissonJump", "JumpDropout", "StochasticDepth", "dropout_block", "jump_rewrite_block",
    "poisson_events", "counting_paths",
    "pick_device", "device_report", "is_quick", "seed_everything",
    "euler_factor", "euler_stability_limit", "moons", "mnist5k", "load", "fit", "evaluate",
    "History", "EulerResNet", "state_grad_norms", "jacobian_norms", "prop1_bound",
    "prop2_bound", "product_bound", "perturbation_growth", "WeightNormRecorder",
    "sweep", "summarize",
]
