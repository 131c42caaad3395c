"""Data in, trained models out: the data sets, augmentation, the training loop, what a run is
(:mod:`.config`), the one route to a trained model (:func:`train_model`, :mod:`.experiment`) with its
run store (:mod:`.store`), the device fast path, run folders on disk, sweeps over configurations
and seeds, and sweeps of run folders from a spec file (locally or on Ray Tune, an optional extra
imported only when asked for)."""
from .data import *  # noqa: F401,F403
from .augment import *  # noqa: F401,F403
from .loop import *  # noqa: F401,F403
from .config import *  # noqa: F401,F403
from .folders import *  # noqa: F401,F403
from .fastpath import *  # noqa: F401,F403
from .store import *  # noqa: F401,F403
from .experiment import *  # noqa: F401,F403
from .runs import *  # noqa: F401,F403
from .sweeps import *  # noqa: F401,F403
from .sweep_runs import *  # noqa: F401,F403
from . import (augment, config, data, experiment, fastpath, folders, loop, runs, store,
               sweep_runs, sweeps)

__all__ = (data.__all__ + augment.__all__ + loop.__all__ + config.__all__ + folders.__all__
           + fastpath.__all__ + store.__all__ + experiment.__all__ + runs.__all__
           + sweeps.__all__ + sweep_runs.__all__)
