"""Plotly figures for paths of states, written once for every notebook."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch

__all__ = ["to_numpy", "paths_figure", "set_paths"]


def to_numpy(x) -> np.ndarray:
    """A tensor (any device, with or without grad) or array-like as a NumPy array."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _path_traces(ts, paths, n_show):
    ts, paths = to_numpy(ts), to_numpy(paths).reshape(len(ts), -1)  # (T, n_paths)
    shown = paths[:, :n_show]
    return ts, shown, paths.mean(axis=1)


def paths_figure(ts, paths, *, n_show: int = 20, title: str = "", yaxis: str = "y",
                 xaxis: str = "t", widget: bool = True) -> go.Figure:
    """Sample paths as thin lines plus their mean as a thick one.

    Args:
        ts: times, shape ``(T,)``.
        paths: states, shape ``(T, n_paths)`` or ``(T, n_paths, 1)``.
        n_show: how many paths to draw (all of them enter the mean).
        widget: return a ``go.FigureWidget`` (for sliders) instead of a ``go.Figure``.
    """
    ts_np, shown, mean = _path_traces(ts, paths, n_show)
    fig = (go.FigureWidget if widget else go.Figure)()
    for i in range(shown.shape[1]):
        fig.add_scatter(x=ts_np, y=shown[:, i], mode="lines", showlegend=i == 0,
                        name="sample paths", legendgroup="paths",
                        line=dict(width=1, color="rgba(31,119,180,0.35)"))
    fig.add_scatter(x=ts_np, y=mean, mode="lines", name="mean over all paths",
                    line=dict(width=3, color="black"))
    fig.update_layout(title=title, xaxis_title=xaxis, yaxis_title=yaxis,
                      template="plotly_white", height=380, margin=dict(l=60, r=20, t=50, b=40))
    return fig


def set_paths(fig: go.Figure, ts, paths, *, n_show: int = 20) -> None:
    """Replace the data of a :func:`paths_figure` in place (one batch update, no new figure)."""
    ts_np, shown, mean = _path_traces(ts, paths, n_show)
    with fig.batch_update():
        for i, trace in enumerate(fig.data[:-1]):
            trace.x, trace.y = ts_np, shown[:, i]
        fig.data[-1].x, fig.data[-1].y = ts_np, mean
