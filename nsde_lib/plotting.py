"""Plotly figures for paths of states, written once for every notebook."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch

__all__ = ["to_numpy", "paths_figure", "set_paths", "curves_figure"]


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


def curves_figure(curves: dict, *, x_title: str = "epoch", y_title: str = "",
                  title: str = "", percent: bool = False) -> go.Figure:
    """One line per name: the mean over runs, with a band from the lowest to the highest run.

    Args:
        curves: ``{name: values}`` with ``values`` of shape ``(n_runs, n_points)`` (or 1-D for
            one run); the x axis is 1, 2, ..., ``n_points``.
        percent: multiply by 100 (accuracies).
    """
    fig = go.Figure()
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
    for i, (name, values) in enumerate(curves.items()):
        v = np.atleast_2d(np.asarray(values, dtype=float)) * (100 if percent else 1)
        x = np.arange(1, v.shape[1] + 1)
        color = colors[i % len(colors)]
        if v.shape[0] > 1:  # the band first, so the line draws on top
            fig.add_scatter(x=np.concatenate([x, x[::-1]]),
                            y=np.concatenate([v.max(0), v.min(0)[::-1]]), fill="toself",
                            line=dict(width=0), fillcolor=color, opacity=0.15,
                            hoverinfo="skip", showlegend=False, legendgroup=name)
        fig.add_scatter(x=x, y=v.mean(0), mode="lines", name=name, legendgroup=name,
                        line=dict(color=color, width=2))
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title,
                      template="plotly_white", height=380, margin=dict(l=60, r=20, t=50, b=40))
    return fig
