/* Static slider figures with several controls (coursekit.export): each slider only moves its
 * own handle; this shows the frame of all sliders' positions ("i-j", first control first). */
(function () {
  var ANIMATE = {mode: "immediate", frame: {duration: 0, redraw: true}, transition: {duration: 0}};
  function wire(box) {
    var gd = box.querySelector(".plotly-graph-div");
    if (!gd || !gd.on || gd._nsdeWired) return;
    gd._nsdeWired = true;
    gd.on("plotly_sliderchange", function () {
      var name = gd._fullLayout.sliders.map(function (s) { return s.active; }).join("-");
      window.Plotly.animate(gd, [name], ANIMATE);
    });
  }
  function wireAll() {
    document.querySelectorAll(".nsde-live").forEach(function (box) {
      if (Number(box.dataset.controls) > 1) wire(box);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wireAll);
  else wireAll();
})();
