// The upload page: a drop zone that is also the file picker, several files at once, each checked
// here (type and size) before it is sent, each sent on its own with a progress bar and a cancel
// button, then a link to its result and its status, followed (as the history does) until the
// verdict is in. Without this script the plain form still works.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) {
    return;
  }
  var input = form.querySelector("input[type=file]");
  var zone = document.getElementById("dropzone");
  var list = document.getElementById("upload-list");
  var section = document.getElementById("upload-list-section");
  var announcer = document.getElementById("upload-announce");
  var storage = document.getElementById("storage-use"); // only where the account has a limit
  var maxBytes = Number(form.dataset.maxBytes);
  var apiUrl = form.dataset.apiUrl;
  var statusUrl = form.dataset.statusUrl;
  var csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  var EXTENSIONS = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "avif", "mp4", "m4v", "mov", "avi", "webm", "mkv"];
  // One file after another: sending several at once shares the same connection and only
  // delays the first result.
  var AT_ONCE = 1;
  var waiting = [];
  var sending = 0;

  form.classList.add("enhanced");
  // The script checks the files itself; a required empty input is read out as "invalid"
  // from the moment the page opens.
  input.required = false;

  // One line for screen readers per milestone of a file (the list itself is not a live
  // region: it would read out every percent of every upload). Lines are added, not replaced,
  // so that several files refused at once are each heard; the last few are kept.
  function announce(upload, text) {
    if (!announcer) {
      return;
    }
    announcer.appendChild(element("p", "", upload.file.name + ": " + text));
    while (announcer.children.length > 5) {
      announcer.removeChild(announcer.firstChild);
    }
  }

  function megabytes(bytes) {
    if (bytes < 1024) {
      return bytes + (bytes === 1 ? " byte" : " bytes");
    }
    if (bytes < 1024 * 1024) {
      return Math.ceil(bytes / 1024) + " KB";
    }
    return (bytes / (1024 * 1024)).toFixed(1) + " MB";
  }

  // As Django's filesizeformat writes the sizes on the page: steps of 1024, one decimal, and
  // a no-break space before the unit.
  function fileSize(bytes) {
    if (bytes < 1024) {
      return bytes + (bytes === 1 ? "\u00a0byte" : "\u00a0bytes");
    }
    var units = ["KB", "MB", "GB", "TB", "PB"];
    var value = bytes / 1024;
    var unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return value.toFixed(1) + "\u00a0" + units[unit];
  }

  // The upload's answer says what the account keeps now; the line under the form follows it.
  function showStorage(storedBytes) {
    if (!storage || typeof storedBytes !== "number") {
      return;
    }
    storage.querySelector(".storage-stored").textContent = fileSize(storedBytes);
    storage.hidden = storedBytes === 0;
  }

  function refusal(file) {
    var dot = file.name.lastIndexOf(".");
    var extension = dot >= 0 ? file.name.slice(dot + 1).toLowerCase() : "";
    var typeOk = /^(image|video)\//.test(file.type) || EXTENSIONS.indexOf(extension) >= 0;
    if (!typeOk) {
      return "Not a photo or a video, so it was not sent.";
    }
    if (file.size === 0) {
      return "The file is empty, so it was not sent.";
    }
    if (file.size > maxBytes) {
      return "Too large (" + megabytes(file.size) + "; the limit is " + megabytes(maxBytes) + "), so it was not sent.";
    }
    return null;
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text) {
      node.textContent = text;
    }
    return node;
  }

  function addItem(file) {
    var item = element("li", "upload-item");
    var head = element("div", "upload-head");
    head.appendChild(element("span", "upload-name", file.name));
    head.appendChild(element("span", "upload-size meta", megabytes(file.size)));
    item.appendChild(head);
    var row = element("div", "upload-row");
    var bar = element("progress", "upload-progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Upload of " + file.name);
    var state = element("span", "upload-state", "Waiting");
    var cancel = element("button", "secondary upload-cancel", "Cancel");
    cancel.type = "button";
    cancel.setAttribute("aria-label", "Cancel the upload of " + file.name);
    row.appendChild(bar);
    row.appendChild(state);
    row.appendChild(cancel);
    item.appendChild(row);
    list.appendChild(item);
    section.hidden = false;
    return { file: file, item: item, bar: bar, state: state, cancel: cancel, xhr: null };
  }

  // The row's end: its Cancel button goes. Returns whether that button had the keyboard focus,
  // which must then go somewhere near instead of back to the top of the page.
  function finish(upload, className, text) {
    var focused = document.activeElement === upload.cancel;
    upload.item.classList.add(className);
    upload.state.textContent = text;
    upload.cancel.remove();
    return focused;
  }

  function finishWithout(upload, className, text) {
    if (finish(upload, className, text)) {
      upload.state.setAttribute("tabindex", "-1");
      upload.state.focus();
    }
    announce(upload, text);
  }

  function showResult(upload, analysis) {
    // from now on the bar is the analysis's, not the upload's: a full bar beside "Queued"
    // read as if the analysis were done
    upload.bar.setAttribute("aria-label", "Analysis of " + upload.file.name);
    var focused = finish(upload, "upload-sent", "Uploaded.");
    upload.badge = element("span");
    upload.detail = element("span", "meta upload-detail");
    upload.state.appendChild(document.createTextNode(" "));
    upload.state.appendChild(upload.badge);
    upload.state.appendChild(document.createTextNode(" "));
    upload.state.appendChild(upload.detail);
    showStatus(upload, analysis);
    var link = element("a", "upload-result", "See the result");
    link.href = analysis.page_url;
    link.setAttribute("aria-label", "See the result for " + upload.file.name);
    upload.item.querySelector(".upload-row").appendChild(link);
    if (focused) {
      link.focus();
    }
    follow(upload, analysis);
  }

  var STATUSES = { queued: "Queued", running: "Running", done: "Done", failed: "Failed" };

  function percent(value) {
    // as the pages write it (detection/presenters.py percent_text): never "100.0%" or "0.0%" for an estimate
    if (value < 0.0005) return "<0.1%";
    if (value >= 0.9995) return ">99.9%";
    return (value * 100).toFixed(1) + "%";
  }

  // `analysis` is the upload's answer (status only) or a line of the status list (labels,
  // progress and the probability the verdict stands on).
  function showStatus(upload, analysis) {
    var done = analysis.status === "done";
    var running = analysis.status === "running" && analysis.progress !== null && analysis.progress !== undefined;
    upload.bar.value = done || analysis.status === "failed" ? 100 : running ? Math.round(analysis.progress * 100) : 0;
    // Sent, but the analysis failed: the row turns from "sent" (green) to failed (red).
    upload.item.classList.toggle("upload-analysis-failed", analysis.status === "failed");
    upload.badge.className = "badge badge-" + (done ? analysis.verdict : analysis.status);
    upload.badge.textContent = done && analysis.verdict_label ? analysis.verdict_label : analysis.status_label || STATUSES[analysis.status];
    if (analysis.status === "running" && analysis.progress !== null && analysis.progress !== undefined) {
      upload.detail.textContent = Math.round(analysis.progress * 100) + "% done";
    } else if (done && analysis.probability !== null && analysis.probability !== undefined) {
      upload.detail.textContent = "(" + (analysis.probability_label || "fake") + " probability " + percent(analysis.probability) + ")";
    } else if (analysis.status === "failed" && analysis.error) {
      upload.detail.textContent = analysis.error;
    } else {
      upload.detail.textContent = "";
    }
    if (upload.announced !== analysis.status && (analysis.status !== "running" || upload.announced !== "queued")) {
      // uploaded (queued or running), then finished: its verdict or why it failed
      upload.announced = analysis.status;
      var said = upload.badge.textContent + (upload.detail.textContent ? " " + upload.detail.textContent : "");
      announce(upload, analysis.status === "queued" || analysis.status === "running" ? "uploaded, " + said.toLowerCase() : said);
    }
  }

  // Uploaded analyses, by id, followed until they are done or failed (static/js/statuses.js).
  var uploads = {};
  var followStatus = window.followAnalyses(statusUrl, function (analysis) {
    if (uploads[analysis.id]) {
      showStatus(uploads[analysis.id], analysis);
    }
  });

  function follow(upload, analysis) {
    uploads[analysis.id] = upload;
    // once more at once when done already: the status list has the labels
    followStatus(analysis.id, analysis.status === "done" ? 0 : 1000);
  }

  function errorText(xhr) {
    try {
      var body = JSON.parse(xhr.responseText);
      if (body && body.detail) {
        return body.detail;
      }
    } catch (ignored) {
      // Not JSON (a proxy's error page): fall through to the status line.
    }
    if (xhr.status === 413) {
      return "The server refused the file: it is too large.";
    }
    return "The upload failed (HTTP " + xhr.status + "). Try again.";
  }

  function send(upload) {
    sending += 1;
    var xhr = new XMLHttpRequest();
    upload.xhr = xhr;
    upload.state.textContent = "Uploading 0%";
    xhr.upload.addEventListener("progress", function (event) {
      if (event.lengthComputable) {
        var percent = Math.round((event.loaded / event.total) * 100);
        upload.bar.value = percent;
        upload.state.textContent = "Uploading " + percent + "%";
      }
    });
    xhr.upload.addEventListener("load", function () {
      upload.bar.value = 100;
      upload.state.textContent = "Checking the file";
    });
    xhr.addEventListener("load", function () {
      if (xhr.status === 201 || xhr.status === 202) {
        var analysis = JSON.parse(xhr.responseText);
        showStorage(analysis.account_stored_bytes);
        showResult(upload, analysis);
      } else {
        finishWithout(upload, "upload-failed", errorText(xhr));
      }
    });
    xhr.addEventListener("error", function () {
      finishWithout(upload, "upload-failed", "The connection was lost. Try again.");
    });
    xhr.addEventListener("abort", function () {
      finishWithout(upload, "upload-cancelled", "Cancelled");
    });
    xhr.addEventListener("loadend", function () {
      sending -= 1;
      next();
    });
    var data = new FormData();
    data.append("file", upload.file, upload.file.name);
    xhr.open("POST", apiUrl);
    xhr.setRequestHeader("X-CSRFToken", csrfToken);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.send(data);
  }

  function next() {
    while (sending < AT_ONCE && waiting.length) {
      send(waiting.shift());
    }
  }

  function take(files) {
    Array.prototype.forEach.call(files, function (file) {
      var upload = addItem(file);
      var reason = refusal(file);
      if (reason) {
        finishWithout(upload, "upload-refused", reason);
        return;
      }
      upload.cancel.addEventListener("click", function () {
        if (upload.xhr) {
          upload.xhr.abort();
        } else {
          waiting.splice(waiting.indexOf(upload), 1);
          finishWithout(upload, "upload-cancelled", "Cancelled");
        }
      });
      waiting.push(upload);
    });
    next();
  }

  // The input is hidden from sight but not from the keyboard: show its focus on the zone.
  input.addEventListener("focus", function () {
    zone.classList.add("focused");
  });
  input.addEventListener("blur", function () {
    zone.classList.remove("focused");
  });
  input.addEventListener("change", function () {
    take(input.files);
    input.value = "";
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    take(input.files);
    input.value = "";
  });
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function () {
      zone.classList.remove("dragging");
    });
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    take(event.dataTransfer.files);
  });
  // A file dropped beside the zone must not replace the page with the file.
  ["dragover", "drop"].forEach(function (name) {
    document.addEventListener(name, function (event) {
      event.preventDefault();
    });
  });
  window.addEventListener("beforeunload", function (event) {
    if (sending || waiting.length) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
})();
