"""Figures of the diffusion-and-jumps chapter (03): Brownian paths, the toy SDE of paper 000
(eq. 11) under a σ slider, convergence orders, noise on a 2-D flow, Bernoulli vs Gaussian noise,
and a perturbation's exponent against Corollary 4.0.1.

Every ``*_figure`` builds a figure; its ``set_*`` twin updates it in place (what a slider calls).
Data that do not depend on a slider are passed in precomputed, so a slider only moves data.
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .plotting import COLORS, binned, model_color, rgba, to_numpy, with_gaps
from .resnet_figures import CLASS_COLORS, decision_line

__all__ = ["brownian_figure", "toy_figure", "set_toy", "mean_median_figure", "step_figure",
           "set_step", "orders_figure", "step_error_figure", "noise_flow_figure",
           "set_noise_flow", "ttn_accuracy_figure", "jump_paths_figure", "kicks_figure",
           "exponents_figure"]

_LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=20, t=60, b=40))


def brownian_figure(t, B, *, n_show: int = 20) -> go.Figure:
    """``n_show`` Brownian paths ``B`` ``(len(t), n_paths)`` with the ±√t and ±2√t envelopes."""
    t, B = to_numpy(t), to_numpy(B)
    x, y = with_gaps(t, B, n_show)
    fig = go.Figure()
    fig.add_scatter(x=x, y=y, mode="lines", name="B_t", line=dict(width=1, color=rgba(COLORS[0], 0.4)))
    for k, dash in ((1, "dash"), (2, "dot")):
        for sign in (1, -1):
            fig.add_scatter(x=t, y=sign * k * np.sqrt(t), mode="lines", showlegend=sign == 1,
                            name=f"±{k}·√t", line=dict(color="black", dash=dash))
    fig.update_layout(title=f"{n_show} Brownian paths; over all {B.shape[1]}: Var B_1 = "
                      f"{B[-1].var(ddof=1):.3f} (theory 1)", xaxis_title="t", yaxis_title="B_t",
                      height=360, **_LAYOUT)
    return fig


# --- the toy of eq. 11 ------------------------------------------------------------------------------

def toy_figure(sigma_max: float = 3.5) -> go.Figure:
    """Three panels for dx = x dt + σx dB: |x_t| of some paths and their median; the average of
    log|x_t|/t (Euler, exact solution on the same B, theory 1 − σ²/2); the exponent against σ.
    Fill it with :func:`set_toy`."""
    sig = np.linspace(0, sigma_max, 71)
    fig = go.Figure(make_subplots(rows=1, cols=3, column_widths=[0.4, 0.33, 0.27],
                                        subplot_titles=("|x_t|: paths and their median",
                                                        "average of log|x_t| / t",
                                                        "a.s. exponent vs σ")))
    fig.add_scatter(mode="lines", line=dict(width=1, color=rgba(COLORS[0], 0.35)),
                    name="sample paths (Euler)", row=1, col=1)                              # 0
    fig.add_scatter(mode="lines", line=dict(width=3, color="black"), name="median", row=1, col=1)
    fig.add_scatter(mode="lines", line=dict(dash="dash", color=COLORS[1]),
                    name="exp((1 − σ²/2)t)", row=1, col=1)                                  # 2
    fig.add_scatter(mode="lines", line=dict(width=3, color=COLORS[0]), name="Euler–Maruyama",
                    row=1, col=2)                                                            # 3
    fig.add_scatter(mode="lines", line=dict(dash="dash", color=COLORS[2]),
                    name="exact solution, same B", row=1, col=2)                             # 4
    fig.add_scatter(mode="lines", line=dict(dash="dot", color="black"), name="1 − σ²/2",
                    row=1, col=2)                                                            # 5
    fig.add_scatter(x=sig, y=1 - sig ** 2 / 2, mode="lines", showlegend=False,
                    line=dict(color="black"), row=1, col=3)                                  # 6
    fig.add_scatter(mode="markers", marker=dict(size=11, color=COLORS[0]), showlegend=False,
                    row=1, col=3)                                                            # 7
    fig.add_vline(x=math.sqrt(2), line_dash="dot", line_color=COLORS[1], row=1, col=3,
                  annotation_text="√2", annotation_position="top right")
    fig.add_hline(y=0, line_color="gray", line_width=1, row=1, col=3)
    fig.update_yaxes(type="log", range=[-12, 5], exponentformat="power", row=1, col=1)
    fig.update_yaxes(range=[-6.5, 2.5], row=1, col=2)
    fig.update_yaxes(range=[-5.5, 1.5], row=1, col=3)
    for col, title in ((1, "t"), (2, "t"), (3, "σ")):
        fig.update_xaxes(title_text=title, row=1, col=col)
    fig.update_layout(height=470, legend=dict(orientation="h", y=-0.18),
                      template="plotly_white", margin=dict(l=60, r=20, t=110, b=40))
    return fig


def set_toy(fig: go.Figure, state: dict) -> None:
    """Show one σ of a :func:`toy_figure`. ``state`` holds ``sigma``, ``t`` ``(T,)``, ``shown``
    ``(T, n)`` (|x_t| of the drawn paths), ``median`` ``(T,)``, ``t_late`` and the two averaged
    curves ``avg_euler``, ``avg_exact`` on it, the exponents ``exponent``, ``stderr``,
    ``exponent_exact`` and ``below`` (the share of paths ending below x₀)."""
    s, t = state["sigma"], state["t"]
    x, y = with_gaps(t, state["shown"])
    fig.data[0].x, fig.data[0].y = x, y
    fig.data[1].x, fig.data[1].y = t, state["median"]
    fig.data[2].x, fig.data[2].y = t, np.exp((1 - s ** 2 / 2) * t)
    fig.data[3].x, fig.data[3].y = state["t_late"], state["avg_euler"]
    fig.data[4].x, fig.data[4].y = state["t_late"], state["avg_exact"]
    fig.data[5].x, fig.data[5].y = [state["t_late"][0], t[-1]], [1 - s ** 2 / 2] * 2
    fig.data[7].x, fig.data[7].y = [s], [state["exponent"]]
    fig.layout.title.text = (
        f"σ = {s:.2f}: measured exponent {state['exponent']:+.2f} ± {state['stderr']:.2f} "
        f"(exact solution, same B: {state['exponent_exact']:+.2f}; theory {1 - s ** 2 / 2:+.2f})"
        f"<br>{state['below']:.0%} of the paths end below x₀")


def mean_median_figure(t, paths: dict, *, mean_exact) -> go.Figure:
    """Sample mean and median of x_t (log scale) and the share of paths below x₀, per σ:
    ``paths`` maps σ to ``(T, n_paths)``; ``mean_exact`` is E[x_t] on ``t``."""
    t = to_numpy(t)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("mean vs median of x_t (log scale)",
                                                        "share of paths below x₀"))
    for i, (s, p) in enumerate(paths.items()):
        p, c = to_numpy(p), COLORS[i]
        fig.add_scatter(x=t, y=p.mean(1), name=f"σ={s}: sample mean of {p.shape[1]}",
                        line=dict(color=c, width=3), row=1, col=1)
        fig.add_scatter(x=t, y=np.median(p, 1), name=f"σ={s}: sample median",
                        line=dict(color=c, dash="dot"), row=1, col=1)
        fig.add_scatter(x=t, y=(p < 1).mean(1), name=f"σ={s}", line=dict(color=c),
                        showlegend=False, row=1, col=2)
    fig.add_scatter(x=t, y=to_numpy(mean_exact), name="E[x_t] = e^t (every σ)",
                    line=dict(color="black", dash="dash"), row=1, col=1)
    fig.update_yaxes(type="log", exponentformat="power", row=1, col=1)
    fig.update_xaxes(title_text="t")
    fig.update_layout(height=400, legend=dict(orientation="h", y=-0.2), **_LAYOUT)
    return fig


# --- convergence orders -----------------------------------------------------------------------------

def step_figure(t_fine, exact) -> go.Figure:
    """One path: the exact solution on a fine grid (trace 0), Euler–Maruyama (1) and Milstein (2)
    on a coarse grid from the same increments; fill with :func:`set_step`."""
    fig = go.Figure()
    fig.add_scatter(x=to_numpy(t_fine), y=to_numpy(exact), mode="lines", name="exact",
                    line=dict(color="black"))
    fig.add_scatter(mode="lines+markers", name="Euler–Maruyama", line=dict(color=COLORS[0]))
    fig.add_scatter(mode="lines+markers", name="Milstein", line=dict(color=COLORS[1]))
    fig.update_layout(height=380, xaxis_title="t", yaxis_title="x_t", **_LAYOUT)
    return fig


def set_step(fig: go.Figure, ts, euler, milstein, label: str) -> None:
    """Draw the coarse solutions of a :func:`step_figure` and their errors at the end."""
    exact_end = fig.data[0].y[-1]
    ts, euler, milstein = to_numpy(ts), to_numpy(euler), to_numpy(milstein)
    fig.data[1].x, fig.data[1].y = ts, euler
    fig.data[2].x, fig.data[2].y = ts, milstein
    fig.layout.title.text = (f"dt = {label}: error at the end: Euler {abs(euler[-1] - exact_end):.3f}, "
                             f"Milstein {abs(milstein[-1] - exact_end):.3f}")


def orders_figure(errors: dict, *, weak_exact=None, guides=((0.5, 1.5), (1.0, 1.2))) -> go.Figure:
    """Strong and weak errors against dt (log-log) from :func:`nsde_lib.gbm_errors`, with the
    weak error's closed form and guide lines of the given slopes."""
    dts = errors["dt"]
    fig = go.Figure()
    for i, method in enumerate(m for m in errors if m != "dt"):
        e = errors[method]
        fig.add_scatter(x=dts, y=e["strong"], mode="lines+markers", name=f"{method}: strong",
                        line=dict(color=COLORS[i]))
        fig.add_scatter(x=dts, y=e["weak"], mode="lines+markers", name=f"{method}: weak",
                        line=dict(color=COLORS[i], dash="dot"),
                        error_y=dict(type="data", array=2 * e["weak_se"], visible=True))
    if weak_exact is not None:
        fig.add_scatter(x=dts, y=weak_exact, mode="lines", name="weak, closed form",
                        line=dict(color="black", dash="dash"))
    for order, scale in guides:
        fig.add_scatter(x=dts, y=scale * dts ** order, mode="lines", name=f"slope {order}",
                        line=dict(color="gray", width=1, dash="longdash"))
    fig.update_xaxes(type="log", title_text="dt", exponentformat="power")
    fig.update_yaxes(type="log", title_text="error at T", exponentformat="power")
    fig.update_layout(height=420, title="errors vs step (log-log)", **_LAYOUT)
    return fig


def step_error_figure(dts, rel, agree, acc, *, acc_fine: float, train_dt: float) -> go.Figure:
    """Paper 000's Fig. 3 (right) on a network: relative error of h_T against a fine grid, and
    the predictions (same class as the fine grid, test accuracy), against dt."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("relative error of the last state",
                                                        "predictions"))
    fig.add_scatter(x=dts, y=rel, mode="lines+markers", name="relative error", row=1, col=1)
    fig.add_scatter(x=dts, y=agree, mode="lines+markers", name="same class as the fine grid",
                    row=1, col=2)
    fig.add_scatter(x=dts, y=acc, mode="lines+markers", name="test accuracy", row=1, col=2)
    fig.add_hline(y=acc_fine, line_dash="dash", row=1, col=2, annotation_text="fine grid")
    for col in (1, 2):
        fig.add_vline(x=train_dt, line_dash="dot", row=1, col=col, annotation_text="training dt")
        fig.update_xaxes(type="log", title_text="dt", exponentformat="power", row=1, col=col)
    fig.update_yaxes(type="log", exponentformat="power", row=1, col=1)
    fig.update_yaxes(tickformat=".0%", row=1, col=2)
    fig.update_layout(height=380, legend=dict(orientation="h", y=-0.25), **_LAYOUT)
    return fig


# --- noise on the 2-D flow ----------------------------------------------------------------------------

def noise_flow_figure(readout, *, box=(7.0, 5.0)) -> go.Figure:
    """Trajectories (traces 0, 1: one per class) and end points (2, 3) of a 2-D flow, with the
    readout's decision line (4); fill with :func:`set_noise_flow`."""
    fig = go.Figure()
    for c, color in enumerate(CLASS_COLORS):
        fig.add_scatter(mode="lines", line=dict(width=1, color=color), name=f"class {c}: paths")
    for c, color in enumerate(CLASS_COLORS):
        fig.add_scatter(mode="markers", marker=dict(size=4, color=color, opacity=0.5),
                        name=f"class {c}: end points")
    xs, ys = decision_line(readout, (-box[0], box[0]), (-box[1], box[1]))
    fig.add_scatter(x=xs, y=ys, mode="lines", name="decision boundary",
                    line=dict(color="black", width=2))
    fig.update_layout(height=500, xaxis=dict(range=[-box[0], box[0]], title="y₁"),
                      yaxis=dict(range=[-box[1], box[1]], title="y₂", scaleanchor="x"), **_LAYOUT)
    return fig


def set_noise_flow(fig: go.Figure, ts, paths, labels, shown, title: str, *,
                   ends=slice(None)) -> None:
    """Draw ``paths`` ``(T, N, 2)`` in a :func:`noise_flow_figure`: the trajectories of the
    points ``shown`` (indices) and the end points of the points ``ends`` (a slice or indices;
    all by default), coloured by ``labels`` ``(N,)``."""
    paths, labels, shown = to_numpy(paths), to_numpy(labels), to_numpy(shown)
    ends = ends if isinstance(ends, slice) else to_numpy(ends)
    last, end_labels = paths[-1, ends], labels[ends]
    for c in (0, 1):
        idx = shown[labels[shown] == c]
        fig.data[c].x = with_gaps(ts, paths[:, idx, 0])[1]
        fig.data[c].y = with_gaps(ts, paths[:, idx, 1])[1]
        end = last[end_labels == c]
        fig.data[2 + c].x, fig.data[2 + c].y = end[:, 0], end[:, 1]
    fig.layout.title.text = title


def ttn_accuracy_figure(sigmas, accs: dict, *, passes: int) -> go.Figure:
    """Accuracy of single noisy passes against the noise scale, one line per noise type."""
    fig = go.Figure()
    for kind, values in accs.items():
        fig.add_scatter(x=sigmas, y=values, mode="lines+markers", name=kind,
                        line=dict(color=model_color(kind)))
    fig.update_layout(height=360, xaxis_title="σ", yaxis=dict(title="test accuracy", tickformat=".0%"),
                      title=f"accuracy under test-time noise (mean of {passes} noisy passes)", **_LAYOUT)
    return fig


def jump_paths_figure(ts, ode, runs: dict, labels, *, title: str) -> go.Figure:
    """The ODE paths (grey) under one noisy path per point, one panel per jump kind; ``ode`` and
    each run are ``(T, N, 2)``."""
    fig = make_subplots(rows=1, cols=len(runs), subplot_titles=list(runs))
    ode, labels = to_numpy(ode), to_numpy(labels)
    for col, paths in enumerate(runs.values(), start=1):
        paths = to_numpy(paths)
        for j in range(paths.shape[1]):
            fig.add_scatter(x=ode[:, j, 0], y=ode[:, j, 1], mode="lines", showlegend=False,
                            line=dict(color="lightgray", width=3), row=1, col=col)
            fig.add_scatter(x=paths[:, j, 0], y=paths[:, j, 1], mode="lines+markers",
                            showlegend=False, marker=dict(size=3),
                            line=dict(color=CLASS_COLORS[int(labels[j])], width=1.5),
                            row=1, col=col)
    fig.update_layout(height=420, title=title, **_LAYOUT)
    return fig


def kicks_figure(z, sums: dict, diffusion_step, jump_step, *, p: float, dt: float,
                 rate: float) -> go.Figure:
    """Why Gaussian noise is a diffusion and Bernoulli noise a jump: the two-point z of eq. 7
    against N(0, 1); sums of n kicks z/√n (``sums`` maps n to ``(values, lattice step)``)
    approaching N(0, 1); one short step of a diffusion against one of a jump term."""
    grid_x = np.linspace(-4, 4, 201)
    pdf = np.exp(-grid_x ** 2 / 2) / math.sqrt(2 * math.pi)
    fig = make_subplots(rows=1, cols=3, subplot_titles=(
        f"z of eq. 7 (p = {p}) vs N(0, 1)", "sum of n kicks z/√n → N(0, 1)",
        f"one step dt = {dt}: dB vs jumps"))
    x, y = binned(z, dict(start=-2.0, end=1.5, size=0.25))
    fig.add_bar(x=x, y=y, width=0.25, marker_color=COLORS[0], name="two-point z", row=1, col=1)
    for i, (n, (values, step)) in enumerate(sums.items()):
        lo = float(np.min(to_numpy(values)))
        x, y = binned(values, dict(start=lo - step / 2, end=float(np.max(to_numpy(values))) + step,
                                   size=step))
        fig.add_scatter(x=x[y > 0], y=y[y > 0], mode="lines+markers", name=f"n = {n}",
                        marker=dict(size=4), line=dict(color=COLORS[i + 1]), row=1, col=2)
    for col in (1, 2):
        fig.add_scatter(x=grid_x, y=pdf, mode="lines", line=dict(color="black", dash="dash"),
                        name="N(0, 1)", showlegend=col == 1, row=1, col=col)
    for i, (vals, name) in enumerate(((diffusion_step, "diffusion dB"),
                                      (jump_step, f"jump Z dN (λ = {rate:g})"))):
        x, y = binned(vals, dict(start=-1.525, end=1.525, size=0.05), "probability")
        fig.add_bar(x=x, y=y, width=0.05, name=name, marker_color=COLORS[4 + i], opacity=0.7,
                    row=1, col=3)
    fig.update_yaxes(type="log", title_text="probability", row=1, col=3)
    fig.update_yaxes(title_text="density", row=1, col=1)
    fig.update_layout(height=380, barmode="overlay", legend=dict(orientation="h", y=-0.15),
                      **_LAYOUT)
    return fig


# --- Corollary 4.0.1 ----------------------------------------------------------------------------------

def exponents_figure(sigmas, measured: dict, *, L_upper: float, L_local: float,
                     baseline: float) -> go.Figure:
    """Measured exponents of ‖ε_t‖ against σ (``measured`` maps a label to per-σ
    :class:`nsde_lib.LyapunovEstimate`), the Corollary's bound L − σ²/2, the same with the local
    L, and the σ = 0 exponent shifted by −σ²/2."""
    s_axis = np.linspace(0, max(sigmas), 100)
    fig = go.Figure()
    for i, (label, ests) in enumerate(measured.items()):
        fig.add_scatter(x=sigmas, y=[e.exponent for e in ests], mode="markers+lines",
                        name=f"measured, {label}", line=dict(color=COLORS[i]),
                        error_y=dict(type="data", array=[2 * e.stderr for e in ests]))
    fig.add_scatter(x=s_axis, y=L_upper - s_axis ** 2 / 2, mode="lines",
                    name="bound L − σ²/2 (L upper)", line=dict(color="black"))
    fig.add_scatter(x=s_axis, y=L_local - s_axis ** 2 / 2, mode="lines",
                    name="L_local − σ²/2 (heuristic)", line=dict(color="black", dash="dot"))
    fig.add_scatter(x=s_axis, y=baseline - s_axis ** 2 / 2, mode="lines",
                    name="measured at σ = 0, minus σ²/2", line=dict(color=COLORS[0], dash="dash"))
    fig.add_hline(y=0, line_color="gray", line_width=1)
    fig.add_vline(x=math.sqrt(2 * L_upper), line_dash="dot", annotation_text="√(2L)")
    fig.update_layout(height=440, xaxis_title="σ", yaxis_title="exponent of ‖ε_t‖ over the depth",
                      title="Corollary 4.0.1 on the trained flow: measured exponents vs the bound",
                      **_LAYOUT)
    return fig
