"""Robustness, measured and certified: gradient attacks (FGSM, PGD, EOT), common corruptions,
the evaluation that runs them the same way for every model, and randomized smoothing."""
from .attacks import *  # noqa: F401,F403
from .corruptions import *  # noqa: F401,F403
from .evaluation import *  # noqa: F401,F403
from .smoothing import *  # noqa: F401,F403
from . import attacks, corruptions, evaluation, smoothing

__all__ = attacks.__all__ + corruptions.__all__ + evaluation.__all__ + smoothing.__all__
