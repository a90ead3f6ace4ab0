// Follows a queued or running analysis through the API (session cookie) and reloads the page
// once it is done or failed, so that the server renders the full result.
(function () {
  "use strict";
  var box = document.getElementById("analysis-status");
  if (!box || box.dataset.finished === "true") {
    return;
  }
  var label = box.querySelector("[data-status-label]");
  var bar = box.querySelector("progress");
  var percent = box.querySelector("[data-progress-label]");
  var delay = 1000;

  function show(analysis) {
    label.textContent = analysis.status.charAt(0).toUpperCase() + analysis.status.slice(1);
    label.className = "badge status-" + analysis.status;
    bar.value = analysis.progress;
    percent.textContent = (analysis.progress * 100).toFixed(1) + "%";
  }

  function poll() {
    fetch(box.dataset.url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 404) {
          label.textContent = "Deleted";
          return null;
        }
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (analysis) {
        if (analysis === null) {
          return;
        }
        show(analysis);
        if (analysis.status === "done" || analysis.status === "failed") {
          window.location.reload();
          return;
        }
        delay = 1000;
        window.setTimeout(poll, delay);
      })
      .catch(function () {
        // The server is restarting or the network dropped: keep trying, more slowly.
        delay = Math.min(delay * 2, 15000);
        window.setTimeout(poll, delay);
      });
  }

  window.setTimeout(poll, delay);
})();
