// The front-end half of nsde_lib.course.widgets.FrameSwitch (an anywidget ESM module).
//
// A slider move normally travels to the kernel, which recomputes the figure and sends it back:
// tens of milliseconds of round trip before plotly even starts to draw. This view instead
// holds the figure precomputed at every position of the controls (plotly frames, the same
// ones the static course site uses) and shows a position with Plotly.animate, in the page.
// The controls' values reach it through jsdlink (front end only); it draws nothing itself.
//
// A frame holds only what changes (whole top-level trace and layout properties); it is laid
// over the figure on the page and drawn with Plotly.react: it takes a frame's per-trace
// properties as they are, and redraws the course's figures as fast as Plotly.update and up to
// twice as fast as Plotly.animate (benchmarks/slider_redraw.py).
//
// Handshake: once the figure's graph div and plotly.js are there, the view asks the kernel
// for the frames ("want"); when they arrive it answers "have", and from then on the kernel
// leaves positions it can see are precomputed to this view. Before each redraw the view
// dispatches an "nsde-frame" event on the figure's box (the browser test times from it).
const CONTROLS = 4;         // traits c0..c3 (FrameSwitch.MAX_CONTROLS)
const WAIT_MS = 30000;      // how long to look for the graph div and plotly.js after render

function graphOf(el) {
  const box = el.closest(".widget-vbox");
  const graph = box && box.querySelector(".js-plotly-plot");
  return graph && graph.data && window.Plotly ? graph : null;
}

// The position of a control's value among the precomputed ones, or -1 (the kernel draws it).
function positionOf(control, value) {
  if (value === null || value === undefined) return -1;
  if (control.by_index) return Number.isInteger(value) && value < control.values.length ? value : -1;
  const values = control.values;
  for (let i = 0; i < values.length; i++) {
    if (Math.abs(values[i] - value) <= control.tolerance) return i;
  }
  return -1;
}

// The figure with one frame laid over it: new trace and layout objects, so that react sees
// what changed; arrays are shared, never copied or modified.
function withFrame(graph, frame) {
  const data = graph.data.map((trace) => Object.assign({}, trace));
  frame.traces.forEach((i, j) => Object.assign(data[i], frame.data[j]));
  return [data, Object.assign({}, graph.layout, frame.layout)];
}

function render({ model, el }) {
  el.style.display = "none";
  let frames = new Map();    // frame name -> frame
  let asked = false;

  const show = () => {
    if (!frames.size) return;
    const graph = graphOf(el);
    if (!graph) return;
    const states = model.get("states");
    const index = states.controls.map((c, k) => positionOf(c, model.get("c" + k)));
    const frame = frames.get(index.join("-"));
    if (index.some((i) => i < 0) || !frame) return;
    graph.closest(".widget-vbox").dispatchEvent(new CustomEvent("nsde-frame", { detail: frame.name }));
    const [data, layout] = withFrame(graph, frame);
    window.Plotly.react(graph, data, layout);
  };
  const received = () => {
    const states = model.get("states");
    frames = new Map(((states && states.frames) || []).map((f) => [f.name, f]));
    if (states && states.frames && states.frames.length) {
      model.send({ have: states.token });
      const box = el.closest(".widget-vbox");
      if (box) box.dataset.nsdeFrames = String(states.frames.length);   // for tests, and curious readers
    }
  };
  const ask = (started) => {
    if (asked) return;
    if (graphOf(el)) {
      asked = true;
      model.send({ want: true });
    } else if (performance.now() - started < WAIT_MS) {
      setTimeout(() => ask(started), 100);
    }
  };

  const names = Array.from({ length: CONTROLS }, (_, k) => "change:c" + k).join(" ");
  model.on(names, show);
  model.on("change:states", received);
  if (model.get("states") && model.get("states").frames) received();
  else ask(performance.now());
  return () => {
    model.off(names, show);
    model.off("change:states", received);
  };
}

export default { render };
