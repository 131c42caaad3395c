// The page half of nsde_lib.course.widgets.LiveFigure (an anywidget ESM module): a plotly
// figure and its controls. The course site and the slides run this same file without a kernel
// (coursekit.export turns its last line into a global and gives it a model of its own).
//
// The model's state: "controls" (kind, description, every value and its label), "index" (each
// control's position among its values), "figure" ({data, layout}: what the kernel last drew for
// the page) and "frames" (empty until asked; then the figure precomputed at positions of the
// controls, each frame holding only the trace and layout properties that change).
//
// A move the frames hold is drawn here, with Plotly.react: no round trip through the kernel,
// which still hears of it (the model's "index") and catches up. Any other move waits for the
// kernel, which sends the figure. Controls are plain HTML inputs (a range input per slider, a
// select per selection, a checkbox per toggle), so the keyboard and screen readers work as
// they do on any form. plotly.js is the page's window.Plotly, or else the one the kernel's
// plotly package ships, asked for once per page.
// A request the kernel has not answered is sent again, less and less often, for as long as the
// page is open: a kernel busy running cells (a chapter trains for minutes) answers only when it
// is done, and answering a request it has already answered costs it nothing (see widgets.py).
const ASK_AGAIN_MS = 4000;
const ASK_AT_MOST_EVERY_MS = 30000;
const PAGE = Math.random().toString(36).slice(2);   // this page, so the kernel sends plotly.js once
const CONFIG = { responsive: true, displaylogo: false };

let plotlyLoading = null;    // one request for plotly.js per page, shared by every figure

function loadPlotly(model) {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotlyLoading) {
    plotlyLoading = new Promise((resolve, reject) => {
      let done = false;
      const got = (message, buffers) => {
        if (done || !message || !message.plotly || !buffers || !buffers.length) return;
        done = true;
        model.off("msg:custom", got);
        // A classic script, not a module: plotly.js (any version) then sets window.Plotly
        // itself; the wrapper hides an AMD loader a page may have.
        const source = new TextDecoder().decode(buffers[0]);
        const blob = new Blob(["(function (define, module, exports) {\n", source,
                               "\n}).call(self);"], { type: "text/javascript" });
        const script = document.createElement("script");
        script.src = URL.createObjectURL(blob);
        script.onload = () => (window.Plotly ? resolve(window.Plotly)
                                             : reject(new Error("plotly.js did not load")));
        script.onerror = () => reject(new Error("plotly.js did not load"));
        document.head.appendChild(script);
      };
      model.on("msg:custom", got);
      let asked = 0;
      const ask = () => {
        if (done) return;
        if (window.Plotly) {   // another copy of plotly.js arrived meanwhile
          done = true;
          model.off("msg:custom", got);
          return resolve(window.Plotly);
        }
        model.send({ want: "plotly", page: PAGE });
        asked += 1;
        setTimeout(ask, Math.min(ASK_AGAIN_MS * asked, ASK_AT_MOST_EVERY_MS));
      };
      ask();
    }).catch((err) => { plotlyLoading = null; throw err; });
  }
  return plotlyLoading;
}

// The frame name of a position (indices into each control's values), or null when the frames
// do not hold it: frames are named by each control's index among the positions they cover.
function frameName(frames, index) {
  if (!frames || !frames.frames || !frames.frames.length) return null;
  const parts = [];
  for (const c of frames.controls) {
    const k = c.positions.indexOf(index[c.name]);
    if (k < 0) return null;
    parts.push(k);
  }
  return parts.join("-");
}

// The figure with one frame laid over it: new trace and layout objects, so that react sees
// what changed; arrays are shared, never copied or modified.
function withFrame(graph, frame) {
  const data = graph.data.map((trace) => Object.assign({}, trace));
  frame.traces.forEach((i, j) => Object.assign(data[i], frame.data[j]));
  return [data, Object.assign({}, graph.layout, frame.layout)];
}

function controlElement(control, position, moved) {
  const label = document.createElement("label");
  label.className = "nsde-control";
  const name = document.createElement("span");
  name.className = "nsde-control-name";
  name.textContent = control.description;
  label.appendChild(name);
  let input;
  const readout = document.createElement("output");
  readout.className = "nsde-control-value";
  if (control.kind === "select") {
    input = document.createElement("select");
    control.labels.forEach((text, i) => {
      const option = document.createElement("option");
      option.value = String(i);
      option.textContent = text;
      input.appendChild(option);
    });
  } else if (control.kind === "toggle") {
    input = document.createElement("input");
    input.type = "checkbox";
  } else {
    input = document.createElement("input");
    input.type = "range";
    input.min = "0";
    input.max = String(control.values.length - 1);
    input.step = "1";
  }
  input.dataset.control = control.name;
  const set = (i) => {
    if (control.kind === "toggle") input.checked = Boolean(control.values[i]);
    else input.value = String(i);
    readout.textContent = control.kind === "slider" ? control.labels[i] : "";
    if (control.kind === "slider") input.setAttribute("aria-valuetext", control.labels[i]);
  };
  const read = () => (control.kind === "toggle"
    ? control.values.indexOf(input.checked) : Number(input.value));
  input.addEventListener(control.kind === "slider" ? "input" : "change", () => {
    set(read());
    moved(control.name, read());
  });
  set(position);
  label.appendChild(input);
  label.appendChild(readout);
  return { label, set };
}

const STYLE = `
.nsde-live-figure .nsde-controls { display: flex; flex-wrap: wrap; gap: 4px 28px; margin: 4px 0; }
.nsde-live-figure .nsde-control { display: inline-flex; align-items: center; gap: 8px;
  font: 13px/1.6 var(--jp-ui-font-family, system-ui, sans-serif); }
.nsde-live-figure input[type=range] { width: 260px; }
.nsde-live-figure .nsde-control-value { min-width: 3.5em; font-variant-numeric: tabular-nums; }
`;

// Keys pressed on a control move the control. The notebook's keyboard shortcuts listen on the
// document (Notebook 7 while the event travels down, JupyterLab while it bubbles up) and would
// take the arrow keys for themselves; one listener on the window, which hears the event first,
// keeps events aimed at a control away from them. The control still gets the key.
function keepKeys() {
  if (window.__nsdeKeepKeys) return;
  window.__nsdeKeepKeys = true;
  window.addEventListener("keydown", (event) => {
    const target = event.target;
    if (target && target.closest && target.closest(".nsde-controls")) event.stopPropagation();
  }, true);
}

function addStyle() {   // once per document: the live page and the site share it
  keepKeys();
  if (document.getElementById("nsde-live-figure-style")) return;
  const style = document.createElement("style");
  style.id = "nsde-live-figure-style";
  style.textContent = STYLE;
  document.head.appendChild(style);
}

function render({ model, el }) {
  addStyle();
  const box = document.createElement("div");
  box.className = "nsde-live-figure";
  const row = document.createElement("div");
  row.className = "nsde-controls";
  const graph = document.createElement("div");
  graph.className = "nsde-plot";
  box.appendChild(row);
  box.appendChild(graph);
  el.appendChild(box);

  let Plotly = null;
  let index = Object.assign({}, model.get("index"));

  // Show the current position: its frame when the page holds it, else the kernel's figure.
  const show = () => {
    if (!Plotly || !graph.data) return;
    const frames = model.get("frames");
    const name = frameName(frames, index);
    const frame = name === null ? null : frames.frames.find((f) => f.name === name);
    if (frame) {
      box.dispatchEvent(new CustomEvent("nsde-frame", { detail: name }));
      const [data, layout] = withFrame(graph, frame);
      Plotly.react(graph, data, layout, CONFIG);
    }
  };
  const fromKernel = () => {
    if (!Plotly) return;
    const figure = model.get("figure");
    if (frameName(model.get("frames"), index) !== null) return;   // drawn from a frame
    Plotly.react(graph, figure.data, figure.layout, CONFIG);
  };
  const moved = (name, i) => {
    index = Object.assign({}, index, { [name]: i });
    show();
    model.set("index", index);
    model.save_changes();
  };
  const controls = new Map();
  model.get("controls").forEach((control) => {
    const made = controlElement(control, index[control.name], moved);
    controls.set(control.name, made);
    row.appendChild(made.label);
  });
  const indexChanged = () => {   // the kernel moved a control (code set its value)
    index = Object.assign({}, model.get("index"));
    controls.forEach((made, name) => made.set(index[name]));
    show();
  };
  const framesChanged = () => {
    const frames = model.get("frames");
    box.dataset.nsdeFrames = String((frames && frames.frames && frames.frames.length) || 0);
    show();
  };
  model.on("change:index", indexChanged);
  model.on("change:figure", fromKernel);
  model.on("change:frames", framesChanged);

  let stopped = false;
  loadPlotly(model).then((loaded) => {
    if (stopped) return;
    Plotly = loaded;
    const figure = model.get("figure");
    return Plotly.newPlot(graph, figure.data, figure.layout, CONFIG).then(() => {
      framesChanged();
      // ask for the frames once the figure is drawn; ask again while no answer came
      let asked = 0;
      const ask = () => {
        const frames = model.get("frames");
        if (stopped || (frames && frames.frames)) return;
        model.send({ want: "frames" });
        asked += 1;
        setTimeout(ask, Math.min(ASK_AGAIN_MS * asked, ASK_AT_MOST_EVERY_MS));
      };
      ask();
    });
  }).catch((err) => {
    graph.textContent = "This figure could not be drawn: " + err.message;
  });

  return () => {
    stopped = true;
    model.off("change:index", indexChanged);
    model.off("change:figure", fromKernel);
    model.off("change:frames", framesChanged);
    if (Plotly) Plotly.purge(graph);
  };
}

export default { render };
