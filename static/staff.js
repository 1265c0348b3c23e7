// The desk: after each issue the card field is empty and focused for the next reader.
(function () {
  "use strict";
  document.body.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (form && form.id === "issue-form") {
      form.reset();
      var card = document.getElementById("card");
      if (card) card.focus();
    }
  });
})();
