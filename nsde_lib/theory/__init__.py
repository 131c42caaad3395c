"""What can be computed or bounded on paper, and measured against it: Euler's stability, geometric
Brownian motion, convergence orders, Lyapunov exponents, Lipschitz constants, Props. 1–2."""
from .euler import *  # noqa: F401,F403
from .gbm import *  # noqa: F401,F403
from .convergence import *  # noqa: F401,F403
from .lyapunov import *  # noqa: F401,F403
from .lipschitz import *  # noqa: F401,F403
from .propagation import *  # noqa: F401,F403
from . import convergence, euler, gbm, lipschitz, lyapunov, propagation

__all__ = (euler.__all__ + gbm.__all__ + convergence.__all__ + lyapunov.__all__
           + lipschitz.__all__ + propagation.__all__)
