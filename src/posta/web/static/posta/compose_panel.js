/* Writing without leaving the mail screen (issue 19). "New message" opens the editor
   in a panel over the screen (bottom right; the whole screen on phones), Reply,
   Reply all and Forward open it under the message being read. The editor is its
   own page in a same-origin frame (posta.web.compose_frame, compose_frame.js), so
   its autosave, attachments and checks are the full page's. After Send the panel
   closes, the user stays where they were, and a toast offers Undo for the undo
   window, then says how it went; the message leaves from the worker whatever the
   page does. Without scripts the links lead to the full compose page. */
(function () {
  "use strict";

  var current = null;  // {root, frame, opener, inline, context}

  function csrf() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; }
    catch (e) { return ""; }
  }
  function framed(href) {
    var url = new URL(href, window.location.href);
    url.searchParams.set("frame", "1");
    return url.pathname + url.search;
  }
  function frameApi(c) {
    try { return c.frame.contentWindow && c.frame.contentWindow.PostaCompose; } catch (e) { return null; }
  }
  // What the reader shows: an inline reply belongs to it and closes when it changes.
  function readerContext() {
    var message = document.getElementById("reader-message");
    var thread = document.getElementById("reader-thread");
    return message ? "m" + message.dataset.id : thread ? "t" + thread.dataset.thread : "";
  }

  function build(inline, title) {
    var template = document.getElementById("compose-panel-template");
    var root = template.content.firstElementChild.cloneNode(true);
    root.classList.toggle("inline", inline);
    if (inline) { root.setAttribute("role", "region"); }
    root.querySelector(".compose-panel-title").textContent = title;
    return root;
  }

  function open(href, options) {
    // On phones "New message" is in the folders' drawer: it closes (mail.js) first.
    var screen = document.getElementById("mail-screen");
    var drawer = document.getElementById("drawer-toggle");
    if (screen && drawer && screen.classList.contains("drawer-open")) { drawer.click(); }
    return close({ save: true, keepFocus: true }).then(function () {
      var inline = !!options.inline && !!document.getElementById("reader");
      var root = build(inline, options.title || "");
      var frame = root.querySelector("iframe");
      frame.title = options.title || frame.title;
      frame.src = framed(href);
      if (inline) {
        document.getElementById("reader").insertAdjacentElement("afterend", root);
      } else {
        document.body.appendChild(root);
      }
      current = { root: root, frame: frame, opener: options.opener || null, inline: inline, context: readerContext() };
      frame.addEventListener("load", function () {
        var title = "";
        try { title = frame.contentDocument.title; } catch (e) { title = ""; }
        if (title) { root.querySelector(".compose-panel-title").textContent = title; frame.title = title; }
      });
    });
  }

  // Close the panel; with `save`, its draft is saved first (the autosave's own call).
  function close(options) {
    var c = current;
    if (!c) { return Promise.resolve(); }
    current = null;
    c.root.hidden = true;
    var api = options.save ? frameApi(c) : null;
    var saved = api ? Promise.resolve(api.save()).catch(function () { return null; }) : Promise.resolve();
    return saved.then(function () {
      c.root.remove();
      if (!options.keepFocus) { giveFocusBack(c); }
    });
  }

  // The draft of a panel that goes away at once (the reader changed under an inline
  // reply): sent as a beacon, which outlives the frame.
  function saveAway(c) {
    var api = frameApi(c);
    if (!api || !api.dirty()) { return; }
    var form = c.frame.contentDocument.getElementById("compose-form");
    if (form) { navigator.sendBeacon(form.dataset.autosaveUrl, new FormData(form)); }
  }

  function giveFocusBack(c) {
    if (c.opener && c.opener.isConnected) { c.opener.focus(); return; }
    var compose = document.querySelector("a[data-compose=panel]");
    if (compose) { compose.focus(); }
  }

  function focusFrame(c) {
    var inner = null;
    try { inner = c.frame.contentWindow && c.frame.contentWindow.PostaComposeFrame; } catch (e) { inner = null; }
    if (inner) { inner.focus(); } else { c.frame.focus(); }
  }

  function minimise(on) {
    var c = current;
    if (!c || c.inline) { return; }
    c.root.classList.toggle("minimised", on);
    var button = c.root.querySelector(".compose-minimise");
    var label = on ? button.dataset.restore : button.dataset.minimise;
    button.setAttribute("aria-label", label);
    button.title = label;
    button.setAttribute("aria-expanded", on ? "false" : "true");
    if (on) { giveFocusBack(c); } else { focusFrame(c); }
  }

  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (!target) { return; }
    var link = target.closest("a[data-compose]");
    if (link && event.button === 0 && !(event.ctrlKey || event.metaKey || event.shiftKey || event.altKey)) {
      event.preventDefault();
      var inline = link.dataset.compose === "inline" && !!link.closest("#reader");
      open(link.href, { inline: inline, opener: link, title: link.textContent.trim() });
      return;
    }
    if (!current || !current.root.contains(target)) {
      if (target.closest("#compose-toast-undo")) { undo(); }
      if (target.closest("#compose-toast-close")) { hideToast(); }
      return;
    }
    if (target.closest(".compose-close")) { close({ save: true }); }
    else if (target.closest(".compose-minimise")) { minimise(!current.root.classList.contains("minimised")); }
    else if (target.closest(".compose-panel-head") && current.root.classList.contains("minimised")) { minimise(false); }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || !current || !(event.target instanceof Node) || !current.root.contains(event.target)) { return; }
    event.preventDefault();
    event.stopPropagation();
    escape();
  });
  function escape() {
    if (!current) { return; }
    if (current.inline) { close({ save: true }); } else { minimise(true); }
  }

  // Files dropped on the panel's header join the files dropped on the form itself.
  ["dragover", "drop"].forEach(function (name) {
    document.addEventListener(name, function (event) {
      if (!current || !(event.target instanceof Node) || !current.root.contains(event.target)) { return; }
      var api = frameApi(current);
      if (!api || !event.dataTransfer || Array.prototype.indexOf.call(event.dataTransfer.types || [], "Files") < 0) { return; }
      event.preventDefault();
      if (name === "drop" && event.dataTransfer.files.length) { api.upload(event.dataTransfer.files); }
    });
  });

  // The reader changed under an inline reply: its draft is kept, the reply closes.
  document.body.addEventListener("htmx:afterSwap", function (event) {
    var c = current;
    if (!c || !c.inline || !event.detail || !event.detail.target || event.detail.target.id !== "reader") { return; }
    if (readerContext() === c.context) { return; }
    saveAway(c);
    current = null;
    c.root.remove();
  });

  window.addEventListener("message", function (event) {
    var c = current;
    if (event.origin !== window.location.origin || !c || event.source !== c.frame.contentWindow) { return; }
    var data = event.data || {};
    if (data.posta !== "compose") { return; }
    if (data.type === "escape") {
      escape();
    } else if (data.type === "done") {
      close({ save: false });
      if (data.kind === "sent") { sending(data); } else { showToast(data.text, false); hideLater(8); }
    }
  });

  // --- The toast after Send: "Sending…" with Undo for the undo window, then the outcome.
  var toastTimer = null, pollTimer = null, sent = null;

  function toast() { return document.getElementById("compose-toast"); }
  function showToast(text, undoable) {
    var t = toast();
    if (!t) { return; }
    document.getElementById("compose-toast-text").textContent = text;
    document.getElementById("compose-toast-undo").hidden = !undoable;
    t.hidden = false;
    if (toastTimer) { window.clearTimeout(toastTimer); toastTimer = null; }
  }
  function hideLater(seconds) {
    if (toastTimer) { window.clearTimeout(toastTimer); }
    toastTimer = window.setTimeout(hideToast, seconds * 1000);
  }
  function hideToast() {
    var t = toast();
    if (t) { t.hidden = true; }
    if (toastTimer) { window.clearTimeout(toastTimer); toastTimer = null; }
  }
  function stopPolling() {
    if (pollTimer) { window.clearTimeout(pollTimer); pollTimer = null; }
  }

  function sending(data) {
    stopPolling();
    sent = { undoUrl: data.undoUrl, statusUrl: data.statusUrl, looks: 0 };
    var undoable = !!data.undoUrl && data.seconds > 0;
    showToast(data.text, undoable);
    pollTimer = window.setTimeout(look, Math.max(1, data.seconds) * 1000);
  }

  // After the window: ask how it went until the worker has carried it out.
  function look() {
    var s = sent;
    if (!s || !s.statusUrl) { return; }
    s.looks += 1;
    fetch(s.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (state) {
        if (sent !== s) { return; }
        if (state.remaining > 0) {
          pollTimer = window.setTimeout(look, state.remaining * 1000);
          return;
        }
        showToast(state.text, false);
        if (state.final) { sent = null; hideLater(8); }
        else if (s.looks < 120) { pollTimer = window.setTimeout(look, 2000); }
      })
      .catch(function () { if (sent === s && s.looks < 120) { pollTimer = window.setTimeout(look, 4000); } });
  }

  function undo() {
    var s = sent;
    if (!s || !s.undoUrl) { return; }
    stopPolling();
    document.getElementById("compose-toast-undo").hidden = true;
    fetch(s.undoUrl, {
      method: "POST", credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrf() }
    }).then(function (r) { return r.json(); }).then(function (answer) {
      if (answer.undone) {
        sent = null;
        hideToast();
        var compose = document.querySelector("a[data-compose=panel]");
        open(answer.edit_url, { inline: false, opener: compose, title: "" });
      } else {
        showToast(answer.text, false);
        look();
      }
    }).catch(function () { look(); });
  }
})();
