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

  document.addEventListener("change", function (event) {
    var select = event.target;
    if (select instanceof HTMLSelectElement && select.hasAttribute("data-autosubmit") && select.form) {
      select.form.submit();
    }
  });
})();
