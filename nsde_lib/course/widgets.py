"""Sliders that drive plotly figures: one widget owns the figure, its controls and its frames.

:func:`live` returns a :class:`LiveFigure`, a single anywidget whose page half
(``live_figure.js``) draws the figure with plotly.js and the controls as plain HTML inputs. The
kernel keeps the plotly figure object the chapter built and the ipywidgets controls it made
(they describe the controls: range, step, options, starting value); ``update(**values)`` edits
the figure in place, as it always did.

Why one widget: a slider move through the kernel costs a round trip before plotly starts to
draw. Once the figure is on a page, the page asks the kernel for the figure at every position
of the controls (up to :data:`LIVE_MAX_STATES`; a handful per control beyond that) and from then
on draws a precomputed move itself with ``Plotly.react``; the kernel follows (``update`` runs
for every move, so the figure object in Python is what the reader sees). A position that was not
precomputed goes through the kernel, which sends the figure back. Everything travels as the
widget's own synced traits and messages, through the documented APIs of anywidget, ipywidgets
and plotly: no hook into another widget's internals.

A page without a kernel (the course site, the slides) runs the same page code over the states
:func:`static_states` precomputes when ``NSDE_STATIC_WIDGETS`` is set (the site builder sets it
for its kernels): the display bundle then also carries them under :data:`STATIC_MIME`, and
:func:`page_state` turns them into the widget's state.
"""
from __future__ import annotations

import itertools
import json
import math
import os
import pathlib
import threading
import time
import warnings
import weakref
from typing import Callable

import anywidget
import ipywidgets as widgets
import traitlets

__all__ = ["slider", "int_slider", "live", "LiveFigure", "sync_figure_state", "page_state"]

STATIC_MIME = "application/vnd.nsde.live-states+json"
STATIC_ENV = "NSDE_STATIC_WIDGETS"
POSITIONS = 8           # positions per numeric control: "a handful" over its range
MAX_STATES = 48         # all combinations of all controls, at most (static pages)
SIGNIFICANT = 4         # digits kept in numbers sent to the page (a figure, not a table)
LIVE_MAX_STATES = 128   # every position of the controls, in the page, up to this many
LIVE_MAX_BYTES = 8_000_000   # ... and this much JSON; beyond either, a handful of positions
MAX_CONTROLS = 4        # controls of one figure (combinations grow as a product)
PAGE_JS = pathlib.Path(__file__).with_name("live_figure.js")
RESEND_AFTER_S = 10.0   # a page asking for plotly.js again within this gets no second copy
_NICE = (1, 2, 4, 5)    # spacings of the positions, in slider steps, times powers of ten


def slider(description: str, value: float, low: float, high: float, step: float,
           *, readout_format: str = ".2f") -> widgets.FloatSlider:
    """A float slider labelled ``description``, for :func:`live`."""
    return widgets.FloatSlider(value=value, min=low, max=high, step=step,
                               description=description, continuous_update=True,
                               readout_format=readout_format,
                               style={"description_width": "initial"},
                               layout=widgets.Layout(width="420px"))


def int_slider(description: str, value: int, low: int, high: int, step: int = 1
               ) -> widgets.IntSlider:
    """An integer slider (a block index, a depth), for :func:`live`."""
    return widgets.IntSlider(value=value, min=low, max=high, step=step,
                             description=description, continuous_update=True,
                             style={"description_width": "initial"},
                             layout=widgets.Layout(width="420px"))


# --- what a control offers -----------------------------------------------------------------------

def _is_selection(control) -> bool:
    return hasattr(control, "options") and hasattr(control, "index")


def _is_toggle(control) -> bool:
    return isinstance(control, (widgets.Checkbox, widgets.ToggleButton)) or (
        isinstance(getattr(control, "value", None), bool) and not _is_selection(control))


def _options(control) -> list[tuple[str, object]]:
    """A selection's ``(label, value)`` pairs, as ipywidgets reads its ``options``: a pair
    ``(str, value)`` as it is, anything else as ``(str(value), value)``."""
    options = control.options
    items = options.items() if isinstance(options, dict) else options
    return [(item[0], item[1]) if isinstance(item, (tuple, list)) and len(item) == 2
            and isinstance(item[0], str) else (str(item), item) for item in items]


def _label(value, fmt: str) -> str:
    try:
        return format(int(round(value)) if fmt.endswith("d") else value, fmt)
    except (TypeError, ValueError):
        return f"{value:g}"


def _steps(control) -> tuple[list, list[str]]:
    """Every value a control can take, in order, and its label: every step of a numeric slider
    (``min + k·step``), every option of a selection, both states of a toggle."""
    if _is_selection(control):
        pairs = _options(control)
        return [v for _, v in pairs], [label for label, _ in pairs]
    if _is_toggle(control):
        return [False, True], ["off", "on"]
    if not all(hasattr(control, name) for name in ("min", "max", "step", "value")):
        return [control.value], [str(control.value)]
    lo, hi, step = control.min, control.max, control.step
    integer = isinstance(control, widgets.IntSlider)
    count = max(0, int(round((hi - lo) / step)))
    values = [int(round(lo + k * step)) if integer else round(float(lo + k * step), 12)
              for k in range(count + 1)]
    fmt = getattr(control, "readout_format", "d" if integer else ".3g")
    return values, [_label(v, fmt) for v in values]


def _step_index(control, values: list) -> int:
    """Index of the control's current value among its :func:`_steps` (the nearest number)."""
    if _is_selection(control):
        return int(control.index or 0)
    return _position_of(control.value, values)


def control_positions(control, positions: int = POSITIONS) -> tuple[list, list[str]]:
    """The values a static page offers for ``control``, and their labels.

    A numeric slider gets at most about ``positions`` values on a round grid of its steps, plus
    its two ends and its current value; a selection (dropdown, selection slider, radio buttons)
    all its options; a checkbox both states; anything else only its current value.

    Returns:
        ``(values, labels)``, in the control's order, the current value among them.
    """
    values, labels = _steps(control)
    if _is_selection(control) or _is_toggle(control) or len(values) < 2:
        return values, labels
    integer = isinstance(control, widgets.IntSlider)
    lo, hi, step, value = control.min, control.max, control.step, control.value
    count = len(values) - 1
    grid = list(values)
    if len(grid) > max(positions, 12 if integer else 0):   # a dozen integers: all of them
        spacing = next(m * 10 ** e * step for e in range(12) for m in _NICE
                       if count / (m * 10 ** e) <= positions - 1)
        aligned = [v for v in grid if abs(v / spacing - round(v / spacing)) < 1e-6]
        if len(aligned) < 2:  # a range that is not on the round grid: every k-th step instead
            k = max(1, int(round(spacing / step)))
            aligned = grid[::k]
        grid = aligned + [lo, hi]
    grid.append(value)
    chosen = sorted({(int(round(v)) if integer else round(float(v), 12)) for v in grid})
    fmt = getattr(control, "readout_format", "d" if integer else ".3g")
    return chosen, [_label(v, fmt) for v in chosen]


def _kind(control) -> str:
    """How the page draws a control: ``slider``, ``select`` or ``toggle``."""
    if isinstance(control, widgets.SelectionSlider):   # ordered options: a slider in the page
        return "slider"
    if _is_selection(control):
        return "select"
    return "toggle" if _is_toggle(control) else "slider"


def _describe(name: str, control, values: list, labels: list[str]) -> dict:
    """What the page needs to draw a control: its kind, label, the values it offers and their
    labels."""
    return {"name": name, "kind": _kind(control),
            "description": getattr(control, "description", "") or name,
            "values": _compact(values), "labels": labels}


# --- the widget ----------------------------------------------------------------------------------

class LiveFigure(anywidget.AnyWidget):
    """A plotly figure and its controls, drawn in the page; what :func:`live` returns.

    Synced with the page (``live_figure.js``):

    * ``controls``: each control's kind (``slider`` for a numeric or selection slider,
      ``select`` for another selection, ``toggle``), description, every value it can take and
      their labels;
    * ``index``: the position of each control (an index into its values); the page sets it
      when the reader moves a control, the kernel when code does;
    * ``figure``: the figure (``{"data", "layout"}``), as the kernel last drew it for the page;
    * ``frames``: empty until the page asks; then the figure at every position of the controls
      (:meth:`compute_frames`), which the page draws itself.

    In the kernel the ipywidgets controls passed to :func:`live` stay the way to read and set a
    position (``slider.value = 2.0`` moves the page's control too); ``fig`` is edited in place.

    Args:
        fig: the plotly figure (``go.Figure``; a ``go.FigureWidget`` works too) ``update`` edits.
        update: ``update(**values)`` draws the figure at the controls' values.
        controls: name → ipywidgets control (slider, selection or checkbox), at most
            :data:`MAX_CONTROLS`.
    """

    _esm = PAGE_JS
    controls = traitlets.List().tag(sync=True)
    index = traitlets.Dict().tag(sync=True)
    figure = traitlets.Dict().tag(sync=True)
    frames = traitlets.Dict().tag(sync=True)

    _every = weakref.WeakSet()   # every LiveFigure alive (sync_figure_state)

    def __init__(self, fig, update: Callable[..., None], controls: dict, **kwargs):
        if not controls:
            raise ValueError("controls: give at least one control, e.g. a=nl.slider(...)")
        if len(controls) > MAX_CONTROLS:
            raise ValueError(f"controls: at most {MAX_CONTROLS} controls per figure, "
                             f"got {len(controls)}")
        for name, control in controls.items():
            if not hasattr(control, "value") or not hasattr(control, "observe"):
                raise TypeError(f"controls: {name!r} must be an ipywidgets control (nl.slider, "
                                f"nl.int_slider, a Dropdown, a Checkbox...), got "
                                f"{type(control).__name__}")
        self.fig, self.update, self.inputs = fig, update, dict(controls)
        self._steps = {name: _steps(control)[0] for name, control in self.inputs.items()}
        self._static = None
        # ipykernel may handle the page's messages and a control's move on different threads
        # (JupyterLab sends widget messages on a subshell): one lock for every edit of fig
        self.lock = threading.RLock()
        self._from_page = False
        super().__init__(controls=[_describe(n, c, *_steps(c)) for n, c in self.inputs.items()],
                         index=self._positions(), **kwargs)
        LiveFigure._every.add(self)
        self.on_msg(self._message)
        for control in self.inputs.values():
            control.observe(self._control_moved, names="value")
        self.draw()

    # the kernel's side of a move ---------------------------------------------------------------

    def _positions(self) -> dict:
        return {name: _step_index(control, self._steps[name])
                for name, control in self.inputs.items()}

    def values(self) -> dict:
        """The controls' current values, as ``update`` gets them."""
        return {name: control.value for name, control in self.inputs.items()}

    def draw(self) -> None:
        """Run ``update`` at the controls' values; send the figure to the page unless the page
        holds that position precomputed (it drew it already)."""
        with self.lock:
            with self.fig.batch_update():
                self.update(**self.values())
            at = self._positions()
            self.index = at
            if not self.covers(at):
                self.figure = {**snapshot(self.fig), "at": at}

    def _control_moved(self, _change) -> None:
        if not self._from_page:   # a move the page made draws once, in _page_moved
            self.draw()

    @traitlets.observe("index")
    def _page_moved(self, change) -> None:
        """The reader moved a control in the page: move the kernel's control, then draw."""
        if self._from_page or change["new"] == self._positions():
            return
        with self.lock:
            self._from_page = True
            try:
                for name, i in change["new"].items():
                    control, steps = self.inputs.get(name), self._steps.get(name, [])
                    if control is None or not isinstance(i, int) or not 0 <= i < len(steps):
                        continue   # not a position this figure has: ignore it
                    if _is_selection(control):
                        control.index = i
                    else:
                        control.value = steps[i]
            finally:
                self._from_page = False
            self.draw()

    def covers(self, at: dict | None = None) -> bool:
        """True when the frames the page was sent hold the figure at position ``at`` (the
        controls' current one by default)."""
        frames = self.frames
        if not frames.get("frames"):
            return False
        at = self._positions() if at is None else at
        return all(at[c["name"]] in c["positions"] for c in frames["controls"])

    # the page asking ---------------------------------------------------------------------------

    def _message(self, _widget, content: dict, _buffers) -> None:
        want = content.get("want") if isinstance(content, dict) else None
        if want == "frames" and not self.frames:
            self.frames = self.compute_frames()
        elif want == "plotly":
            # A page asks again while no answer came; a kernel that was busy finds all its
            # requests queued at once: one copy (4-5 MB) per page, unless the last is old
            page, now = str(content.get("page", "")), time.monotonic()
            if now - _PLOTLY_SENT.get(page, -math.inf) > RESEND_AFTER_S:
                _PLOTLY_SENT[page] = now
                self.send({"plotly": True}, [plotly_js().encode()])

    def compute_frames(self) -> dict:
        """The figure at every position of the controls, as the page needs it.

        Every step of every control when the combinations are at most
        :data:`LIVE_MAX_STATES` and the frames at most :data:`LIVE_MAX_BYTES` of JSON,
        otherwise the handful a static page gets; no frames (and the reason, ``why``) when the
        figure cannot be precomputed. Each control lists the ``positions`` (indices into its
        values) the frames cover, in the order frame names count them.
        """
        try:
            with self.lock:
                states = static_states(self.fig, self.update, self.inputs,
                                       max_states=LIVE_MAX_STATES, positions=10 ** 6)
                if len(json.dumps(states["frames"])) > LIVE_MAX_BYTES:
                    states = static_states(self.fig, self.update, self.inputs,
                                           max_states=LIVE_MAX_STATES)
        except ValueError as err:
            warnings.warn(f"slider moves of this figure go through the kernel: {err}",
                          stacklevel=2)
            return {"frames": [], "controls": [], "why": str(err)}
        controls = [{"name": c["name"],
                     "positions": [_position_of(v, self._steps[c["name"]]) for v in c["values"]]}
                    for c in states["controls"]]
        return {"frames": states["frames"], "controls": controls}

    # pages without a kernel --------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None and static_export_requested():
            data = bundle[0] if isinstance(bundle, tuple) else bundle   # (data, metadata)
            if self._static is None:
                try:
                    with self.lock:
                        self._static = static_states(self.fig, self.update, self.inputs)
                except Exception as err:  # the live figure must still show
                    warnings.warn(f"no static slider states for this figure: "
                                  f"{type(err).__name__}: {err}", stacklevel=2)
                    self._static = {}
            if self._static:
                data[STATIC_MIME] = self._static
        return bundle


def static_export_requested() -> bool:
    """True when ``NSDE_STATIC_WIDGETS`` asks :func:`live` figures for their static states."""
    return os.environ.get(STATIC_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def live(fig, update: Callable[..., None], **controls) -> LiveFigure:
    """Draw ``fig`` with its controls; ``update(**values)`` edits ``fig`` in place on each move.

    ``update`` runs once now, so the figure starts in step with the controls, and again on
    every move, from the page or from code (``slider.value = 2.0``), inside
    ``fig.batch_update()``.

    Returns:
        A :class:`LiveFigure`, ready to display.

    Raises:
        ValueError: no control, or more than :data:`MAX_CONTROLS`.
        TypeError: a control that is not an ipywidgets control.
    """
    return LiveFigure(fig, update, controls)


_PLOTLY_JS: str | None = None
_PLOTLY_SENT: dict[str, float] = {}   # page → when plotly.js was last sent to it


def plotly_js() -> str:
    """The plotly.js that ships with the installed plotly package (``plotly.offline``), read
    once: a page that has no ``window.Plotly`` asks for it, once per page."""
    global _PLOTLY_JS
    if _PLOTLY_JS is None:
        from plotly.offline import get_plotlyjs

        _PLOTLY_JS = get_plotlyjs()
    return _PLOTLY_JS


# --- precomputed states ---------------------------------------------------------------------------

def _grids(controls: dict, max_states: int, positions: int = POSITIONS):
    """Positions per control with at most ``max_states`` combinations, or ValueError.

    ``positions`` per numeric control first; when that is too many, a handful
    (:data:`POSITIONS`), then fewer, down to three.
    """
    tries = [positions] + [n for n in range(min(positions - 1, POSITIONS), 2, -1)]
    for n in tries:
        grids = [control_positions(c, n) for c in controls.values()]
        total = math.prod(len(values) for values, _ in grids)
        if total <= max_states:
            return grids
    raise ValueError(f"{total} combinations of {len(controls)} controls exceed "
                     f"max_states={max_states}")


def _compact(obj):
    """JSON-ready copy of a plotly structure: arrays as lists of numbers with
    :data:`SIGNIFICANT` significant digits, NaN and infinities as ``None`` (a gap)."""
    import numpy as np

    if isinstance(obj, dict) and "bdata" in obj and "dtype" in obj:   # plotly's typed array
        import base64

        array = np.frombuffer(base64.b64decode(obj["bdata"]), dtype=obj["dtype"])
        shape = [int(n) for n in str(obj.get("shape", len(array))).split(",")]
        return _compact(array.reshape(shape))
    if isinstance(obj, dict):
        return {k: _compact(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    if isinstance(obj, (list, tuple)):
        return [_compact(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return None if not math.isfinite(value) else float(f"{value:.{SIGNIFICANT}g}")
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def snapshot(fig) -> dict:
    """``fig`` as the page draws it: ``{"data", "layout"}``, compact JSON (:func:`_compact`)."""
    figure = fig.to_dict()
    return {"data": _compact(figure["data"]), "layout": _compact(figure["layout"])}


def static_states(fig, update: Callable[..., None], controls: dict, *,
                  max_states: int = MAX_STATES, positions: int = POSITIONS) -> dict:
    """Precompute ``fig`` at every combination of the controls' :func:`control_positions`.

    ``positions`` is how many values a numeric control offers at most (:func:`_grids` takes
    fewer when the combinations would exceed ``max_states``).

    ``update(**values)`` draws each combination (as a move of the controls would), and the
    figure is put back at the controls' current values afterwards; the controls themselves
    never move, so no observer fires.

    Returns:
        ``{"version": 1, "controls": [{"name", "description", "kind", "values", "labels",
        "active"}], "figure": {"data", "layout"}, "frames": [{"name", "data", "traces",
        "layout"}]}``: the figure at the current values, and one frame per combination
        (named by the positions' indices joined by ``-``, the first control's first) with only
        the trace and layout properties that differ somewhere.

    Raises:
        ValueError: too many combinations, or an update that adds or removes traces.
    """
    names = list(controls)
    grids = _grids(controls, max_states, positions)
    current = {name: control.value for name, control in controls.items()}
    snapshots = {}
    try:
        for index in itertools.product(*(range(len(values)) for values, _ in grids)):
            values = {name: grids[k][0][i] for k, (name, i) in enumerate(zip(names, index))}
            with fig.batch_update():
                update(**values)
            snapshots[index] = snapshot(fig)
    finally:
        with fig.batch_update():
            update(**current)
    base = snapshot(fig)
    n_traces = len(base["data"])
    if any(len(s["data"]) != n_traces for s in snapshots.values()):
        raise ValueError("update adds or removes traces; only edits in place can be precomputed")

    def differs(get) -> bool:
        first = json.dumps(get(base), sort_keys=True)
        return any(json.dumps(get(s), sort_keys=True) != first for s in snapshots.values())

    trace_keys = {i: sorted(k for k in set().union(*(s["data"][i] for s in snapshots.values()))
                            if differs(lambda s, i=i, k=k: s["data"][i].get(k)))
                  for i in range(n_traces)}
    traces = [i for i in range(n_traces) if trace_keys[i]]
    layout_keys = sorted(k for k in set().union(*(s["layout"] for s in snapshots.values()))
                         if differs(lambda s, k=k: s["layout"].get(k)))
    kinds = [trace.get("type", "scatter") for trace in base["data"]]
    frames = [{"name": "-".join(map(str, index)),
               "data": [{"type": kinds[i], **{k: s["data"][i].get(k) for k in trace_keys[i]}}
                        for i in traces],
               "traces": traces,
               "layout": {k: s["layout"].get(k) for k in layout_keys}}
              for index, s in snapshots.items()]
    described = [{**_describe(name, controls[name], values, labels),
                  "active": _position_of(current[name], values)}
                 for name, (values, labels) in zip(names, grids)]
    return {"version": 1, "controls": described, "figure": base, "frames": frames}


def _position_of(value, values: list) -> int:
    """Index of ``value`` among ``values`` (the nearest one for numbers)."""
    if value in values:
        return values.index(value)
    try:
        return min(range(len(values)), key=lambda i: abs(values[i] - value))
    except TypeError:
        return 0


def page_state(states: dict) -> dict:
    """A :class:`LiveFigure`'s synced state for a page without a kernel, from
    :func:`static_states`: each control offers exactly its precomputed positions."""
    controls = [{k: c[k] for k in ("name", "kind", "description", "values", "labels")}
                for c in states["controls"]]
    return {"controls": controls,
            "index": {c["name"]: c["active"] for c in states["controls"]},
            "figure": states["figure"],
            "frames": {"frames": states["frames"],
                       "controls": [{"name": c["name"], "positions": list(range(len(c["values"])))}
                                    for c in states["controls"]]}}


def sync_figure_state() -> int:
    """Send every live figure's current state to its page model.

    A move the page drew from its frames leaves the synced ``figure`` where the kernel last
    sent it; a saved notebook (``make course`` stores the widget state) should hold what the
    reader last saw. This sets each :class:`LiveFigure`'s ``figure`` to its figure now.

    Returns:
        How many figures were synced.
    """
    figures = list(LiveFigure._every)
    for box in figures:
        with box.lock:
            box.figure = {**snapshot(box.fig), "at": box._positions()}
    return len(figures)
