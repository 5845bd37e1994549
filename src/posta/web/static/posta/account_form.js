// Account tab: an account type fills its servers and shows them read-only; Custom
// makes them editable. SMTP fields follow the type unless "Custom SMTP" is ticked.
(function () {
  "use strict";
  const form = document.getElementById("account-form");
  if (!form) return;
  const presets = JSON.parse(document.getElementById("presets-data").textContent);
  const oauthData = JSON.parse(document.getElementById("oauth-data").textContent);
  const save = document.getElementById("account-save");
  const saveLabel = save.textContent;
  const type = form.elements["account_type"];
  const smtpCustom = form.elements["smtp_custom"];
  const auth = form.elements["auth_method"];
  const imapFields = ["imap_host", "imap_port", "imap_security"];
  const smtpFields = ["smtp_host", "smtp_port", "smtp_security", "smtp_auth"];

  function setLocked(names, locked) {
    for (const name of names) {
      const el = form.elements[name];
      if (!el) continue;
      // readonly keeps the value posted; selects and checkboxes have no readonly.
      if (el.tagName === "SELECT" || el.type === "checkbox") {
        el.classList.toggle("locked", locked);
        el.setAttribute("aria-readonly", locked ? "true" : "false");
      } else {
        el.readOnly = locked;
      }
    }
  }

  function fill(preset, names) {
    for (const name of names) {
      const el = form.elements[name];
      if (!el || !(name in preset)) continue;
      if (el.type === "checkbox") el.checked = Boolean(preset[name]); else el.value = preset[name];
    }
  }

  function update() {
    const preset = presets[type.value];
    const custom = !preset;
    if (preset) fill(preset, imapFields);
    setLocked(imapFields, !custom);
    const smtpOwn = custom || (smtpCustom && smtpCustom.checked);
    if (preset && !smtpOwn) fill(preset, smtpFields);
    setLocked(smtpFields, !smtpOwn);
    if (smtpCustom) smtpCustom.closest(".field").hidden = custom;
    const notices = document.getElementById("preset-notices");
    notices.replaceChildren(...((preset && preset.notices) || []).map((text) => {
      const p = document.createElement("p");
      p.className = "notice";
      p.textContent = text;
      return p;
    }));
    // OAuth2: Gmail and Office365 sign in with Google and Microsoft, every other
    // type that offers it with the administrator's custom provider.
    const oauthOption = auth && auth.querySelector('option[value="oauth2"]');
    const offersOauth = !preset || preset.oauth2;
    if (oauthOption) oauthOption.disabled = !offersOauth;
    const oauth = Boolean(auth && auth.value === "oauth2" && offersOauth);
    const provider = oauthData.providers[(preset && preset.oauth_kind) || "custom"];
    document.getElementById("oauth-notice").hidden = !oauth;
    document.getElementById("oauth-ready").hidden = !(oauth && provider.configured);
    document.getElementById("oauth-unconfigured").hidden = !(oauth && !provider.configured);
    for (const name of ["password", "smtp_password"]) {
      const field = document.getElementById("field-" + name);
      if (field) field.hidden = oauth;
    }
    save.textContent = oauth ? save.dataset.signinLabel.replace("{provider}", provider.name) : saveLabel;
    save.disabled = oauth && !provider.configured;
  }

  // Locked selects and checkboxes ignore changes made by the user.
  form.addEventListener("mousedown", (e) => { if (e.target.classList && e.target.classList.contains("locked")) e.preventDefault(); });
  form.addEventListener("keydown", (e) => { if (e.target.classList && e.target.classList.contains("locked") && e.key !== "Tab") e.preventDefault(); });
  // The save tests IMAP and SMTP logins (seconds): show that it works, and keep a
  // second click from starting a second test. The page that answers replaces this
  // one, so nothing re-enables the button.
  const progress = document.getElementById("account-progress");
  form.addEventListener("submit", (e) => {
    if (save.disabled) { e.preventDefault(); return; }
    // Disabled after the submission has taken the form's data.
    setTimeout(() => { save.disabled = true; }, 0);
    save.setAttribute("aria-busy", "true");
    progress.hidden = false;
  });
  // Coming back with the browser's Back button shows the cached page as it was left.
  window.addEventListener("pageshow", (e) => {
    if (!e.persisted) return;
    save.disabled = false;
    save.removeAttribute("aria-busy");
    progress.hidden = true;
  });
  type.addEventListener("change", update);
  if (smtpCustom) smtpCustom.addEventListener("change", update);
  if (auth) auth.addEventListener("change", update);
  update();
})();
