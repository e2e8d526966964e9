/* Clientside parts of the leaders' view (/view): decode the scope's grid geometry (sent once,
   compact), colour the cells by the values of each refresh, drill down on a click, and raise
   a banner when refreshes stop arriving. Loaded on every page (Dash assets): it only defines
   functions and does nothing until /view's callbacks call them. No HTML is ever built from
   data: tooltips are DOM text nodes. */
(function () {
  "use strict";

  var W = (window.gridhall = window.gridhall || {});
  var view = (W.view = W.view || {
    values: {},   // grid code -> value of the map's metric (non-zero cells only)
    layers: {},   // grid code -> Leaflet layer (registered by onGrid)
    cfg: null,
    lastOk: Date.now()
  });

  var EMPTY = { stroke: true, color: "#24436e", weight: 0.5, opacity: 0.9, fill: true,
                fillColor: "#0d1d38", fillOpacity: 0.7 };

  // The page's configuration (view-config; the breaks and the colour ramp are defined in
  // dashboard/figures/heat.py). Until the first refresh brings it no cell has a value.
  function cfg() {
    return view.cfg || { breaks: [], label: "在办案件", unit: "件", colours: [],
                         explore: "/explore", refreshMs: 30000 };
  }

  function colour(v) {
    var c = cfg();
    var out = null;
    for (var i = 0; i < c.breaks.length; i++) {
      if (v >= c.breaks[i]) { out = c.colours[i]; }
    }
    return out;
  }

  function styleFor(code) {
    var v = view.values[code] || 0;
    var fill = v > 0 ? colour(v) : null;
    return fill ? { stroke: true, color: "#0b1830", weight: 0.4, opacity: 0.8, fill: true,
                    fillColor: fill, fillOpacity: 0.88 } : EMPTY;
  }

  view.gridStyle = function (feature) {
    return styleFor(feature.properties.c);
  };

  view.onGrid = function (feature, layer) {
    var code = String(feature.properties.c);
    view.layers[code] = layer;
    layer.bindTooltip(function () {
      var c = cfg();
      var box = document.createElement("div");
      var line1 = document.createElement("div");
      var line2 = document.createElement("div");
      line1.textContent = "网格 " + code;
      line2.textContent = c.label + "：" + (view.values[code] || 0) + " " + c.unit;
      box.appendChild(line1);
      box.appendChild(line2);
      return box;
    }, { sticky: true, className: "view-tip" });
    layer.on("click", function () {
      window.location.assign(cfg().explore + "?region=" + encodeURIComponent(code));
    });
  };

  // The compact geometry (dashboard/figures/scopemap.py encode_geometry) -> a GeoJSON FeatureCollection.
  function decode(geo) {
    var scale = Math.pow(10, geo.d || 5);
    var ox = geo.o[0], oy = geo.o[1];
    var features = [];
    var minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    (geo.g || []).forEach(function (group) {
      var prefix = group[0];
      group[1].forEach(function (item) {
        var polys = item[1].map(function (rings) {
          return rings.map(function (flat) {
            var x = ox, y = oy, pts = [];
            for (var i = 0; i + 1 < flat.length; i += 2) {
              x += flat[i];
              y += flat[i + 1];
              if (x < minX) { minX = x; } if (x > maxX) { maxX = x; }
              if (y < minY) { minY = y; } if (y > maxY) { maxY = y; }
              pts.push([x / scale, y / scale]);
            }
            pts.push(pts[0]);
            return pts;
          });
        });
        features.push({
          type: "Feature",
          properties: { c: prefix + item[0] },
          geometry: polys.length === 1 ? { type: "Polygon", coordinates: polys[0] }
                                       : { type: "MultiPolygon", coordinates: polys }
        });
      });
    });
    var bounds = features.length ? [[minY / scale, minX / scale], [maxY / scale, maxX / scale]] : null;
    return { data: { type: "FeatureCollection", features: features }, bounds: bounds };
  }

  // Note every answered request to Dash (200 or 204): the watch below uses it.
  if (window.fetch && !window.fetch.__gridhallView) {
    var realFetch = window.fetch;
    var watched = function (input) {
      var url = typeof input === "string" ? input : (input && input.url) || "";
      var pending = realFetch.apply(this, arguments);
      if (url.indexOf("_dash-update-component") !== -1) {
        pending.then(function (response) {
          if (response.ok) { view.lastOk = Date.now(); }
        }, function () { /* a failed request is no answer */ });
      }
      return pending;
    };
    watched.__gridhallView = true;
    window.fetch = watched;
  }

  // Leaflet's zoom buttons come with English titles: say them in Chinese.
  function localise() {
    var names = { "leaflet-control-zoom-in": "放大", "leaflet-control-zoom-out": "缩小" };
    Object.keys(names).forEach(function (cls) {
      var els = document.querySelectorAll("#view-mapview ." + cls);
      for (var i = 0; i < els.length; i++) {
        if (els[i].getAttribute("title") !== names[cls]) {
          els[i].setAttribute("title", names[cls]);
          els[i].setAttribute("aria-label", names[cls]);
        }
      }
    });
  }

  // 综合考评's tabs (links): show the sub-regions or the units, in the page only (no request,
  // no address change). The choice is a data attribute of the panel, which Dash does not own.
  if (!view.tabsBound) {
    view.tabsBound = true;
    document.addEventListener("click", function (event) {
      var tab = event.target && event.target.closest && event.target.closest(".view-eval__tab");
      if (!tab) { return; }
      event.preventDefault();
      var panel = tab.closest(".view-eval");
      if (!panel) { return; }
      var key = tab.getAttribute("data-tab") === "units" ? "units" : "regions";
      panel.setAttribute("data-tab", key);
      var tabs = panel.querySelectorAll(".view-eval__tab");
      for (var i = 0; i < tabs.length; i++) {
        var on = tabs[i].getAttribute("data-tab") === key;
        tabs[i].classList.toggle("is-on", on);
        tabs[i].setAttribute("aria-selected", on ? "true" : "false");
      }
    });
  }

  function span(className, text) {
    return { namespace: "dash_html_components", type: "Span", props: { className: className, children: text } };
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    gridhall_view: {
      /* The scope's geometry arrived: hand it to the map and fit the map to it. */
      decode: function (geo) {
        var noUpdate = window.dash_clientside.no_update;
        if (!geo || !geo.g) { return [noUpdate, noUpdate]; }
        view.layers = {};
        window.setTimeout(localise, 0);
        var out = decode(geo);
        document.documentElement.setAttribute("data-view-grids", String(out.data.features.length));
        return [out.data, out.bounds ? { bounds: out.bounds, transition: "fitBounds" } : noUpdate];
      },
      /* New values of the map's metric: restyle the cells that changed. */
      paint: function (data, config) {
        if (config && config.breaks) { view.cfg = config; }
        if (!data || !data.values) { return window.dash_clientside.no_update; }
        var old = view.values;
        var next = data.values;
        view.values = next;
        var n = 0;
        Object.keys(view.layers).forEach(function (code) {
          if ((old[code] || 0) !== (next[code] || 0)) {
            var layer = view.layers[code];
            if (layer && layer.setStyle) { layer.setStyle(styleFor(code)); n++; }
          }
        });
        document.documentElement.setAttribute("data-view-painted", String(Object.keys(next).length));
        return String(n);
      },
      /* No answer for two refresh periods and a half: the connection is gone. */
      watch: function (_n, config) {
        var noUpdate = window.dash_clientside.no_update;
        localise();
        var every = (config && config.refreshMs) || 30000;
        var offline = Date.now() - view.lastOk > every * 2.5;
        var state = offline ? "off" : "on";
        if (state === view.shown) { return [noUpdate, noUpdate]; }
        view.shown = state;
        if (!offline) { return [[], "gh-banner"]; }
        var since;
        try {  // the city's time zone, as the server's 数据更新于
          since = new Intl.DateTimeFormat("zh-CN", { hour: "2-digit", minute: "2-digit", second: "2-digit",
                                                     hourCycle: "h23", timeZone: config && config.tz })
            .format(new Date(view.lastOk));
        } catch (e) {
          since = new Date(view.lastOk).toTimeString().slice(0, 8);
        }
        return [[span("gh-banner__title", "数据已停止更新"),
                 span("gh-banner__detail", "与服务器的连接已中断（自 " + since + " 起），正在重连")],
                "gh-banner is-on"];
      }
    }
  });
})();
