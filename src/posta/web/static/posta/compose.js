/* The compose page (and the mail screen's compose panel, which shows it in a frame):
   signature follows the From, plain-text switch, autosave, address suggestions,
   attachments dropped anywhere on the page with a size check before upload and
   progress, scheduling behind the Send button's menu. */
(function () {
  "use strict";
  var form = document.getElementById("compose-form");
  if (!form) return;
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;

  // --- signature preview follows the From
  var signatures = JSON.parse(document.getElementById("signatures-data").textContent);
  var from = document.getElementById("id_account");
  var preview = document.getElementById("signature-preview");
  function showSignature() {
    // Trusted HTML: the user's own or the administrator's signature, sanitized on save;
    // shown under the text after the "-- " line, as the server adds it (RFC 3676 §4.3).
    var signature = signatures[from.value] || "";
    preview.innerHTML = signature ? '<div class="signature-separator">-- </div>' + signature : "";
  }
  from.addEventListener("change", showSignature);
  showSignature();

  // --- plain text or rich text
  var plain = document.getElementById("id_plain_text");
  function showBody() {
    document.getElementById("rich-body").hidden = plain.checked;
    document.getElementById("plain-body").hidden = !plain.checked;
  }
  plain.addEventListener("change", showBody);
  showBody();

  // --- autosave every few seconds while something changed, and when leaving
  var status = document.getElementById("autosave-status");
  var dirty = false;
  var submitting = false;
  form.addEventListener("input", function () { dirty = true; });
  form.addEventListener("change", function () { dirty = true; });
  form.addEventListener("submit", function () { submitting = true; });
  var inflight = Promise.resolve();
  function save() {
    if (!dirty || submitting) return inflight;
    dirty = false;
    inflight = fetch(form.dataset.autosaveUrl, {
      method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: {"X-CSRFToken": csrf}
    }).then(function (r) { return r.json(); }).then(function (data) {
      if (data.urls) adopt(data.urls);
      if (data.saved) status.textContent = status.dataset.savedText
        ? status.dataset.savedText + " " + data.at : data.at;
    }).catch(function () { dirty = true; });
    return inflight;
  }
  // The first autosave stores a draft that opening the page did not (GET writes
  // nothing): from then on the page posts to the stored draft's own URLs.
  function adopt(urls) {
    form.action = urls.edit;
    form.dataset.autosaveUrl = urls.autosave;
    document.getElementById("attach-form").action = urls.attach;
    Array.prototype.forEach.call(document.querySelectorAll("input[data-start]"), function (input) {
      input.remove();
    });
    if (window.location.pathname !== urls.edit) window.history.replaceState(null, "", urls.edit);
  }
  setInterval(save, 5000);
  window.addEventListener("pagehide", function () {
    if (dirty && !submitting) navigator.sendBeacon(form.dataset.autosaveUrl, new FormData(form));
  });

  // --- address suggestions from correspondents
  var list = document.getElementById("address-suggestions");
  var pending = null;
  Array.prototype.forEach.call(form.querySelectorAll("input.addresses"), function (input) {
    input.addEventListener("input", function () {
      var parts = input.value.split(/[,;]/);
      var last = parts.pop().trim();
      if (last.length < 2) return;
      clearTimeout(pending);
      pending = setTimeout(function () {
        fetch(form.dataset.addressesUrl + "?q=" + encodeURIComponent(last), {credentials: "same-origin"})
          .then(function (r) { return r.json(); })
          .then(function (data) {
            var prefix = parts.length ? parts.join(", ") + ", " : "";
            list.replaceChildren();
            data.addresses.forEach(function (address) {
              var option = document.createElement("option");
              option.value = prefix + address;
              list.appendChild(option);
            });
          });
      }, 200);
    });
  });

  // --- attachments: refuse over the limit before uploading, show progress
  var attachForm = document.getElementById("attach-form");
  var fileInput = document.getElementById("id_files");
  var progress = document.getElementById("attach-progress");
  var error = document.getElementById("attach-error");
  var limit = parseInt(attachForm.dataset.limitBytes, 10);
  var current = 0;
  Array.prototype.forEach.call(document.querySelectorAll("#attachment-list li"), function (li) {
    current += parseInt(li.dataset.size || "0", 10);
  });
  function upload(files) {
    var total = current;
    for (var i = 0; i < files.length; i++) total += files[i].size;
    error.hidden = true;
    if (total > limit) {
      error.textContent = error.dataset.tooLarge;
      error.hidden = false;
      fileInput.value = "";
      return;
    }
    // Save what is typed first: the page reloads once the files are stored.
    dirty = true;
    save().then(function () { send(files); });
  }
  function send(files) {
    var data = new FormData();
    for (var j = 0; j < files.length; j++) data.append("files", files[j]);
    // Still no stored draft (the autosave before failed): the upload stores it.
    Array.prototype.forEach.call(attachForm.querySelectorAll("input[data-start]"), function (input) {
      data.append(input.name, input.value);
    });
    var xhr = new XMLHttpRequest();
    xhr.open("POST", attachForm.action);
    xhr.setRequestHeader("X-CSRFToken", csrf);
    xhr.setRequestHeader("Accept", "application/json");
    progress.hidden = false;
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) progress.value = Math.round(100 * e.loaded / e.total);
    });
    xhr.addEventListener("load", function () {
      progress.hidden = true;
      if (xhr.status >= 200 && xhr.status < 300) {
        submitting = true;
        var stored = xhr.getResponseHeader("X-Posta-Draft-Url");
        if (stored) { window.location.assign(stored); } else { window.location.reload(); }
        return;
      }
      error.textContent = xhr.status === 413 ? error.dataset.tooLarge : xhr.statusText;
      error.hidden = false;
    });
    xhr.send(data);
  }
  fileInput.addEventListener("change", function () { if (fileInput.files.length) upload(fileInput.files); });
  // Files dropped anywhere on the page (the whole panel in the mail screen) attach;
  // caught before the editor sees them, which would otherwise ignore or open them.
  var drop = document.querySelector(".compose .drop");
  function carriesFiles(e) {
    return e.dataTransfer && Array.prototype.indexOf.call(e.dataTransfer.types || [], "Files") >= 0;
  }
  ["dragover", "dragenter"].forEach(function (name) {
    document.addEventListener(name, function (e) {
      if (!carriesFiles(e)) return;
      e.preventDefault();
      drop.classList.add("over");
    }, true);
  });
  document.addEventListener("dragleave", function (e) {
    if (!e.relatedTarget) drop.classList.remove("over");
  }, true);
  document.addEventListener("drop", function (e) {
    if (!carriesFiles(e)) return;
    e.preventDefault();
    e.stopPropagation();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) upload(e.dataTransfer.files);
  }, true);

  // --- "Schedule send…" in the Send button's menu shows the scheduling fields
  var schedule = document.getElementById("schedule-fields");
  var scheduleOpen = document.getElementById("schedule-open");
  function showSchedule(open) {
    schedule.hidden = !open;
    scheduleOpen.setAttribute("aria-expanded", open ? "true" : "false");
  }
  showSchedule(schedule.dataset.open === "1");
  scheduleOpen.addEventListener("click", function () {
    document.getElementById("send-menu").open = false;
    showSchedule(true);
    document.getElementById("id_quick").focus();
  });

  // For the compose panel (compose_panel.js, through the frame): save before the
  // panel closes, files dropped on the panel's own header.
  window.PostaCompose = {
    save: function () { return save(); },
    dirty: function () { return dirty && !submitting; },
    upload: upload
  };
})();
