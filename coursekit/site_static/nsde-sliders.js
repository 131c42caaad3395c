/* Static slider figures with several sliders (coursekit.export). Each plotly slider only moves
 * its own handle; this shows the frame of all controls' positions: frames are named by the
 * controls' position indices joined by "-", and each slider is named by its control's index
 * (a control with one position has no slider and keeps its index from data-active). */
(function () {
  var ANIMATE = {mode: "immediate", frame: {duration: 0, redraw: true}, transition: {duration: 0}};
  function wire(box) {
    var gd = box.querySelector(".plotly-graph-div");
    if (!gd || !gd.on || gd._nsdeWired) return;
    gd._nsdeWired = true;
    gd.on("plotly_sliderchange", function () {
      var index = JSON.parse(box.dataset.active);
      gd._fullLayout.sliders.forEach(function (s) { index[Number(s.name)] = s.active; });
      window.Plotly.animate(gd, [index.join("-")], ANIMATE);
    });
  }
  function wireAll() {
    document.querySelectorAll(".nsde-live").forEach(function (box) {
      if (Number(box.dataset.sliders) > 1) wire(box);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wireAll);
  else wireAll();
})();
