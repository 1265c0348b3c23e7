// The desk: after every action the card field has the focus, empty, for the next
// reader; a barcode scanner's digits and Enter never press a button or open the
// last reader's PDF again.
(function () {
  "use strict";

  function cardField() { return document.getElementById("card"); }

  function backToCard() {
    var card = cardField();
    if (card) card.focus({ preventScroll: true });
  }

  function typing(element) {
    return element && (element.tagName === "INPUT" || element.tagName === "SELECT" || element.tagName === "TEXTAREA");
  }

  document.body.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (form && form.tagName === "FORM" && !form.closest("#desk-result")) {
      // The issue form and both look-ups: emptied, so no card number stays on screen.
      form.reset();
    }
  });
  document.body.addEventListener("htmx:afterSettle", backToCard);

  // A click on a link or a button (PDF, reprint, replace) leaves the focus on it:
  // take it back, so the next scan goes into the card field.
  document.addEventListener("click", function (event) {
    if (event.target.closest("a, button")) window.setTimeout(backToCard, 0);
  });

  // A printout of the page (a reader's data): a button, as the CSP allows no inline script.
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-print]")) window.print();
  });

  // A character typed where nothing types (a button, a link, the page) goes to the
  // card field: a scan starts with digits, so its Enter lands there too and never
  // presses the button that had the focus. Enter and Space alone still press
  // buttons for people using the keyboard.
  document.addEventListener("keydown", function (event) {
    var card = cardField();
    if (!card || typing(event.target) || event.ctrlKey || event.altKey || event.metaKey) return;
    if (event.key.length === 1 && event.key !== " ") card.focus({ preventScroll: true });
  }, true);
})();
