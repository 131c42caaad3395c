"""Data in, trained models out: the data sets, augmentation, the training loop, run folders on
disk and sweeps over configurations and seeds."""
from .data import *  # noqa: F401,F403
from .augment import *  # noqa: F401,F403
from .loop import *  # noqa: F401,F403
from .runs import *  # noqa: F401,F403
from .sweeps import *  # noqa: F401,F403
from . import augment, data, loop, runs, sweeps

__all__ = data.__all__ + augment.__all__ + loop.__all__ + runs.__all__ + sweeps.__all__
