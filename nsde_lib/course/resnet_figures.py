"""Figures of the ResNet-as-Euler chapters (01, 02): Euler on ẋ = a·x, points flowing through the
blocks, decision regions, gradients and perturbations through depth.

Every ``*_figure`` builds a figure; its ``set_*`` twin updates it in place (what a slider calls,
inside one ``batch_update``), so the figure keeps its traces and only their data move.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import nn

from ..theory.euler import euler_factor, euler_solution, euler_stability_limit
from .plotting import H_COLORS, log_axis, rgba, to_numpy

__all__ = ["euler_figure", "set_euler", "euler_steps_figure", "decision_line",
           "flow_figure", "set_flow", "regions_figure", "prop1_figure",
           "growth_figure", "dynamics_figure", "set_dynamics", "h_grid_figure"]

CLASS_COLORS = ("#1f77b4", "#d62728")  # class 0 blue, class 1 red (the moons)


# --- 01 · Euler on x' = a·x ---------------------------------------------------------------------

def euler_figure(lam: float, T: float, *, h_max: float = 1.2) -> go.Figure:
    """Left: explicit Euler with step h against e^{at}; right: |1 + ah| over h, the current h
    (a = ``lam``, the coefficient of ẋ = a·x).

    Traces: 0 the Euler polygon on a fixed fine grid, 1 the Euler points, 2 the exact solution,
    3 the curve |1 + ah|, 4 the current h. Update with :func:`set_euler`.
    """
    t_fine = np.linspace(0, T, 400)
    h_grid = np.linspace(0.01, h_max, 240)
    fig = go.Figure(make_subplots(rows=1, cols=2, column_widths=[0.62, 0.38],
                                        subplot_titles=("x(t): Euler vs exact", "|1 + ah|")))
    red = H_COLORS[1.0]
    fig.add_scatter(x=t_fine, y=np.zeros_like(t_fine), mode="lines", name="Euler, step h",
                    line=dict(color=red), row=1, col=1)
    fig.add_scatter(x=[], y=[], mode="markers", name="Euler points x_n", showlegend=False,
                    marker=dict(color=red, size=7), row=1, col=1)
    fig.add_scatter(x=t_fine, y=np.exp(lam * t_fine), mode="lines", name=f"exact exp({lam:g}·t)",
                    line=dict(color="black", width=3), row=1, col=1)
    fig.add_scatter(x=h_grid, y=np.abs(1 + lam * h_grid), mode="lines", name="|1 + ah|",
                    line=dict(color="grey"), row=1, col=2)
    fig.add_scatter(x=[], y=[], mode="markers", name="current h",
                    marker=dict(size=13, color=red), row=1, col=2)
    fig.add_hline(y=1, line=dict(dash="dot"), row=1, col=2)
    fig.add_vline(x=euler_stability_limit(lam), line=dict(dash="dot", color=H_COLORS[0.1]),
                  annotation_text=f"h = 2/{-lam:g}", row=1, col=2)
    fig.update_yaxes(range=[-2.5, 2.5], row=1, col=1)
    fig.update_xaxes(title_text="t", row=1, col=1)
    fig.update_xaxes(title_text="h", row=1, col=2)
    fig.update_layout(template="plotly_white", height=400, margin=dict(l=50, r=20, t=70, b=40),
                      meta=dict(lam=lam, T=T))
    return fig


def set_euler(fig: go.Figure, h: float) -> None:
    """Draw Euler with step factor ``h`` into a :func:`euler_figure`."""
    lam, T = fig.layout.meta["lam"], fig.layout.meta["T"]
    ts, xs = euler_solution(lam, h, T)
    factor = euler_factor(lam, h)
    verdict = ("decays" if 0 < factor < 1 else "oscillates and decays" if abs(factor) < 1
               else "is on the edge" if abs(factor) == 1 else "explodes")
    with fig.batch_update():
        fig.data[0].y = np.interp(fig.data[0].x, ts, xs)  # straight lines between the points
        fig.data[1].x, fig.data[1].y = ts, xs
        fig.data[4].x, fig.data[4].y = [h], [abs(factor)]
        fig.layout.title.text = (f"h = {h:.2f}: 1 + ah = {factor:+.3f}, the Euler solution "
                                 f"{verdict}")


def euler_steps_figure(lam: float, T: float, hs, *, colors=None) -> go.Figure:
    """Paper 003's Fig. 1: Euler on ẋ = a·x (a = ``lam``) for several step factors at once."""
    t_fine = np.linspace(0, T, 400)
    fig = go.Figure()
    fig.add_scatter(x=t_fine, y=np.exp(lam * t_fine), mode="lines", name="exact",
                    line=dict(color="black", width=3))
    colors = colors or ("#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#d62728")
    for h, color in zip(hs, colors):
        ts, xs = euler_solution(lam, h, T)
        fig.add_scatter(x=ts, y=xs, mode="lines+markers", name=f"Euler h = {h}",
                        line=dict(color=color))
    fig.update_layout(title="Paper 003, Fig. 1 re-created: a larger h fluctuates more",
                      template="plotly_white", xaxis_title="t", yaxis_title="x",
                      yaxis_range=[-1.6, 1.6], height=380)
    return fig


# --- points flowing through a network -------------------------------------------------------------

def decision_line(layer: nn.Linear, x_range, y_range) -> tuple[list, list]:
    """The boundary w·x + b = 0 between class 1 and class 0 of a 2-class linear head on the
    plane (w, b: the difference of the two rows), clipped to ``x_range`` (vertical lines to
    ``y_range``). Returns ``(xs, ys)`` for a line trace."""
    w = (layer.weight[1] - layer.weight[0]).detach().cpu().double().numpy()
    b = float((layer.bias[1] - layer.bias[0]).detach())
    if abs(w[1]) < 1e-12:
        return [-b / w[0]] * 2, list(y_range)
    xs = np.array(x_range, dtype=float)
    return list(xs), list(-(w[0] * xs + b) / w[1])


def flow_figure(titles, *, height: int = 430, ranges=None) -> go.Figure:
    """One panel per title, each with the two classes' points and the head's boundary.

    Traces per panel ``k``: ``3k`` class 0, ``3k + 1`` class 1, ``3k + 2`` the boundary. Fill it
    with :func:`set_flow`. ``ranges``: per panel ``(x range, y range)`` (e.g. from
    :func:`extent` over every state a slider shows), so the axes stay put; None autoranges.
    """
    if ranges is not None and len(ranges) != len(titles):
        raise ValueError(f"flow_figure: `ranges` needs one (x range, y range) per panel "
                         f"({len(titles)}), got {len(ranges)}")
    fig = go.Figure(make_subplots(rows=1, cols=len(titles), horizontal_spacing=0.08,
                                        subplot_titles=list(titles)))
    for col in range(1, len(titles) + 1):
        for cls, color in enumerate(CLASS_COLORS):
            fig.add_scatter(x=[], y=[], mode="markers", name=f"class {cls}",
                            marker=dict(size=4, color=color, opacity=0.7), showlegend=col == 1,
                            row=1, col=col)
        fig.add_scatter(x=[], y=[], mode="lines", line=dict(color="black", dash="dash"),
                        name="head's boundary", showlegend=col == 1, row=1, col=col)
        if ranges is not None:
            fig.update_xaxes(range=list(ranges[col - 1][0]), row=1, col=col)
            fig.update_yaxes(range=list(ranges[col - 1][1]), row=1, col=col)
    fig.update_layout(template="plotly_white", height=height,
                      margin=dict(l=40, r=20, t=70, b=40))
    return fig


def set_flow(fig: go.Figure, panel: int, points, labels, head: nn.Linear | None = None
             ) -> None:
    """Show ``points`` ``(N, 2)`` coloured by ``labels`` in panel ``panel`` of a
    :func:`flow_figure`, with the boundary of ``head`` (or none)."""
    points, labels = to_numpy(points), to_numpy(labels)
    for cls in (0, 1):
        trace = fig.data[3 * panel + cls]
        trace.x, trace.y = points[labels == cls, 0], points[labels == cls, 1]
    line = fig.data[3 * panel + 2]
    if head is None:
        line.x, line.y = [], []
    else:
        span = (points[:, 0].min(), points[:, 0].max())
        line.x, line.y = decision_line(head, span, (points[:, 1].min(), points[:, 1].max()))


def regions_figure(models: dict, points, labels, *, x_range=(-2.0, 3.0), y_range=(-1.6, 2.1),
                   title: str = "") -> go.Figure:
    """P(class 1) over the input plane for each model (``{panel title: model}``), with the points.
    """
    gx, gy = np.meshgrid(np.linspace(*x_range, 120), np.linspace(*y_range, 90))
    grid = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float32)
    points, labels = to_numpy(points), to_numpy(labels)
    fig = make_subplots(rows=1, cols=len(models), subplot_titles=list(models),
                        horizontal_spacing=0.06)
    for col, model in enumerate(models.values(), start=1):
        device = next(model.parameters()).device
        with torch.no_grad():
            prob = torch.softmax(model(grid.to(device)), 1)[:, 1].reshape(gx.shape).cpu().numpy()
        fig.add_contour(x=gx[0], y=gy[:, 0], z=prob, showscale=False, colorscale="RdBu_r",
                        contours=dict(start=0, end=1, size=0.1), opacity=0.6, row=1, col=col)
        for cls, color in enumerate(CLASS_COLORS):
            sel = labels == cls
            fig.add_scatter(x=points[sel, 0], y=points[sel, 1], mode="markers", showlegend=False,
                            marker=dict(size=3, color=rgba(color, 0.9)), row=1, col=col)
    fig.update_layout(title=title, template="plotly_white", height=380)
    return fig


# --- 02 · gradients and perturbations through depth -------------------------------------------------

def prop1_figure(depths, measured: dict, product: dict, paper: dict) -> go.Figure:
    """Prop. 1 against depth, one panel for the measured gradient growth and one for the two
    bounds (they run many orders of magnitude higher; one axis for all would flatten the
    measurement). Each dict maps a step factor h to one value per depth."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        "measured |∂L/∂x_0| / |∂L/∂x_D|", "the bounds Π(1 + hW_i) and 1 − h + h(1 + W)^D"))
    for h in measured:
        color = H_COLORS.get(h, "#2ca02c")
        fig.add_scatter(x=depths, y=measured[h], mode="lines+markers", name=f"h = {h}: measured",
                        line=dict(color=color, width=3), row=1, col=1)
        fig.add_scatter(x=depths, y=product[h], mode="lines", name=f"h = {h}: Π(1 + hW_i)",
                        line=dict(color=color, dash="dash"), row=1, col=2)
        fig.add_scatter(x=depths, y=paper[h], mode="lines", name=f"h = {h}: 1 − h + h(1 + W)^D",
                        line=dict(color=color, dash="dot"), row=1, col=2)
    fig.update_xaxes(title_text="depth D (blocks)", **log_axis(depths))
    fig.update_yaxes(type="log", exponentformat="power")
    fig.update_yaxes(title_text="gradient growth factor", row=1, col=1)
    fig.update_layout(title="Prop. 1 at initialisation", template="plotly_white", height=420,
                      legend=dict(orientation="h", y=-0.2))
    return fig


def growth_figure(depths, curves: dict, *, title: str, y_title: str,
                  diverged: dict | None = None) -> go.Figure:
    """Growth factors against depth: ``curves`` maps a legend label to ``(h, values, dashed)``
    (``None`` values are skipped), ``diverged`` maps h to the depths where that run diverged
    (drawn as × at 1)."""
    fig = go.Figure()
    for label, (h, values, dashed) in curves.items():
        xs = [d for d, v in zip(depths, values) if v is not None]
        ys = [v for v in values if v is not None]
        fig.add_scatter(x=xs, y=ys, mode="lines" if dashed else "lines+markers", name=label,
                        line=dict(color=H_COLORS.get(h, "#2ca02c"), width=1.5 if dashed else 3,
                                  dash="dot" if dashed else "solid"))
    for h, bad in (diverged or {}).items():
        if bad:
            fig.add_scatter(x=bad, y=[1.0] * len(bad), mode="markers",
                            name=f"h = {h}: diverged, no network",
                            marker=dict(symbol="x", size=12, color=H_COLORS.get(h, "#2ca02c")))
    fig.update_layout(title=title, xaxis=dict(title="depth D", **log_axis(depths)),
                      yaxis=dict(type="log", title=y_title), template="plotly_white", height=400)
    return fig


def dynamics_figure(hs) -> go.Figure:
    """Paper 003's Fig. 2: one block's gradient norm (left) and weight norm (right) over the
    training iterations, one line per step factor, × where a run diverged. Traces: ``i`` gradient
    and ``len(hs) + i`` weights of ``hs[i]``, then ``2·len(hs) + i`` its divergence marker.
    Update with :func:`set_dynamics`."""
    fig = go.Figure(make_subplots(rows=1, cols=2, subplot_titles=(
        "gradient norm of the block", "weight norm of the block")))
    for col in (1, 2):
        for h in hs:
            fig.add_scatter(x=[], y=[], mode="lines", name=f"h = {h}", showlegend=col == 1,
                            line=dict(color=H_COLORS.get(h, "#2ca02c")), row=1, col=col)
    for h in hs:
        fig.add_scatter(x=[], y=[], mode="markers", name=f"h = {h}: diverged here",
                        marker=dict(symbol="x", size=13, color=H_COLORS.get(h, "#2ca02c")),
                        row=1, col=2)
    fig.update_yaxes(type="log", exponentformat="power")
    fig.update_xaxes(title_text="iteration")
    fig.update_layout(template="plotly_white", height=400, margin=dict(l=50, r=20, t=70, b=40))
    return fig


def set_dynamics(fig: go.Figure, runs: list, block: int) -> None:
    """Show block ``block`` (1-based) of each run ``(grad_norms, weight_norms, diverged)`` — lists
    of per-iteration lists of block norms — in a :func:`dynamics_figure`, same order as its hs."""
    n = len(runs)
    for i, (grads, weights, diverged) in enumerate(runs):
        g = np.asarray(grads)[:, block - 1]
        w = np.asarray(weights)[:, block - 1]
        fig.data[i].x, fig.data[i].y = np.arange(1, len(g) + 1), g
        fig.data[n + i].x, fig.data[n + i].y = np.arange(1, len(w) + 1), w
        fig.data[2 * n + i].x, fig.data[2 * n + i].y = ([len(w)], [w[-1]]) if diverged else ([], [])


def h_grid_figure(curves: dict, *, chance: float, title: str = "") -> go.Figure:
    """Paper 003's Fig. 9: accuracy against the step factor h, one panel per depth. ``curves``
    maps a depth to a :func:`nsde_lib.summarize` curve over h (median, min–max band, every run,
    × for diverged runs at chance)."""
    fig = make_subplots(rows=1, cols=len(curves), subplot_titles=[f"depth {d}" for d in curves],
                        shared_yaxes=True)
    green = "#2ca02c"
    for col, curve in enumerate(curves.values(), start=1):
        xs = list(curve["x"])
        fig.add_scatter(x=xs + xs[::-1], y=list(curve["hi"]) + list(curve["lo"])[::-1],
                        fill="toself", fillcolor=rgba(green, 0.18), line=dict(width=0),
                        showlegend=False, hoverinfo="skip", row=1, col=col)
        fig.add_scatter(x=xs, y=curve["median"], mode="lines+markers", line=dict(color=green),
                        name="median over seeds", showlegend=col == 1, row=1, col=col)
        fig.add_scatter(x=[x for x, v in zip(xs, curve["values"]) for _ in v],
                        y=[a for v in curve["values"] for a in v], mode="markers",
                        showlegend=False, marker=dict(size=6, color=green, opacity=0.45),
                        row=1, col=col)
        if curve["diverged_x"]:
            fig.add_scatter(x=curve["diverged_x"], y=[chance] * len(curve["diverged_x"]),
                            mode="markers", marker=dict(symbol="x", size=11, color="black"),
                            name="diverged run", showlegend=col == 1, row=1, col=col)
        fig.update_xaxes(title_text="step factor h", row=1, col=col, **log_axis(xs))
    fig.update_yaxes(title_text="test accuracy", col=1)
    fig.update_layout(title=title, template="plotly_white", height=380)
    return fig
