// The kiosk's few behaviours that HTML alone cannot say:
// the on-screen keypad, focus back in the card field, and printing the on-screen
// slip when the kiosk prints through the browser.
(function () {
  "use strict";

  // A barcode scanner types the whole number within a few milliseconds a key and
  // ends with Enter; a person is far slower. The server shows a code already
  // handed out again only to a scanned card where the library checks the format
  // alone, so the form says how the number came ("scan" or "typed").
  var SCANNER_GAP_MS = 50;
  var keyTimes = [];
  var keypadUsed = false;

  function entryKind() {
    if (keypadUsed || keyTimes.length < 4) return "typed";
    for (var i = 1; i < keyTimes.length; i++) {
      if (keyTimes[i] - keyTimes[i - 1] > SCANNER_GAP_MS) return "typed";
    }
    return "scan";
  }

  function resetEntry() {
    keyTimes = [];
    keypadUsed = false;
  }

  document.addEventListener("keydown", function (event) {
    if (event.target.id !== "card") return;
    if (event.key === "Enter") {
      var entry = document.getElementById("entry");
      if (entry) entry.value = entryKind();
    } else if (event.key.length === 1) {
      if (event.target.value === "") resetEntry();
      keyTimes.push(event.timeStamp);
    }
  });

  document.addEventListener("click", function (event) {
    var key = event.target.closest("[data-key]");
    if (!key) return;
    var input = document.getElementById("card");
    if (!input) return;
    keypadUsed = true;
    var entry = document.getElementById("entry");
    if (entry) entry.value = "typed";
    if (key.dataset.key === "back") {
      input.value = input.value.slice(0, -1);
    } else {
      input.value += key.dataset.key;
    }
  });

  function settle() {
    var input = document.getElementById("card");
    if (input && input.value === "") resetEntry();
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
