"""The numerical core: Brownian increments, the fixed-step solver, diffusions, jumps, the Neural
SDE built from them, and an adaptive ODE solver."""
from .brownian import *  # noqa: F401,F403
from .solver import *  # noqa: F401,F403
from .diffusions import *  # noqa: F401,F403
from .jumps import *  # noqa: F401,F403
from .neural_sde import *  # noqa: F401,F403
from .adaptive import *  # noqa: F401,F403
from . import adaptive, brownian, diffusions, jumps, neural_sde, solver

__all__ = (brownian.__all__ + solver.__all__ + diffusions.__all__ + jumps.__all__
           + neural_sde.__all__ + adaptive.__all__)
