// A button with data-copy="ID" copies that input's value to the clipboard.
(function () {
  "use strict";
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", () => {
      const input = document.getElementById(button.dataset.copy);
      input.select();
      const done = () => { button.textContent = button.dataset.copied; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(done, () => {});
      } else {
        done();  // selected: the user copies it with the keyboard
      }
    });
  }
})();
