/* Message bodies sized to their content.
 *
 * Why this way: a frame's height can only follow its document if somebody can
 * measure that document. Mail HTML must never run script, so the measuring cannot
 * happen inside (no postMessage from the body). The body frame is therefore
 * sandboxed with `allow-same-origin` and never with `allow-scripts`, both in the
 * iframe's sandbox attribute and in the sandbox directive of the frame's own
 * Content-Security-Policy (posta.web.mail.content.SANDBOX), which also says
 * `script-src 'none'`: nothing inside runs, whatever the sanitizer missed, while
 * this page script, which is Posta's own, may read the frame document's height.
 * Same origin with scripts off gives the body nothing it could use: it cannot
 * read cookies or the page without script, cannot submit forms (no allow-forms,
 * form-action 'none'), cannot navigate the top page (no allow-top-navigation),
 * and links open in new tabs without an opener.
 *
 * The height follows the content: on the frame's load (images that were there
 * from the start have arrived by then), whenever the frame document's root box
 * changes size (a ResizeObserver: late images, fonts, a narrower window, a phone
 * turned sideways), and when the frame's own width changes. Without script the
 * frames keep the fixed height of mail.css and scroll inside.
 */
(function () {
  "use strict";

  // A body whose styles tie its height to the frame's (100vh and the like) would
  // grow with every step; this is where the growing stops.
  var TALLEST = 30000;
  var watched = new WeakMap();

  function documentOf(frame) {
    try { return frame.contentDocument; } catch (e) { return null; }
  }

  function contentHeight(doc) {
    var root = doc.documentElement;
    if (!root) { return 0; }
    var height = root.getBoundingClientRect().height;
    // Content that overflows the root box (floats, positioned boxes) still counts.
    if (root.scrollHeight > root.clientHeight) { height = Math.max(height, root.scrollHeight); }
    var view = doc.defaultView;
    // A horizontal scrollbar (a table wider than the frame) takes height of its own.
    if (view && root.scrollWidth > root.clientWidth) {
      height += Math.max(0, view.innerHeight - root.clientHeight);
    }
    return Math.ceil(height);
  }

  function fit(frame) {
    var doc = documentOf(frame);
    if (!doc || !doc.documentElement || doc.readyState === "uninitialized") { return; }
    if (doc.location && doc.location.href === "about:blank") { return; }
    var height = Math.min(TALLEST, contentHeight(doc));
    if (height <= 0) { return; }
    frame.classList.add("fitted");
    var border = frame.offsetHeight - frame.clientHeight;
    var wanted = height + border;
    if (Math.abs(frame.offsetHeight - wanted) > 1) { frame.style.height = wanted + "px"; }
  }

  function watch(frame) {
    var doc = documentOf(frame);
    if (!doc || !doc.documentElement) { return; }
    var old = watched.get(frame);
    if (old && old.doc === doc) { fit(frame); return; }
    if (old) { old.observer.disconnect(); }
    var observer = null;
    if (window.ResizeObserver) {
      observer = new ResizeObserver(function () { fit(frame); });
      observer.observe(doc.documentElement);
      if (doc.body) { observer.observe(doc.body); }
      observer.observe(frame);
    }
    // Images that arrive after the load (the first layout, then each picture).
    doc.addEventListener("load", function () { fit(frame); }, true);
    watched.set(frame, { doc: doc, observer: observer || { disconnect: function () {} } });
    fit(frame);
  }

  function watchAll(root) {
    var scope = root && root.querySelectorAll ? root : document;
    scope.querySelectorAll("iframe.body-frame").forEach(function (frame) {
      var doc = documentOf(frame);
      if (doc && doc.readyState === "complete") { watch(frame); }
    });
  }

  // A frame's load event does not bubble, but the capture phase sees it: this
  // covers frames that htmx swaps in later and a frame whose src changes when
  // remote images are allowed.
  document.addEventListener("load", function (event) {
    var target = event.target;
    if (target instanceof HTMLIFrameElement && target.classList.contains("body-frame")) { watch(target); }
  }, true);
  document.addEventListener("htmx:afterSettle", function (event) { watchAll(event.target); });
  // No style attribute may reach htmx: the copy of the page it keeps for Back, or
  // the old frame whose attributes it carries over to a new one with the same id
  // while swapping, would bring it back as an inline style, which the page policy
  // (style-src 'self') refuses. The heights go first, and are measured again.
  function unfit(scope) {
    scope.querySelectorAll("iframe.body-frame[style]").forEach(function (frame) {
      frame.removeAttribute("style");
      frame.classList.remove("fitted");
    });
  }
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.querySelectorAll) { unfit(target); }
  });
  document.addEventListener("htmx:beforeHistorySave", function () {
    unfit(document);
    window.setTimeout(function () { watchAll(document); }, 0);
  });
  window.addEventListener("resize", function () { watchAll(document); });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { watchAll(document); });
  } else {
    watchAll(document);
  }
})();
