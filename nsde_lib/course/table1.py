"""Paper 000's Table 1 — test accuracy without / with test-time noise (TTN) — and ours, laid out
the same way: one row per data set, the noise types as columns, "w/o TTN" then "w/ TTN".

With TTN a noisy model keeps its noise at test time and averages the softmax of K passes
(:func:`nsde_lib.ensemble_predict`); a Neural ODE has no noise to keep ("–").
"""
from __future__ import annotations

import numpy as np

__all__ = ["PAPER_TABLE1", "COLUMNS", "COLUMN_OF", "mean_spread", "table1_rows",
           "table1_figure", "table1_text"]

COLUMNS = ("ODE", "Additive", "Multiplicative", "Dropout")
COLUMN_OF = {"none": "ODE", "additive": "Additive", "multiplicative": "Multiplicative",
             "dropout": "Dropout", "jump-dropout": "Jump-dropout"}

# Table 1 of paper 000 (Accuracy@1, %); None where the paper prints "–".
PAPER_TABLE1 = {
    "CIFAR-10": {"w/o TTN": (87.95, 88.69, 89.06, 88.23), "w/ TTN": (None, 88.73, 89.77, 88.44)},
    "CIFAR-10.1": {"w/o TTN": (70.00, 70.80, 71.50, 71.85), "w/ TTN": (None, 71.70, 72.05, 73.60)},
    "STL-10": {"w/o TTN": (58.03, 61.23, 60.54, 61.26), "w/ TTN": (None, 62.11, 62.58, 62.13)},
    "Tiny-ImageNet": {"w/o TTN": (45.19, 45.25, 46.94, 47.04),
                      "w/ TTN": (None, 45.39, 46.65, 47.81)},
}


def mean_spread(values) -> str:
    """``"mean ± std"`` of accuracies in [0, 1], printed in % (std over seeds, ddof = 1).

    One value prints without a spread; ``None`` or an empty list prints "–".
    """
    if values is None or len(values) == 0 or any(v is None for v in values):
        return "–"
    pct = 100 * np.asarray(values, dtype=float)
    if len(pct) == 1:
        return f"{pct[0]:.2f}"
    return f"{pct.mean():.2f} ± {pct.std(ddof=1):.2f}"


def table1_rows(results: dict, label: str, *, paper: tuple[str, ...] = ("CIFAR-10",)):
    """Header and rows of the table: ours (``label``) and the paper's rows named in ``paper``.

    Args:
        results: ``{noise: {"no_ttn": [acc per seed], "ttn": [acc per seed] or None}}`` with
            noise names of :data:`COLUMN_OF` (accuracies in [0, 1]).
        label: our row's name, e.g. ``"MNIST-5k (ours, 3 seeds)"``.
        paper: which of the paper's rows to show below ours.

    Returns:
        ``(header, rows)``: ``header`` lists the column names, each row is a list of strings.
        Columns: the paper's four, then any extra noise of ours (jump-dropout), twice.
    """
    extra = [COLUMN_OF[n] for n in results if COLUMN_OF[n] not in COLUMNS]
    names = list(COLUMNS) + extra
    noise_of = {v: k for k, v in COLUMN_OF.items()}
    header = (["data"] + [f"w/o TTN: {c}" for c in names] + [f"w/ TTN: {c}" for c in names])
    ours = [label]
    for key in ("no_ttn", "ttn"):
        for c in names:
            entry = results.get(noise_of[c])
            value = None if entry is None else entry.get(key)
            ours.append(mean_spread(value) if value is not None else "–")
    rows = [ours]
    for name in paper:
        row = [f"{name} (paper 000)"]
        for key in ("w/o TTN", "w/ TTN"):
            row += ["–" if v is None else f"{v:.2f}" for v in PAPER_TABLE1[name][key]]
            row += ["n/a"] * len(extra)
        rows.append(row)
    return header, rows


def table1_text(results: dict, label: str, **kwargs) -> str:
    """The table as fixed-width text, transposed to fit a terminal: one line per column of
    Table 1 ("w/o TTN: ODE", ...), one column per data set (ours, then the paper's)."""
    header, rows = table1_rows(results, label, **kwargs)
    table = [list(col) for col in zip(header, *rows)]  # transpose
    width = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, width)).rstrip() for r in table)


def table1_figure(results: dict, label: str, **kwargs):
    """The table as a plotly ``go.Figure`` (a ``go.Table``), columns grouped w/o / w/ TTN."""
    import plotly.graph_objects as go

    header, rows = table1_rows(results, label, **kwargs)
    columns = [list(col) for col in zip(*rows)]
    n = (len(header) - 1) // 2
    fill = ["white"] + ["#eef3fb"] * n + ["#fbf1e6"] * n
    fig = go.Figure(go.Table(
        header=dict(values=[h.replace(": ", "<br>") for h in header], align="center",
                    fill_color=["#dddddd"] + ["#c9d8f0"] * n + ["#f3d9bb"] * n),
        cells=dict(values=columns, align="center", fill_color=fill, height=28)))
    fig.update_layout(title="Table 1 of paper 000, laid out with our numbers (accuracy, %)",
                      height=130 + 40 * len(rows), margin=dict(l=10, r=10, t=50, b=10))
    return fig

