// The report page's print button (no inline handlers: the page runs under a strict CSP).
(function () {
  "use strict";
  var button = document.getElementById("print-report");
  if (button) {
    button.addEventListener("click", function () {
      window.print();
    });
  }
})();
