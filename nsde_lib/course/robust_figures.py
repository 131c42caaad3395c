"""Figures of the classifier chapters (04–05): accuracy against the ensemble size, the ensemble's
softmax under a K slider, accuracy under attack (Fig. 6), corruptions (Table 2), and the hidden-state
perturbation over depth (Fig. 7). Each model keeps its colour (:func:`nsde_lib.model_color`).
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .plotting import log_axis, model_color, to_numpy

__all__ = ["ensemble_size_figure", "ensemble_heatmap", "set_ensemble_heatmap",
           "attack_curves_figure", "corruption_images_figure", "set_corruption_images",
           "corruption_heatmap", "depth_gap_figure", "set_depth_gap"]

_LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=20, t=60, b=40))


def ensemble_size_figure(Ks, curves: dict, *, ode: float | None = None) -> go.Figure:
    """Test accuracy (%) against the number K of noisy passes averaged, one line per model
    (``curves`` maps a model name to one accuracy per K), the Neural ODE as a dashed level."""
    fig = go.Figure()
    if ode is not None:
        fig.add_scatter(x=[Ks[0], Ks[-1]], y=[ode, ode], mode="lines", name="ODE",
                        line=dict(dash="dash", color=model_color("ODE")))
    for name, acc in curves.items():
        fig.add_scatter(x=Ks, y=acc, mode="lines+markers", name=name,
                        line=dict(color=model_color(name)))
    fig.update_layout(title="Test accuracy with test-time noise, mean over seeds",
                      xaxis=dict(title="K (noisy passes averaged)", **log_axis(Ks)),
                      yaxis_title="accuracy (%)", height=400, **_LAYOUT)
    return fig


def ensemble_heatmap(running, truth, rows) -> go.Figure:
    """The running ensemble's softmax ``running`` ``(K, B, classes)`` of B images as a heat map
    (one row per image, labelled ``rows``), the true classes circled; :func:`set_ensemble_heatmap`
    shows the ensemble of the first K passes."""
    running, truth = to_numpy(running), to_numpy(truth)
    fig = go.Figure(go.Heatmap(z=running[0], x=list(range(running.shape[2])), y=list(rows),
                                     zmin=0, zmax=1, colorscale="Blues"))
    fig.add_scatter(x=truth.tolist(), y=list(rows), mode="markers", name="true class",
                    marker=dict(symbol="circle-open", size=18, color="#d62728", line=dict(width=3)))
    fig.update_layout(xaxis_title="class", height=420, template="plotly_white",
                      margin=dict(l=140, r=20, t=50, b=40), meta=dict(truth=truth.tolist()))
    return fig


def set_ensemble_heatmap(fig: go.Figure, running, K: int) -> None:
    """Show the ensemble of the first ``K`` passes in an :func:`ensemble_heatmap`."""
    z = to_numpy(running)[K - 1]
    right = int((z.argmax(1) == np.asarray(fig.layout.meta["truth"])).sum())
    fig.data[0].z = z
    fig.layout.title.text = f"ensemble of K = {K} noisy passes: {right}/{len(z)} of these digits right"


def attack_curves_figure(curves: dict, eps: dict, *, steps: int, eot: int, K: int, n: int,
                         data: str) -> go.Figure:
    """Paper 000's Fig. 6: accuracy against the attack radius, one panel per norm. ``curves`` maps
    ``(model, norm, draws)`` to accuracies on ``eps[norm]``; a noisy model attacked through one
    noise draw is dashed, with EOT over ``eot`` draws solid."""
    norms = list(eps)
    fig = make_subplots(rows=1, cols=len(norms),
                        subplot_titles=[f"{norm}-PGD-{steps}" for norm in norms])
    noisy = {m for (m, _, d) in curves if d > 1}
    for (name, norm, draws), accs in curves.items():
        label = name if name not in noisy else \
            f"{name} ({f'EOT-{eot}' if draws > 1 else 'one draw'})"
        col = norms.index(norm) + 1
        fig.add_scatter(x=eps[norm], y=accs, name=label, legendgroup=label,
                        showlegend=col == 1, mode="lines+markers", row=1, col=col,
                        line=dict(color=model_color(name),
                                  dash="dash" if name in noisy and draws == 1 else "solid"))
    for i, norm in enumerate(norms, start=1):
        fig.update_xaxes(title_text=f"{norm} radius ε", row=1, col=i)
    fig.update_yaxes(title_text=f"accuracy (TTN, K={K})", range=[0, 1])
    fig.update_layout(height=420, title=f"Fig. 6 on {data}: {n} test images; dashed = attack through "
                      f"one noise draw", **_LAYOUT)
    return fig


def corruption_images_figure(names, *, cols: int = 6, rgb: bool = False) -> go.Figure:
    """One image panel per corruption; :func:`set_corruption_images` fills them."""
    rows = math.ceil(len(names) / cols)
    fig = go.Figure(make_subplots(rows=rows, cols=cols, subplot_titles=list(names),
                                        horizontal_spacing=0.02, vertical_spacing=0.12))
    for i, _ in enumerate(names):
        trace = go.Image() if rgb else go.Heatmap(colorscale="gray", zmin=0, zmax=1, showscale=False)
        fig.add_trace(trace, row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(template="plotly_white", height=170 * rows + 60, margin=dict(t=60, b=10))
    return fig


def set_corruption_images(fig: go.Figure, images, title: str) -> None:
    """Show one image ``(C, H, W)`` per panel of a :func:`corruption_images_figure`."""
    for trace, img in zip(fig.data, images):
        img = to_numpy(img)
        trace.z = img[0][::-1] if img.shape[0] == 1 else \
            (img.transpose(1, 2, 0) * 255).astype(np.uint8)
    fig.layout.title.text = title


def corruption_heatmap(diff, names, severities, *, title: str) -> go.Figure:
    """Accuracy points of one model minus another per corruption and severity (blue: better)."""
    fig = go.Figure(go.Heatmap(z=to_numpy(diff), x=[f"severity {s}" for s in severities],
                               y=list(names), colorscale="RdBu", zmid=0,
                               colorbar=dict(title="points")))
    fig.update_layout(height=420, title=title, **_LAYOUT)
    return fig


def depth_gap_figure(ts, models) -> go.Figure:
    """Paper 000's Fig. 7: ‖ε_t‖ / ‖ε_0‖ over the depth, one line per model; fill with
    :func:`set_depth_gap`."""
    fig = go.Figure()
    for name in models:
        fig.add_scatter(x=to_numpy(ts), y=np.ones(len(ts)), name=name, mode="lines+markers",
                        line=dict(color=model_color(name), width=3))
    fig.update_layout(height=380, xaxis_title="depth t",
                      yaxis_title="‖ε_t‖ / ‖ε_0‖ (mean over images)", **_LAYOUT)
    return fig


def set_depth_gap(fig: go.Figure, curves, eps: float) -> None:
    """Show one radius: ``curves`` holds one amplification curve per model, in figure order."""
    for trace, curve in zip(fig.data, curves):
        trace.y = to_numpy(curve)
    fig.layout.title.text = f"Fig. 7: hidden-state perturbation over depth, l2-PGD with ε = {eps}"
