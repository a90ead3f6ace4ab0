// The face boxes' labels on the result page and the report (loaded before detail.js and
// report.js): window.faceLabels.fit(svg, image) sizes and places them for the picture as shown.
(function () {
  "use strict";

  var LABEL_PX = 14; // the boxes' labels keep this size on screen, however large the picture

  function overlaps(a, b) {
    return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
  }

  function rectOf(element) {
    return {
      x: Number(element.getAttribute("x")), y: Number(element.getAttribute("y")),
      w: Number(element.getAttribute("width")), h: Number(element.getAttribute("height"))
    };
  }

  // The server sizes and places the labels for a desktop; on a phone the picture shrinks and
  // so would they. Resize each label (in the picture's own pixels) to stay readable, and place
  // it where it covers no other face and no other label: above its box, below it, or inside the
  // top of its own box. When not every label of the frame fits whole, they are all shortened to
  // the person's number ("P2"), and a label that still fits nowhere is left out (small faces
  // side by side on a phone); the caption under the picture names every face with its score.
  function sizeLabels(svg, image) {
    var width = Number(svg.viewBox.baseVal.width);
    var height = Number(svg.viewBox.baseVal.height);
    if (!image.clientWidth || !width) {
      return;
    }
    var font = LABEL_PX * width / image.clientWidth;
    var tall = font * 1.35;
    svg.querySelectorAll(".frame-boxes").forEach(function (group) {
      var labels = [];
      group.querySelectorAll("rect.box").forEach(function (box) {
        var background = box.nextElementSibling;
        var text = background && background.nextElementSibling;
        if (text && text.tagName.toLowerCase() === "text") {
          if (!text.dataset.full) {
            text.dataset.full = text.textContent;
          }
          labels.push({ face: rectOf(box), background: background, text: text });
        }
      });
      var faces = labels.map(function (label) { return label.face; });
      var place = function (shortened) {  // each label's spot and words, or null
        var placed = [];
        return labels.map(function (label, k) {
          var words = label.text.dataset.full;
          if (shortened && /^P\d+ /.test(words)) {
            words = words.split(" ")[0];
          }
          var long = font * 0.62 * words.length + font * 0.6;
          var left = Math.max(0, Math.min(label.face.x, width - long));
          var tops = [label.face.y - tall, label.face.y + label.face.h, label.face.y];
          for (var t = 0; t < tops.length; t += 1) {
            var spot = { x: left, y: tops[t], w: long, h: tall };
            var free = spot.y >= 0 && spot.y + spot.h <= height &&
              faces.every(function (other, j) { return j === k || !overlaps(spot, other); }) &&
              placed.every(function (other) { return !overlaps(spot, other); });
            if (free) {
              placed.push(spot);
              return { spot: spot, words: words };
            }
          }
          return null;
        });
      };
      var chosen = place(false);
      if (chosen.some(function (one) { return one === null; })) {
        chosen = place(true);
      }
      labels.forEach(function (label, k) {
        var one = chosen[k];
        label.background.style.display = label.text.style.display = one ? "" : "none";
        if (!one) {
          return;
        }
        label.text.textContent = one.words;
        label.background.setAttribute("x", one.spot.x);
        label.background.setAttribute("y", one.spot.y);
        label.background.setAttribute("width", one.spot.w);
        label.background.setAttribute("height", tall);
        label.text.setAttribute("font-size", font);
        label.text.setAttribute("x", one.spot.x + font * 0.3);
        label.text.setAttribute("y", one.spot.y + tall * 0.75);
      });
    });
  }

  window.faceLabels = { fit: sizeLabels };
})();
