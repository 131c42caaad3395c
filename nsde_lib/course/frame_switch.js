// The front-end half of nsde_lib.course.widgets.FrameSwitch (an anywidget ESM module).
//
// A slider move normally travels to the kernel, which recomputes the figure and sends it back:
// tens of milliseconds of round trip before plotly even starts to draw. This view instead
// holds the figure precomputed at every position of the controls (plotly frames, the same
// ones the static course site uses) and shows a position itself, in the page. The controls'
// values reach it through jsdlink (front end only) as the traits c0..c3; it draws nothing of
// its own.
//
// A frame holds only what changes (whole top-level trace and layout properties); it is laid
// over the figure on the page and drawn with Plotly.react: it takes a frame's per-trace
// properties as they are, and redraws the course's figures as fast as Plotly.update and up to
// twice as fast as Plotly.animate (benchmarks/slider_redraw.py).
//
// Handshake, in custom messages (they arrive even where a widget's state updates do not: an
// anywidget model that took over 2 s to start on a busy page gets none): once the figure's
// graph div and plotly.js are there, the view asks for the frames ({want, asked}), again every
// ASK_AGAIN_MS until they come ({states}); then it answers {have: token}, and from then on
// the kernel leaves positions it can see are precomputed to this view. A view still asking
// after the kernel answered twice is replaced by a fresh switch (a model whose start failed).
// Before each redraw the view dispatches an "nsde-frame" event on the figure's box (the browser
// test times it).
const CONTROLS = 4;          // traits c0..c3 (FrameSwitch.MAX_CONTROLS)
const WAIT_MS = 300000;      // how long to keep asking for the frames after render
const ASK_AGAIN_MS = 5000;   // ... and how often (the third time, the kernel sends a fresh switch)

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
  let states = null;           // the kernel's answer: {controls, frames, token} (frames may be [])
  let frames = new Map();      // frame name -> frame

  const show = () => {
    if (!frames.size) return;
    const graph = graphOf(el);
    if (!graph) return;
    const index = states.controls.map((c, k) => positionOf(c, model.get("c" + k)));
    const frame = frames.get(index.join("-"));
    if (index.some((i) => i < 0) || !frame) return;
    graph.closest(".widget-vbox").dispatchEvent(new CustomEvent("nsde-frame", { detail: frame.name }));
    const [data, layout] = withFrame(graph, frame);
    window.Plotly.react(graph, data, layout);
  };
  const received = (message) => {
    if (!message || !message.states || states) return;
    states = message.states;   // no frames: the figure could not be precomputed, the kernel draws
    frames = new Map(states.frames.map((f) => [f.name, f]));
    if (!frames.size) return;
    model.send({ have: states.token });
    const box = el.closest(".widget-vbox");
    if (box) box.dataset.nsdeFrames = String(frames.size);   // for tests, and curious readers
  };
  let asked = 0;
  const ask = (started, askedAt) => {
    if (states) return;
    const now = performance.now();
    if (graphOf(el) && (askedAt === null || now - askedAt > ASK_AGAIN_MS)) {
      asked += 1;
      model.send({ want: true, asked });
      askedAt = now;
    }
    if (now - started < WAIT_MS) setTimeout(() => ask(started, askedAt), 200);
  };

  const names = Array.from({ length: CONTROLS }, (_, k) => "change:c" + k).join(" ");
  model.on(names, show);
  model.on("msg:custom", received);
  ask(performance.now(), null);
  return () => {
    model.off(names, show);
    model.off("msg:custom", received);
  };
}

export default { render };
