// Follows analyses through the status list (detection:statuses) until each is done or failed,
// for the pages that show analyses still in the queue (the history, the upload page): one request
// asks for all of them every 2 s, more slowly while the server does not answer.
// `followAnalyses(url, show)` returns `follow(id, delay)`; `show(analysis)` gets each answer.
(function () {
  "use strict";
  var AT_ONCE = 100;  // the status list's own limit

  window.followAnalyses = function (statusUrl, show) {
    var following = {};
    var timer = null;
    var asking = false;
    var delay = 2000;

    function soon(wait) {
      if (timer === null && !asking && Object.keys(following).length) {
        timer = window.setTimeout(ask, wait);
      }
    }

    function ask() {
      timer = null;
      asking = true;
      var ids = Object.keys(following).slice(0, AT_ONCE);
      var query = ids.map(function (id) { return "id=" + encodeURIComponent(id); }).join("&");
      fetch(statusUrl + "?" + query, { headers: { Accept: "application/json" }, credentials: "same-origin" })
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
            if (analysis.status === "done" || analysis.status === "failed") {
              delete following[analysis.id];
            }
            show(analysis);
          });
          ids.forEach(function (id) {
            if (!seen[id]) {
              delete following[id];  // deleted meanwhile (another tab, the API)
            }
          });
          asking = false;
          delay = 2000;
          soon(delay);
        })
        .catch(function () {
          // The server is restarting or the network dropped: keep trying, more slowly.
          asking = false;
          delay = Math.min(delay * 2, 30000);
          soon(delay);
        });
    }

    return function follow(id, wait) {
      following[id] = true;
      soon(wait === undefined ? delay : wait);
    };
  };
})();
