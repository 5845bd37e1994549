/* Shared conversations: suggestions for @mentions in the comment boxes.
   The colleagues are rendered by the server beside each box (ul.mention-list);
   typing "@" and a few letters shows the matching ones, a click puts
   "@user-name " in place of what was typed. */
(function () {
  "use strict";

  var SHOWN = 8;

  function typed(box) {
    var before = box.value.slice(0, box.selectionStart || 0);
    var match = /(^|[\s(])@([\w.+-]*)$/.exec(before);
    return match ? match[2] : null;
  }

  function listFor(box) {
    var form = box.closest("form");
    return form ? form.querySelector("ul.mention-list") : null;
  }

  function refresh(box) {
    var list = listFor(box);
    if (!list) { return; }
    var word = typed(box);
    var shown = 0;
    Array.prototype.forEach.call(list.querySelectorAll("li"), function (item) {
      var hay = (item.dataset.name + " " + item.textContent).toLowerCase();
      var on = word !== null && shown < SHOWN && hay.indexOf(word.toLowerCase()) >= 0;
      item.hidden = !on;
      if (on) { shown += 1; }
    });
    list.hidden = shown === 0;
  }

  document.addEventListener("input", function (event) {
    var box = event.target;
    if (box instanceof HTMLTextAreaElement && box.hasAttribute("data-mentions")) { refresh(box); }
  });

  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("ul.mention-list button") : null;
    if (!button) { return; }
    var form = button.closest("form");
    var box = form ? form.querySelector("textarea[data-mentions]") : null;
    if (!box) { return; }
    var caret = box.selectionStart || 0;
    var before = box.value.slice(0, caret).replace(/@[\w.+-]*$/, "@" + button.dataset.name + " ");
    box.value = before + box.value.slice(caret);
    box.focus();
    box.setSelectionRange(before.length, before.length);
    refresh(box);
  });
})();
