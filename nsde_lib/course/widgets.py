"""ipywidgets sliders that drive plotly FigureWidgets in place."""
from __future__ import annotations

from typing import Callable

import ipywidgets as widgets

__all__ = ["slider", "int_slider", "live", "sync_figure_state"]


def slider(description: str, value: float, low: float, high: float, step: float,
           *, readout_format: str = ".2f") -> widgets.FloatSlider:
    """A float slider that updates while it is dragged, labelled ``description``."""
    return widgets.FloatSlider(value=value, min=low, max=high, step=step,
                               description=description, continuous_update=True,
                               readout_format=readout_format,
                               style={"description_width": "initial"},
                               layout=widgets.Layout(width="420px"))


def live(fig, update: Callable[..., None], **controls: widgets.ValueWidget) -> widgets.VBox:
    """Call ``update(**values)`` whenever a control moves; ``update`` edits ``fig`` in place.

    The update runs inside ``fig.batch_update()`` so the front end redraws once per move.
    ``update`` runs once now, so the figure starts in step with the controls.

    Returns:
        A ``VBox`` of the controls above the figure, ready to display.
    """
    def on_change(_=None):
        values = {name: control.value for name, control in controls.items()}
        with fig.batch_update():
            update(**values)

    for control in controls.values():
        control.observe(on_change, names="value")
    on_change()
    return widgets.VBox([widgets.HBox(list(controls.values())), fig])


def int_slider(description: str, value: int, low: int, high: int, step: int = 1
               ) -> widgets.IntSlider:
    """An integer slider (a block index, a depth) that updates while it is dragged."""
    return widgets.IntSlider(value=value, min=low, max=high, step=step,
                             description=description, continuous_update=True,
                             style={"description_width": "initial"},
                             layout=widgets.Layout(width="420px"))


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
