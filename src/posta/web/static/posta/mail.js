/* The mail screen: selection, actions, drag and drop, keyboard, live title.
   Server-rendered with htmx; this file only wires what htmx attributes cannot. */
(function () {
  "use strict";

  var selected = new Set();   // message ids
  var selectedThreads = new Set();
  var everything = false;     // "select every message in this folder"
  var anchor = null;          // last row clicked, for shift ranges

  function screen() { return document.getElementById("mail-screen"); }
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#msglist li.msg")); }
  function openMessageId() {
    var reader = document.getElementById("reader-message");
    return reader ? reader.dataset.id : "";
  }

  function updateTitle() {
    var s = screen();
    var poll = document.getElementById("mail-poll");
    if (!s || !poll) { return; }
    var n = parseInt(poll.dataset.unread || "0", 10);
    document.title = (n > 0 ? "(" + n + ") " : "") + s.dataset.title + " · Posta";
  }

  function paint() {
    rows().forEach(function (row) {
      var on = selected.has(row.dataset.id);
      row.classList.toggle("selected", on);
      var box = row.querySelector("input.pick");
      if (box) { box.checked = on; }
    });
    var all = document.getElementById("pick-all");
    var list = rows();
    if (all) { all.checked = list.length > 0 && list.every(function (r) { return selected.has(r.dataset.id); }); }
    var note = document.getElementById("select-all-note");
    if (note) { note.hidden = !(all && all.checked && document.querySelector("#msglist li.more")); }
  }

  function setRow(row, on) {
    if (on) { selected.add(row.dataset.id); } else { selected.delete(row.dataset.id); }
    if (row.dataset.thread) {
      if (on) { selectedThreads.add(row.dataset.thread); } else { selectedThreads.delete(row.dataset.thread); }
    }
  }

  function clearSelection() {
    selected.clear(); selectedThreads.clear(); everything = false; paint();
  }

  function toggle(row, event) {
    var list = rows();
    if (event.shiftKey && anchor && list.indexOf(anchor) >= 0) {
      var a = list.indexOf(anchor), b = list.indexOf(row);
      var lo = Math.min(a, b), hi = Math.max(a, b);
      for (var i = lo; i <= hi; i++) { setRow(list[i], true); }
    } else {
      setRow(row, !selected.has(row.dataset.id));
      anchor = row;
    }
    paint();
  }

  function post(values) {
    var s = screen();
    if (!s || !window.htmx) { return; }
    window.htmx.ajax("POST", s.dataset.actUrl, { source: document.body, values: values, swap: "none" });
  }

  function act(action, extra) {
    // Moves and deletes act on the copies in the folders on screen, not on the
    // same message's copies in other folders or labels.
    var values = Object.assign({ action: action, scope: screen().dataset.scope }, extra || {});
    if (!values.ids && !values.threads) {
      if (everything) {
        values.all = "1"; values.scope = screen().dataset.scope;
      } else if (selected.size) {
        values.ids = Array.from(selected).join(",");
        if (selectedThreads.size) { values.threads = Array.from(selectedThreads).join(","); }
      } else if (openMessageId()) {
        values.ids = openMessageId();
      } else {
        var current = document.querySelector("#msglist li.msg.active");
        if (!current) { return; }
        values.ids = current.dataset.id;
        if (current.dataset.thread) { values.threads = current.dataset.thread; }
      }
    }
    post(values);
  }

  var MOVING = { move: 1, "delete": 1, archive: 1, spam: 1, notspam: 1 };

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) { return; }
    var box = target.closest("#msglist input.pick");
    if (box) { event.stopPropagation(); toggle(box.closest("li.msg"), event); return; }
    var open = target.closest("#msglist a.open");
    if (open && (event.ctrlKey || event.metaKey || event.shiftKey)) {
      event.preventDefault(); event.stopPropagation();
      toggle(open.closest("li.msg"), event);
      return;
    }
    if (open) {
      rows().forEach(function (r) { r.classList.remove("active"); });
      open.closest("li.msg").classList.add("active");
      anchor = open.closest("li.msg");
      return;
    }
    var tool = target.closest("[data-action]");
    if (tool) { act(tool.dataset.action); return; }
    var readerTool = target.closest("[data-act]");
    if (readerTool) {
      var values = {};
      if (readerTool.dataset.ids) { values.ids = readerTool.dataset.ids; }
      if (readerTool.dataset.threads) { values.threads = readerTool.dataset.threads; }
      if (readerTool.dataset.folder) { values.folder = readerTool.dataset.folder; }
      act(readerTool.dataset.act, values);
      return;
    }
    if (target.id === "pick-all") {
      var on = target.checked;
      rows().forEach(function (r) { setRow(r, on); });
      everything = false; paint(); return;
    }
    if (target.id === "select-everything") { everything = true; target.textContent = target.dataset.done || target.textContent; return; }
    var show = target.closest("button.show-images");
    if (show) {
      var frame = document.getElementById(show.dataset.frame);
      if (frame) {
        frame.src = frame.getAttribute("src") + (frame.getAttribute("src").indexOf("?") >= 0 ? "&" : "?") + "images=1";
      }
      var bar = show.closest(".remote-bar");
      if (bar) { bar.hidden = true; }
    }
  }, true);

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target instanceof HTMLSelectElement && target.id === "move-to" && target.value) {
      act("move", { target: target.value });
      target.value = "";
    }
  });

  // Drag rows onto a folder of the list to move them.
  document.addEventListener("dragstart", function (event) {
    var row = event.target instanceof Element ? event.target.closest("#msglist li.msg") : null;
    if (!row || !event.dataTransfer) { return; }
    if (!selected.has(row.dataset.id)) { clearSelection(); setRow(row, true); paint(); }
    event.dataTransfer.setData("text/plain", Array.from(selected).join(","));
    event.dataTransfer.effectAllowed = "move";
  });
  document.addEventListener("dragover", function (event) {
    var drop = event.target instanceof Element ? event.target.closest(".drop-target") : null;
    if (drop) { event.preventDefault(); drop.classList.add("drag-over"); }
  });
  document.addEventListener("dragleave", function (event) {
    var drop = event.target instanceof Element ? event.target.closest(".drop-target") : null;
    if (drop) { drop.classList.remove("drag-over"); }
  });
  document.addEventListener("drop", function (event) {
    var drop = event.target instanceof Element ? event.target.closest(".drop-target") : null;
    if (!drop || !event.dataTransfer) { return; }
    event.preventDefault();
    drop.classList.remove("drag-over");
    var ids = event.dataTransfer.getData("text/plain");
    if (ids) { act("move", { ids: ids, target: drop.dataset.folder }); }
  });

  // After a change: the list reloads itself (hx-trigger); the reader follows.
  document.body.addEventListener("mail-changed", function (event) {
    var detail = event.detail || {};
    var open = openMessageId();
    var ids = (detail.ids || []).map(String);
    if (!open || ids.indexOf(open) < 0) { return; }
    var reader = document.getElementById("reader");
    if (MOVING[detail.action]) {
      reader.innerHTML = "";
      return;
    }
    if (detail.action !== "seen" && window.htmx) {
      window.htmx.ajax("GET", "/mail/m/" + open + "/", { target: "#reader", swap: "innerHTML" });
    }
  });

  document.body.addEventListener("htmx:afterSettle", function (event) {
    var target = event.target;
    if (target && (target.id === "list" || target.closest && target.closest("#list"))) {
      var present = new Set(rows().map(function (r) { return r.dataset.id; }));
      selected.forEach(function (id) { if (!present.has(id)) { selected.delete(id); } });
      var open = openMessageId();
      rows().forEach(function (r) { r.classList.toggle("active", r.dataset.id === open); });
      paint();
    }
    updateTitle();
  });

  // Keyboard shortcuts (issue 4); never while typing.
  function move(step) {
    var list = rows();
    if (!list.length) { return; }
    var current = document.querySelector("#msglist li.msg.active");
    var index = current ? list.indexOf(current) + step : 0;
    index = Math.max(0, Math.min(list.length - 1, index));
    var link = list[index].querySelector("a.open");
    list[index].scrollIntoView({ block: "nearest" });
    if (link) { link.click(); }
  }

  document.addEventListener("keydown", function (event) {
    var t = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement || (t instanceof HTMLElement && t.isContentEditable)) { return; }
    if (!screen()) { return; }
    var key = event.key;
    var handled = true;
    if (key === "j") { move(1); }
    else if (key === "k") { move(-1); }
    else if (key === "Enter") {
      var current = document.querySelector("#msglist li.msg.active a.open");
      if (current) { current.click(); } else { move(0); }
    }
    else if (key === "s") {
      var reader = document.getElementById("reader-message");
      act(reader && reader.dataset.flagged === "1" && !selected.size ? "unflag" : "flag");
    }
    else if (key === "#") { act("delete"); }
    else if (key === "e") { act("archive"); }
    else if (key === "u") { act("unseen"); }
    else if (key === "r" || key === "a" || key === "f") {
      var link = document.querySelector('#reader [data-key="' + key + '"]');
      if (link) { link.click(); } else { handled = false; }
    }
    else if (key === "/") { var search = document.getElementById("mail-search"); if (search) { search.focus(); } }
    else if (key === "?") { var dialog = document.getElementById("shortcuts"); if (dialog && dialog.showModal) { dialog.showModal(); } }
    else if (key === "Escape") { clearSelection(); }
    else { handled = false; }
    if (handled) { event.preventDefault(); }
  });

  document.addEventListener("DOMContentLoaded", function () { updateTitle(); paint(); });
})();
