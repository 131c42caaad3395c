"""What the chapters show on screen: plotly figures, sliders that drive them, Table 1's layout,
the exercises' self-checks, and the record of what the chapters claim about trained models."""
from .plotting import *  # noqa: F401,F403
from .resnet_figures import *  # noqa: F401,F403
from .sde_figures import *  # noqa: F401,F403
from .robust_figures import *  # noqa: F401,F403
from .smoothing_figures import *  # noqa: F401,F403
from .widgets import *  # noqa: F401,F403
from .table1 import *  # noqa: F401,F403
from .exercises import *  # noqa: F401,F403
from .results import *  # noqa: F401,F403
from .claims import *  # noqa: F401,F403
from .phrasing import *  # noqa: F401,F403
from . import (claims, exercises, phrasing, plotting, resnet_figures, results,  # noqa: E402
               robust_figures, sde_figures, smoothing_figures, table1, widgets)
from . import answers  # noqa: E402,F401  (registers every chapter's exercises)

__all__ = (plotting.__all__ + resnet_figures.__all__ + sde_figures.__all__ + robust_figures.__all__
           + smoothing_figures.__all__ + widgets.__all__ + table1.__all__ + exercises.__all__
           + results.__all__ + claims.__all__ + phrasing.__all__)
