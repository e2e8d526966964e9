/* Clientside parts of the live page. Served from /assets like every other file:
   nothing on the page may come from a CDN. */
(function () {
  "use strict";

  // The server refresh polls every 2 s; this many ms without one good answer means the
  // web server (or the network to it) is gone, which no server-side banner can report.
  var OFFLINE_AFTER_MS = 10000;
  var lastAnswer = Date.now();
  var shownOffline = null;

  // Note every answered refresh (200 with data or 204 "unchanged"). Wrapping fetch is the
  // one place that sees both; the renderer's own hooks skip 204s.
  if (window.fetch && !window.fetch.__gridhall) {
    var realFetch = window.fetch;
    var watched = function (input, init) {
      var url = typeof input === "string" ? input : (input && input.url) || "";
      var pending = realFetch.apply(this, arguments);
      if (url.indexOf("_dash-update-component") !== -1) {
        pending.then(function (response) {
          if (response.ok) {
            lastAnswer = Date.now();
          }
        }, function () { /* a failed poll just does not count as an answer */ });
      }
      return pending;
    };
    watched.__gridhall = true;
    window.fetch = watched;
  }

  // Formatters are costly to build; keep one set per time zone.
  var cache = {};

  function formatters(tz) {
    var key = tz || "";
    if (!cache[key]) {
      var base = tz ? { timeZone: tz } : {};
      cache[key] = {
        time: new Intl.DateTimeFormat("zh-CN", Object.assign({
          hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23"
        }, base)),
        date: new Intl.DateTimeFormat("zh-CN", Object.assign({
          year: "numeric", month: "long", day: "numeric", weekday: "long"
        }, base))
      };
    }
    return cache[key];
  }

  function span(className, text) {
    return { namespace: "dash_html_components", type: "Span",
             props: { className: className, children: text } };
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    gridhall: Object.assign({}, (window.dash_clientside || {}).gridhall, {
      /* Wall clock in the city's time zone (not the browser's), and the offline banner. */
      clock: function (_n, config) {
        var noUpdate = window.dash_clientside.no_update;
        var f;
        try {
          f = formatters(config && config.tz);
        } catch (e) {
          f = formatters(null); // a zone this browser does not know: local time
        }
        var now = new Date();
        var offline = now.getTime() - lastAnswer > OFFLINE_AFTER_MS;
        var banner = noUpdate;
        var bannerClass = noUpdate;
        var state = offline ? "off:" + lastAnswer : "on";
        if (state !== shownOffline) {
          shownOffline = state;
          if (offline) {
            banner = [
              span("gh-banner__title", "数据已停止更新"),
              span("gh-banner__detail",
                   "与服务器的连接已中断（自 " + f.time.format(new Date(lastAnswer)) + " 起），正在重连")
            ];
            bannerClass = "gh-banner is-on";
          } else {
            banner = [];
            bannerClass = "gh-banner";
          }
        }
        return [f.time.format(now), f.date.format(now), banner, bannerClass];
      }
    })
  });
})();
