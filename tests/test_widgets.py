"""`nl.live`: the kernel behaviour, and the static states a page without a kernel drags.

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
from nsde_lib.course.widgets import (STATIC_ENV, STATIC_MIME, control_positions, live, slider,
                                     int_slider, static_states)

SHAPE = np.array([1.5, 2.5, 3.5])


def amplitude_figure():
    fig = go.FigureWidget(go.Scatter(y=np.zeros(3)))
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
    fig = go.FigureWidget()
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
    bundle = box._repr_mimebundle_()
    assert STATIC_MIME not in bundle and "application/vnd.jupyter.widget-view+json" in bundle
    assert len(calls) == 1          # live() draws once; nothing precomputed: the speed is unchanged
    assert isinstance(box, widgets.VBox) and box.children[1] is fig


def test_with_the_variable_the_bundle_carries_the_states_computed_once(monkeypatch):
    monkeypatch.setenv(STATIC_ENV, "1")
    fig, update, calls = amplitude_figure()
    box = live(fig, update, a=slider("a", 1.0, 0.0, 5.0, 0.5))
    first = box._repr_mimebundle_()[STATIC_MIME]
    n_calls = len(calls)
    again = box._repr_mimebundle_()[STATIC_MIME]
    assert again is first and len(calls) == n_calls
    assert len(first["frames"]) == len(first["controls"][0]["values"])


def test_an_update_that_adds_traces_keeps_the_live_figure_and_warns(monkeypatch):
    monkeypatch.setenv(STATIC_ENV, "1")
    fig = go.FigureWidget(go.Scatter(y=[0.0]))

    def update(a):
        if a > 2:
            fig.add_scatter(y=[a])

    box = live(fig, update, a=slider("a", 1.0, 0.0, 5.0, 1.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bundle = box._repr_mimebundle_()
    assert STATIC_MIME not in bundle and "application/vnd.jupyter.widget-view+json" in bundle
    assert any("adds or removes traces" in str(w.message) for w in caught)


def test_too_many_combinations_is_refused_by_name():
    fig, update, _ = amplitude_figure()
    a = widgets.Dropdown(options=list(range(10)), value=0)
    b = widgets.Dropdown(options=list(range(10)), value=0)
    with pytest.raises(ValueError, match="max_states"):
        static_states(fig, lambda a, shift: update(a, shift), {"a": a, "shift": b}, max_states=48)


# --- the page switching precomputed positions (FrameSwitch) -----------------------------------

@pytest.fixture
def sent(monkeypatch):
    """Every update message a FigureWidget sends to the page, as (restyle, relayout) pairs."""
    messages = []
    original = go.FigureWidget._send_update_msg

    def record(self, restyle_data, relayout_data, *args, **kwargs):
        messages.append((restyle_data, relayout_data))
        return original(self, restyle_data, relayout_data, *args, **kwargs)

    monkeypatch.setattr(go.FigureWidget, "_send_update_msg", record)
    return messages


def test_the_switch_joins_the_box_when_the_page_has_drawn_the_figure():
    fig, update, _ = amplitude_figure()
    box = live(fig, update, a=slider("amplitude", 1.0, 0.0, 2.0, 0.5))
    assert box.switch is None and len(box.children) == 2 and not box.covered()   # no page yet
    fig._view_count = 1                   # what the page reports when it shows the figure
    assert isinstance(box.switch, live_widgets.FrameSwitch) and box.children[-1] is box.switch
    assert box.attach_switch() is box.switch and len(box.children) == 3   # once
    assert box.switch.lock is box.lock


def test_the_page_gets_every_step_of_every_control_and_how_to_find_it():
    fig, update, _ = amplitude_figure()
    amp = slider("amplitude", 1.0, 0.0, 3.0, 0.25)
    shift = widgets.Dropdown(options=[("none", 0.0), ("up", 10.0)], value=0.0)
    box = live(fig, update, a=amp, shift=shift)
    switch = box.attach_switch()          # as when a page has drawn the figure
    states = switch.compute_states()
    a_control, shift_control = states["controls"]
    np.testing.assert_allclose(a_control["values"], np.arange(13) * 0.25)   # every step
    assert (a_control["by_index"], a_control["tolerance"]) == (False, 0.0625)
    assert shift_control["by_index"] and shift_control["values"] == [0.0, 10.0]
    assert len(states["frames"]) == 13 * 2 and "figure" not in states and states["token"]
    for frame in states["frames"]:
        i, j = map(int, frame["name"].split("-"))
        np.testing.assert_allclose(frame["data"][0]["y"], 0.25 * i * SHAPE + 10.0 * j, rtol=1e-3)


def test_too_many_steps_fall_back_to_a_handful_and_those_are_all_the_page_covers():
    fig, update, _ = amplitude_figure()
    amp = slider("amplitude", 1.0, 0.0, 100.0, 0.5)             # 201 steps: over the limit
    box = live(fig, update, a=amp)
    switch = box.attach_switch()          # as when a page has drawn the figure
    switch._message(None, {"want": True}, [])
    switch._message(None, {"have": switch.states["token"]}, [])
    values = switch.states["controls"][0]["values"]
    assert len(values) <= live_widgets.POSITIONS + 3 and 1.0 in values
    assert switch.covers()
    amp.value = next(v + 0.5 for v in values if v + 0.5 not in values)
    assert not switch.covers()                               # the kernel draws this one


def test_trying_positions_sends_nothing_and_leaves_the_figure_where_it_was(sent):
    fig, update, calls = amplitude_figure()
    amp = slider("amplitude", 1.5, 0.0, 2.0, 0.5)
    box = live(fig, update, a=amp)
    switch = box.attach_switch()          # as when a page has drawn the figure
    before = len(sent)
    switch._message(None, {"want": True}, [])
    assert len(switch.states["frames"]) == 5 and len(sent) == before
    np.testing.assert_allclose(fig.data[0].y, 1.5 * SHAPE)
    assert calls[-1] == (1.5, 0.0)


def test_once_the_page_holds_the_frames_a_move_updates_the_kernel_quietly(sent):
    fig, update, _ = amplitude_figure()
    amp = slider("amplitude", 1.0, 0.0, 2.0, 0.5)
    box = live(fig, update, a=amp)
    switch = box.attach_switch()          # as when a page has drawn the figure
    start = len(sent)                     # live drew the starting position
    switch._message(None, {"want": True}, [])
    amp.value = 1.5                       # the states are on their way: the kernel draws
    assert len(sent) == start + 1 and not switch.covers()
    switch._message(None, {"have": "another token"}, [])
    amp.value = 0.5
    assert len(sent) == start + 2         # not the states the page was sent: still the kernel
    switch._message(None, {"have": switch.states["token"]}, [])
    amp.value = 2.0                       # the page drew it; the kernel's figure follows, silently
    assert len(sent) == start + 2 and switch.covers()
    np.testing.assert_allclose(fig.data[0].y, 2.0 * SHAPE)
    assert fig.layout.title.text == "a = 2.00, shift = 0.0"
    assert "_send_update_msg" not in vars(fig)   # the quiet spell is over
    with fig.batch_update():              # an edit of the reader's own still reaches the page
        fig.data[0].y = np.ones(3)
    assert len(sent) == start + 3 and sent[-1][0]["y"][0].tolist() == [1, 1, 1]


def test_a_move_on_another_thread_waits_for_the_positions_being_tried():
    import threading
    import time

    fig = go.FigureWidget(go.Scatter(y=np.zeros(3)))

    def slow_update(a):
        time.sleep(0.02)
        fig.data[0].y = a * SHAPE

    amp = slider("amplitude", 0.0, 0.0, 1.0, 0.1)
    box = live(fig, slow_update, a=amp)
    switch = box.attach_switch()          # as when a page has drawn the figure
    worker = threading.Thread(target=switch._message, args=(None, {"want": True}, []))
    worker.start()
    time.sleep(0.05)                      # mid-way through the eleven positions
    amp.value = 0.7                       # ipykernel may deliver this on another thread
    worker.join()
    # without the lock the trial's last step (back to the old value) would win
    np.testing.assert_allclose(fig.data[0].y, 0.7 * SHAPE)


def test_the_page_asks_again_and_gets_the_same_answer_computed_once(monkeypatch):
    fig, update, calls = amplitude_figure()
    amp = slider("amplitude", 1.0, 0.0, 1.0, 0.5)
    box = live(fig, update, a=amp)
    switch = box.attach_switch()          # as when a page has drawn the figure
    answers = []
    monkeypatch.setattr(switch, "send", answers.append)
    switch._message(None, {"want": True}, [])
    tried = len(calls)
    switch._message(None, {"want": True}, [])     # the first answer went astray
    assert len(calls) == tried and len(answers) == 2
    assert answers[0]["states"] is answers[1]["states"] is switch.states
    assert len(switch.states["frames"]) == 3


def test_a_page_that_never_gets_the_answer_gets_a_fresh_switch_with_the_same_states():
    fig, update, calls = amplitude_figure()
    box = live(fig, update, a=slider("amplitude", 1.0, 0.0, 1.0, 0.5))
    first = box.attach_switch()
    first._message(None, {"want": True, "asked": 1}, [])
    first._message(None, {"want": True, "asked": 2}, [])          # answered again
    assert box.switch is first
    tried = len(calls)
    first._message(None, {"want": True, "asked": 3}, [])          # still asking: renewed
    second = box.switch
    assert second is not first and first.comm is None             # the old one is closed
    assert box.children[-1] is second and first not in box.children
    assert second.states is first.states and len(calls) == tried  # nothing recomputed
    assert second.lock is box.lock and second.renew == box.renew_switch


def test_a_figure_that_cannot_be_precomputed_stays_with_the_kernel(monkeypatch):
    fig = go.FigureWidget(go.Scatter(y=np.zeros(3)))

    def update(a):
        fig.data = fig.data[:1]
        if a > 0.5:
            fig.add_scatter(y=SHAPE)      # adds a trace: no frame can say that

    amp = slider("amplitude", 0.0, 0.0, 1.0, 0.5)
    box = live(fig, update, a=amp)
    switch = box.attach_switch()          # as when a page has drawn the figure
    answers = []
    monkeypatch.setattr(switch, "send", answers.append)
    with pytest.warns(UserWarning, match="go through the kernel: update adds or removes traces"):
        switch._message(None, {"want": True}, [])
    (answer,) = answers
    assert answer["states"]["frames"] == [] and "adds or removes" in answer["states"]["why"]
    switch._message(None, {"have": None}, [])
    assert not switch.covers()


def test_the_switch_refuses_more_controls_than_the_page_has_slots_for():
    fig, update, _ = amplitude_figure()
    controls = {f"c{k}": slider(f"c{k}", 0.0, 0.0, 1.0, 0.5) for k in range(5)}
    with pytest.raises(ValueError, match="controls: at most 4"):
        live_widgets.FrameSwitch(fig, update, controls)


def test_the_page_half_has_one_slot_per_control_the_kernel_half_links():
    import re
    from pathlib import Path

    source = Path(live_widgets.__file__).with_name("frame_switch.js").read_text()
    slots = int(re.search(r"const CONTROLS = (\d+);", source).group(1))
    assert slots == live_widgets.FrameSwitch.MAX_CONTROLS
    assert all(live_widgets.FrameSwitch.class_traits()[f"c{k}"].metadata.get("sync")
               for k in range(slots))
