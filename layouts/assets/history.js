/* Dash's renderer keeps every change of a callback input in its undo history
 * (store.getState().history.past), for the undo/redo buttons we never show -- and keeps it for
 * as long as the page is open: every tick of every dcc.Interval is an entry (the wall's clock
 * alone adds 3,600 an hour), and each entry copies the whole list when it is added. A wall runs
 * for days, so the list and the time to copy it would grow without end (bench/soak.py: 5,654
 * entries after 80 minutes, the JS heap +10 % over a shift). Trimmed here, every minute, to
 * the last KEEP entries on every page. */
(function () {
  "use strict";
  if (window.__gridhallHistoryTrim) {
    return;
  }
  window.__gridhallHistoryTrim = true;
  var KEEP = 50;
  var EVERY_MS = 60000;

  function trim(keep) {
    keep = typeof keep === "number" ? keep : KEEP;
    (window.dash_stores || []).forEach(function (store) {
      var history = store && typeof store.getState === "function" ? store.getState().history : null;
      var past = history && history.past;
      // In place: the renderer copies the list at its next entry, so it stays this short.
      if (Array.isArray(past) && past.length > keep) {
        past.splice(0, past.length - keep);
      }
    });
  }

  window.gridhallTrimHistory = trim;  // the tests call it at once, with a small keep
  window.setInterval(function () { trim(KEEP); }, EVERY_MS);
})();
