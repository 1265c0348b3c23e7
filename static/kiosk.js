// The kiosk's few behaviours that HTML alone cannot say. The card field is on every
// screen and keeps the focus, so a barcode scanner's digits and Enter always start
// the next reader's scan; the keypad types into it; nothing of one reader stays
// for the next; the on-screen slip prints when the kiosk prints through the browser.
(function () {
  "use strict";

  // A barcode scanner types the whole number within a few milliseconds a key and
  // ends with Enter; a person is far slower. The server shows a code already
  // handed out again only to a scanned card where the library checks the format
  // alone, so the form says how the number came ("scan" or "typed").
  // The median gap between keys, so that one slow moment of a busy kiosk PC (or a
  // Bluetooth scanner's hiccup) does not turn a scan into typing; people type
  // about 150 ms a key, scanners a few milliseconds.
  var SCANNER_GAP_MS = 40;
  var keyTimes = [];
  var keypadUsed = false;
  var lastActivity = Date.now();

  // The screen's one field: the PIN where the PIN screen is up, else the card number.
  function card() { return document.getElementById("pin") || document.getElementById("card"); }
  function screen() { return document.getElementById("screen"); }

  function entryKind() {
    if (keypadUsed || keyTimes.length < 4) return "typed";
    var gaps = [];
    for (var i = 1; i < keyTimes.length; i++) gaps.push(keyTimes[i] - keyTimes[i - 1]);
    gaps.sort(function (a, b) { return a - b; });
    return gaps[Math.floor(gaps.length / 2)] <= SCANNER_GAP_MS ? "scan" : "typed";
  }

  function resetEntry() {
    keyTimes = [];
    keypadUsed = false;
  }

  // The next reader has started: the previous reader's code leaves the screen at once.
  // (Not on the PIN screen: what is typed there is this reader's PIN.)
  function clearPreviousReader() {
    var current = screen();
    if (current && !current.classList.contains("idle") && !current.classList.contains("pin")) {
      current.classList.add("next-reader");
    }
  }

  function keepFocus() {
    var input = card();
    if (input && document.activeElement !== input) input.focus({ preventScroll: true });
  }

  document.addEventListener("keydown", function (event) {
    lastActivity = Date.now();
    var input = card();
    if (!input) return;
    if (event.key === "Enter") {
      var entry = document.getElementById("entry");
      if (entry) entry.value = entryKind();
      if (input.id === "pin" && input.value !== "" && entryKind() === "scan" && window.htmx) {
        // A scanner on the PIN screen: the next reader's card, never the previous
        // reader's PIN. It starts that reader's scan.
        event.preventDefault();
        window.htmx.ajax("POST", input.form.getAttribute("action"), { target: "#screen", swap: "outerHTML",
          values: { card: input.value, entry: "scan", lang: "pl", csrf_token: input.form.elements.csrf_token.value } });
        return;
      }
    }
    if (event.target !== input && event.key.length === 1 && event.key !== " ") {
      // A character typed anywhere else (a scanner after a tap on "Gotowe") goes to
      // the card field.
      input.focus({ preventScroll: true });
    } else if (event.target !== input && event.key === "Enter" && input.value !== "") {
      // The scanner's Enter after its digits scans; it never presses the button.
      // Enter with nothing typed still presses the focused button (the keyboard's way).
      event.preventDefault();
      input.focus({ preventScroll: true });
      input.form.requestSubmit();
      return;
    }
    if (event.key.length === 1) {
      if (input.value === "") resetEntry();
      keyTimes.push(event.timeStamp);
      clearPreviousReader();
    }
  }, true);

  // The keypad never takes the focus: a tap, then a scan, still types into the field.
  document.addEventListener("mousedown", function (event) {
    if (event.target.closest("[data-key]")) event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    lastActivity = Date.now();
    var key = event.target.closest("[data-key]");
    var input = card();
    if (key && input) {
      keypadUsed = true;
      var entry = document.getElementById("entry");
      if (entry) entry.value = "typed";
      if (key.dataset.key === "back") {
        input.value = input.value.slice(0, -1);
      } else {
        input.value += key.dataset.key;
      }
    }
    if (!event.target.closest("a, [hx-get]")) keepFocus();
  });

  document.body.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.elt && event.detail.elt.id === "scan-form") clearPreviousReader();
  });

  function settle() {
    var input = card();
    if (input && input.value === "") resetEntry();
    keepFocus();
    var current = screen();
    if (current && current.hasAttribute("data-autoprint")) {
      current.removeAttribute("data-autoprint");
      window.print();
    }
    lastActivity = Date.now();
  }

  // On the start screen, after the idle time without a touch or a key: a half-typed
  // number is cleared and the language goes back to Polish.
  window.setInterval(function () {
    var current = screen();
    var input = card();
    if (!current || !current.classList.contains("idle") || !input || !window.htmx) return;
    var seconds = parseInt(current.getAttribute("data-idle-seconds"), 10) || 30;
    var stale = input.value !== "" || current.getAttribute("lang") !== "pl";
    if (stale && Date.now() - lastActivity > seconds * 1000) {
      lastActivity = Date.now();
      window.htmx.ajax("GET", "/kiosk/screen", { target: "#screen", swap: "outerHTML" });
    }
  }, 1000);

  // The server did not answer (down, network gone): never leave a reader's code on
  // screen; load the start page afresh (or the browser's own error page).
  document.body.addEventListener("htmx:sendError", function () {
    window.location.replace(window.location.pathname.replace(/\/kiosk\/.*$/, "/kiosk/"));
  });

  document.addEventListener("DOMContentLoaded", settle);
  document.body.addEventListener("htmx:afterSettle", settle);
})();
