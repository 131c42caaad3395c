"""ipywidgets sliders that drive plotly FigureWidgets in place."""
from __future__ import annotations

from typing import Callable

import ipywidgets as widgets

__all__ = ["slider", "live"]


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
