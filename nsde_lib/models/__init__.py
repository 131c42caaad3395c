"""The networks: the Euler-view ResNet (paper 003), the Neural ODE/SDE classifier (paper 000),
the 2-D flow, and the test-time-noise ensemble every noisy model predicts with."""
from .resnet import *  # noqa: F401,F403
from .classifier import *  # noqa: F401,F403
from .flow2d import *  # noqa: F401,F403
from .ensemble import *  # noqa: F401,F403
from . import classifier, ensemble, flow2d, resnet

__all__ = resnet.__all__ + classifier.__all__ + flow2d.__all__ + ensemble.__all__
