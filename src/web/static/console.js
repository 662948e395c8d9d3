// Keeps the agent console's queue current without reloading: the server
// sends the queue's HTML (escaped on the server) every two seconds over
// server-sent events, and says when the session has ended.
(function () {
  'use strict';
  var queue = document.getElementById('queue');
  var summary = document.getElementById('queue-summary');
  if (!queue || !window.EventSource) return;
  var source = new EventSource('/agent/events');
  source.addEventListener('queue', function (event) {
    queue.innerHTML = event.data;
    var latest = queue.querySelector('[data-summary]');
    // Only a changed summary is written, so screen readers hear changes
    // in the queue rather than every tick.
    if (summary && latest && summary.textContent !== latest.dataset.summary) {
      summary.textContent = latest.dataset.summary;
    }
  });
  source.addEventListener('signed-out', function () {
    source.close();
    window.location.reload();
  });
  source.addEventListener('error', function () {
    // A refused stream (signed out, or the server gone) stays closed.
    if (source.readyState === EventSource.CLOSED) window.location.reload();
  });
  var live = document.getElementById('live');
  if (live) live.hidden = false;
})();
