"""Plotly figures for paths of states, written once for every notebook."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch

__all__ = ["to_numpy", "paths_figure", "set_paths", "band_figure", "H_COLORS"]


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


# Paper 003 draws h = 1 in red and h = 0.1 in blue; other step factors get neutral colours.
H_COLORS = {1.0: "#d62728", 0.1: "#1f77b4"}
_OTHER_COLORS = ("#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def band_figure(summary: dict, *, x_title: str, y_title: str = "test accuracy", title: str = "",
                name: str = "h = {}", chance: float | None = None, log_x: bool = False,
                fig: go.Figure | None = None, widget: bool = False) -> go.Figure:
    """Median line with a min–max band per group, a dot for every run that trained and an ×
    for every diverged run.

    Args:
        summary: from :func:`nsde_lib.sweeps.summarize`.
        name: legend label, formatted with the group value.
        chance: where diverged runs are drawn (and a dotted line); default: their median.
        fig: add to this figure (e.g. one panel of a subplot grid) instead of a new one.
    """
    fig = fig if fig is not None else (go.FigureWidget if widget else go.Figure)()
    for i, (group, curve) in enumerate(summary.items()):
        color = H_COLORS.get(float(group), _OTHER_COLORS[i % len(_OTHER_COLORS)]) \
            if isinstance(group, (int, float)) else _OTHER_COLORS[i % len(_OTHER_COLORS)]
        label = name.format(group)
        xs = list(curve["x"])
        fig.add_scatter(x=xs + xs[::-1], y=list(curve["hi"]) + list(curve["lo"])[::-1],
                        fill="toself", fillcolor=_rgba(color, 0.18), line=dict(width=0),
                        hoverinfo="skip", showlegend=False, legendgroup=label)
        text = [f"{n - d}/{n} runs trained" for n, d in zip(curve["n"], curve["n_diverged"])]
        fig.add_scatter(x=xs, y=curve["median"], mode="lines+markers", name=label,
                        legendgroup=label, line=dict(color=color, width=2.5), text=text,
                        hovertemplate="%{x}: median %{y:.3f} (%{text})<extra></extra>")
        runs_x = [xv for xv, vals in zip(xs, curve.get("values", [])) for _ in vals]
        runs_y = [v for vals in curve.get("values", []) for v in vals]
        if runs_x:  # every seed that trained, so a median of two or three is not all one sees
            fig.add_scatter(x=runs_x, y=runs_y, mode="markers", name=f"{label}: one run",
                            legendgroup=label, showlegend=False, hoverinfo="skip",
                            marker=dict(size=6, color=color, opacity=0.45))
        if curve["diverged_x"]:
            y_div = chance if chance is not None else min(curve["lo"])
            fig.add_scatter(x=curve["diverged_x"], y=[y_div] * len(curve["diverged_x"]),
                            mode="markers", name=f"{label}: diverged run", legendgroup=label,
                            marker=dict(symbol="x", size=11, color=color, line=dict(width=1)))
    if chance is not None:
        fig.add_hline(y=chance, line=dict(dash="dot", color="grey"),
                      annotation_text="chance (diverged runs score this)",
                      annotation_position="bottom right")
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title,
                      template="plotly_white", height=380, margin=dict(l=60, r=20, t=50, b=40))
    if log_x:
        fig.update_xaxes(type="log")
    return fig
