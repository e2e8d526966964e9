/* When the session ends (expired, signed out elsewhere, account disabled) the server answers
 * a page's callback with 401: go to the sign-in page and come back here afterwards, instead
 * of leaving a page that silently stops updating. Wrapping fetch is the only hook Dash's
 * renderer offers for every callback request. */
(function () {
  "use strict";
  var original = window.fetch;
  if (!original || window.__gridhallSessionWatch) {
    return;
  }
  window.__gridhallSessionWatch = true;
  window.fetch = function (input, init) {
    return original.apply(this, arguments).then(function (response) {
      var url = typeof input === "string" ? input : (input && input.url) || "";
      if (response.status === 401 && url.indexOf("/_dash-") !== -1) {
        var here = window.location.pathname + window.location.search;
        window.location.assign("/login?next=" + encodeURIComponent(here));
      }
      return response;
    });
  };
})();
