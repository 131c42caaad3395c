"""nsde_lib: the library under the course on noise, step size and robust residual networks.

One flat namespace for the notebooks (``import nsde_lib as nl; nl.sdeint, nl.SDEClassifier``, as
d2l does), over subpackages by concept, data flowing one way:

* :mod:`nsde_lib.sde` — Brownian increments, the solver :func:`sdeint`, diffusions, jumps,
  :class:`NeuralSDE` and the noise switch, an adaptive ODE solver;
* :mod:`nsde_lib.models` — :class:`EulerResNet`, :class:`SDEClassifier`, :class:`Flow2D`,
  the test-time-noise ensemble;
* :mod:`nsde_lib.theory` — Euler stability, geometric Brownian motion, convergence orders,
  Lyapunov exponents, Lipschitz constants, Props. 1–2 of paper 003;
* :mod:`nsde_lib.train` — data, augmentation, :func:`fit`, run folders, sweeps;
* :mod:`nsde_lib.robust` — attacks, corruptions, robustness evaluation;
* :mod:`nsde_lib.course` — figures, sliders, Table 1's layout, exercise checks;
* :mod:`nsde_lib.checks` (argument checks) and :mod:`nsde_lib.runtime` (device, seeds) under
  all of them.
"""
from __future__ import annotations

from . import checks, runtime
from .runtime import *  # noqa: F401,F403
from .sde import *  # noqa: F401,F403
from .models import *  # noqa: F401,F403
from .theory import *  # noqa: F401,F403
from .train import *  # noqa: F401,F403
from .robust import *  # noqa: F401,F403
from .course import *  # noqa: F401,F403
from . import course, models, robust, sde, theory, train

__version__ = "0.1.0"

__all__ = (runtime.__all__ + sde.__all__ + models.__all__ + theory.__all__ + train.__all__
           + robust.__all__ + course.__all__
           + ["checks", "runtime", "sde", "models", "theory", "train", "robust", "course"])
