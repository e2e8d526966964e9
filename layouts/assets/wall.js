/* Clientside parts of the wall (/wall): heatmap colouring, hot-spot outlines, page turning.
   The grid geometry is loaded once (GeoJSON by URL); afterwards the server only sends the
   values of the cells that changed, and this file restyles those cells in place -- no
   layer is rebuilt, so nothing flickers and 100,000 cells cost nothing per update. */
(function () {
  "use strict";

  var W = (window.gridhall = window.gridhall || {});
  var wall = (W.wall = W.wall || {
    values: {},   // grid code -> current value of the map's metric
    layers: {},   // grid code -> Leaflet layer (registered by onGrid)
    hot: [],      // codes outlined as hot spots
    cfg: null,
    fitted: false
  });

  var EMPTY = { stroke: true, color: "#24436e", weight: 0.5, opacity: 0.9, fill: true,
                fillColor: "#0d1d38", fillOpacity: 0.7 };

  // The class breaks and the colour ramp come from the server (wall-config, defined in
  // dashboard/figures/heat.py); no cell has a value before the first update brings them.
  function colour(v) {
    var c = wall.cfg || { breaks: [], colours: [] };
    var out = null;
    for (var i = 0; i < c.breaks.length; i++) {
      if (v >= c.breaks[i]) { out = c.colours[i]; }
    }
    return out;
  }

  function styleFor(code) {
    var v = wall.values[code] || 0;
    var fill = v > 0 ? colour(v) : null;
    var hot = wall.hot.indexOf(code) !== -1;
    var s = fill ? { stroke: true, color: "#0b1830", weight: 0.4, opacity: 0.8, fill: true,
                     fillColor: fill, fillOpacity: 0.88 } : EMPTY;
    if (hot) {
      s = Object.assign({}, s, { color: "#ffffff", weight: 3, opacity: 1 });
    }
    return s;
  }

  wall.gridStyle = function (feature) {
    return styleFor(feature.properties.c);
  };

  wall.onGrid = function (feature, layer) {
    var code = feature.properties.c;
    wall.layers[code] = layer;
    layer.options.interactive = true;
    layer.on("click", function () { wall.openGrid(code); });
  };

  // A person at a desk (not a wall screen) drills from a cell or a hot spot into /explore;
  // the layout marks the page with data-explore only for roles that may open it.
  wall.openGrid = function (code) {
    var root = document.getElementById("wall-root");
    if (root && root.getAttribute("data-explore") === "1" && /^[0-9]{14,15}$/.test(code)) {
      window.location.assign("/explore?region=" + code);  // region= takes a grid code too (selection.py)
    }
  };

  document.addEventListener("click", function (event) {
    var item = event.target.closest ? event.target.closest(".wall-hot__item[data-grid]") : null;
    if (item) {
      wall.openGrid(item.getAttribute("data-grid"));
    }
  });

  // A region's outline by its code: a street's surge is ringed around it (wallsurges.js).
  wall.onBoundary = function (feature, layer) {
    wall.boundaries = wall.boundaries || {};
    if (feature.properties && feature.properties.c) { wall.boundaries[feature.properties.c] = layer; }
  };

  wall.boundaryStyle = function (feature) {
    if (feature.properties.l === "district") {
      return { color: "#9fdcff", weight: 2.6, opacity: 0.95, fill: false };
    }
    if (feature.properties.l === "community") {  // a district's or street's wall outlines its communities
      return { color: "#4a6f9c", weight: 0.8, opacity: 0.8, dashArray: "1 3", fill: false };
    }
    return { color: "#5f8fc8", weight: 1.2, opacity: 0.85, dashArray: "4 4", fill: false };
  };

  wall.restyle = function (code) { restyle(code); };  // wallalerts.js: a flashing cell back to its colour

  function restyle(code) {
    var layer = wall.layers[code];
    if (layer && layer.setStyle) {
      layer.setStyle(styleFor(code));
    }
  }

  // Apply a {full, values, hot} update from the server; returns the number of cells styled.
  function applyGrid(data) {
    if (!data) { return 0; }
    var n = 0;
    var code;
    if (data.full) {
      var old = wall.values;
      wall.values = data.values || {};
      for (code in wall.layers) {
        if ((old[code] || 0) !== (wall.values[code] || 0) || data.force) { restyle(code); n++; }
      }
    } else {
      for (code in data.values || {}) {
        var v = data.values[code];
        if (v) { wall.values[code] = v; } else { delete wall.values[code]; }
        restyle(code);
        n++;
      }
    }
    if (data.hot) {
      var before = wall.hot;
      wall.hot = data.hot;
      before.forEach(function (c) { if (wall.hot.indexOf(c) === -1) { restyle(c); } });
      wall.hot.forEach(function (c) {
        restyle(c);
        var layer = wall.layers[c];
        if (layer && layer.bringToFront) { layer.bringToFront(); }
      });
    }
    drawRings();
    return n;
  }

  // A ring around each hot spot: a 100 m cell is a few pixels on a city-wide map, the ring
  // makes it visible from across the hall. Redrawn only when the hot list changes.
  function drawRings() {
    var key = wall.hot.join(",");
    var any = wall.layers[wall.hot[0]];
    var map = any && any._map;
    if (!map || key === wall.ringKey) { return; }
    if (!wall.rings) { wall.rings = L.layerGroup(); }
    if (!map.hasLayer(wall.rings)) { wall.rings.addTo(map); }
    wall.rings.clearLayers();
    wall.hot.forEach(function (c, i) {
      var layer = wall.layers[c];
      if (!layer || !layer.getBounds) { return; }
      var big = i < 3;
      // Sized in rem like the rest of the wall: the same on a 1080p and a 4K screen.
      var rem = parseFloat(window.getComputedStyle(document.documentElement).fontSize) || 17;
      L.circleMarker(layer.getBounds().getCenter(), {
        radius: rem * (big ? 0.9 : 0.65), color: big ? "#ff4343" : "#ffffff", weight: rem * (big ? 0.18 : 0.12),
        opacity: 0.95, fill: false, interactive: false
      }).addTo(wall.rings);
    });
    wall.ringKey = key;
  }

  // Turn the pages of the queue and the board; say "第 n/N 页" in the panel title.
  function turnPages() {
    ["wall-queue", "wall-risk", "wall-board", "wall-eval-regions", "wall-eval-units", "wall-districts"].forEach(function (id) {
      var api = null;
      try {
        api = window.dash_ag_grid && window.dash_ag_grid.getApi(id);
      } catch (e) {
        api = null; // not rendered yet
      }
      var label = document.getElementById(id + "-page");
      if (!api || !api.paginationGetTotalPages) { return; }
      var total = api.paginationGetTotalPages();
      if (total > 1) {
        var cur = api.paginationGetCurrentPage();
        if (cur >= total - 1) { api.paginationGoToFirstPage(); } else { api.paginationGoToNextPage(); }
      }
      updatePage(id, api, label);
    });
  }

  function updatePage(id, api, label) {
    if (!label) { return; }
    var total = api.paginationGetTotalPages();
    label.textContent = total > 1 ? "第 " + (api.paginationGetCurrentPage() + 1) + "/" + total + " 页" : "";
  }

  // Belt and braces: every 2 s make sure each coloured or hot cell wears its colour (a layer
  // drawn while an update was being applied could otherwise keep a stale style until the
  // next change of that cell). Only the non-empty cells are looked at.
  function reconcile() {
    var seen = {};
    Object.keys(wall.values).concat(wall.hot, Object.keys(wall.painted || {})).forEach(function (code) {
      if (seen[code]) { return; }
      seen[code] = true;
      var layer = wall.layers[code];
      if (!layer || !layer.options) { return; }
      var want = styleFor(code);
      if (layer.options.fillColor !== want.fillColor || layer.options.color !== want.color ||
          layer.options.weight !== want.weight) {
        layer.setStyle(want);
      }
    });
    wall.painted = Object.assign({}, wall.values);
    drawRings();
  }
  if (!wall.reconciler) {
    wall.reconciler = window.setInterval(reconcile, 2000);
  }

  if (!wall.pager) {
    wall.pager = window.setInterval(turnPages, 10000);
  }

  // Fit the map to the grids once they are drawn (the layout does not know the city).
  function fitOnce() {
    if (wall.fitted) { return; }
    var codes = Object.keys(wall.layers);
    if (!codes.length) { return; }
    var first = wall.layers[codes[0]];
    var map = first && first._map;
    if (!map) { return; }
    var bounds = null;
    codes.forEach(function (c) {
      var l = wall.layers[c];
      if (l.getBounds) {
        bounds = bounds ? bounds.extend(l.getBounds()) : L.latLngBounds(l.getBounds().getSouthWest(), l.getBounds().getNorthEast());
      }
    });
    if (bounds) {
      wall.map = map;
      wall.bounds = bounds;
      wall.fitTo((wall.cfg && wall.cfg.bounds) || null);
      wall.fitted = true;
      document.documentElement.setAttribute("data-wall-grids", String(codes.length));
    }
  }
  /* Fit the map to [min lon, min lat, max lon, max lat] (a scene's region inside the geometry
     the page loaded), or to all of its grids (null). */
  wall.fitTo = function (box) {
    if (!wall.map) { return; }
    var target = box ? L.latLngBounds([box[1], box[0]], [box[3], box[2]]) : wall.bounds;
    if (!target) { return; }
    wall.fitBox = box || null;
    wall.map.invalidateSize({ animate: false });
    var size = wall.map.getSize();
    if (!size.x || !size.y) { return; }  // hidden (another panel full-screen): fitted when shown
    wall.map.fitBounds(target, { padding: [8, 8], animate: false });
    wall.ringKey = null;  // the rings are drawn again at the new zoom
    drawRings();
    if (wall.drawSurges) { wall.drawSurges(); }
  };

  // A screen whose size changes (the kiosk browser goes full screen, a wall controller switches
  // the output to 4K) fits the map again rather than leaving the city small in a corner.
  if (!wall.refitter) {
    wall.refitter = true;
    var refitTimer = null;
    window.addEventListener("resize", function () {
      window.clearTimeout(refitTimer);
      refitTimer = window.setTimeout(function () {
        wall.fitTo(wall.fitBox || null);  // the rings too: sized in rem, which follows the screen
      }, 300);
    });
  }
  if (!wall.fitter) {
    wall.fitter = window.setInterval(function () {
      fitOnce();
      if (wall.fitted) { drawRings(); window.clearInterval(wall.fitter); }
    }, 250);
  }

  /* Push: the server sends each update itself (/wall/events, callbacks/wall_push.py): an
     "update" event carries the refresh callback's answer for a screen that showed the update
     before it ({from, to, response}); the page applies it with set_props when it shows
     everything up to "from", and otherwise (it missed one, or has just connected: the
     "change" event) sets wall-push, an Input of the refresh callback, to ask for what it
     lacks. A "health" event carries the health callback's whole answer (header figures, stale
     banner, 数据更新于, and its fingerprint wall-health-fp, so a poll that still runs answers
     204), applied with set_props. Both polls -- the refresh and the health -- slow to a
     safety net while the stream is up and return to their normal pace when it drops. The
     browser reconnects a dropped stream by itself, however long the server is away; a stream it gives up (the server refused it with 503: no thread to spare; a proxy
     answered 502 while the server restarted, or blocks streams) is opened again after
     cfg.refusedMs[0], twice as long after each further refusal, at most every cfg.refusedMs[1]:
     never given up for good, and back within seconds after a restart behind a proxy. */
  function setPeriod(id, key, ms) {
    var dc = window.dash_clientside;
    if (ms && dc && typeof dc.set_props === "function" && wall[key] !== ms) {
      wall[key] = ms;
      dc.set_props(id, { interval: ms });
    }
  }

  function setPace(cfg, pushed) {
    setPeriod("wall-tick", "pollMs", pushed ? cfg.pushedPollMs : cfg.pollMs);
    setPeriod("wall-health-tick", "healthMs", pushed ? cfg.pushedHealthMs : cfg.healthMs);
  }

  /* One refresh at a time for pushed changes. Dash's renderer sends a callback again at once
     when its input changes, and applies only the newest request's answer: changes pushed
     faster than answers come would discard answer after answer and the wall would starve.
     So a change that arrives while a refresh is in flight only marks one as due; it is asked
     once that answer is in (its body read), and asks for everything since the painted
     coordinate anyway. Wrapping fetch is the one hook that sees every callback request. */
  wall.inflight = 0;
  wall.due = null;
  if (window.fetch && !window.fetch.__gridhallWall) {
    var realFetch = window.fetch;
    var watched = function (input, init) {
      var url = typeof input === "string" ? input : (input && input.url) || "";
      var body = init && typeof init.body === "string" ? init.body : "";
      var pending = realFetch.apply(this, arguments);
      if (url.indexOf("_dash-update-component") === -1 || body.indexOf("wall-grid.data") === -1) {
        return pending;
      }
      wall.inflight += 1;
      var done = function () {
        wall.inflight -= 1;
        // After Dash has applied this answer (its handlers run before a fresh task).
        window.setTimeout(askIfDue, 0);
      };
      pending.then(function (response) {
        response.clone().text().then(done, done);
      }, done);
      return pending;
    };
    watched.__gridhallWall = true;
    window.fetch = watched;
  }

  function ask(version) {
    var dc = window.dash_clientside;
    if (dc && typeof dc.set_props === "function") {
      wall.pushed = (wall.pushed || 0) + 1;
      dc.set_props("wall-push", { data: { version: version, n: wall.pushed } });
    }
  }

  function askIfDue() {
    if (wall.inflight === 0 && wall.due !== null) {
      var version = wall.due;
      wall.due = null;
      ask(version);
    }
  }

  /* Paint a grid update; returns the coordinate now painted (or null). The coordinate is
     recorded here, after the values are applied, and not from the server's answer: when two
     answers arrive before the callback runs, Dash hands over only the later one, and the page
     must not claim the earlier one's cells (the later one, asked from the same coordinate,
     carries them too). The next refresh asks for what changed since. */
  function paint(data) {
    if (data && data.sight && wall.cfg && wall.cfg.sight && data.sight !== wall.cfg.sight) {
      return null;  // for the scene before this one (a late answer): the next asks anew
    }
    if (data && data.nid && wall.coord && coordLE(data, wall.coord) && !coordLE(wall.coord, data)) {
      return null;  // older than what is painted (a refresh answer overtaken by pushed updates)
    }
    wall.lastPainted = applyGrid(data);
    if (data && data.full && typeof W.sceneReady === "function") {
      W.sceneReady();  // a new scene's first whole answer is in: it may take the screen (wallscene.js)
    }
    document.documentElement.setAttribute("data-wall-version", data && data.version ? String(data.version) : "");
    if (!data || !data.nid) { return null; }
    wall.coord = { nid: data.nid, tick: data.tick };
    return wall.coord;
  }

  /* Grid coordinates ({nid: "ms-seq", tick: s}) are ordered part by part; "a <= b" when
     b has everything a has. */
  function coordLE(a, b) {
    if (!a) { return true; }
    if (!b) { return false; }
    var x = String(a.nid).split("-").map(Number), y = String(b.nid).split("-").map(Number);
    var nidLE = x[0] < y[0] || (x[0] === y[0] && x[1] <= y[1]);
    return nidLE && Number(a.tick) <= Number(b.tick);
  }

  function applyUpdate(u) {
    var dc = window.dash_clientside;
    if (!u || !u.response || !dc || typeof dc.set_props !== "function") { return; }
    if (u.to && wall.coord && coordLE(u.to, wall.coord) && !coordLE(wall.coord, u.to)) {
      return;  // the page is ahead of this update (a refresh brought it further)
    }
    if (!coordLE(u.from, wall.coord)) {
      // It lacks what came before "from": ask for everything since its own coordinate instead.
      // (Not when a refresh is merely in flight: on a slow server every update would then
      // become a refresh, and the refreshes keep it slow. A refresh answer that comes back
      // older than what the pushes painted is not painted: see paint.)
      // The coordinate it brings goes with the question: a worker that has not seen it yet
      // waits a moment for it instead of answering "nothing new" (WallService.catch_up).
      wall.due = u.to || "update";
      askIfDue();
      return;
    }
    wall.pushed = (wall.pushed || 0) + 1;
    wall.updates = (wall.updates || 0) + 1;
    // The grid and the rows are applied here, in the order the updates came: through
    // set_props, Dash could run their clientside callbacks once for two quick updates and
    // the first one's cells would be lost. The other outputs are whole values.
    Object.keys(u.response).forEach(function (id) {
      var props = u.response[id];
      if (id === "wall-grid") {
        var applied = paint(props.data);
        if (applied) { dc.set_props("wall-applied", { data: applied }); }
      } else if (id === "wall-rows") {
        applyRows(props.data);
      } else {
        dc.set_props(id, props);
      }
    });
  }

  /* Ask the refresh callback now (a new scene wants its figures without waiting for a poll). */
  wall.askNow = function () {
    wall.due = "scene";
    askIfDue();
  };

  /* A new scene (wallscene.js): its stream replaces the old one, whose updates are for the
     old scene, and the page forgets its coordinate so the next answer paints the scene whole. */
  wall.restartPush = function (cfg) {
    if (wall.push) { wall.push.close(); wall.push = null; }
    if (wall.pushRetry) { window.clearTimeout(wall.pushRetry); wall.pushRetry = null; }
    wall.coord = null;
    wall.due = null;
    document.documentElement.setAttribute("data-wall-push", "down");
    setPace(cfg, false);
    startPush(cfg);
  };

  function startPush(cfg) {
    // Called on every update (applyGrid): a stream open or a retry pending is left alone.
    if (wall.push || wall.pushRetry || !window.EventSource || !cfg.events) { return; }
    var es = new window.EventSource(cfg.events);
    wall.push = es;
    wall.pushUrl = cfg.events;
    wall.heardAt = Date.now();
    ["open", "change", "update", "health", "ping", "screen"].forEach(function (name) {
      es.addEventListener(name, function () { wall.heardAt = Date.now(); });
    });
    if (!wall.watchdog && cfg.silentMs) {
      // A stream can stall without an error (a proxy stops passing it): one that said nothing
      // for cfg.silentMs -- the server pings every third of that -- is closed and opened anew.
      wall.watchdog = window.setInterval(function () {
        var open = wall.push && wall.push.readyState === window.EventSource.OPEN;
        if (open && Date.now() - wall.heardAt > cfg.silentMs) {
          wall.push.close();
          wall.push = null;
          wall.reopened = (wall.reopened || 0) + 1;
          document.documentElement.setAttribute("data-wall-push", "down");
          setPace(cfg, false);
          startPush(cfg);
        }
      }, Math.max(250, Math.min(5000, cfg.silentMs / 4)));
    }
    es.addEventListener("open", function () {
      wall.refusedMs = 0;
      document.documentElement.setAttribute("data-wall-push", "open");
      setPace(cfg, true);
    });
    es.addEventListener("change", function (e) {
      wall.due = e.data;
      askIfDue();
    });
    es.addEventListener("update", function (e) {
      var u;
      try { u = JSON.parse(e.data); } catch (err) { return; }
      applyUpdate(u);
    });
    es.addEventListener("screen", function (e) {
      // The named screen's setting or banners changed (the shift lead): wallscene.js plays it.
      var screen;
      try { screen = JSON.parse(e.data); } catch (err) { return; }
      var dc = window.dash_clientside;
      if (dc && typeof dc.set_props === "function") { dc.set_props("wall-screen", { data: screen }); }
    });
    es.addEventListener("health", function (e) {
      var h, dc = window.dash_clientside;
      try { h = JSON.parse(e.data); } catch (err) { return; }
      if (!h || !dc || typeof dc.set_props !== "function") { return; }
      wall.healths = (wall.healths || 0) + 1;
      Object.keys(h).forEach(function (id) { dc.set_props(id, h[id]); });
    });
    es.addEventListener("error", function () {
      document.documentElement.setAttribute("data-wall-push", "down");
      setPace(cfg, false);
      if (es.readyState === window.EventSource.CLOSED) {  // refused: the browser gave up
        wall.push = null;
        var bounds = cfg.refusedMs || [60000, 60000];
        wall.refusedMs = wall.refusedMs ? Math.min(2 * wall.refusedMs, bounds[1]) : bounds[0];
        wall.pushRetry = window.setTimeout(function () {
          wall.pushRetry = null;
          startPush(cfg);
        }, wall.refusedMs);
      }
    });
  }

  /* Rows of the queue and the board, as AG Grid row transactions. The server sends, per
     panel, either the whole row set ({full, rows, to}) or what changed since the set the page
     shows ({from, to, add, update, remove}; an update names the row and its changed fields).
     A delta is applied only onto the set it was computed from; the digest of what is shown
     goes back to the server in wall-rows-applied, so a page that missed answers simply gets
     the delta from where it is (or the whole set). The grids sort by the rows' own keys
     (layouts/wall.py), so a transaction never has to move the other rows. */
  wall.shown = wall.shown || {};   // panel -> digest of the row set the grid shows
  var ROW_GRIDS = { queue: "wall-queue", board: "wall-board", risk: "wall-risk" };

  function applyPanel(panel, d, api) {
    if (d.full) {
      api.setGridOption("rowData", d.rows || []);
      wall.shown[panel] = d.to;
      return;
    }
    if (wall.shown[panel] !== d.from) {  // computed for another set: ask again from ours
      wall.due = wall.due || "rows";
      window.setTimeout(askIfDue, 0);
      return;
    }
    var lost = false;
    var update = (d.update || []).map(function (u) {
      var node = api.getRowNode(String(u.id));
      if (!node) { lost = true; return u; }
      return Object.assign({}, node.data, u);
    });
    if (lost) {  // never guess: let the server send the whole set
      wall.shown[panel] = null;
      return;
    }
    api.applyTransaction({
      add: d.add || [],
      update: update,
      remove: (d.remove || []).map(function (id) { return { id: id }; })
    });
    wall.shown[panel] = d.to;
  }

  function applyRows(data) {
    var panels = Object.keys(data || {}).filter(function (p) { return ROW_GRIDS[p]; });
    var ready = window.dash_ag_grid && window.dash_ag_grid.getApiAsync;
    if (!panels.length || !ready) { return (wall.rowsChain || Promise.resolve()); }
    // One after the other, in the order the answers came: a delta builds on the one before.
    wall.rowsChain = (wall.rowsChain || Promise.resolve()).then(function () {
      return Promise.all(panels.map(function (p) { return window.dash_ag_grid.getApiAsync(ROW_GRIDS[p]); }));
    }).then(function (apis) {
      panels.forEach(function (p, i) {
        try {
          applyPanel(p, data[p], apis[i]);
        } catch (e) {
          wall.shown[p] = null;  // the next answer brings the whole set
        }
        var label = document.getElementById(ROW_GRIDS[p] + "-page");
        if (apis[i].paginationGetTotalPages) { updatePage(ROW_GRIDS[p], apis[i], label); }
      });
      var dc = window.dash_clientside;
      if (dc && typeof dc.set_props === "function") {
        dc.set_props("wall-rows-applied", { data: Object.assign({}, wall.shown) });
      }
      document.documentElement.setAttribute("data-wall-rows", JSON.stringify(wall.shown));
    }).catch(function () { /* the grids went away (page left) */ });
    return wall.rowsChain;
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    gridhall_wall: {
      /* The grid store changed: restyle the cells it names; mark the page for tests. */
      applyGrid: function (data, cfg) {
        if (cfg && cfg.breaks) { wall.cfg = cfg; }
        if (cfg) { startPush(cfg); }
        var applied = paint(data);
        return [wall.lastPainted, applied || window.dash_clientside.no_update];
      },
      /* Rows for the queue and the board: applied in order; wall-rows-applied is written
         (set_props) once they are in the grids. */
      applyRows: function (data) {
        applyRows(data);
        return window.dash_clientside.no_update;
      },
      /* New rows in a grid: keep the page indicator right. */
      pageLabel: function (_rows, id) {
        try {
          var api = window.dash_ag_grid.getApi(id);
          updatePage(id, api, document.getElementById(id + "-page"));
        } catch (e) { /* not ready */ }
        return window.dash_clientside.no_update;
      }
    }
  });
})();

/* 各区对比's "今日分时上报": today's reports per hour as a small line (no chart library: an
   SVG polyline scaled to the cell, drawn by React as AG Grid's cell renderer). */
(function () {
  "use strict";
  var agc = (window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {});
  agc.WallSpark = function (props) {
    var v = Array.isArray(props.value) ? props.value : [];
    var max = Math.max.apply(null, v.concat([1]));
    var points = v.map(function (x, i) {
      var px = v.length > 1 ? (i * 100) / (v.length - 1) : 50;
      return px.toFixed(1) + "," + (22 - (x * 20) / max).toFixed(1);
    }).join(" ");
    return window.React.createElement("svg", {
      className: "wall-spark", viewBox: "0 0 100 24", preserveAspectRatio: "none", role: "img",
      "aria-label": "今日分时上报 " + v.join(",")
    }, window.React.createElement("polyline", {
      points: points, fill: "none", stroke: "currentColor", strokeWidth: 2, vectorEffect: "non-scaling-stroke"
    }));
  };
})();
