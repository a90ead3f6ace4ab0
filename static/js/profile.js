// The profile page: send the token form once, and copy a new API token to the clipboard.
(function () {
  "use strict";
  var make = document.getElementById("make-token");
  if (make) {
    // A second click would send the form again, and the browser would show that answer, not the
    // first one with the key (the site makes no second token: accounts.services.api_token_create).
    make.form.addEventListener("submit", function () {
      window.setTimeout(function () {
        make.disabled = true;
      }, 0);
    });
  }
  var button = document.getElementById("copy-token");
  if (!button) {
    return;
  }
  var token = document.getElementById(button.dataset.target);
  var status = document.getElementById("copy-status");

  function selectToken() {
    var range = document.createRange();
    range.selectNodeContents(token);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  button.hidden = false;
  button.addEventListener("click", function () {
    if (!navigator.clipboard) {
      selectToken();
      status.textContent = "Selected: press Ctrl+C (⌘C on a Mac) to copy.";
      return;
    }
    navigator.clipboard.writeText(token.textContent.trim()).then(
      function () {
        status.textContent = "Copied to the clipboard.";
      },
      function () {
        selectToken();
        status.textContent = "Copying was not allowed: the token is selected, press Ctrl+C.";
      }
    );
  });
})();
