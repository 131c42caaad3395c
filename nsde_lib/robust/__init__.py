"""Robustness, measured: gradient attacks (FGSM, PGD, EOT), common corruptions, and the
evaluation that runs them the same way for every model."""
from .attacks import *  # noqa: F401,F403
from .corruptions import *  # noqa: F401,F403
from .evaluation import *  # noqa: F401,F403
from . import attacks, corruptions, evaluation

__all__ = attacks.__all__ + corruptions.__all__ + evaluation.__all__
