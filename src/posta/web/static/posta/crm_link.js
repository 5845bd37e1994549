// Compose's "Link to": record suggestions as the user types (GET /crm/search/).
// The field holds record references ("contact:12"), comma-separated; the list shows
// each record's name and kind.
(function () {
  "use strict";
  const input = document.querySelector("input.record-refs");
  const list = document.getElementById("record-suggestions");
  if (!input || !list) return;
  let timer = 0;
  input.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(suggest, 200);
  });

  function lastWord() {
    const parts = input.value.split(/[\s,;]+/);
    return parts[parts.length - 1] || "";
  }

  function suggest() {
    const word = lastWord();
    if (word.length < 2 || /^\w+:\d+$/.test(word)) return;
    const url = list.dataset.searchUrl + "?q=" + encodeURIComponent(word);
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { records: [] }; })
      .then(function (data) {
        const head = input.value.slice(0, input.value.length - word.length);
        list.replaceChildren();
        for (const rec of data.records) {
          const option = document.createElement("option");
          option.value = head + rec.ref;
          option.label = rec.name + " (" + rec.kind + ")" + (rec.email ? " " + rec.email : "");
          list.appendChild(option);
        }
      })
      .catch(function () { /* suggestions are a convenience only */ });
  }
})();
