"""ipywidgets sliders that drive plotly FigureWidgets in place, and their static export.

In a kernel, :func:`live` wires controls to a figure: a move calls ``update`` and the figure
redraws. A static page (the course site, ``make course``) has no kernel to call, so when the
environment variable ``NSDE_STATIC_WIDGETS`` is set (the site builder sets it for its kernels)
the object :func:`live` returns also precomputes the figure at a handful of positions of each
control (every combination, when there are two controls with few values) and offers them in its
display bundle under :data:`STATIC_MIME`: the figure at the controls' starting values plus one
plotly *frame* per combination, holding only the trace and layout properties that change. The
site turns them into plotly sliders a reader can drag on a ``file://`` page. Without the
variable nothing is precomputed: the live behaviour and its speed are unchanged.

In JupyterLab the same frames make a slider instant: once the figure is drawn in a page, a
:class:`FrameSwitch` joins the box, asks the kernel for the figure at *every* position of the
controls (when there are at most :data:`LIVE_MAX_STATES`) and, from then on, shows a move in the
page with ``Plotly.react``, without the round trip through the kernel. The kernel still runs
``update`` for each move, with the figure's messages to the page held back, so the figure object
stays what the reader sees. Where no page draws the figure (nbclient, nbval) there is no switch,
and a front end without its JavaScript never asks: every move goes through the kernel as before.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import pathlib
import secrets
import threading
import warnings
from typing import Callable

import anywidget
import ipywidgets as widgets
import traitlets

__all__ = ["slider", "int_slider", "live", "sync_figure_state", "FrameSwitch"]

STATIC_MIME = "application/vnd.nsde.live-states+json"
STATIC_ENV = "NSDE_STATIC_WIDGETS"
POSITIONS = 8           # positions per numeric control: "a handful" over its range
MAX_STATES = 48         # all combinations of all controls, at most
SIGNIFICANT = 4         # digits kept in precomputed numbers (a figure, not a table)
LIVE_MAX_STATES = 128   # every position of the controls, in the page, up to this many
LIVE_MAX_BYTES = 8_000_000   # ... and this much JSON; beyond either, a handful of positions
RENEW_AFTER_ASKS = 3    # a page asking this often (its answers lost) gets a fresh switch
_NICE = (1, 2, 4, 5)    # spacings of the positions, in slider steps, times powers of ten


def slider(description: str, value: float, low: float, high: float, step: float,
           *, readout_format: str = ".2f") -> widgets.FloatSlider:
    """A float slider that updates while it is dragged, labelled ``description``."""
    return widgets.FloatSlider(value=value, min=low, max=high, step=step,
                               description=description, continuous_update=True,
                               readout_format=readout_format,
                               style={"description_width": "initial"},
                               layout=widgets.Layout(width="420px"))


class FrameSwitch(anywidget.AnyWidget):
    """Shows precomputed positions of a live figure in the page, without the kernel.

    An invisible member of a :class:`LiveFigure`'s box. Its front end (``frame_switch.js``)
    gets the controls' values through ``jsdlink`` (front end only) into the traits ``c0`` to
    ``c3``. Once the figure is on the page it asks for the figure at every position of the
    controls (:meth:`compute_states`, computed on the first request and kept in
    :attr:`states`), gets them in a message of their own, not as synced state (a saved
    notebook does not carry them), and from then on draws a move itself with ``Plotly.react``.
    After it confirms it holds them, :meth:`covers` tells :func:`live` which moves the page has
    already drawn.

    Args:
        fig: the plotly ``FigureWidget`` that ``update`` edits in place.
        update: ``update(**values)`` draws the figure at the controls' values.
        controls: name → control (a slider, selection or checkbox), at most four.
        lock: held while the figure is edited (a :class:`LiveFigure`'s), or a new one.
    """

    MAX_CONTROLS = 4
    _esm = pathlib.Path(__file__).with_name("frame_switch.js")
    c0 = traitlets.Any(None).tag(sync=True)
    c1 = traitlets.Any(None).tag(sync=True)
    c2 = traitlets.Any(None).tag(sync=True)
    c3 = traitlets.Any(None).tag(sync=True)

    def __init__(self, fig, update: Callable[..., None], controls: dict, *,
                 lock: threading.RLock | None = None, **kwargs):
        if len(controls) > self.MAX_CONTROLS:
            raise ValueError(f"controls: at most {self.MAX_CONTROLS} controls can be switched "
                             f"in the page, got {len(controls)}")
        super().__init__(**kwargs)
        self._live = (fig, update, dict(controls))
        self.states: dict | None = None   # what the page was sent, once it asked
        self._held = None                 # the token of the states the page confirmed it holds
        self.renew: Callable[[], None] | None = None   # replaces this switch (LiveFigure's)
        # the lock every edit of fig takes (LiveFigure.lock): else a move handled on another
        # thread lands in the middle of the positions being tried out of sight
        self.lock = lock if lock is not None else threading.RLock()
        self.links = [widgets.jsdlink((control, _synced_trait(control)), (self, f"c{k}"))
                      for k, control in enumerate(controls.values())]
        self.on_msg(self._message)

    def _message(self, _widget, content: dict, _buffers) -> None:
        if content.get("want"):   # asked again when an answer did not arrive: send it again
            if (self.states is not None and self.renew is not None
                    and content.get("asked", 1) >= RENEW_AFTER_ASKS):
                self.renew()      # answers do not reach this model: a fresh one takes over
                return
            if self.states is None:
                self.states = self.compute_states()
            self.send({"states": self.states})
        elif "have" in content and self.states is not None:
            self._held = content["have"] if content["have"] == self.states.get("token") else None

    def compute_states(self) -> dict:
        """The figure at every position of the controls, as the page needs it (no messages).

        Every step of every control when the combinations are at most
        :data:`LIVE_MAX_STATES` and the frames at most :data:`LIVE_MAX_BYTES` of JSON,
        otherwise the handful a static page gets; no frames (and the reason, ``why``) when the
        figure cannot be precomputed.
        Each control says how the page finds its position: ``by_index`` (a selection's index)
        or by value within ``tolerance`` (a quarter of a slider's step).
        """
        fig, update, controls = self._live
        try:
            with self.lock:
                states = static_states(fig, update, controls, max_states=LIVE_MAX_STATES,
                                       positions=10 ** 6)
                if len(json.dumps(states["frames"])) > LIVE_MAX_BYTES:
                    states = static_states(fig, update, controls, max_states=LIVE_MAX_STATES)
        except ValueError as err:
            warnings.warn(f"slider moves of this figure go through the kernel: {err}",
                          stacklevel=2)
            return {"frames": [], "why": str(err)}
        for described, control in zip(states["controls"], controls.values()):
            described["by_index"] = _synced_trait(control) == "index"
            described["tolerance"] = float(getattr(control, "step", 1) or 1) / 4
        del states["figure"]   # the page has it already
        return {**states, "token": secrets.token_hex(8)}

    def covers(self) -> bool:
        """True when the page holds the figure at the controls' current values and drew it."""
        if self.states is None or self._held is None or self._held != self.states.get("token"):
            return False
        for described, control in zip(self.states["controls"], self._live[2].values()):
            if described["by_index"]:
                continue   # every option of a selection is precomputed
            if not any(abs(v - control.value) <= described["tolerance"]
                       for v in described["values"]):
                return False
        return True


def _synced_trait(control) -> str:
    """The trait that carries a control's value to the page: a selection syncs its index."""
    return "index" if hasattr(control, "_options_values") else "value"


@contextlib.contextmanager
def quiet(fig):
    """Edits to ``fig`` inside stay in the kernel: a FigureWidget sends none of them to the page.

    For edits the page has already drawn itself, and for trying positions out of sight.
    """
    names = [name for name in dir(type(fig)) if name.startswith("_send_") and name.endswith("_msg")]
    for name in names:
        setattr(fig, name, _ignore)
    try:
        yield fig
    finally:
        for name in names:
            vars(fig).pop(name, None)


def _ignore(*_args, **_kwargs) -> None:
    return None


class LiveFigure(widgets.VBox):
    """What :func:`live` returns: the controls above the figure (a ``VBox``), joined by an
    invisible :class:`FrameSwitch` once the figure is drawn in a page (:meth:`attach_switch`).

    Displayed while ``NSDE_STATIC_WIDGETS`` is set, its bundle also carries the precomputed
    states (:func:`static_states`) under :data:`STATIC_MIME`; they are computed once, on the
    first such display, then the figure is put back at the controls' current values.
    """

    def __init__(self, fig, update: Callable[..., None], controls: dict, **kwargs):
        super().__init__([widgets.HBox(list(controls.values())), fig], **kwargs)
        self._live = (fig, update, dict(controls))
        self._static = None
        self.switch: FrameSwitch | None = None
        # ipykernel may handle the page's messages and a control's move on different threads
        # (JupyterLab sends widget messages on a subshell): one lock for every edit of fig
        self.lock = threading.RLock()
        if hasattr(fig, "observe"):   # a FigureWidget: the page counts the views it made
            fig.observe(self._figure_shown, names="_view_count")

    def _figure_shown(self, change) -> None:
        if change["new"] and self.switch is None:
            self.attach_switch()

    def attach_switch(self) -> FrameSwitch:
        """Add the :class:`FrameSwitch` to the box (once), and return it.

        Called when the page reports its first view of the figure (plotly FigureWidgets count
        their views, ipywidgets' ``_view_count``): the figure's own module is loading or loaded
        by then, so the switch's module starts quickly. A switch created with the figure met
        plotly.js's 5 MB loading on a busy page, and anywidget drops every message to a model
        whose module took over 2 s to start; should that still happen, the page keeps asking
        and :meth:`renew_switch` replaces it.
        """
        with self.lock:
            if self.switch is None:
                self.switch = self._new_switch()
                self.children = (*self.children, self.switch)
        return self.switch

    def renew_switch(self) -> FrameSwitch:
        """Replace the switch by a fresh one that keeps its states (when the page keeps asking
        for frames it was sent: its model may have failed to start, see :meth:`attach_switch`).
        """
        with self.lock:
            old, self.switch = self.switch, self._new_switch()
            if old is not None:
                self.switch.states = old.states
            self.children = (*(c for c in self.children if c is not old), self.switch)
            if old is not None:
                old.close()
        return self.switch

    def _new_switch(self) -> FrameSwitch:
        fig, update, controls = self._live
        switch = FrameSwitch(fig, update, controls, lock=self.lock)
        switch.renew = self.renew_switch
        return switch

    def covered(self) -> bool:
        """True when the page drew the controls' current position itself."""
        return self.switch is not None and self.switch.covers()

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None and static_export_requested():
            if self._static is None:
                fig, update, controls = self._live
                try:
                    with self.lock:
                        self._static = static_states(fig, update, controls)
                except Exception as err:  # the live figure must still show
                    warnings.warn(f"no static slider states for this figure: "
                                  f"{type(err).__name__}: {err}", stacklevel=2)
                    self._static = {}
            if self._static:
                bundle[STATIC_MIME] = self._static
        return bundle


def static_export_requested() -> bool:
    """True when ``NSDE_STATIC_WIDGETS`` asks :func:`live` figures for their static states."""
    return os.environ.get(STATIC_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def live(fig, update: Callable[..., None], **controls: widgets.ValueWidget) -> LiveFigure:
    """Call ``update(**values)`` whenever a control moves; ``update`` edits ``fig`` in place.

    The update runs inside ``fig.batch_update()`` so the front end redraws once per move.
    ``update`` runs once now, so the figure starts in step with the controls.

    Returns:
        A :class:`LiveFigure` (a ``VBox`` of the controls above the figure), ready to display.
    """
    box = LiveFigure(fig, update, controls)

    def on_change(_=None):
        values = {name: control.value for name, control in controls.items()}
        # the page drew a precomputed position itself: the kernel only catches up, quietly
        with box.lock, quiet(fig) if box.covered() else contextlib.nullcontext():
            with fig.batch_update():
                update(**values)

    for control in controls.values():
        control.observe(on_change, names="value")
    on_change()
    return box


def int_slider(description: str, value: int, low: int, high: int, step: int = 1
               ) -> widgets.IntSlider:
    """An integer slider (a block index, a depth) that updates while it is dragged."""
    return widgets.IntSlider(value=value, min=low, max=high, step=step,
                             description=description, continuous_update=True,
                             style={"description_width": "initial"},
                             layout=widgets.Layout(width="420px"))


# --- static export --------------------------------------------------------------------------------

def control_positions(control, positions: int = POSITIONS) -> tuple[list, list[str]]:
    """The values a static page offers for ``control``, and their labels.

    A numeric slider gets at most about ``positions`` values on a round grid of its steps, plus
    its two ends and its current value; a selection (dropdown, selection slider, radio buttons)
    all its options; a checkbox both states; anything else only its current value.

    Returns:
        ``(values, labels)``, in the control's order, the current value among them.
    """
    if hasattr(control, "_options_values"):
        return list(control._options_values), [str(label) for label in control._options_labels]
    if isinstance(control, (widgets.Checkbox, widgets.ToggleButton)):
        return [False, True], ["off", "on"]
    if not all(hasattr(control, name) for name in ("min", "max", "step", "value")):
        return [control.value], [str(control.value)]
    lo, hi, step, value = control.min, control.max, control.step, control.value
    integer = isinstance(control, widgets.IntSlider)
    count = max(0, int(round((hi - lo) / step)))
    grid = [lo + k * step for k in range(count + 1)]
    if len(grid) > max(positions, 12 if integer else 0):   # a dozen integers: all of them
        spacing = next(m * 10 ** e * step for e in range(12) for m in _NICE
                       if count / (m * 10 ** e) <= positions - 1)
        aligned = [v for v in grid if abs(v / spacing - round(v / spacing)) < 1e-6]
        if len(aligned) < 2:  # a range that is not on the round grid: every k-th step instead
            k = max(1, int(round(spacing / step)))
            aligned = grid[::k]
        grid = aligned + [lo, hi]
    grid.append(value)
    values = sorted({(int(round(v)) if integer else round(float(v), 12)) for v in grid})
    fmt = getattr(control, "readout_format", "d" if integer else ".3g")
    return values, [_label(v, fmt) for v in values]


def _label(value, fmt: str) -> str:
    try:
        return format(int(round(value)) if fmt.endswith("d") else value, fmt)
    except (TypeError, ValueError):
        return f"{value:g}"


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


def _snapshot(fig) -> dict:
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
        ``{"version": 1, "controls": [{"name", "description", "values", "labels",
        "active"}], "figure": {"data", "layout"}, "frames": [{"name", "data", "traces",
        "layout"}]}``: the figure at the current values, and one plotly frame per combination
        (named by the positions' indices joined by ``-``, the first control's first) with only
        the trace and layout properties that differ somewhere.

    Raises:
        ValueError: too many combinations, or an update that adds or removes traces.
    """
    names = list(controls)
    grids = _grids(controls, max_states, positions)
    current = {name: control.value for name, control in controls.items()}
    snapshots = {}
    with quiet(fig):   # positions tried out of sight: the page keeps showing the current one
        try:
            for index in itertools.product(*(range(len(values)) for values, _ in grids)):
                values = {name: grids[k][0][i] for k, (name, i) in enumerate(zip(names, index))}
                with fig.batch_update():
                    update(**values)
                snapshots[index] = _snapshot(fig)
        finally:
            with fig.batch_update():
                update(**current)
    base = _snapshot(fig)
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
    described = [{"name": name, "description": getattr(controls[name], "description", "") or name,
                  "values": _compact(values), "labels": labels,
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


def sync_figure_state() -> int:
    """Copy every live plotly ``FigureWidget``'s current figure into its synced widget state.

    A FigureWidget sends later edits (``batch_update``, restyle, relayout) to the page as
    one-off messages; its stored state keeps the figure as it was when first displayed. A saved
    notebook or an HTML export therefore shows the first figure, not the last one. This does
    what plotly itself does on display, for every FigureWidget in the kernel, so the state
    saved next (e.g. by ``make course``) is the figure the reader last saw.

    Returns:
        How many figures were synced.
    """
    import copy

    from ipywidgets.widgets import widget as widget_module
    from plotly.basewidget import BaseFigureWidget

    instances = getattr(widget_module, "_instances", None) or widgets.Widget.widgets
    figures = [w for w in list(instances.values()) if isinstance(w, BaseFigureWidget)]
    for fig in figures:
        fig._widget_layout = copy.deepcopy(fig._layout_obj._props)
        fig._widget_data = copy.deepcopy(fig._data)
    return len(figures)
