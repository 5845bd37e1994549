// Behaviour every page shares. It lives in a file because Posta's pages allow no
// inline script (Content-Security-Policy, posta.web.security): forms ask before a
// destructive submit (data-confirm), selects submit their form (data-autosubmit).
(function () {
  "use strict";

  // The rich-text editor (tiptap) adds a <style data-tiptap-style> with its rules
  // unless one is there; the policy admits an empty <style> only (its hash, on
  // editor pages), so an empty one is put there first. The rules are in posta.css.
  if (document.querySelector("[data-django-prose-editor-default], [data-django-prose-editor-configurable]")
      && !document.querySelector("style[data-tiptap-style]")) {
    var placeholder = document.createElement("style");
    placeholder.setAttribute("data-tiptap-style", "");
    document.head.appendChild(placeholder);
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form instanceof HTMLFormElement && form.dataset.confirm
        && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // The top bar's menu on narrow screens (posta.css folds the links behind it).
  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    var toggle = target ? target.closest("#menu-toggle") : null;
    var bar = document.querySelector(".topbar");
    if (!bar) { return; }
    if (toggle) {
      var open = !bar.classList.contains("menu-open");
      bar.classList.toggle("menu-open", open);
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    } else if (bar.classList.contains("menu-open") && !(target && target.closest("#topbar-menu"))) {
      bar.classList.remove("menu-open");
      var button = document.getElementById("menu-toggle");
      if (button) { button.setAttribute("aria-expanded", "false"); }
    }
  });

  document.addEventListener("change", function (event) {
    var select = event.target;
    if (select instanceof HTMLSelectElement && select.hasAttribute("data-autosubmit") && select.form) {
      select.form.submit();
    }
  });
})();
