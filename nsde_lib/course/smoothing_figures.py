"""Figures of the certified-robustness chapter (06): the smoothing theorem on a plane, certified
accuracy against the radius (Cohen et al.'s layout) beside empirical attack accuracy, and the σ
dose–response with a slider over the computed curves.

Every ``*_figure`` builds a figure; its ``set_*`` twin updates it in place (what a slider calls),
so the figure keeps its traces and only their data move. Values over seeds come as arrays
``(n_seeds, n_points)``: a line at the median, a band from the lowest to the highest seed.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .plotting import rgba, to_numpy
from .resnet_figures import CLASS_COLORS

__all__ = ["smoothing_plane_figure", "set_smoothing_plane", "certified_figure", "dose_figure",
           "set_dose", "SIGMA_DASHES"]

_LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=20, t=70, b=40))
SIGMA_DASHES = ("dot", "dash", "solid", "dashdot", "longdash")  # σ from small to large


def _circle(center, radius, n=90):
    theta = np.linspace(0, 2 * np.pi, n)
    return center[0] + radius * np.cos(theta), center[1] + radius * np.sin(theta)


# --- the theorem on a plane --------------------------------------------------------------------------

def smoothing_plane_figure(gx, gy, base_class, points, labels, *, title: str = ""
                           ) -> go.Figure:
    """Left: a base classifier's regions on a grid; right: the smoothed classifier's (filled by
    :func:`set_smoothing_plane`), with a point, its noise and its certified ball.

    Args:
        gx, gy: the grid's x ``(nx,)`` and y ``(ny,)`` coordinates.
        base_class: the base's class at each grid point ``(ny, nx)`` (0 or 1).
        points, labels: the data the base was built from ``(N, 2)``, ``(N,)``.

    Traces: 0 base regions, 1–2 the data (class 0, 1); right panel: 3 smoothed P(class 1),
    4 its 0.5 level, 5 noisy copies of the point, 6 the certified ball, 7 the point.
    """
    gx, gy = to_numpy(gx), to_numpy(gy)
    points, labels = to_numpy(points), to_numpy(labels)
    fig = go.Figure(make_subplots(rows=1, cols=2, horizontal_spacing=0.06, subplot_titles=(
        "base classifier f", "smoothed classifier g: P(f(x + ε) = 1)")))
    scale = [[0, rgba(CLASS_COLORS[0], 0.35)], [1, rgba(CLASS_COLORS[1], 0.35)]]
    fig.add_heatmap(x=gx, y=gy, z=to_numpy(base_class), colorscale=scale, showscale=False,
                    zmin=0, zmax=1, hoverinfo="skip", row=1, col=1)
    for cls, color in enumerate(CLASS_COLORS):
        sel = labels == cls
        fig.add_scatter(x=points[sel, 0], y=points[sel, 1], mode="markers", name=f"class {cls}",
                        marker=dict(size=4, color=color), row=1, col=1)
    fig.add_heatmap(x=gx, y=gy, z=np.full((len(gy), len(gx)), 0.5), colorscale="RdBu_r",
                    zmin=0, zmax=1, opacity=0.55, colorbar=dict(title="P", len=0.8),
                    row=1, col=2)
    fig.add_contour(x=gx, y=gy, z=np.full((len(gy), len(gx)), 0.5), showscale=False,
                    contours=dict(start=0.5, end=0.5, size=1, coloring="lines"),
                    line=dict(color="black", width=2), name="g's boundary", hoverinfo="skip",
                    row=1, col=2)
    fig.add_scatter(mode="markers", name="x + ε (noisy copies)", row=1, col=2,
                    marker=dict(size=3, color="rgba(0,0,0,0.25)"))
    fig.add_scatter(mode="lines", name="certified ball", line=dict(color="black", width=3),
                    row=1, col=2)
    fig.add_scatter(mode="markers", name="x", row=1, col=2,
                    marker=dict(size=11, color="gold", line=dict(color="black", width=1.5)))
    for col in (1, 2):
        fig.update_xaxes(range=[gx[0], gx[-1]], row=1, col=col)
        fig.update_yaxes(range=[gy[0], gy[-1]], scaleanchor=f"x{col if col > 1 else ''}",
                         row=1, col=col)
    fig.update_layout(title=title, height=430, **_LAYOUT)
    return fig


def set_smoothing_plane(fig: go.Figure, p_class1, point, radius: float, cloud,
                        title: str) -> None:
    """The smoothed classifier of one σ: its P(class 1) on the grid ``(ny, nx)``, the point, its
    noisy copies ``(m, 2)`` and the certified ``radius`` (0: abstained, no ball)."""
    p = to_numpy(p_class1)
    cloud, point = to_numpy(cloud), to_numpy(point)
    with fig.batch_update():
        fig.data[3].z = p
        fig.data[4].z = p
        fig.data[5].x, fig.data[5].y = cloud[:, 0], cloud[:, 1]
        cx, cy = _circle(point, radius) if radius > 0 else ([], [])
        fig.data[6].x, fig.data[6].y = cx, cy
        fig.data[7].x, fig.data[7].y = [point[0]], [point[1]]
        fig.layout.title.text = title


# --- certified accuracy against the radius ---------------------------------------------------------

def _band(fig, x, values, color, name, *, dash="solid", row=None, col=None, legend=True,
          markers=False):
    """Median line and min–max band of ``values`` (n_seeds, len(x)); two traces."""
    v = np.atleast_2d(np.asarray(values, dtype=float))
    x = np.asarray(x, dtype=float)
    where = dict(row=row, col=col) if row is not None else {}
    fig.add_scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([v.max(0), v.min(0)[::-1]]),
                    fill="toself", fillcolor=rgba(color, 0.15), line=dict(width=0),
                    hoverinfo="skip", showlegend=False, legendgroup=name, **where)
    fig.add_scatter(x=x, y=np.median(v, 0), mode="lines+markers" if markers else "lines",
                    name=name, legendgroup=name, showlegend=legend,
                    line=dict(color=color, width=2.5, dash=dash), **where)


def _errorbars(values):
    v = np.atleast_2d(np.asarray(values, dtype=float))
    mid = np.median(v, 0)
    return mid, dict(type="data", symmetric=False, array=v.max(0) - mid,
                     arrayminus=mid - v.min(0), thickness=1.2)


def certified_figure(radii, certified: dict, empirical: dict, *, eps, colors: dict,
                     dashes: dict | None = None, title: str = "") -> go.Figure:
    """Certified accuracy against the radius (lines, Cohen et al.'s Fig.) beside empirical
    accuracy under attack at the same ε (markers with min–max bars over seeds).

    Args:
        radii: the radius grid ``(R,)``.
        certified: ``{label: values (n_seeds, R)}``, lower bounds on robust accuracy.
        empirical: ``{label: values (n_seeds, len(eps))}``, upper bounds (what an attack left).
        eps: the attack radii.
        colors, dashes: per label.
    """
    fig = go.Figure()
    dashes = dashes or {}
    for label, values in certified.items():
        _band(fig, radii, values, colors[label], f"certified: {label}",
              dash=dashes.get(label, "solid"))
    for label, values in empirical.items():
        mid, bars = _errorbars(values)
        fig.add_scatter(x=list(eps), y=mid, error_y=bars, mode="markers+lines",
                        name=f"under EOT-PGD: {label}", line=dict(color=colors[label], width=1,
                                                                  dash="dot"),
                        marker=dict(symbol="diamond", size=9, color=colors[label]))
    fig.update_layout(title=title, xaxis_title="ℓ2 radius r (= attack ε), 14×14 pixels in [0, 1]",
                      yaxis=dict(title="accuracy", range=[0, 1]), height=440, **_LAYOUT)
    return fig


# --- the dose–response --------------------------------------------------------------------------------

def dose_figure(sigmas, families: dict, reference: dict, *, colors: dict, eps: float, r: float,
                ref_color: str, ref_label: str) -> go.Figure:
    """Clean, EOT-PGD and certified accuracy against σ (median, band over seeds) for each family,
    the undefended reference as a flat band, and a fourth panel for one σ (:func:`set_dose`).

    Args:
        sigmas: the σ grid.
        families: ``{label: {"clean", "pgd", "certified": values (n_seeds, len(sigmas))}}``.
        reference: ``{"clean", "pgd": values (n_seeds,)}`` of the undefended model.
        eps, r: the attack radius and the certified radius of panels 2 and 3.

    Traces: panels 1–3: for each family a band and a median, then the reference's band and
    median; panel 4 (filled by :func:`set_dose`): for each family a certified band, its median
    and the attack markers, then the reference's attack markers. Shapes: one dotted line per
    panel at the chosen σ.
    """
    sig = np.asarray(sigmas, dtype=float)
    fig = go.Figure(make_subplots(rows=2, cols=2, vertical_spacing=0.14,
                                        horizontal_spacing=0.08, subplot_titles=(
        "clean accuracy (mean softmax, noise on)", f"under ℓ2 EOT-PGD at ε = {eps}",
        f"certified at r = {r} (image space)", "at the chosen σ: certified (lines) / attacked")))
    cells = ((1, 1, "clean"), (1, 2, "pgd"), (2, 1, "certified"))
    for row, col, key in cells:
        for label, values in families.items():
            _band(fig, sig, values[key], colors[label], label, row=row, col=col,
                  legend=(row, col) == (1, 1), markers=True)
        ref = np.atleast_2d(reference.get(key, np.zeros((1, 1)))).reshape(-1, 1)
        _band(fig, [0.0, sig.max()], np.repeat(ref, 2, axis=1), ref_color, ref_label, row=row,
              col=col, legend=(row, col) == (1, 1), dash="dash")
    for label in families:
        _band(fig, [0.0], [[0.0]], colors[label], label, row=2, col=2, legend=False)
        fig.add_scatter(x=[], y=[], mode="markers", showlegend=False, legendgroup=label,
                        marker=dict(symbol="diamond", size=9, color=colors[label]), row=2, col=2)
    fig.add_scatter(x=[], y=[], mode="markers", showlegend=False, legendgroup=ref_label,
                    marker=dict(symbol="diamond", size=9, color=ref_color), row=2, col=2)
    for i, (row, col, _) in enumerate(cells):
        fig.add_vline(x=float(sig[0]), line=dict(dash="dot", color="grey"), row=row, col=col)
        fig.update_xaxes(title_text="σ", row=row, col=col)
    fig.update_xaxes(title_text="ℓ2 radius r = ε", row=2, col=2)
    fig.update_yaxes(range=[0, 1])
    fig.update_layout(height=720, **_LAYOUT)
    return fig


def set_dose(fig: go.Figure, sigma: float, radii, curves: dict, eps, reference_pgd
             ) -> None:
    """Show one σ: the dotted lines move to it, panel 4 gets its curves.

    Args:
        sigma: the chosen σ. radii: the radius grid ``(R,)``. eps: the attack radii.
        curves: ``{label: {"certified": (n_seeds, R), "pgd": (n_seeds, len(eps))}}`` at σ, in
            the order of :func:`dose_figure`'s families.
        reference_pgd: the undefended model's attack accuracies ``(n_seeds, len(eps))``.
    """
    n_fam = len(curves)
    first = 3 * 2 * (n_fam + 1)  # panels 1–3: (families + reference) × (band, median)
    radii = np.asarray(radii, dtype=float)
    with fig.batch_update():
        for shape in fig.layout.shapes:
            shape.x0 = shape.x1 = float(sigma)
        for i, values in enumerate(curves.values()):
            v = np.atleast_2d(np.asarray(values["certified"], dtype=float))
            band, line, marks = fig.data[first + 3 * i:first + 3 * i + 3]
            band.x = np.concatenate([radii, radii[::-1]])
            band.y = np.concatenate([v.max(0), v.min(0)[::-1]])
            line.x, line.y = radii, np.median(v, 0)
            marks.x, (marks.y, marks.error_y) = list(eps), _errorbars(values["pgd"])
        ref = fig.data[first + 3 * n_fam]
        ref.x, (ref.y, ref.error_y) = list(eps), _errorbars(reference_pgd)
        fig.layout.annotations[3].text = f"at σ = {sigma}: certified (lines) / attacked (◆)"
