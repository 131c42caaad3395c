"""A residual network read as explicit Euler: x_{n+1} = x_n + h·F_n(x_n) (paper 003, eq. 4).

:class:`EulerResNet` is stem → ``depth`` residual blocks → head. The blocks act on a state of fixed
shape, ``(B, width)`` for the MLP block (2-D points) or ``(B, width, H, W)`` for the conv block
(images), so block n is one Euler step of size ``h`` for the ODE ẋ = F_{⌊t/h⌋}(x) on [0, depth·h].
The element-wise map I of eq. 4 is the identity (as in the paper's analysis, Sec. 3.2): nothing sits
between two steps, which is what makes the network *exactly* an Euler method (:meth:`as_sde`).
"""
from __future__ import annotations

import torch
from torch import nn

from .. import checks
from ..checks import count

__all__ = ["EulerResNet", "ResidualBlock", "BLOCKS", "ACTIVATIONS"]

BLOCKS = ("mlp", "conv")
ACTIVATIONS = ("relu", "tanh", "identity")
INITS = ("kaiming", "default")


def _activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU, "tanh": nn.Tanh, "identity": nn.Identity}[name]()


class ResidualBlock(nn.Module):
    """The residual branch F of one block: two affine maps (MLP) or two 3×3 convolutions.

    ``mlp``: Linear → [BN] → act → Linear → [BN] on ``(B, width)``; ``conv``: the same with 3×3
    convolutions (padding 1) on ``(B, width, H, W)``. BatchNorm sits right after each transformation,
    as in paper 003 eq. 4 (BN_n after W_n). Without BN the maps carry a bias.
    """

    def __init__(self, kind: str, width: int, hidden: int, *, bn: bool, act: str):
        super().__init__()
        if kind == "mlp":
            first = nn.Linear(width, hidden, bias=not bn)
            second = nn.Linear(hidden, width, bias=not bn)
            norm = nn.BatchNorm1d
        else:
            first = nn.Conv2d(width, hidden, 3, padding=1, bias=not bn)
            second = nn.Conv2d(hidden, width, 3, padding=1, bias=not bn)
            norm = nn.BatchNorm2d
        layers = [first] + ([norm(hidden)] if bn else []) + [_activation(act), second]
        layers += [norm(width)] if bn else []
        self.F = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.F(x)


class _BlocksAsODE:
    """ẋ = F_{⌊t/h⌋}(x): the blocks as a (piecewise-constant in time) vector field, for sdeint."""

    def __init__(self, blocks: nn.ModuleList, h: float):
        self.blocks, self.h = blocks, h

    def f(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # t sits on the grid k·h up to rounding; round() picks block k.
        k = min(max(int(round(float(t) / self.h)), 0), len(self.blocks) - 1)
        return self.blocks[k](y)


class EulerResNet(nn.Module):
    """Stem → ``depth`` Euler steps x ← x + h·F_n(x) → head (paper 003, eq. 4).

    Args:
        in_dim: input features (MLP block, input ``(B, in_dim)``) or input channels (conv block,
            input ``(B, in_dim, H, W)``).
        n_classes: number of logits.
        depth: number of residual blocks D (≥ 1).
        width: size of the state the blocks act on: features (MLP) or channels (conv).
        h: step factor (> 0); ``h = 1`` is the original ResNet.
        block: ``"mlp"`` (2-D points, vectors) or ``"conv"`` (images).
        bn: BatchNorm after each transformation inside F.
        hidden: width inside F (default ``width``).
        act: activation inside F, one of :data:`ACTIVATIONS`.
        shared: one block (one set of weights) used at every step: then the network is Euler on
            the autonomous ODE ẋ = F(x).
        pool: conv only: average-pool the stem's output by this factor (28×28 → 7×7 for 4), which
            makes deep conv nets affordable on a CPU.
        head_pool: conv only: the head average-pools the final state to ``head_pool × head_pool``
            before its Linear; 1 is torchvision's global average pooling, a larger value keeps
            where things are (a narrow net needs that).
        init: ``"kaiming"`` (He-normal, fan-in, for the Linear/Conv layers of the stem and blocks,
            BN γ = 1, β = 0, head left at PyTorch's default: torchvision's ResNet recipe) or
            ``"default"`` (PyTorch's own initialisation everywhere).

    The stem is a Linear (MLP) or 3×3 conv → [BN] → ReLU → avg-pool (conv). For the MLP block it is
    the identity when ``width == in_dim``, so the states of 2-D points stay 2-D and can be plotted.
    The head is a Linear on the final state (for the conv block after average pooling it to
    ``head_pool × head_pool``).

    Attributes:
        blocks: ``nn.ModuleList`` of the D residual branches (the same module D times when
            ``shared``), so :func:`nsde_lib.train.block_grad_norms` finds them.

    Raises:
        ValueError: ``h <= 0``, ``depth < 1``, an unknown ``block``/``act``/``init``, or a
            non-positive size.
    """

    def __init__(self, in_dim: int, n_classes: int, *, depth: int, width: int, h: float = 1.0,
                 block: str = "mlp", bn: bool = True, hidden: int | None = None,
                 act: str = "relu", shared: bool = False, pool: int = 1, head_pool: int = 1,
                 init: str = "kaiming"):
        super().__init__()
        _check_args(in_dim, n_classes, depth, width, h, block, hidden, act, pool, head_pool, init)
        self.h, self.depth, self.width, self.kind = float(h), int(depth), int(width), block
        self.in_dim = int(in_dim)
        self.shared = bool(shared)
        hidden = width if hidden is None else hidden
        if block == "mlp":
            self.stem = nn.Identity() if width == in_dim else nn.Linear(in_dim, width)
            self.head = nn.Linear(width, n_classes)
        else:
            stem = [nn.Conv2d(in_dim, width, 3, padding=1, bias=not bn)]
            stem += [nn.BatchNorm2d(width)] if bn else []
            stem += [nn.ReLU()] + ([nn.AvgPool2d(pool)] if pool > 1 else [])
            self.stem = nn.Sequential(*stem)
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(head_pool), nn.Flatten(),
                                      nn.Linear(width * head_pool ** 2, n_classes))
        make = lambda: ResidualBlock(block, width, hidden, bn=bn, act=act)  # noqa: E731
        if shared:
            one = make()
            self.blocks = nn.ModuleList([one] * depth)
        else:
            self.blocks = nn.ModuleList([make() for _ in range(depth)])
        if init == "kaiming":  # the head keeps PyTorch's default, as in torchvision's ResNet
            self.stem.apply(_kaiming)
            self.blocks.apply(_kaiming)

    @property
    def T(self) -> float:
        """The time horizon depth·h that the blocks integrate over."""
        return self.depth * self.h

    def propagate(self, x0: torch.Tensor, return_states: bool = False):
        """Run the blocks from the state ``x0`` (the input of the first block).

        Returns:
            ``x_D``, or with ``return_states`` the path ``(depth + 1, *x0.shape)`` of
            ``x_0, x_1, ..., x_D`` (torchsde's layout: index 0 is the start).
        """
        states, x = [x0], x0
        for block in self.blocks:
            x = x + self.h * block(x)
            if return_states:
                states.append(x)
        return torch.stack(states) if return_states else x

    def forward(self, x: torch.Tensor, return_states: bool = False):
        """Logits ``(B, n_classes)``; with ``return_states`` also the path of the block states.

        Args:
            x: ``(B, in_dim)`` (MLP) or ``(B, in_dim, H, W)`` (conv).
            return_states: also return ``(depth + 1, B, *state)``: the state before the first
                block, then after every block.
        """
        self._check_input(x)
        x0 = self.stem(x)
        if not return_states:
            return self.head(self.propagate(x0))
        states = self.propagate(x0, return_states=True)
        return self.head(states[-1]), states

    def _check_input(self, x) -> None:
        if self.kind == "mlp":
            checks.tensor("x", x, dim=2, floating=True)
            if x.shape[1] != self.in_dim:
                raise ValueError(f"x must have shape (B, {self.in_dim}) (in_dim={self.in_dim}), "
                                 f"got {tuple(x.shape)}")
        else:
            checks.images("x", x, channels=self.in_dim)

    def as_sde(self) -> _BlocksAsODE:
        """The blocks as an ODE for :func:`nsde_lib.sdeint` (g = 0): block n is the drift on
        [n·h, (n+1)·h). ``sdeint(model.as_sde(), x0, [0, model.T], dt=model.h)`` equals
        ``model.propagate(x0)``."""
        return _BlocksAsODE(self.blocks, self.h)


def _kaiming(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def _check_args(in_dim, n_classes, depth, width, h, block, hidden, act, pool, head_pool,
                init) -> None:
    for name, value in (("in_dim", in_dim), ("n_classes", n_classes), ("depth", depth),
                        ("width", width), ("pool", pool), ("head_pool", head_pool)):
        count(name, value)
    if hidden is not None:
        count("hidden", hidden)
    checks.step_factor(h)
    checks.one_of("block", block, BLOCKS)
    checks.one_of("act", act, ACTIVATIONS)
    checks.one_of("init", init, INITS)
