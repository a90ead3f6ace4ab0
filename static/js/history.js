// The history: "select all" and a delete button that waits for a selection, and rows that follow
// their queued and running analyses until they are done or failed.
(function () {
  "use strict";
  foldFilters();
  var table = document.getElementById("history");
  if (!table) {
    return;
  }

  var selectAll = document.getElementById("select-all");
  var deleteButton = document.getElementById("delete-selected");
  var deleteHint = document.getElementById("delete-hint");
  var boxes = table.querySelectorAll("input[name=ids]");

  function chosenCount() {
    return Array.prototype.filter.call(boxes, function (box) { return box.checked; }).length;
  }

  function selectionChanged() {
    var chosen = chosenCount();
    // aria-disabled, not disabled: a disabled button leaves the Tab order, and a keyboard user
    // who ticked row 15 could not reach it without going back up past every row
    deleteButton.setAttribute("aria-disabled", chosen === 0 ? "true" : "false");
    if (chosen && deleteHint) {
      deleteHint.textContent = "";
    }
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
    deleteButton.form.addEventListener("submit", function (event) {
      if (chosenCount() === 0) {
        event.preventDefault();
        if (deleteHint) {
          deleteHint.textContent = "Tick the analyses to delete first.";
        }
      }
    });
    selectionChanged();
  }

  if (table.dataset.poll !== "true") {
    return;
  }

  function percent(value) {
    if (value === null || value === undefined) return "—";
    // as the pages write it (detection/presenters.py percent_text): never "100.0%" or "0.0%" for an estimate
    if (value < 0.0005) return "<0.1%";
    if (value >= 0.9995) return ">99.9%";
    return (value * 100).toFixed(1) + "%";
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
      progress.textContent = Math.round(analysis.progress * 100) + "%";
    } else if (progress) {
      progress.remove();
    }
    var probability = percent(analysis.probability);
    if (analysis.probability !== null && analysis.probability !== undefined && analysis.probability_label) {
      probability = analysis.probability_label + " probability " + probability;  // as the page writes it
    }
    row.querySelector("[data-probability]").textContent = probability;
    var cell = row.querySelector("[data-thumbnail]");
    if (analysis.status === "done" && cell && !cell.querySelector("img")) {
      // the worker stores a thumbnail with the result: put it in place of the icon once it loads
      var picture = new Image(64, 64);
      picture.alt = "";
      picture.addEventListener("load", function () {
        cell.replaceChildren(picture);
      });
      picture.src = cell.dataset.thumbnail;
    }
  }

  // The rows of analyses still queued or running, followed until done (static/js/statuses.js).
  var follow = window.followAnalyses(table.dataset.statusUrl, function (analysis) {
    var row = table.querySelector('tr[data-id="' + analysis.id + '"]');
    if (row) {
      update(row, analysis);
    }
  });
  Array.prototype.forEach.call(table.querySelectorAll("tr[data-finished=false]"), function (row) {
    follow(row.dataset.id);
  });

  // On a phone the five filters beyond the file name fill the first screen: fold them behind
  // "More filters" unless one of them is set (or wrong). Without JavaScript all of them show.
  function foldFilters() {
    var more = document.getElementById("more-filters");
    var toggle = document.getElementById("filters-toggle");
    if (!more || !toggle) {
      return;
    }
    var narrow = window.matchMedia("(max-width: 40rem)"); // history.css's phone layout
    var chosen = more.dataset.set === "true";
    function show(open) {
      more.hidden = !open;
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    }
    function laidOut() {
      toggle.hidden = !narrow.matches;
      show(!narrow.matches || chosen);
    }
    toggle.addEventListener("click", function () {
      chosen = more.hidden; // opened by hand: stays open across a rotation
      show(more.hidden);
    });
    if (narrow.addEventListener) {
      narrow.addEventListener("change", laidOut);
    }
    laidOut();
  }
})();
