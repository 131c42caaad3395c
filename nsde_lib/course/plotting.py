"""Plotly figures for paths of states, written once for every notebook."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import torch

__all__ = ["to_numpy", "with_gaps", "paths_figure", "set_paths", "COLORS", "rgba", "band_figure", "set_bands",
           "binned", "HISTNORMS", "histogram_figure", "set_histograms", "poisson_figure",
           "set_poisson", "sweep_figure", "H_COLORS", "curves_figure", "MODEL_COLORS", "log_axis",
           "model_color", "extent"]

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
          "#e377c2")

# One colour per model across the course: a model has the same colour in every figure of every
# chapter (keys are the noise presets of nl.SDEClassifier, plus the course's other variants).
MODEL_COLORS = {
    "none": "#1f77b4",            # the Neural ODE: blue
    "additive": "#17becf",        # cyan
    "multiplicative": "#ff7f0e",  # orange
    "dropout": "#2ca02c",         # green (Gaussian dropout)
    "jump-dropout": "#e377c2",    # pink
    "spectral-norm": "#9467bd",   # purple (the ODE with spectrally normalised drift, paper 004)
    "adaptive": "#8c564b",        # brown (the ODE solved by Dormand-Prince)
    "smoothed": "#d62728",        # red (the ODE smoothed by Gaussian noise on its input, ch. 06)
    "noise-at-0": "#bcbd22",      # olive (the Neural SDE with noise at t = 0, SN stem, ch. 06)
}
_MODEL_ALIASES = {"ode": "none", "neural ode": "none", "gaussian dropout": "dropout",
                  "jump dropout": "jump-dropout", "ode + spectral norm": "spectral-norm",
                  "spectral norm": "spectral-norm", "input smoothing": "smoothed",
                  "smoothed classifier": "smoothed", "noise at t = 0": "noise-at-0",
                  "neural sde, noise at t = 0": "noise-at-0"}


def model_color(name: str) -> str:
    """The course's colour of a model, by noise preset or display name (``"none"``, ``"ODE"``,
    ``"Multiplicative"``, ``"ODE + spectral norm"``...), case-insensitive.

    Raises:
        ValueError: a name with no colour (the message lists the models that have one).
    """
    key = str(name).strip().lower()
    key = _MODEL_ALIASES.get(key, key)
    if key not in MODEL_COLORS:
        raise ValueError(f"model must be one of {tuple(MODEL_COLORS)} (or ODE, Gaussian dropout, "
                         f"ODE + spectral norm, input smoothing, noise at t = 0), got {name!r}")
    return MODEL_COLORS[key]


def _series_color(name, i: int) -> str:
    """A model's own colour when ``name`` names a model, else the i-th of :data:`COLORS`."""
    try:
        return model_color(name)
    except ValueError:
        return COLORS[i % len(COLORS)]


def to_numpy(x) -> np.ndarray:
    """A tensor (any device, with or without grad) or array-like as a NumPy array."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def with_gaps(ts, paths, n_show: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Many paths as one line trace: ``(x, y)`` with a NaN gap between paths.

    One trace to send and redraw instead of one per path, which is what keeps a slider over a
    figure of many paths fast.

    Args:
        ts: times ``(T,)``.
        paths: ``(T, n_paths)`` (or ``(T, n_paths, 1)``).
        n_show: how many of the paths (default all).

    Returns:
        ``x`` and ``y`` of length ``n_show·(T + 1)``.
    """
    ts = to_numpy(ts).astype(float)
    paths = to_numpy(paths).reshape(len(ts), -1)[:, :n_show]          # (T, n)
    n = paths.shape[1]
    gap = np.full((1, n), np.nan)
    x = np.vstack([np.repeat(ts[:, None], n, axis=1), gap]).T.ravel()
    y = np.vstack([paths.astype(float), gap]).T.ravel()
    return x, y


def paths_figure(ts, paths, *, n_show: int = 20, title: str = "", yaxis: str = "y",
                 xaxis: str = "t") -> go.Figure:
    """Sample paths as thin lines (one trace, :func:`with_gaps`) plus their mean as a thick one.

    Args:
        ts: times, shape ``(T,)``.
        paths: states, shape ``(T, n_paths)`` or ``(T, n_paths, 1)``.
        n_show: how many paths to draw (all of them enter the mean).

    Traces: 0 the sample paths, 1 the mean.
    """
    fig = go.Figure()
    fig.add_scatter(mode="lines", name="sample paths", line=dict(width=1, color=rgba(COLORS[0], 0.35)))
    fig.add_scatter(mode="lines", name="mean over all paths", line=dict(width=3, color="black"))
    set_paths(fig, ts, paths, n_show=n_show)
    fig.update_layout(title=title, xaxis_title=xaxis, yaxis_title=yaxis,
                      template="plotly_white", height=380, margin=dict(l=60, r=20, t=50, b=40))
    return fig


def set_paths(fig: go.Figure, ts, paths, *, n_show: int = 20) -> None:
    """Replace the data of a :func:`paths_figure` in place (one batch update, no new figure)."""
    x, y = with_gaps(ts, paths, n_show)
    with fig.batch_update():
        fig.data[0].x, fig.data[0].y = x, y
        fig.data[1].x, fig.data[1].y = to_numpy(ts), to_numpy(paths).reshape(len(ts), -1).mean(1)


def log_axis(values) -> dict:
    """Axis settings for a log axis over a few values (depths 2 … 32, learning rates): a tick at
    each value, no minor labels ("2 3 … 10 2 3")."""
    values = sorted({float(v) for v in values})
    return dict(type="log", tickvals=values, ticktext=[f"{v:g}" for v in values])


def extent(values, pad: float = 0.05) -> list[float]:
    """An axis range ``[lo, hi]`` holding every finite value of ``values`` (any shape), widened
    by ``pad`` of its span on each side.

    A live figure whose axes hold what every slider position draws keeps its axes still, so a
    move shows the points moving, not the scale; it is also cheaper for the page, which redraws
    tick labels and margins whenever a range changes.
    """
    values = to_numpy(values).astype(float).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("extent: `values` holds no finite number")
    lo, hi = float(values.min()), float(values.max())
    margin = pad * (hi - lo) if hi > lo else max(abs(lo), 1.0) * pad
    return [lo - margin, hi + margin]


def rgba(color: str, alpha: float) -> str:
    """``"#rrggbb"`` as an ``rgba(...)`` string with opacity ``alpha``."""
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _layout(fig, title, xaxis, yaxis, height=380):
    fig.update_layout(title=title, xaxis_title=xaxis, yaxis_title=yaxis, template="plotly_white",
                      height=height, margin=dict(l=60, r=20, t=50, b=40))


# --- bands: median and quantiles of many paths -------------------------------------------------

def _band(ts, paths, quantiles):
    ts_np = to_numpy(ts)
    values = to_numpy(paths).reshape(len(ts_np), -1)  # (T, n_paths)
    lo, mid, hi = np.quantile(values, [quantiles[0], 0.5, quantiles[1]], axis=1)
    return ts_np, lo, mid, hi


def _check_quantiles(quantiles):
    if not (len(quantiles) == 2 and 0 <= quantiles[0] < 0.5 < quantiles[1] <= 1):
        raise ValueError(f"quantiles must be (low, high) with 0 <= low < 0.5 < high <= 1, "
                         f"got {quantiles!r}")


def band_figure(ts, bands: dict, *, quantiles=(0.1, 0.9), title: str = "", xaxis: str = "t",
                yaxis: str = "", log_y: bool = False, colors=COLORS) -> go.Figure:
    """For each named set of paths, its median over paths and a shaded quantile band.

    Args:
        ts: times ``(T,)``.
        bands: ``{name: paths}``, paths ``(T, n_paths)`` or ``(T, n_paths, ...)`` (flattened).
        quantiles: the band's lower and upper quantile (default the 10 % – 90 % band).
        log_y: logarithmic y axis (for norms that decay exponentially).

    Three traces per band, in order: lower edge, upper edge (filled down to the lower), median.
    """
    _check_quantiles(quantiles)
    fig = go.Figure()
    for i, (name, paths) in enumerate(bands.items()):
        color = colors[i % len(colors)]
        ts_np, lo, mid, hi = _band(ts, paths, quantiles)
        fig.add_scatter(x=ts_np, y=lo, mode="lines", line=dict(width=0), showlegend=False,
                        hoverinfo="skip", legendgroup=name)
        fig.add_scatter(x=ts_np, y=hi, mode="lines", line=dict(width=0), fill="tonexty",
                        fillcolor=rgba(color, 0.2), showlegend=False, hoverinfo="skip",
                        legendgroup=name)
        fig.add_scatter(x=ts_np, y=mid, mode="lines", name=name, legendgroup=name,
                        line=dict(width=2.5, color=color))
    _layout(fig, title, xaxis, yaxis)
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def set_bands(fig: go.Figure, ts, bands: dict, *, quantiles=(0.1, 0.9)) -> None:
    """Replace the data of a :func:`band_figure` in place; ``bands`` in the same order."""
    _check_quantiles(quantiles)
    with fig.batch_update():
        for i, (name, paths) in enumerate(bands.items()):
            ts_np, lo, mid, hi = _band(ts, paths, quantiles)
            for trace, y in zip(fig.data[3 * i:3 * i + 3], (lo, hi, mid)):
                trace.x, trace.y = ts_np, y
            fig.data[3 * i + 2].name = name


# --- histograms -----------------------------------------------------------------------------------

HISTNORMS = ("probability density", "probability", "count")


def binned(values, bins: dict, histnorm: str = "probability density"):
    """Histogram of ``values`` on fixed bins, computed here (the figure then holds bar heights,
    not every sample: a figure of 100,000 draws stays a few kilobytes).

    Args:
        values: any shape, flattened.
        bins: ``dict(start=, end=, size=)``; values outside ``[start, end)`` are not counted
            (they still count in the normalisation, so the shares stay shares of all draws).
        histnorm: one of :data:`HISTNORMS`.

    Returns:
        ``(centers, heights)``, NumPy arrays.
    """
    if histnorm not in HISTNORMS:
        raise ValueError(f"histnorm must be one of {HISTNORMS}, got {histnorm!r}")
    start, end, size = float(bins["start"]), float(bins["end"]), float(bins["size"])
    if not (size > 0 and end > start):
        raise ValueError(f"bins need end > start and size > 0, got {bins!r}")
    edges = start + size * np.arange(int(np.ceil((end - start) / size - 1e-9)) + 1)
    values = to_numpy(values).ravel()
    counts, _ = np.histogram(values, edges)
    heights = counts.astype(float)
    if histnorm != "count":
        heights /= max(len(values), 1)
    if histnorm == "probability density":
        heights /= size
    return (edges[:-1] + edges[1:]) / 2, heights


def _auto_bins(samples, n_bins=40):
    values = np.concatenate([to_numpy(v).ravel() for v in samples.values()])
    lo, hi = float(values.min()), float(values.max())
    size = (hi - lo) / n_bins if hi > lo else 1.0
    return dict(start=lo, end=hi + size * 1e-6 if hi > lo else lo + 1.0, size=size)


def histogram_figure(samples: dict, *, bins: dict | None = None,
                     histnorm: str = "probability density", curves: dict | None = None,
                     title: str = "", xaxis: str = "", yaxis: str | None = None,
                     colors=COLORS, opacity: float = 0.55) -> go.Figure:
    """Overlaid histograms of named samples on shared bins, with optional reference curves.

    Args:
        samples: ``{name: values}``; any shape, flattened.
        bins: ``dict(start=, end=, size=)`` shared by all samples (so they compare bar by bar);
            default: 40 bins over the range of all samples. Kept in ``fig.layout.meta``.
        histnorm: ``"probability density"``, ``"probability"`` or ``"count"``.
        curves: ``{name: (x, y)}`` drawn as lines after the bars (a pdf, a pmf).

    Traces: one bar trace per sample, then one line per curve, in the given order.
    """
    bins = dict(bins) if bins is not None else _auto_bins(samples)
    fig = go.Figure()
    for i, (name, values) in enumerate(samples.items()):
        x, y = binned(values, bins, histnorm)
        fig.add_bar(x=x, y=y, width=bins["size"], name=name, opacity=opacity,
                    marker_color=colors[i % len(colors)])
    for name, (x, y) in (curves or {}).items():
        fig.add_scatter(x=to_numpy(x), y=to_numpy(y), mode="lines", name=name,
                        line=dict(width=2.5, color="black"))
    _layout(fig, title, xaxis, yaxis if yaxis is not None else histnorm)
    fig.update_layout(barmode="overlay", bargap=0, meta=dict(bins=bins, histnorm=histnorm))
    return fig


def set_histograms(fig: go.Figure, samples: dict, *, curves: dict | None = None) -> None:
    """Replace the samples (and curves) of a :func:`histogram_figure` in place, same order."""
    meta = fig.layout.meta
    with fig.batch_update():
        for trace, values in zip(fig.data, samples.values()):
            trace.x, trace.y = binned(values, meta["bins"], meta["histnorm"])
        start = len(samples)
        for trace, (x, y) in zip(fig.data[start:], (curves or {}).values()):
            trace.x, trace.y = to_numpy(x), to_numpy(y)


# --- the Poisson process ------------------------------------------------------------------------

def _counting_xy(events, T, n_show):
    """Step lines of N_t (None between paths) and the points where the jumps land."""
    xs, ys, ex, ey = [], [], [], []
    for e in events[:n_show]:
        e = to_numpy(e)
        k = np.arange(len(e) + 1)
        xs += [0.0, *np.repeat(e, 2), T, None]
        ys += [0, *np.column_stack([k[:-1], k[1:]]).ravel(), len(e), None]
        ex += list(e)
        ey += list(k[1:])
    return xs, ys, ex, ey


def _poisson_pmf(mean, k_max):
    k = np.arange(k_max + 1)
    log_pmf = k * np.log(max(mean, 1e-300)) - mean - np.array([math.lgamma(i + 1) for i in k])
    return k, np.exp(log_pmf) if mean > 0 else (k == 0).astype(float)


def poisson_figure(events: list, T: float, rate: float, *, n_show: int = 8) -> go.Figure:
    """Left: N_t of ``n_show`` Poisson paths with their event times; right: the law of N_T.

    Args:
        events: event times per path (:func:`nsde_lib.poisson_events`), all of them enter the
            histogram of N_T.
        T: horizon.
        rate: λ, for the reference pmf Poisson(λT).

    Traces: 0 the step lines, 1 the events, 2 the histogram of N_T, 3 the pmf.
    """
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4],
                        subplot_titles=("N_t: paths and event times", "law of N_T"))
    xs, ys, ex, ey = _counting_xy(events, T, n_show)
    counts = np.array([len(e) for e in events])
    k, pmf = _poisson_pmf(rate * T, int(max(counts.max(initial=0), rate * T * 2 + 10)))
    fig.add_scatter(x=xs, y=ys, mode="lines", name="N_t", line=dict(width=1.5, color=COLORS[0]),
                    row=1, col=1)
    fig.add_scatter(x=ex, y=ey, mode="markers", name="events",
                    marker=dict(size=5, color=COLORS[1]), row=1, col=1)
    fig.add_histogram(x=counts, histnorm="probability", name=f"N_T, {len(events)} paths",
                      xbins=dict(start=-0.5, size=1), marker_color=COLORS[0], opacity=0.6,
                      row=1, col=2)
    fig.add_scatter(x=k, y=pmf, mode="markers+lines", name="Poisson(λT) pmf",
                    line=dict(color="black", width=1.5), row=1, col=2)
    fig.update_layout(template="plotly_white", height=400, margin=dict(l=60, r=20, t=90, b=40))
    fig.update_xaxes(title_text="t", row=1, col=1)
    fig.update_xaxes(title_text="N_T", row=1, col=2)
    return fig


def set_poisson(fig: go.Figure, events: list, T: float, rate: float, *, n_show: int = 8) -> None:
    """Replace the paths and the law of a :func:`poisson_figure` in place."""
    xs, ys, ex, ey = _counting_xy(events, T, n_show)
    counts = np.array([len(e) for e in events])
    k, pmf = _poisson_pmf(rate * T, int(max(counts.max(initial=0), rate * T * 2 + 10)))
    with fig.batch_update():
        fig.data[0].x, fig.data[0].y = xs, ys
        fig.data[1].x, fig.data[1].y = ex, ey
        fig.data[2].x = counts
        fig.data[3].x, fig.data[3].y = k, pmf


# --- sweeps: accuracy against a hyper-parameter, one curve per step factor -------------------------

# Paper 003 draws h = 1 in red and h = 0.1 in blue; other step factors get neutral colours.
H_COLORS = {1.0: "#d62728", 0.1: "#1f77b4"}
_OTHER_COLORS = ("#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")


def sweep_figure(summary: dict, *, x_title: str, y_title: str = "test accuracy", title: str = "",
                name: str = "h = {}", chance: float | None = None, log_x: bool = False,
                fig: go.Figure | None = None) -> go.Figure:
    """Median line with a min–max band per group, a dot for every run that trained and an ×
    for every diverged run.

    Args:
        summary: from :func:`nsde_lib.train.sweeps.summarize`.
        name: legend label, formatted with the group value.
        chance: where diverged runs are drawn (and a dotted line); default: their median.
        fig: add to this figure (e.g. one panel of a subplot grid) instead of a new one.
    """
    fig = fig if fig is not None else go.Figure()
    for i, (group, curve) in enumerate(summary.items()):
        color = H_COLORS.get(float(group), _OTHER_COLORS[i % len(_OTHER_COLORS)]) \
            if isinstance(group, (int, float)) else _OTHER_COLORS[i % len(_OTHER_COLORS)]
        label = name.format(group)
        xs = list(curve["x"])
        fig.add_scatter(x=xs + xs[::-1], y=list(curve["hi"]) + list(curve["lo"])[::-1],
                        fill="toself", fillcolor=rgba(color, 0.18), line=dict(width=0),
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
        fig.update_xaxes(**log_axis([x for curve in summary.values() for x in curve["x"]]))
    return fig


def curves_figure(curves: dict, *, x_title: str = "epoch", y_title: str = "",
                  title: str = "", percent: bool = False) -> go.Figure:
    """One line per name: the mean over runs, with a band from the lowest to the highest run.
    A name that names a model (``"ODE"``, ``"Multiplicative"``...) gets that model's colour.

    Args:
        curves: ``{name: values}`` with ``values`` of shape ``(n_runs, n_points)`` (or 1-D for
            one run); the x axis is 1, 2, ..., ``n_points``.
        percent: multiply by 100 (accuracies).
    """
    fig = go.Figure()
    for i, (name, values) in enumerate(curves.items()):
        v = np.atleast_2d(np.asarray(values, dtype=float)) * (100 if percent else 1)
        x = np.arange(1, v.shape[1] + 1)
        color = _series_color(name, i)
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
