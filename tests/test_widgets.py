"""`nl.live`: the kernel's half of a live figure, and the static states a page without a kernel
drags. The page half (``live_figure.js``) is driven in a browser by test_browser_lab.py and
test_site.py.

The figures here are tiny, with updates whose result is known in closed form, so every
precomputed frame is checked against the formula, not against the code that made it.
"""
from __future__ import annotations

import json
import warnings

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import pytest

from nsde_lib.course import widgets as live_widgets
from nsde_lib.course.widgets import (STATIC_ENV, STATIC_MIME, LiveFigure, control_positions,
                                     int_slider, live, page_state, slider, static_states)

SHAPE = np.array([1.5, 2.5, 3.5])


def amplitude_figure():
    fig = go.Figure(go.Scatter(y=np.zeros(3)))
    calls = []

    def update(a, shift=0.0):
        calls.append((a, shift))
        fig.data[0].y = a * SHAPE + shift
        fig.layout.title.text = f"a = {a:.2f}, shift = {shift}"

    return fig, update, calls


def test_float_positions_are_a_handful_on_the_step_grid_with_ends_and_current_value():
    values, labels = control_positions(slider("noise σ", 1.3, 0.0, 3.5, 0.1))
    assert values[0] == 0.0 and values[-1] == 3.5 and 1.3 in values
    assert 4 <= len(values) <= live_widgets.POSITIONS + 2
    assert values == sorted(values)
    assert all(abs(v / 0.1 - round(v / 0.1)) < 1e-9 for v in values)   # real slider values
    assert labels[values.index(1.3)] == "1.30"                         # the readout format


def test_small_integer_ranges_and_selections_offer_every_value():
    assert control_positions(int_slider("n", 3, 0, 10))[0] == list(range(11))
    sel = widgets.SelectionSlider(options=[("1/2", 0.5), ("1/4", 0.25)], value=0.25)
    assert control_positions(sel) == ([0.5, 0.25], ["1/2", "1/4"])
    drop = widgets.Dropdown(options=[("additive σ·I", "additive"), ("mult", "multiplicative")])
    assert control_positions(drop) == (["additive", "multiplicative"], ["additive σ·I", "mult"])
    values, _ = control_positions(int_slider("block", 2, 1, 32))
    assert values[0] == 1 and values[-1] == 32 and 2 in values and len(values) <= 12


def test_one_control_every_frame_is_the_figure_at_its_value():
    fig, update, calls = amplitude_figure()
    amp = slider("amplitude", 1.0, 0.0, 5.0, 0.5)
    live(fig, update, a=amp)
    states = static_states(fig, update, {"a": amp})
    (control,) = states["controls"]
    assert control["values"][control["active"]] == 1.0
    assert len(states["frames"]) == len(control["values"])
    for frame, a in zip(states["frames"], control["values"]):
        assert frame["traces"] == [0] and frame["data"][0]["type"] == "scatter"
        np.testing.assert_allclose(frame["data"][0]["y"], a * SHAPE, rtol=1e-3)
        assert frame["layout"]["title"]["text"] == f"a = {a:.2f}, shift = 0.0"
    # the page starts where the kernel did, and the kernel's figure is back there too
    np.testing.assert_allclose(states["figure"]["data"][0]["y"], 1.0 * SHAPE)
    np.testing.assert_allclose(fig.data[0].y, 1.0 * SHAPE)
    assert amp.value == 1.0 and calls[-1] == (1.0, 0.0)
    json.dumps(states, allow_nan=False)          # strict JSON: what a display bundle carries


def test_two_controls_give_every_combination_named_by_positions():
    fig, update, _ = amplitude_figure()
    amp = slider("amplitude", 2.0, 0.0, 4.0, 1.0)
    shift = widgets.Dropdown(options=[0.0, 10.0, 20.0], value=10.0)
    live(fig, update, a=amp, shift=shift)
    states = static_states(fig, update, {"a": amp, "shift": shift})
    a_values, s_values = (c["values"] for c in states["controls"])
    assert [c["active"] for c in states["controls"]] == [a_values.index(2.0), 1]
    frames = {f["name"]: f for f in states["frames"]}
    assert len(frames) == len(a_values) * len(s_values) == 15
    for i, a in enumerate(a_values):
        for j, s in enumerate(s_values):
            np.testing.assert_allclose(frames[f"{i}-{j}"]["data"][0]["y"], a * SHAPE + s)
    assert shift.value == 10.0 and amp.value == 2.0


def test_only_what_changes_travels_in_a_frame_with_gaps_and_four_digits():
    fig = go.Figure()
    fig.add_scatter(x=[0, 1, 2], y=[0.0, 0.0, 0.0], name="moves")
    fig.add_scatter(x=[0, 1, 2], y=[5.0, 5.0, 5.0], name="fixed")

    def update(a):
        fig.data[0].y = [a / 3, np.nan, np.pi * a]

    p = slider("a", 1.0, 1.0, 2.0, 1.0)
    live(fig, update, a=p)
    frame = static_states(fig, update, {"a": p})["frames"][-1]
    assert frame["traces"] == [0] and set(frame["data"][0]) == {"type", "y"}
    assert frame["data"][0]["y"] == [0.6667, None, 6.283]
    assert frame["layout"] == {}


def test_no_static_states_without_the_variable_and_the_update_runs_once(monkeypatch):
    monkeypatch.delenv(STATIC_ENV, raising=False)
    fig, update, calls = amplitude_figure()
    box = live(fig, update, a=slider("a", 1.0, 0.0, 5.0, 0.5))
    bundle, _ = box._repr_mimebundle_()
    assert STATIC_MIME not in bundle and "application/vnd.jupyter.widget-view+json" in bundle
    assert len(calls) == 1          # live() draws once; nothing precomputed: the speed is unchanged
    assert isinstance(box, LiveFigure) and box.fig is fig


def test_with_the_variable_the_bundle_carries_the_states_computed_once(monkeypatch):
    monkeypatch.setenv(STATIC_ENV, "1")
    fig, update, calls = amplitude_figure()
    box = live(fig, update, a=slider("a", 1.0, 0.0, 5.0, 0.5))
    first = box._repr_mimebundle_()[0][STATIC_MIME]
    n_calls = len(calls)
    again = box._repr_mimebundle_()[0][STATIC_MIME]
    assert again is first and len(calls) == n_calls
    assert len(first["frames"]) == len(first["controls"][0]["values"])


def test_an_update_that_adds_traces_keeps_the_live_figure_and_warns(monkeypatch):
    monkeypatch.setenv(STATIC_ENV, "1")
    fig = go.Figure(go.Scatter(y=[0.0]))

    def update(a):
        if a > 2:
            fig.add_scatter(y=[a])

    box = live(fig, update, a=slider("a", 1.0, 0.0, 5.0, 1.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bundle, _ = box._repr_mimebundle_()
    assert STATIC_MIME not in bundle and "application/vnd.jupyter.widget-view+json" in bundle
    assert any("adds or removes traces" in str(w.message) for w in caught)


def test_too_many_combinations_is_refused_by_name():
    fig, update, _ = amplitude_figure()
    a = widgets.Dropdown(options=list(range(10)), value=0)
    b = widgets.Dropdown(options=list(range(10)), value=0)
    with pytest.raises(ValueError, match="max_states"):
        static_states(fig, lambda a, shift: update(a, shift), {"a": a, "shift": b}, max_states=48)


# --- the live figure: what the page is sent, and what a move does ---------------------------------

def ys(box) -> list:
    """The first trace's y as the page was last sent it (the synced ``figure``)."""
    return box.figure["data"][0]["y"]


def test_the_page_gets_every_step_of_every_control_and_the_figure_where_they_stand():
    fig, update, calls = amplitude_figure()
    amp = slider("amplitude", 1.0, 0.0, 3.0, 0.25)
    shift = widgets.Dropdown(options=[("none", 0.0), ("up", 10.0)], value=10.0)
    box = live(fig, update, a=amp, shift=shift)
    a_control, shift_control = box.controls
    assert a_control["kind"] == "slider" and a_control["description"] == "amplitude"
    np.testing.assert_allclose(a_control["values"], np.arange(13) * 0.25)      # every step
    assert a_control["labels"][4] == "1.00"                                    # its readout
    assert shift_control == {"name": "shift", "kind": "select", "description": "shift",
                             "values": [0.0, 10.0], "labels": ["none", "up"]}
    assert box.index == {"a": 4, "shift": 1}
    np.testing.assert_allclose(ys(box), 1.0 * SHAPE + 10.0)
    assert box.figure["at"] == box.index and box.frames == {} and len(calls) == 1


def test_a_selection_slider_is_a_slider_over_its_options_in_the_page():
    fig, update, calls = amplitude_figure()
    steps = widgets.SelectionSlider(options=[("1/2", 0.5), ("1/4", 0.25), ("1/8", 0.125)],
                                    value=0.25, description="dt")
    box = live(fig, update, a=steps)
    assert box.controls == [{"name": "a", "kind": "slider", "description": "dt",
                             "values": [0.5, 0.25, 0.125], "labels": ["1/2", "1/4", "1/8"]}]
    assert box.index == {"a": 1}
    box.index = {"a": 2}
    assert steps.value == 0.125 and calls[-1] == (0.125, 0.0)


def test_a_move_in_the_page_moves_the_kernels_control_and_the_kernel_draws_it():
    fig, update, calls = amplitude_figure()
    amp = slider("amplitude", 1.0, 0.0, 2.0, 0.5)
    box = live(fig, update, a=amp)
    box.index = {"a": 3}                  # what the page sets when the reader moves the slider
    assert amp.value == 1.5 and calls[-1] == (1.5, 0.0) and len(calls) == 2   # drawn once
    np.testing.assert_allclose(fig.data[0].y, 1.5 * SHAPE)
    np.testing.assert_allclose(ys(box), 1.5 * SHAPE)          # no frames: the figure is sent
    assert box.figure["at"] == {"a": 3}


def test_a_move_in_code_moves_the_page_too():
    fig, update, _ = amplitude_figure()
    shift = widgets.Dropdown(options=[0.0, 10.0, 20.0], value=0.0)
    amp = slider("amplitude", 1.0, 0.0, 2.0, 0.5)
    box = live(fig, update, a=amp, shift=shift)
    amp.value = 2.0
    shift.value = 20.0
    assert box.index == {"a": 4, "shift": 2}
    np.testing.assert_allclose(ys(box), 2.0 * SHAPE + 20.0)


def test_once_the_page_holds_the_frames_a_move_it_drew_sends_no_figure():
    fig, update, _ = amplitude_figure()
    amp = slider("amplitude", 1.0, 0.0, 2.0, 0.5)
    box = live(fig, update, a=amp)
    box._message(box, {"want": "frames"}, [])          # the page asks once it drew the figure
    assert box.frames["controls"] == [{"name": "a", "positions": [0, 1, 2, 3, 4]}]
    for frame in box.frames["frames"]:
        (i,) = map(int, frame["name"].split("-"))
        np.testing.assert_allclose(frame["data"][0]["y"], 0.5 * i * SHAPE, rtol=1e-3)
    sent = []
    box.observe(lambda change: sent.append(change["new"]), names="figure")
    box.index = {"a": 4}
    assert not sent and box.covers()                   # the page drew it from its frame...
    np.testing.assert_allclose(fig.data[0].y, 2.0 * SHAPE)     # ...and the kernel followed
    assert fig.layout.title.text == "a = 2.00, shift = 0.0"


def test_too_many_steps_fall_back_to_a_handful_and_the_kernel_draws_the_rest():
    fig, update, _ = amplitude_figure()
    amp = slider("amplitude", 1.0, 0.0, 100.0, 0.5)             # 201 steps: over the limit
    box = live(fig, update, a=amp)
    box._message(box, {"want": "frames"}, [])
    (control,) = box.frames["controls"]
    steps = box.controls[0]["values"]
    covered = [steps[i] for i in control["positions"]]
    assert len(steps) == 201 and len(covered) <= live_widgets.POSITIONS + 3 and 1.0 in covered
    assert len(box.frames["frames"]) == len(covered) and box.covers()
    for frame, value in zip(box.frames["frames"], covered):     # positions map names to values
        np.testing.assert_allclose(frame["data"][0]["y"], value * SHAPE, rtol=1e-3)
    uncovered = next(i for i in range(201) if i not in control["positions"])
    box.index = {"a": uncovered}
    assert not box.covers()
    np.testing.assert_allclose(ys(box), steps[uncovered] * SHAPE)   # sent by the kernel


def test_a_figure_that_cannot_be_precomputed_stays_with_the_kernel():
    fig = go.Figure(go.Scatter(y=np.zeros(3)))

    def update(a):
        fig.data = fig.data[:1]
        if a > 0.5:
            fig.add_scatter(y=SHAPE)      # adds a trace: no frame can say that

    amp = slider("amplitude", 0.0, 0.0, 1.0, 0.5)
    box = live(fig, update, a=amp)
    with pytest.warns(UserWarning, match="go through the kernel: update adds or removes traces"):
        box._message(box, {"want": "frames"}, [])
    assert box.frames["frames"] == [] and "adds or removes" in box.frames["why"]
    box.index = {"a": 2}
    assert not box.covers() and len(box.figure["data"]) == 2


def test_the_frames_are_computed_once_and_trying_them_leaves_the_figure_where_it_was():
    fig, update, calls = amplitude_figure()
    amp = slider("amplitude", 1.5, 0.0, 2.0, 0.5)
    box = live(fig, update, a=amp)
    box._message(box, {"want": "frames"}, [])
    tried = len(calls)
    box._message(box, {"want": "frames"}, [])          # asked again: the answer went astray
    assert len(calls) == tried and len(box.frames["frames"]) == 5
    np.testing.assert_allclose(fig.data[0].y, 1.5 * SHAPE)
    assert calls[-1] == (1.5, 0.0) and amp.value == 1.5


def test_a_page_without_plotly_gets_the_one_the_plotly_package_ships(monkeypatch):
    from plotly.offline import get_plotlyjs

    fig, update, _ = amplitude_figure()
    box = live(fig, update, a=slider("amplitude", 1.0, 0.0, 2.0, 0.5))
    answers = []
    monkeypatch.setattr(box, "send", lambda content, buffers=None: answers.append((content, buffers)))
    box._message(box, {"want": "plotly", "page": "p1"}, [])
    ((content, (source,)),) = answers
    assert content == {"plotly": True} and source.decode() == get_plotlyjs()
    # the same page asking again at once (a busy kernel answers its queue in one go): no copy;
    # another page: its own
    box._message(box, {"want": "plotly", "page": "p1"}, [])
    assert len(answers) == 1
    box._message(box, {"want": "plotly", "page": "p2"}, [])
    assert len(answers) == 2


def test_positions_the_figure_does_not_have_are_ignored():
    fig, update, calls = amplitude_figure()
    amp = slider("amplitude", 1.0, 0.0, 2.0, 0.5)
    box = live(fig, update, a=amp)
    for wrong in ({"a": 5}, {"a": -1}, {"a": "2"}, {"b": 1}):
        box.index = wrong
        assert amp.value == 1.0
    np.testing.assert_allclose(fig.data[0].y, 1.0 * SHAPE)


def test_a_move_on_another_thread_waits_for_the_positions_being_tried():
    import threading
    import time

    fig = go.Figure(go.Scatter(y=np.zeros(3)))

    def slow_update(a):
        time.sleep(0.02)
        fig.data[0].y = a * SHAPE

    amp = slider("amplitude", 0.0, 0.0, 1.0, 0.1)
    box = live(fig, slow_update, a=amp)
    worker = threading.Thread(target=box._message, args=(box, {"want": "frames"}, []))
    worker.start()
    time.sleep(0.05)                      # mid-way through the eleven positions
    amp.value = 0.7                       # ipykernel may deliver this on another thread
    worker.join()
    # without the lock the trial's last step (back to the old value) would win
    np.testing.assert_allclose(fig.data[0].y, 0.7 * SHAPE)


def test_bad_controls_are_refused_by_name():
    fig, update, _ = amplitude_figure()
    with pytest.raises(ValueError, match="controls: at most 4"):
        live(fig, update, **{f"c{k}": slider(f"c{k}", 0.0, 0.0, 1.0, 0.5) for k in range(5)})
    with pytest.raises(ValueError, match="controls: give at least one"):
        live(fig, update)
    with pytest.raises(TypeError, match="controls: 'a' must be an ipywidgets control"):
        live(fig, update, a=0.5)


def test_sync_figure_state_sends_what_the_figure_shows_now():
    from nsde_lib import sync_figure_state

    fig, update, _ = amplitude_figure()
    amp = slider("amplitude", 1.0, 0.0, 2.0, 0.5)
    box = live(fig, update, a=amp)
    box._message(box, {"want": "frames"}, [])
    box.index = {"a": 4}                  # drawn by the page from its frame: nothing was sent
    np.testing.assert_allclose(ys(box), 1.0 * SHAPE)
    assert sync_figure_state() >= 1
    np.testing.assert_allclose(ys(box), 2.0 * SHAPE)
    assert box.figure["at"] == {"a": 4}


def test_a_page_without_a_kernel_offers_exactly_the_precomputed_positions():
    fig, update, _ = amplitude_figure()
    amp = slider("amplitude", 1.0, 0.0, 100.0, 0.5)
    shift = widgets.Dropdown(options=[0.0, 10.0], value=10.0)
    live(fig, update, a=amp, shift=shift)
    states = static_states(fig, update, {"a": amp, "shift": shift})
    state = page_state(states)
    a_values = states["controls"][0]["values"]
    assert state["controls"][0]["values"] == a_values and state["controls"][0]["kind"] == "slider"
    assert state["index"] == {"a": a_values.index(1.0), "shift": 1}
    assert state["frames"]["controls"] == [{"name": "a", "positions": list(range(len(a_values)))},
                                           {"name": "shift", "positions": [0, 1]}]
    assert state["figure"] == states["figure"] and state["frames"]["frames"] is states["frames"]


def test_the_site_runs_the_live_page_code_as_a_classic_script():
    from coursekit import export

    script = export.page_script()
    assert "export default" not in script and "window.nsdeLiveFigure = { render };" in script
    assert live_widgets.PAGE_JS.read_text().rstrip().endswith(export.EXPORT_LINE)


def test_the_slider_layer_uses_no_private_attribute_of_plotly_or_ipywidgets():
    """One minor release of plotly or ipywidgets may rename what they keep private; the course's
    sliders must not depend on it (names a FigureWidget or a selection keeps to itself)."""
    import re
    from pathlib import Path

    import nsde_lib

    private = re.compile(r"\._send_|_view_count|_options_(values|labels|full)|_widget_(data|layout)"
                         r"|_layout_obj|\._data\b|_instances\b")
    root = Path(nsde_lib.__file__).parent
    found = [f"{path.relative_to(root)}:{n}: {line.strip()}"
             for path in sorted(root.rglob("*")) if path.suffix in (".py", ".js")
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if private.search(line)]
    assert not found, "\n".join(found)
