// The sending page: counts the undo delay down, then looks again; while a message
// is being handed over (no undo delay), looks again shortly, a few times.
(function () {
  "use strict";
  var status = document.getElementById("sending-status");
  var counter = document.getElementById("undo-seconds");
  if (status && status.dataset.pending) {
    var params = new URLSearchParams(window.location.search);
    var looks = parseInt(params.get("looks") || "0", 10);
    if (looks < 20) setTimeout(function () {
      params.set("looks", String(looks + 1));
      window.location.search = params.toString();
    }, 1500);
  }
  if (!status || !status.dataset.remaining || !counter) return;
  var left = parseInt(status.dataset.remaining, 10);
  var timer = setInterval(function () {
    left -= 1;
    if (left <= 0) { clearInterval(timer); window.location.reload(); return; }
    counter.textContent = left;
  }, 1000);
})();
