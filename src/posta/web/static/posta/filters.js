// The Filters tab: drag a filter to a new place; the order is saved at once.
// The up/down buttons do the same without a pointer (plain forms, no script).
(function () {
  "use strict";
  const list = document.getElementById("filter-list");
  if (!list) return;
  let dragged = null;
  function csrf() {
    const field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }
  function save() {
    const ids = Array.from(list.querySelectorAll("li[data-id]")).map((li) => li.dataset.id);
    const body = new URLSearchParams({ ids: ids.join(",") });
    fetch(list.dataset.orderUrl, {
      method: "POST",
      headers: { "X-CSRFToken": csrf(), "Content-Type": "application/x-www-form-urlencoded" },
      body: body,
      credentials: "same-origin",
    }).then((response) => {
      if (response.ok) window.location.reload();
    });
  }
  list.addEventListener("dragstart", (event) => {
    dragged = event.target.closest("li[data-id]");
    if (dragged) {
      dragged.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", dragged.dataset.id);
    }
  });
  list.addEventListener("dragover", (event) => {
    if (!dragged) return;
    event.preventDefault();
    const over = event.target.closest("li[data-id]");
    if (!over || over === dragged) return;
    const box = over.getBoundingClientRect();
    const after = event.clientY > box.top + box.height / 2;
    list.insertBefore(dragged, after ? over.nextSibling : over);
  });
  list.addEventListener("drop", (event) => {
    if (!dragged) return;
    event.preventDefault();
    dragged.classList.remove("dragging");
    dragged = null;
    save();
  });
  list.addEventListener("dragend", () => {
    if (dragged) dragged.classList.remove("dragging");
    dragged = null;
  });
})();
