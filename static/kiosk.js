// The kiosk's few behaviours that HTML alone cannot say:
// the on-screen keypad, focus back in the card field, and printing the on-screen
// slip when the kiosk prints through the browser.
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var key = event.target.closest("[data-key]");
    if (!key) return;
    var input = document.getElementById("card");
    if (!input) return;
    if (key.dataset.key === "back") {
      input.value = input.value.slice(0, -1);
    } else {
      input.value += key.dataset.key;
    }
  });

  function settle() {
    var input = document.getElementById("card");
    // Focus only: a scanner may already be typing into the fresh, empty field.
    if (input && document.activeElement !== input) input.focus();
    var screen = document.getElementById("screen");
    if (screen && screen.hasAttribute("data-autoprint")) {
      screen.removeAttribute("data-autoprint");
      window.print();
    }
    if (screen && !input) {
      var done = document.getElementById("done");
      if (done) done.focus();
    }
  }

  // The server did not answer (down, network gone): never leave a reader's code on
  // screen; load the start page afresh (or the browser's own error page).
  document.body.addEventListener("htmx:sendError", function () {
    window.location.replace(window.location.pathname.replace(/\/kiosk\/.*$/, "/kiosk/"));
  });

  document.addEventListener("DOMContentLoaded", settle);
  document.body.addEventListener("htmx:afterSettle", settle);
})();
