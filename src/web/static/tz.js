// Shows times in the browser's time zone: once a session, while no zone
// has been chosen, the page is reloaded with the browser's zone as `tz`,
// which the server then remembers. Without JavaScript, times show in UTC
// until a zone is chosen in the form.
(function () {
  'use strict';
  if (document.body.dataset.tzAuto !== '1') return;
  if (/[?&]tz=/.test(window.location.search)) return;
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    return;
  }
  if (!zone || zone === 'UTC' || zone === 'Etc/UTC') return;
  var url = new URL(window.location.href);
  url.searchParams.set('tz', zone);
  window.location.replace(url.toString());
})();
