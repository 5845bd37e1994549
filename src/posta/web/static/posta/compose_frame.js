/* The editor's pages inside the mail screen's compose panel (posta.web.compose_frame):
   tell the panel (compose_panel.js) when the form is ready, how tall it is, that
   Esc was pressed, and, on the page after Send or Schedule, what happened. */
(function () {
  "use strict";
  if (window.parent === window) return;

  function tell(message) {
    message.posta = "compose";
    window.parent.postMessage(message, window.location.origin);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var done = document.getElementById("compose-done");
    if (done) {
      tell({
        type: "done", kind: done.dataset.kind, text: done.dataset.text,
        seconds: parseInt(done.dataset.seconds || "0", 10),
        undoUrl: done.dataset.undoUrl, statusUrl: done.dataset.statusUrl
      });
      return;
    }
    tell({type: "ready", title: document.title});
    if ("ResizeObserver" in window) {
      new ResizeObserver(function () {
        tell({type: "height", height: document.documentElement.scrollHeight});
      }).observe(document.body);
    }
  });

  // Focus on the first thing to write: the recipients of a new message, else the
  // text; when the page loads, and when the panel comes back from being minimised.
  function focusFirst() {
    var to = document.getElementById("id_to");
    if (!to) return;
    var text = document.querySelector("#rich-body:not([hidden]) [contenteditable=true]")
      || document.querySelector("#plain-body:not([hidden]) textarea");
    var first = !to.value.trim() || !text ? to : text;
    window.focus();
    first.focus();
  }
  window.addEventListener("load", focusFirst);
  window.PostaComposeFrame = {focus: focusFirst};

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || event.defaultPrevented) return;
    var menu = document.querySelector("details.menu[open]");
    if (menu) { menu.open = false; return; }
    event.preventDefault();
    tell({type: "escape"});
  });
})();
