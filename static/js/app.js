// Prefloop: toasts for errors and notices sent by the server in the HX-Trigger header.
(function () {
  "use strict";
  function toast(level, message, details) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var el = document.createElement("div");
    el.className = "toast toast-" + (level || "info");
    el.textContent = message || "Something went wrong.";
    if (Array.isArray(details) && details.length) {
      var ul = document.createElement("ul");
      details.slice(0, 10).forEach(function (d) {
        var li = document.createElement("li");
        li.textContent = (d.line ? "line " + d.line + ": " : "") + (d.field || "") + " — " + (d.message || "");
        ul.appendChild(li);
      });
      el.appendChild(ul);
    }
    box.appendChild(el);
    setTimeout(function () { el.remove(); }, level === "error" ? 8000 : 4000);
  }
  window.prefloopToast = toast;
  document.addEventListener("prefloop:toast", function (e) {
    var d = e.detail || {};
    toast(d.level, d.message, d.details);
  });
  document.addEventListener("htmx:sendError", function () {
    toast("error", "The server could not be reached. Your work is still on this page; try again.");
  });
  document.addEventListener("DOMContentLoaded", function () {
    if (!window.htmx) return;
    // Swap 422 responses (validation errors rendered in place); others show a toast.
    htmx.config.responseHandling = [
      {code: "204", swap: false},
      {code: "[23]..", swap: true},
      {code: "422", swap: true, error: false},
      {code: "[45]..", swap: false, error: true},
    ];
  });
})();
