/* When the session ends (expired, signed out elsewhere, account disabled) the server answers
 * a page's callback with 401: go to the sign-in page and come back here afterwards, instead
 * of leaving a page that silently stops updating. Wrapping fetch is the only hook Dash's
 * renderer offers for every callback request.
 * While Redis is unreachable the server cannot confirm the session and answers 503 (never 401,
 * docs/security.md): the page stays, with a banner saying so, until a callback works again. */
(function () {
  "use strict";
  var original = window.fetch;
  if (!original || window.__gridhallSessionWatch) {
    return;
  }
  window.__gridhallSessionWatch = true;
  var BANNER_ID = "gh-session-unavailable";

  function banner(show) {
    var el = document.getElementById(BANNER_ID);
    if (!show) {
      if (el) {
        el.remove();
      }
      return;
    }
    if (el) {
      return;
    }
    el = document.createElement("div");
    el.id = BANNER_ID;
    el.setAttribute("role", "alert");
    el.className = "gh-session-unavailable";
    // Styled here: the banner belongs to this script on every page (the wall, /explore, /view).
    el.style.cssText = "position:fixed;top:0;left:0;right:0;z-index:100000;padding:0.6em 1em;" +
      "background:#b45309;color:#fff;font-size:1.1rem;text-align:center;";
    el.textContent = "会话服务暂时不可用：画面暂停更新，恢复后自动继续，无需重新登录";
    document.body.appendChild(el);
  }

  window.fetch = function (input, init) {
    return original.apply(this, arguments).then(function (response) {
      var url = typeof input === "string" ? input : (input && input.url) || "";
      if (url.indexOf("/_dash-") !== -1) {
        if (response.status === 401) {
          var here = window.location.pathname + window.location.search;
          window.location.assign("/login?next=" + encodeURIComponent(here));
        } else if (response.status === 503) {
          banner(true);
        } else if (response.ok) {
          banner(false);
        }
      }
      return response;
    });
  };
})();
