"""Data in, trained models out: the data sets, augmentation, the training loop, run folders on
disk, sweeps over configurations and seeds, and sweeps of run folders from a spec file (locally
or on Ray Tune, an optional extra imported only when asked for)."""
from .data import *  # noqa: F401,F403
from .augment import *  # noqa: F401,F403
from .loop import *  # noqa: F401,F403
from .runs import *  # noqa: F401,F403
from .sweeps import *  # noqa: F401,F403
from .sweep_runs import *  # noqa: F401,F403
from . import augment, data, loop, runs, sweep_runs, sweeps

__all__ = (data.__all__ + augment.__all__ + loop.__all__ + runs.__all__ + sweeps.__all__
           + sweep_runs.__all__)
