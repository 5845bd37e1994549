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
    // A move is held for the undo window, so the toast's Undo can call it back.
    if (MOVING[action]) { values.undo = "1"; }
    post(values);
  }

  var MOVING = { move: 1, "delete": 1, archive: 1, spam: 1, notspam: 1 };

  // --- The toast after a move, with Undo ----------------------------------------
  var toastTimer = null;
  var reopenUrl = "";  // the reader's message before the move, reopened by Undo

  function toast() { return document.getElementById("mail-toast"); }
  function hideToast() {
    var t = toast();
    if (t) { t.hidden = true; t.dataset.ticket = ""; }
    if (toastTimer) { window.clearTimeout(toastTimer); toastTimer = null; }
  }
  function showToast(text, ticket, seconds) {
    var t = toast();
    if (!t) { return; }
    document.getElementById("mail-toast-text").textContent = text;
    t.dataset.ticket = ticket || "";
    document.getElementById("mail-toast-undo").hidden = !ticket;
    t.hidden = false;
    if (toastTimer) { window.clearTimeout(toastTimer); }
    toastTimer = window.setTimeout(hideToast, Math.max(seconds || 0, 6) * 1000);
  }
  function undoLast() {
    var t = toast();
    if (!t || t.hidden || !t.dataset.ticket || !window.htmx) { return false; }
    window.htmx.ajax("POST", t.dataset.undoUrl, { source: document.body, values: { ticket: t.dataset.ticket }, swap: "none" });
    t.dataset.ticket = "";
    document.getElementById("mail-toast-undo").hidden = true;
    return true;
  }

  // Gmail's "auto-advance": after the open message moves away, the reader shows
  // the next one in the list (the previous one at the end), not an empty pane.
  function neighbourOf(row, gone) {
    var list = rows(), at = list.indexOf(row);
    var keep = function (r) { return !gone.has(r.dataset.id); };
    for (var i = at + 1; i < list.length; i++) { if (keep(list[i])) { return list[i]; } }
    for (var j = at - 1; j >= 0; j--) { if (keep(list[j])) { return list[j]; } }
    return null;
  }

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
      if (open.hasAttribute("hx-get")) { showReader(); }
      return;
    }
    if (target.closest("#back-to-list")) { backToList(); return; }
    if (target.closest("#mail-toast-undo")) { undoLast(); return; }
    if (target.closest("#mail-toast-close")) { hideToast(); return; }
    if (target.closest("#drawer-toggle")) { setDrawer(!screen().classList.contains("drawer-open")); return; }
    if (screen() && screen().classList.contains("drawer-open") && !target.closest("#mail-folders")) {
      setDrawer(false); event.preventDefault(); event.stopPropagation(); return;
    }
    var menu = target.closest("details.menu");
    if (menu && !target.closest("summary")) { menu.open = false; }
    document.querySelectorAll("details.menu[open]").forEach(function (m) { if (m !== menu) { m.open = false; } });
    var tool = target.closest("[data-action]");
    if (tool) { act(tool.dataset.action); return; }
    var readerTool = target.closest("[data-act]");
    if (readerTool) {
      event.preventDefault();  // the plain form (for pages without script) is not sent
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

  // The order of the list's rows before its last reload: a reload (the live poll's,
  // or the one the change itself triggers) may replace the rows before the change's
  // event is handled, and the next message is then found in this order.
  var previousOrder = [];
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && (target.id === "list" || (target.closest && target.closest("#list")))) {
      previousOrder = rows().map(function (r) { return r.dataset.id; });
    }
  });
  function neighbourById(id, gone) {
    var at = previousOrder.indexOf(id);
    if (at < 0) { return null; }
    var present = {};
    rows().forEach(function (r) { present[r.dataset.id] = r; });
    var pick = function (i) { var other = previousOrder[i]; return !gone.has(other) && present[other] ? present[other] : null; };
    for (var i = at + 1; i < previousOrder.length; i++) { if (pick(i)) { return pick(i); } }
    for (var j = at - 1; j >= 0; j--) { if (pick(j)) { return pick(j); } }
    return null;
  }

  // After a change: the list reloads itself (hx-trigger); the reader follows.
  document.body.addEventListener("mail-changed", function (event) {
    var detail = event.detail || {};
    if (detail.toast) { showToast(detail.toast, detail.undo, detail.seconds); }
    if (detail.action === "undo" && reopenUrl && window.htmx) {
      window.htmx.ajax("GET", reopenUrl, { target: "#reader", swap: "innerHTML" });
      reopenUrl = "";
      return;
    }
    var open = openMessageId();
    var ids = (detail.ids || []).map(String);
    var active = document.querySelector("#msglist li.msg.active");
    var shown = open || (document.getElementById("reader-thread") && active ? active.dataset.id : "");
    if (!shown || ids.indexOf(shown) < 0) { return; }
    var reader = document.getElementById("reader");
    if (MOVING[detail.action]) {
      // The list reloads itself after this event: its rows are still the old ones
      // (a reload of a moment ago may have replaced them, so find the row again).
      var gone = new Set(ids);
      var still = rows().filter(function (r) { return r.dataset.id === shown; })[0];
      var link = still ? still.querySelector("a.open") : null;
      reopenUrl = link ? (link.getAttribute("hx-get") || "") : "/mail/m/" + shown + "/";
      var next = still ? neighbourOf(still, gone) : neighbourById(shown, gone);
      var nextLink = next ? next.querySelector("a.open[hx-get]") : null;
      if (nextLink && window.htmx) {
        // Loaded here rather than by a click: the row may be one htmx has not
        // processed yet (the list was just replaced), and a click would leave the page.
        rows().forEach(function (r) { r.classList.toggle("active", r === next); });
        anchor = next;
        window.htmx.ajax("GET", nextLink.getAttribute("hx-get"), { target: "#reader", swap: "innerHTML" });
        var state = window.history.state;
        if (nextLink.getAttribute("hx-push-url")) { window.history.replaceState(state, "", nextLink.getAttribute("hx-push-url")); }
        return;
      }
      reader.innerHTML = "";
      if (singlePane() && screen().classList.contains("reading")) { backToList(); }
      return;
    }
    // Not after "Mark as unread": reloading the open message would mark it read again.
    if (detail.action !== "seen" && detail.action !== "unseen" && window.htmx) {
      window.htmx.ajax("GET", "/mail/m/" + open + "/", { target: "#reader", swap: "innerHTML" });
    }
  });

  document.body.addEventListener("htmx:afterSettle", function (event) {
    var target = event.target;
    if (target && target.id === "reader") {
      var shownId = openMessageId();
      if (shownId) { rows().forEach(function (r) { r.classList.toggle("active", r.dataset.id === shownId); }); }
    }
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
    else if (key === "z") { handled = undoLast(); }
    else if (key === "r" || key === "a" || key === "f") {
      var link = document.querySelector('#reader [data-key="' + key + '"]');
      if (link) { link.click(); } else { handled = false; }
    }
    else if (key === "/") { var search = document.getElementById("mail-search"); if (search) { search.focus(); } }
    else if (key === "?") { var dialog = document.getElementById("shortcuts"); if (dialog && dialog.showModal) { dialog.showModal(); } }
    else if (key === "Escape") {
      if (screen().classList.contains("drawer-open")) { setDrawer(false); } else { clearSelection(); }
    }
    else { handled = false; }
    if (handled) { event.preventDefault(); }
  });

  // --- One pane at a time on phones -------------------------------------------
  // Opening a message pushes its URL (hx-push-url) and shows the reader in place of
  // the list; Back (the browser's or ours) returns to the list URL, whose page htmx
  // restores from its history cache, and the list's scroll position is put back
  // from sessionStorage (the hidden list loses it, and htmx keeps only the window's).
  var phone = window.matchMedia("(max-width: 800px)");
  var SCROLL_KEY = "posta-list-scroll:";
  var BACK_KEY = "posta-opened-from:";

  // The same single pane on wide screens when the user picks "List only". The page
  // switches at once; the choice is kept on the server for the user (it follows
  // them to another browser) and the server renders the next page with it.
  var listOnlyNow = null;
  function listOnly() { var s = screen(); return !!s && s.classList.contains("list-only"); }
  function singlePane() { return phone.matches || listOnly(); }
  function applyLayout(on, save) {
    var s = screen(), button = document.getElementById("layout-switch");
    if (!s) { return; }
    s.classList.toggle("list-only", on);
    listOnlyNow = on;
    if (button) { button.setAttribute("aria-pressed", on ? "true" : "false"); }
    if (save && window.htmx && s.dataset.listOnlyUrl) {
      window.htmx.ajax("POST", s.dataset.listOnlyUrl, { source: document.body, values: { on: on ? "1" : "0" }, swap: "none" });
    }
  }
  function restoreLayout() {
    // A page from htmx's history was rendered before a later switch.
    if (listOnlyNow !== null) { applyLayout(listOnlyNow, false); }
  }
  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element ? event.target.closest("#layout-switch") : null;
    if (button) { applyLayout(!listOnly(), true); }
  });
  document.body.addEventListener("htmx:historyRestore", restoreLayout);

  function listBody() { return document.getElementById("list"); }
  function listPath(url) {
    var u = new URL(url || window.location.href);
    u.searchParams.delete("m"); u.searchParams.delete("t");
    return u.pathname + u.search;
  }
  function opensMessage(url) {
    var u = new URL(url || window.location.href);
    return u.searchParams.has("m") || u.searchParams.has("t");
  }
  function remember(key, value) { try { window.sessionStorage.setItem(key, value); } catch (e) { /* private mode */ } }
  function recall(key) { try { return window.sessionStorage.getItem(key); } catch (e) { return null; } }

  function showReader() {
    var s = screen(), body = listBody();
    if (!s) { return; }
    if (body && !s.classList.contains("reading")) {
      remember(SCROLL_KEY + listPath(), String(body.scrollTop));
      remember(BACK_KEY + listPath(), "1");
    }
    s.classList.add("reading");
    var pane = document.getElementById("reader");
    if (pane) { pane.scrollTop = 0; }
  }

  function showList(options) {
    var s = screen();
    if (!s) { return; }
    s.classList.remove("reading");
    var body = listBody();
    var saved = recall(SCROLL_KEY + listPath());
    if (options.restoreScroll && body && saved !== null) { body.scrollTop = parseInt(saved, 10) || 0; }
  }

  function backToList() {
    // Our own history entry leads back: use it, so the browser's Forward works too.
    if (opensMessage() && recall(BACK_KEY + listPath()) === "1" && window.history.state && window.history.state.htmx) {
      window.history.back();
      return;
    }
    var button = document.getElementById("back-to-list");
    window.location.assign(button && button.dataset.listUrl ? button.dataset.listUrl : listPath());
  }

  function setDrawer(open) {
    var s = screen(), toggle = document.getElementById("drawer-toggle");
    if (!s) { return; }
    s.classList.toggle("drawer-open", open);
    if (toggle) { toggle.setAttribute("aria-expanded", open ? "true" : "false"); }
    if (open) { var first = s.querySelector("#mail-folders a"); if (first) { first.focus(); } }
  }

  // After Back or Forward (htmx's restore, or the browser's page cache), and on load.
  function followLocation(options) {
    if (!screen()) { return; }
    setDrawer(false);
    if (opensMessage()) { screen().classList.add("reading"); } else { showList(options); }
  }
  document.body.addEventListener("htmx:historyRestore", function () { followLocation({ restoreScroll: true }); });
  window.addEventListener("pageshow", function (event) { if (event.persisted) { followLocation({ restoreScroll: true }); } });

  // --- The list/reader split ----------------------------------------------------
  // Its width is kept per user (several people may share a browser); it is set
  // through a constructed style sheet because the policy forbids style attributes.
  var MIN_LIST = 288, KEY_STEP = 32;
  var splitSheet = null;

  function splitKey() { var s = screen(); return "posta-list-width:" + (s ? s.dataset.user : ""); }
  function maxList() {
    var s = screen(), folders = document.getElementById("mail-folders");
    var width = s ? s.getBoundingClientRect().width : window.innerWidth;
    return Math.max(MIN_LIST, width - (folders ? folders.getBoundingClientRect().width : 0) - 320);
  }
  function listWidth() { var list = document.getElementById("mail-list"); return list ? list.getBoundingClientRect().width : MIN_LIST; }

  function applySplit(px, save) {
    var width = Math.round(Math.max(MIN_LIST, Math.min(maxList(), px)));
    if (!splitSheet && "adoptedStyleSheets" in document) {
      splitSheet = new CSSStyleSheet();
      document.adoptedStyleSheets = document.adoptedStyleSheets.concat([splitSheet]);
    }
    if (splitSheet) { splitSheet.replaceSync(".mail-screen { --list-width: " + width + "px; }"); }
    if (save) { try { window.localStorage.setItem(splitKey(), String(width)); } catch (e) { /* storage off */ } }
    paintSplit();
  }

  function paintSplit() {
    var split = document.getElementById("split");
    if (!split) { return; }
    split.setAttribute("aria-valuemin", String(MIN_LIST));
    split.setAttribute("aria-valuemax", String(Math.round(maxList())));
    split.setAttribute("aria-valuenow", String(Math.round(listWidth())));
  }

  function restoreSplit() {
    var saved = null;
    try { saved = window.localStorage.getItem(splitKey()); } catch (e) { saved = null; }
    if (saved) { applySplit(parseInt(saved, 10), false); } else { paintSplit(); }
  }

  var dragging = null;
  document.addEventListener("pointerdown", function (event) {
    var split = event.target instanceof Element ? event.target.closest("#split") : null;
    if (!split) { return; }
    var list = document.getElementById("mail-list");
    dragging = { split: split, left: list ? list.getBoundingClientRect().left : 0 };
    split.setPointerCapture(event.pointerId);
    split.classList.add("dragging");
    event.preventDefault();
  });
  document.addEventListener("pointermove", function (event) {
    if (dragging) { applySplit(event.clientX - dragging.left, false); }
  });
  document.addEventListener("pointerup", function (event) {
    if (!dragging) { return; }
    applySplit(event.clientX - dragging.left, true);
    dragging.split.classList.remove("dragging");
    dragging = null;
  });
  document.addEventListener("keydown", function (event) {
    if (!(event.target instanceof Element) || event.target.id !== "split") { return; }
    var now = listWidth(), next = null;
    if (event.key === "ArrowLeft") { next = now - KEY_STEP; }
    else if (event.key === "ArrowRight") { next = now + KEY_STEP; }
    else if (event.key === "Home") { next = MIN_LIST; }
    else if (event.key === "End") { next = maxList(); }
    if (next === null) { return; }
    event.preventDefault(); event.stopImmediatePropagation();
    applySplit(next, true);
  }, true);

  document.addEventListener("DOMContentLoaded", function () { updateTitle(); paint(); restoreSplit(); restoreLayout(); followLocation({ restoreScroll: false }); });
})();
