/* Scenes of the wall (/wall): what one screen shows -- its layout (the whole wall, one panel
   full-screen, its tile of a mosaic), region, map metric and board -- and the playlist (轮播)
   that changes it on a timer. Every panel is always in the page; a scene only marks <html>
   (data-wall-layout, data-wall-board, the mosaic's tile; wall.css shows and arranges the panels)
   and asks the server, through the wall-scene store, for the new wall-config: the scene
   callback (callbacks/wall.py) checks the region against the viewer's scope and answers it.
   The page then opens the new scene's push stream and forgets its grid coordinate, so the next
   answer brings the new scene whole. The old scene stays on the screen until that answer is
   painted (at most SWITCH_MAX_MS): no reload, and no blank or half-filled panel between entries. */
(function () {
  "use strict";

  var SWITCH_MAX_MS = 3000;  // a slow answer does not hold the old scene longer than this
  var SETTLE_MS = 120;  // after the first answer is painted: the grids render their rows

  var W = (window.gridhall = window.gridhall || {});
  var wall = (W.wall = W.wall || {});
  var scene = (W.scene = W.scene || { n: 0, shown: 0, index: -1, timer: null, list: [], key: null,
                                      layout: null, pending: null, fallback: null });

  function setProps(id, props) {
    var dc = window.dash_clientside;
    if (dc && typeof dc.set_props === "function") { dc.set_props(id, props); return true; }
    return false;
  }

  // The marks wall.css reads: which panels show and how they are arranged.
  function mark(cfg) {
    var html = document.documentElement;
    html.setAttribute("data-wall-layout", cfg.layout || "wall");
    html.setAttribute("data-wall-board", cfg.board || "units");
    var t = cfg.layout === "mosaic" && cfg.tile ? cfg.tile : [1, 1, 1, 1];
    ["cols", "rows", "col", "row"].forEach(function (k, i) {
      html.style.setProperty("--mosaic-" + k, String(t[i]));
    });
  }

  // Put a scene on the screen: its panels, its titles, its map's fit.
  function show(cfg) {
    window.clearTimeout(scene.fallback);
    scene.pending = null;
    mark(cfg);
    [["wall-title", cfg.title], ["wall-map-title", cfg.mapTitle]].forEach(function (t) {
      var el = document.getElementById(t[0]);
      if (t[1] && el && el.textContent !== t[1]) { setProps(t[0], { children: t[1] }); }
    });
    if (wall.map && typeof wall.fitTo === "function" &&
        (String(wall.fitBox || null) !== String(cfg.bounds || null) || scene.layout !== cfg.layout)) {
      // after the new arrangement is laid out: the map's panel may have changed size
      window.setTimeout(function () { wall.fitTo(cfg.bounds || null); }, 30);
    }
    scene.layout = cfg.layout;
    scene.cfg = cfg;
    scene.shown = cfg.scene || 0;
    document.documentElement.setAttribute("data-wall-scene", String(scene.shown));
  }

  /* wall.js calls this once it painted a whole grid (the first answer of a new scene). */
  W.sceneReady = function () {
    var cfg = scene.pending;
    if (!cfg) { return; }
    scene.pending = null;
    window.setTimeout(function () { show(cfg); }, SETTLE_MS);
  };

  // Ask the server for a scene ({layout, region, metric, board, tile}); its answer is the new
  // wall-config (gridhall_scene.applied below).
  function ask(wanted) {
    scene.n += 1;
    setProps("wall-scene", { data: Object.assign({}, wanted, { n: scene.n }) });
  }

  function step() {
    if (!scene.list.length) { return; }
    scene.index = (scene.index + 1) % scene.list.length;
    var e = scene.list[scene.index];
    ask({ layout: e.layout, region: e.region || "", metric: e.metric, board: e.board || null });
    document.documentElement.setAttribute("data-wall-entry", String(scene.index));
    scene.timer = window.setTimeout(step, Math.max(1, e.dwell_s || 30) * 1000);
  }

  /* Play a screen's setting: its playlist from the first entry, or its fixed scene. Called
     with the page's own screen when it loads, and again whenever the shift lead changes it. */
  W.playScreen = function (screen) {
    showBanners(screen && screen.banners);
    W.screenSound = !!(screen && screen.sound);  // wallalerts.js beeps only where it is on
    // Only what the scene is made of: a banner posted does not restart the playlist.
    var key = JSON.stringify(screen ? [screen.layout, screen.region, screen.metric, screen.tile,
                                       screen.playlist] : null);
    if (key === scene.key) { return; }
    scene.key = key;
    window.clearTimeout(scene.timer);
    scene.timer = null;
    scene.index = -1;
    scene.list = (screen && Array.isArray(screen.playlist)) ? screen.playlist : [];
    if (scene.list.length) {
      step();
    } else if (screen && screen.layout) {
      ask({ layout: screen.layout, region: screen.region || "", metric: screen.metric,
            board: screen.board || null, tile: screen.tile || null });
    }
  };

  /* Broadcast banners (横幅通知) on this screen: built as text nodes (never markup), each gone at
     its expiry even without a word from the server (which also sends the list without it). */
  function showBanners(banners) {
    var box = document.getElementById("wall-broadcast");
    if (!box) { return; }
    window.clearTimeout(scene.bannerTimer);
    while (box.firstChild) { box.removeChild(box.firstChild); }
    var now = Date.now(), next = null;
    (banners || []).forEach(function (b) {
      var until = Date.parse(b.until);
      if (!(until > now)) { return; }
      next = next === null ? until : Math.min(next, until);
      var row = document.createElement("div");
      row.className = "wall-broadcast__item wall-broadcast__item--" + (b.level || "notice");
      row.setAttribute("data-banner", String(b.id));
      var label = document.createElement("span");
      label.className = "wall-broadcast__level";
      label.textContent = b.label || "通知";
      var text = document.createElement("span");
      text.className = "wall-broadcast__text";
      text.textContent = b.text || "";
      row.appendChild(label);
      row.appendChild(text);
      box.appendChild(row);
    });
    box.classList.toggle("is-on", box.childNodes.length > 0);
    document.documentElement.setAttribute("data-wall-banners", String(box.childNodes.length));
    if (next !== null) {
      scene.bannerTimer = window.setTimeout(function () { showBanners(banners); }, Math.max(250, next - now + 50));
    }
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    gridhall_scene: {
      /* wall-config changed: the page's first scene, or the scene callback's answer. */
      applied: function (cfg) {
        var noUpdate = window.dash_clientside.no_update;
        if (!cfg) { return noUpdate; }
        if (cfg.reload) {  // the scene's region is not in the map this page loaded
          var q = ["layout", "region", "metric", "board"].filter(function (k) { return cfg[k]; })
            .map(function (k) { return k + "=" + encodeURIComponent(cfg[k]); });
          window.location.assign("/wall" + (q.length ? "?" + q.join("&") : ""));
          return noUpdate;
        }
        wall.cfg = cfg;
        if (scene.layout === null) {  // the page's first scene: as the layout drew it
          show(cfg);
          return scene.shown;
        }
        if (scene.cfg && scene.cfg.sight === cfg.sight && scene.cfg.board === cfg.board) {
          show(cfg);  // the same figures in another arrangement: nothing to wait for
          return scene.shown;
        }
        // Compared with what the page really has (its open stream), not with the last config:
        // a grid update may have handed wall.js the new config already.
        if (wall.pushUrl && wall.pushUrl !== cfg.events && typeof wall.restartPush === "function") {
          wall.restartPush(cfg);
        } else if (typeof wall.askNow === "function") {
          wall.askNow();  // the figures of the new scene now, not at the next (pushed: 5 s) poll
        }
        scene.pending = cfg;
        window.clearTimeout(scene.fallback);
        scene.fallback = window.setTimeout(function () { if (scene.pending === cfg) { show(cfg); } },
                                           SWITCH_MAX_MS);
        return noUpdate;
      },
      /* Staleness badges per panel: {"live"|"ranking": "hh:mm:ss"} of what is late, from the
         health answer (callbacks/wall.py late_panels). */
      late: function (late) {
        late = late || {};
        document.querySelectorAll(".wall-late-badge[data-late]").forEach(function (el) {
          var since = late[el.getAttribute("data-late")];
          el.textContent = since ? "数据滞后 · 自 " + since : "";
          el.classList.toggle("is-on", !!since);
        });
        document.documentElement.setAttribute("data-wall-late", Object.keys(late).sort().join(","));
        return window.dash_clientside.no_update;
      },
      /* The page's screen (its playlist or fixed scene): play it. */
      screen: function (screen) {
        W.playScreen(screen);
        return window.dash_clientside.no_update;
      }
    }
  });
})();
