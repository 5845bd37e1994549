/* The rich-text editor's toolbar tooltips in the user's language. django-prose-editor
   passes its dialogs' words to gettext (Django's JavaScript catalog, loaded before
   it) but leaves its buttons' titles in English; they are translated here, as the
   editor draws them, through the same catalog. */
(function () {
  "use strict";
  if (typeof window.gettext !== "function") { return; }

  function translate(root) {
    root.querySelectorAll("button[title]").forEach(function (button) {
      if (!button.className || button.className.indexOf("__button") < 0 || button.dataset.translated) { return; }
      var words = window.gettext(button.getAttribute("title"));
      button.setAttribute("title", words);
      button.setAttribute("aria-label", words);
      button.dataset.translated = "1";
    });
  }

  new MutationObserver(function (changes) {
    changes.forEach(function (change) {
      change.addedNodes.forEach(function (node) { if (node instanceof Element) { translate(node); } });
    });
  }).observe(document.documentElement, { childList: true, subtree: true });
  document.addEventListener("DOMContentLoaded", function () { translate(document); });
})();
