// The report page: its print button (no inline handlers: the page runs under a strict CSP),
// and the face boxes' labels sized and placed for the picture as shown, on screen and on paper
// (labels.js), so that small faces side by side do not lose their labels under each other's.
(function () {
  "use strict";
  var button = document.getElementById("print-report");
  if (button) {
    button.addEventListener("click", function () {
      window.print();
    });
  }

  var image = document.getElementById("picture-image");
  var boxes = document.querySelector("#faces svg.boxes");
  if (!image || !boxes || !window.faceLabels) {
    return;
  }
  function fit() {
    window.faceLabels.fit(boxes, image);
  }
  if (image.complete) {
    fit();
  }
  image.addEventListener("load", fit);
  window.addEventListener("resize", fit);
  window.addEventListener("beforeprint", fit);
  window.addEventListener("afterprint", fit);
  var paper = window.matchMedia("print"); // laid out for the page by then
  if (paper.addEventListener) {
    paper.addEventListener("change", fit);
  }
})();
