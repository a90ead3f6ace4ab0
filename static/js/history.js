// The history: "select all" and a delete button that waits for a selection, and rows that follow
// their queued and running analyses until they are done or failed.
(function () {
  "use strict";
  var table = document.getElementById("history");
  if (!table) {
    return;
  }

  var selectAll = document.getElementById("select-all");
  var deleteButton = document.getElementById("delete-selected");
  var boxes = table.querySelectorAll("input[name=ids]");

  function selectionChanged() {
    var chosen = Array.prototype.filter.call(boxes, function (box) { return box.checked; }).length;
    deleteButton.disabled = chosen === 0;
    deleteButton.textContent = chosen ? "Delete selected (" + chosen + ")…" : "Delete selected…";
    selectAll.checked = chosen === boxes.length;
    selectAll.indeterminate = chosen > 0 && chosen < boxes.length;
  }

  if (selectAll && deleteButton) {
    selectAll.parentElement.hidden = false;
    selectAll.addEventListener("change", function () {
      Array.prototype.forEach.call(boxes, function (box) { box.checked = selectAll.checked; });
      selectionChanged();
    });
    Array.prototype.forEach.call(boxes, function (box) {
      box.addEventListener("change", selectionChanged);
    });
    selectionChanged();
  }

  if (table.dataset.poll !== "true") {
    return;
  }
  var delay = 2000;

  function percent(value) {
    return value === null || value === undefined ? "—" : (value * 100).toFixed(1) + "%";
  }

  function update(row, analysis) {
    var badge = row.querySelector("[data-badge]");
    var done = analysis.status === "done";
    badge.className = "badge badge-" + (done ? analysis.verdict : analysis.status);
    badge.textContent = done ? analysis.verdict_label : analysis.status_label;
    var progress = row.querySelector("[data-progress]");
    if (analysis.status === "running") {
      if (!progress) {
        progress = document.createElement("span");
        progress.className = "meta";
        progress.setAttribute("data-progress", "");
        badge.insertAdjacentElement("afterend", progress);
        badge.insertAdjacentText("afterend", " ");
      }
      progress.textContent = percent(analysis.progress);
    } else if (progress) {
      progress.remove();
    }
    row.querySelector("[data-probability]").textContent = percent(analysis.probability);
    if (done || analysis.status === "failed") {
      row.dataset.finished = "true";
    }
  }

  function poll() {
    var rows = table.querySelectorAll("tr[data-finished=false]");
    if (!rows.length) {
      return;
    }
    var query = Array.prototype.map.call(rows, function (row) {
      return "id=" + encodeURIComponent(row.dataset.id);
    }).join("&");
    fetch(table.dataset.statusUrl + "?" + query, {
      headers: { Accept: "application/json" },
      credentials: "same-origin"
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (body) {
        var seen = {};
        body.analyses.forEach(function (analysis) {
          seen[analysis.id] = true;
          var row = table.querySelector('tr[data-id="' + analysis.id + '"]');
          if (row) {
            update(row, analysis);
          }
        });
        Array.prototype.forEach.call(rows, function (row) {
          if (!seen[row.dataset.id]) {
            row.dataset.finished = "true";  // deleted meanwhile (another tab, the API)
          }
        });
        delay = 2000;
        window.setTimeout(poll, delay);
      })
      .catch(function () {
        // The server is restarting or the network dropped: keep trying, more slowly.
        delay = Math.min(delay * 2, 30000);
        window.setTimeout(poll, delay);
      });
  }

  window.setTimeout(poll, delay);
})();
