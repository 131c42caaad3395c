"""Slider redraw in the page: Plotly.react (what the live figures' page code, live_figure.js, does
on the live page and on the course site) against Plotly.animate (what the course site did before
it ran the same page code) and Plotly.update (what a move through the
kernel ends with in the page), on the same precomputed frames, in the same headless Chromium.

The figures are the course's own (``nl.paths_figure``, ``nl.flow_figure``,
``nl.noise_flow_figure``) at the sizes the chapters draw (chapter 00's 30 paths of 200 steps,
chapter 01's two panels of 125 moons on fixed axes, chapter 03's 25 + 25 trajectories and 500 end
points; and chapter 01's figure with autoranged axes, as it was, to price fixed axes),
filled with random data: what a redraw costs depends on how much is drawn, not on its values.
The frames come from ``static_states`` with every slider step, as the page gets them. Each
method shows the same sequence of frames; time per move = call → redrawn → next animation
frame painted. Every figure is on the page at once and figures and methods take turns move by
move, so a change in the machine's load hits all alike. The issue's target is a key press →
redrawn plot of ≤ 100 ms in JupyterLab (``tests/test_browser_lab.py`` measures that); this
isolates plotly's share of it.

    python benchmarks/slider_redraw.py            # needs Chromium (make chromium) and playwright
    python benchmarks/slider_redraw.py --moves 40
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))           # run from a checkout
sys.path.insert(0, str(ROOT / "tests"))  # the browser test's way of finding Chromium

import nsde_lib as nl  # noqa: E402
from nsde_lib.course.widgets import static_states  # noqa: E402

METHODS = ("react", "animate", "update")

# Show frame `name` of the figure in div `id` with `method`; resolves once redrawn and painted.
MOVE_JS = """async ([id, name, method]) => {
    const graph = document.getElementById(id);
    const frame = window.__frames[id].get(name);
    const t0 = performance.now();
    if (method === 'react') {
        const data = graph.data.map((trace) => Object.assign({}, trace));
        frame.traces.forEach((i, j) => Object.assign(data[i], frame.data[j]));
        await Plotly.react(graph, data, Object.assign({}, graph.layout, frame.layout));
    } else if (method === 'animate') {
        await Plotly.animate(graph, [name], {mode: 'immediate', frame: {duration: 0, redraw: true},
                                             transition: {duration: 0}});
    } else {
        const style = {};
        frame.data.forEach((trace, j) => {
            for (const [key, value] of Object.entries(trace)) {
                if (key === 'type') continue;
                (style[key] = style[key] || frame.data.map(() => undefined))[j] = value;
            }
        });
        await Plotly.update(graph, style, frame.layout, frame.traces);
    }
    await new Promise((resolve) => requestAnimationFrame(() => resolve()));
    return performance.now() - t0;
}"""

# Draw a figure in a new div `id` of the page, with its frames.
SHOW_JS = """async ([id, states]) => {
    const graph = document.createElement('div');
    graph.id = id;
    graph.style.width = '900px';
    document.body.appendChild(graph);
    await Plotly.newPlot(graph, states.figure.data, states.figure.layout);
    await Plotly.addFrames(graph, states.frames);
    (window.__frames = window.__frames || {})[id] = new Map(states.frames.map((f) => [f.name, f]));
}"""


def course_figures(seed: int = 0) -> dict:
    """name → (figure, update, controls): the chapters' heaviest live figures, random data."""
    g = np.random.default_rng(seed)
    figures = {}

    ts = np.linspace(0, 4, 201)                              # chapter 00: paths per σ
    paths = {s: np.exp(np.cumsum(g.normal(0, 0.14 * s + 0.01, (201, 100)), 0))
             for s in np.round(np.arange(0, 3.51, 0.1), 1)}
    fig = nl.paths_figure(ts, paths[1.0], n_show=30, yaxis="x_t (log scale)")
    fig.update_yaxes(type="log")
    figures["00 paths, 30 of 200 steps"] = (
        fig, lambda sigma, fig=fig: nl.set_paths(fig, ts, paths[round(sigma, 1)], n_show=30),
        {"sigma": nl.slider("noise σ", 1.0, 0.0, 3.5, 0.1)})

    head = torch.nn.Linear(2, 2)                             # chapter 01: moons through blocks
    labels = np.arange(125) % 2
    blocks = [g.normal(0, 1 + n / 5, (125, 2)) for n in range(11)]
    reach = np.stack(blocks)
    for axes, ranges in (("fixed axes", [(nl.extent(reach[..., 0]), nl.extent(reach[..., 1]))] * 2),
                         ("axes autorange", None)):
        fig = nl.flow_figure(["input", "after block n"], ranges=ranges)
        nl.set_flow(fig, 0, blocks[0], labels)
        figures[f"01 moons, 2 × 125 points, {axes}"] = (
            fig, lambda n, fig=fig: nl.set_flow(fig, 1, blocks[n], labels, head),
            {"n": nl.int_slider("block n", 0, 0, 10)})

    steps, n = 33, 1000                                      # chapter 03: noise on the flow
    runs = {s: np.cumsum(g.normal(0, 0.2 + s, (steps, n, 2)), 0)
            for s in np.round(np.arange(0, 2.001, 0.05), 2)}
    flow_labels, shown = np.arange(n) % 2, np.arange(50)
    fig = nl.noise_flow_figure(head)
    figures["03 noise flow, 50 paths + 500 points"] = (
        fig, lambda sigma, fig=fig: nl.set_noise_flow(fig, np.arange(steps), runs[round(sigma, 2)],
                                                      flow_labels, shown, f"σ = {sigma:.2f}",
                                                      ends=slice(None, None, 2)),
        {"sigma": nl.slider("scale σ", 0.5, 0.0, 2.0, 0.05)})
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=24, help="timed moves per method and figure")
    args, _ = parser.parse_known_args(argv)  # run_all.py passes shared flags

    try:
        from playwright.sync_api import sync_playwright
        from conftest import CHROMIUM_ARGS, find_chromium
    except ImportError as err:
        print(f"skipped: {err} (pip install -e '.[dev]')")
        return 0
    executable = find_chromium()
    if executable is None:
        print("skipped: no Chromium (make chromium, or point NSDE_CHROMIUM at one)")
        return 0
    import plotly

    plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    rows = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True,
                                             args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_content("<body></body>")
        page.add_script_tag(path=str(plotly_js))
        names = {}
        for i, (name, (fig, update, controls)) in enumerate(course_figures().items()):
            update(**{k: c.value for k, c in controls.items()})
            states = static_states(fig, update, controls, max_states=128, positions=10 ** 6)
            page.evaluate(SHOW_JS, [f"graph{i}", states])
            names[name] = [f["name"] for f in states["frames"]]
        times = {name: {m: [] for m in METHODS} for name in names}
        for k in range(args.moves):       # every figure and method in turn: the same load for all
            for i, (name, frames) in enumerate(names.items()):
                for j, method in enumerate(METHODS):
                    frame = frames[(7 * (3 * k + j) + 1) % len(frames)]   # always another frame
                    times[name][method].append(page.evaluate(MOVE_JS, [f"graph{i}", frame, method]))
        for name, by_method in times.items():
            rows.append((name, len(names[name]),
                         {m: statistics.median(t) for m, t in by_method.items()}))
        version = page.evaluate("() => Plotly.version")
        browser.close()

    print(f"\nmedian ms per move ({args.moves} moves each; call → redrawn → painted), headless "
          f"Chromium, plotly.js {version}")
    print(f"{'figure':44s} {'frames':>6s} {'react':>7s} {'animate':>8s} {'update':>7s} "
          f"{'react/animate':>14s} {'react/update':>13s}")
    for name, frames, m in rows:
        print(f"{name:44s} {frames:6d} {m['react']:7.1f} {m['animate']:8.1f} {m['update']:7.1f} "
              f"{m['react'] / m['animate']:14.2f} {m['react'] / m['update']:13.2f}")
    react = {name: m["react"] for name, _, m in rows}
    print("chapter 01, fixed axes / autoranged axes (react): "
          f"{react['01 moons, 2 × 125 points, fixed axes'] / react['01 moons, 2 × 125 points, axes autorange']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
