// The result page. While the analysis is queued or running it follows its stage and progress
// (announced to screen readers) and, once it is finished, fills the result in without a
// reload. On a finished result the timeline picks the frame shown above it: hover previews
// a frame, a click or the arrow keys choose it.
(function () {
  "use strict";

  var result = document.getElementById("result");
  var announce = document.getElementById("announce");
  if (!result) {
    return;
  }

  // --- The picture and the timeline ------------------------------------------------------

  function setUpResult() {
    var groups = Array.prototype.slice.call(document.querySelectorAll("#faces .frame-boxes"));
    var image = document.getElementById("picture-image");
    var caption = document.getElementById("picture-caption");
    var timeline = document.getElementById("timeline");
    var boxes = document.querySelector("#faces svg.boxes");
    if (image && boxes) {
      var resized = function () {
        window.faceLabels.fit(boxes, image);
      };
      if (image.complete) {
        resized();
      }
      image.addEventListener("load", resized);
      window.addEventListener("resize", resized);
    }
    if (!image || !timeline || groups.length === 0) {
      return;
    }
    var hits = Array.prototype.slice.call(timeline.querySelectorAll(".hit"));
    var preview = document.getElementById("timeline-preview");
    if (preview && "IntersectionObserver" in window) {
      // Shown while the chart is on screen and the picture it drives is not: at 1400x1000 the
      // picture is above the fold once the chart is in view, and on a phone far above it.
      var inView = { picture: true, chart: false };
      var watcher = new IntersectionObserver(function (entries) {
        entries.forEach(function (entry) {
          inView[entry.target === image ? "picture" : "chart"] = entry.isIntersecting;
        });
        preview.hidden = inView.picture || !inView.chart;
      });
      watcher.observe(image);
      watcher.observe(timeline);
    }
    var points = Array.prototype.slice.call(timeline.querySelectorAll(".track-point"));
    var cursor = document.getElementById("timeline-cursor");
    var byFrame = {};
    groups.forEach(function (group) {
      byFrame[group.dataset.frame] = group;
    });

    function positionOf(frame) {
      for (var i = 0; i < hits.length; i += 1) {
        if (hits[i].dataset.frame === String(frame)) {
          return i;
        }
      }
      return 0;
    }

    var chosen = positionOf(groups.filter(function (g) {
      return !g.classList.contains("is-hidden");
    }).map(function (g) {
      return g.dataset.frame;
    })[0]);
    var shown = -1;

    function show(position) {
      if (position === shown || !hits[position]) {
        return;
      }
      shown = position;
      var hit = hits[position];
      var frame = hit.dataset.frame;
      groups.forEach(function (group) {
        group.classList.toggle("is-hidden", group.dataset.frame !== frame);
      });
      var group = byFrame[frame];
      if (preview && group) {
        if (group.dataset.image) {
          preview.querySelector("img").src = group.dataset.image;
        }
        preview.querySelector("figcaption").textContent = "Shown above: " + hit.dataset.time + " s";
      }
      if (group && group.dataset.image) {
        image.src = group.dataset.image;
        image.alt = "Frame " + frame + " of the video, with the faces the model scored outlined";
      }
      if (group && caption) {
        caption.textContent = group.dataset.caption.trim();
      }
      var x = hit.dataset.x;
      cursor.setAttribute("x1", x);
      cursor.setAttribute("x2", x);
      points.forEach(function (point) {
        point.classList.toggle("selected", point.dataset.frame === frame);
      });
      timeline.setAttribute("aria-valuenow", String(position + 1));
      // the caption's own words (the video's frame number, its time, each person's score),
      // so that what is read out matches what is shown
      timeline.setAttribute(
        "aria-valuetext",
        "Sample " + (position + 1) + " of " + hits.length + ": " +
          (group ? group.dataset.caption.trim() : hit.dataset.time + " s, fake probability " + hit.dataset.score)
      );
    }

    // On a narrow screen the chart scrolls sideways in its box: keep the chosen frame in view.
    function keepInView(position) {
      var box = timeline.parentNode;
      var width = timeline.viewBox && timeline.viewBox.baseVal ? timeline.viewBox.baseVal.width : 0;
      if (!box || !width || box.scrollWidth <= box.clientWidth) {
        return;
      }
      var x = Number(hits[position].dataset.x) * timeline.getBoundingClientRect().width / width;
      if (x < box.scrollLeft + 24 || x > box.scrollLeft + box.clientWidth - 24) {
        box.scrollLeft = x - box.clientWidth / 2;
      }
    }

    function choose(position) {
      chosen = Math.max(0, Math.min(hits.length - 1, position));
      show(chosen);
      keepInView(chosen);
    }

    hits.forEach(function (hit, position) {
      hit.addEventListener("mouseenter", function () {
        show(position);
      });
      hit.addEventListener("click", function () {
        choose(position);
      });
    });
    timeline.addEventListener("mouseleave", function () {
      show(chosen);
    });
    timeline.addEventListener("keydown", function (event) {
      var keys = { ArrowRight: 1, ArrowUp: 1, ArrowLeft: -1, ArrowDown: -1 };
      if (event.key in keys) {
        choose(chosen + keys[event.key]);
      } else if (event.key === "Home") {
        choose(0);
      } else if (event.key === "End") {
        choose(hits.length - 1);
      } else if (event.key === "PageUp" || event.key === "PageDown") {
        choose(chosen + (event.key === "PageUp" ? 5 : -5));
      } else {
        return;
      }
      event.preventDefault();
    });
    show(chosen);
  }

  // --- Following a queued or running analysis -------------------------------------------

  function followProgress() {
    var badge = result.querySelector("[data-status-badge]");
    var stageLabel = result.querySelector("[data-stage-label]");
    var bar = result.querySelector("#analysis-status progress");
    var percent = result.querySelector("[data-progress-label]");
    var steps = Array.prototype.slice.call(result.querySelectorAll("[data-stages] li"));
    var delay = 1000;
    var lastStage = null;

    function show(state) {
      if (badge) {
        badge.textContent = state.status.charAt(0).toUpperCase() + state.status.slice(1);
        badge.className = "badge badge-" + state.status;
      }
      var words = state.stage_label + "…";
      if (state.status === "queued") {
        words = "Waiting in the queue: number " + state.queue_position;
        if (state.queue_position > 1) {
          words += " (" + (state.queue_position - 1) + " ahead)";
        }
      }
      var noWorker = result.querySelector("[data-no-worker]");
      if (noWorker) {
        noWorker.hidden = !state.no_worker;
      }
      // Only a new stage is announced, not every percent; nor "Done…" just before the result is
      // filled in and announced.
      var finished = state.status === "done" || state.status === "failed";
      if (stageLabel && words !== lastStage && !finished) {
        stageLabel.textContent = words;
        lastStage = words;
      }
      if (bar) {
        bar.value = state.progress;
      }
      if (percent) {
        percent.textContent = Math.round(state.progress * 100) + "%";
      }
      var reached = true;
      steps.forEach(function (step) {
        var current = step.dataset.stage === state.stage;
        if (current) {
          reached = false;
        }
        step.classList.toggle("current", current);
        step.classList.toggle("done", reached && !current);
        if (current) {
          step.setAttribute("aria-current", "step");
        } else {
          step.removeAttribute("aria-current");
        }
      });
    }

    function fillIn() {
      return fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.text();
        })
        .then(function (html) {
          var page = new DOMParser().parseFromString(html, "text/html");
          var fresh = page.getElementById("result");
          if (!fresh) {
            throw new Error("no result in the page");
          }
          result.innerHTML = fresh.innerHTML;
          result.dataset.finished = "true";
          document.title = page.title; // "(running)" no more: the verdict
          // "… is queued to be analysed again" and the like spoke of the wait, which is over
          Array.prototype.forEach.call(document.querySelectorAll(".messages .message.success"), function (message) {
            message.remove();
          });
          var badgeNow = result.querySelector("[data-badge]");
          var sentence = document.getElementById("verdict-sentence");
          var error = document.getElementById("analysis-error");
          if (announce) {
            announce.textContent = "The analysis is finished. " +
              (badgeNow ? badgeNow.textContent + ". " : "") +
              (sentence ? sentence.textContent : error ? "It failed: " + error.textContent : "");
          }
          setUpResult();
        });
    }

    function poll() {
      fetch(result.dataset.progressUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          if (response.status === 404) {
            if (stageLabel) {
              stageLabel.textContent = "This analysis was deleted.";
            }
            return null;
          }
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.json();
        })
        .then(function (state) {
          if (state === null) {
            return null;
          }
          show(state);
          if (state.finished) {
            return fillIn();
          }
          delay = 1000;
          window.setTimeout(poll, delay);
          return null;
        })
        .catch(function () {
          // The server is restarting or the network dropped: keep trying, more slowly.
          delay = Math.min(delay * 2, 15000);
          window.setTimeout(poll, delay);
        });
    }

    window.setTimeout(poll, delay);
  }

  if (result.dataset.finished === "true") {
    setUpResult();
  } else {
    followProgress();
  }
})();
