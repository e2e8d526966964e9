/* Clientside parts of /explore: map styles, point markers, tooltips (as text nodes, never
   HTML: grid codes and case ids come from the database) and the header clock. No eval, no
   inline script: dash-leaflet finds these functions by name ({"variable": ...}). */
(function () {
  "use strict";

  var COLOURS = ["#1d4f8f", "#2f7fd1", "#36b8e0", "#36e2c0", "#b8f03a", "#ffd23f", "#ff9f1c", "#ff5b2e"];

  function colourOf(value, max) {
    if (!value) { return null; }
    var m = Math.max(1, max || 1);
    var i = Math.min(COLOURS.length - 1, Math.floor((Math.log(value + 1) / Math.log(m + 1)) * (COLOURS.length - 1)));
    return COLOURS[Math.max(0, i)];
  }

  function textTip(text) {
    var el = document.createElement("div");
    el.className = "explore-tip";
    el.textContent = text;
    return el;
  }

  var E = (window.gridhall_explore = window.gridhall_explore || {});

  function pointStyle(p, hide) {
    var colour = p.overdue ? "#ff4343" : (p.urgent ? "#ff5bb0" : (colourOf(p.value, hide.max) || "#3fd4ff"));
    return { stroke: true, color: "#0b1830", weight: 1, opacity: 1, fill: true, fillColor: colour, fillOpacity: 0.9 };
  }

  E.gridStyle = function (feature, context) {
    var p = (feature && feature.properties) || {};
    if (feature && feature.geometry && feature.geometry.type === "Point") {
      return pointStyle(p, (context && context.hideout) || {});
    }
    var hide = (context && context.hideout) || {};
    var fill = colourOf(p.value, hide.max);
    var s = { stroke: true, color: "#2a4a78", weight: 0.8, opacity: 0.9, fill: true,
              fillColor: fill || "#0d1d38", fillOpacity: fill ? 0.8 : 0.55 };
    if (p.overdue) { s.color = "#ff4343"; s.weight = 2; }
    return s;
  };

  E.outlineStyle = function () {
    return { stroke: true, color: "#3fd4ff", weight: 2.5, opacity: 1, fill: true, fillColor: "#0d1d38",
             fillOpacity: 0.35, dashArray: "6 4" };
  };

  E.pointToLayer = function (feature, latlng, context) {
    var p = (feature && feature.properties) || {};
    var hide = (context && context.hideout) || {};
    var radius = p.case !== undefined ? 7 : 5 + Math.min(10, Math.sqrt(p.value || 0));
    return window.L.circleMarker(latlng, Object.assign({ radius: radius }, pointStyle(p, hide)));
  };

  // Leaflet's zoom buttons come with English titles ("Zoom in"): Chinese, once per map.
  function chineseZoomTitles(map) {
    var zc = map && map.zoomControl;
    if (!zc || zc.__gridhallZh) { return; }
    zc.__gridhallZh = true;
    [[zc._zoomInButton, "放大"], [zc._zoomOutButton, "缩小"]].forEach(function (b) {
      if (b[0]) { b[0].setAttribute("title", b[1]); b[0].setAttribute("aria-label", b[1]); }
    });
  }

  // The grids' layers on the map now, by grid code (the browser tests click them).
  E.grids = {};

  E.onFeature = function (feature, layer) {
    var p = (feature && feature.properties) || {};
    var text;
    if (p.cluster) { return; }
    var grid = p.case === undefined && typeof p.code === "string";
    layer.on("add", function () {
      chineseZoomTitles(layer._map);
      if (grid) { E.grids[p.code] = layer; }
    });
    if (grid) {
      layer.on("remove", function () { if (E.grids[p.code] === layer) { delete E.grids[p.code]; } });
    }
    if (p.case !== undefined) {
      text = "案件 " + p.case + (p.stage ? " · " + p.stage : "") + (p.overdue ? " · 超期" : "") + " · 点击查看详情";
    } else {
      text = "网格 " + p.code + " · 案件 " + (p.value || 0) + (p.overdue ? " · 超期 " + p.overdue : "") + " · 点击进入";
    }
    layer.bindTooltip(textTip(text), { sticky: true, direction: "top" });
  };

  function formatters(tz) {
    var opts = { timeZone: tz || undefined, hour12: false };
    return {
      time: new Intl.DateTimeFormat("zh-CN", Object.assign({ hour: "2-digit", minute: "2-digit", second: "2-digit" }, opts)),
      date: new Intl.DateTimeFormat("zh-CN", Object.assign({ year: "numeric", month: "2-digit", day: "2-digit",
                                                             weekday: "short" }, opts))
    };
  }

  // Region links (children, hot grids, breadcrumbs, 进入网格; class explore-go): a plain
  // click goes through the navigate callback with the link's region, which merges it with the
  // filter controls as they are now (callbacks/explore.py, navigate_to). The links' hrefs are
  // built with the page's last render, so a filter changed a moment before would be lost if
  // the link itself were followed. Modified clicks (new tab, ...) keep the href.
  document.addEventListener("click", function (ev) {
    if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) { return; }
    var link = ev.target && ev.target.closest ? ev.target.closest("#explore-root a.explore-go, #explore-root a.explore-case") : null;
    var dc = window.dash_clientside;
    if (!link || !dc || typeof dc.set_props !== "function") { return; }
    // Case links (the 待定位 list; class explore-case) open their case the same way.
    var isCase = link.classList.contains("explore-case");
    var value;
    try { value = new URL(link.href, window.location.href).searchParams.get(isCase ? "case" : "region") || ""; } catch (e) { return; }
    ev.preventDefault();
    ev.stopPropagation();  // before React's listeners: dcc.Link must not push its own href
    dc.set_props("explore-go", { data: isCase ? { "case": value, at: Date.now() } : { region: value, at: Date.now() } });
  }, true);

  // Phones (explore.css, max-width 760px): the case table shows fewer columns, each wide
  // enough for its values (not squeezed to an ellipsis); what does not fit scrolls sideways
  // inside the grid, never the page. Back to the desktop columns on a wider screen.
  var PHONE = window.matchMedia ? window.matchMedia("(max-width: 760px)") : null;
  var PHONE_HIDDEN = ["major", "source", "street", "community", "unit"];
  var PHONE_WIDTHS = { number: 150, status: 84, stage: 110, minor: 150, grid: 160, reported_at: 175,
                       deadline_at: 175, description: 260 };
  var tableApi = null;
  var desktopState = null;
  function phoneColumns() {
    if (!tableApi) { return; }
    if (PHONE.matches) {
      desktopState = desktopState || tableApi.getColumnState();
      tableApi.applyColumnState({ state: PHONE_HIDDEN.map(function (id) { return { colId: id, hide: true }; })
        .concat(Object.keys(PHONE_WIDTHS).map(function (id) { return { colId: id, flex: null, width: PHONE_WIDTHS[id] }; })) });
    } else if (desktopState) {
      tableApi.applyColumnState({ state: desktopState });
      desktopState = null;
    }
  }
  if (PHONE) {
    PHONE.addEventListener("change", phoneColumns);
    new MutationObserver(function () {
      var el = document.getElementById("explore-table");
      var grids = window.dash_ag_grid;
      if (!el || (tableApi && tableApi.isDestroyed && tableApi.isDestroyed())) { tableApi = null; desktopState = null; }
      if (!el) { return; }
      if (tableApi || E.__tablePending || !grids || typeof grids.getApiAsync !== "function") { return; }
      E.__tablePending = true;
      grids.getApiAsync("explore-table").then(function (api) {
        tableApi = api;
        phoneColumns();
      }).catch(function () { /* no grid after all (another page) */ }).then(function () {
        E.__tablePending = false;
      });
    }).observe(document.documentElement, { childList: true, subtree: true });
  }

  // 综合考评 grid (callbacks/explore.py, ranking_columns). Region names: a region link like the
  // child list's (class explore-go: the click handler above takes it through navigate).
  var agc = (window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {});
  agc.ExploreRegionLink = function (props) {
    var data = props && props.data;
    var text = props && props.value !== undefined && props.value !== null ? String(props.value) : "";
    if (!data || typeof data.href !== "string") { return text; }
    return window.React.createElement("a", { className: "explore-evlink explore-go", href: data.href,
                                             title: text + "（" + data.id + "）" }, text);
  };
  // Figures shown as text ("87.5%", "1,234.50", "—", "样本不足"): ordered by their number; the
  // ones without a number last, whichever the direction.
  var agf = (window.dashAgGridFunctions = window.dashAgGridFunctions || {});
  agf.exploreNumberOrder = function (a, b, _na, _nb, desc) {
    function num(v) {
      if (typeof v === "number") { return v; }
      var x = parseFloat(String(v === null || v === undefined ? "" : v).replace(/,/g, ""));
      return isNaN(x) ? null : x;
    }
    var x = num(a), y = num(b);
    if (x === null && y === null) { return 0; }
    if (x === null) { return desc ? -1 : 1; }
    if (y === null) { return desc ? 1 : -1; }
    return x - y;
  };

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    gridhall_explore: {
      clock: function (_n, config) {
        var f;
        try { f = formatters(config && config.tz); } catch (e) { f = formatters(null); }
        var now = new Date();
        return f.date.format(now) + " " + f.time.format(now);
      },
      // Phones: 筛选 opens and closes the filters; it counts the filters set (the time window aside).
      filtersToggle: function (n) {
        var open = (n || 0) % 2 === 1;
        var set = Array.prototype.slice.call(arguments, 1).filter(function (v) {
          return v !== null && v !== undefined && v !== "";
        }).length;
        return ["explore-filters" + (open ? " is-open" : ""),
                "筛选" + (set ? "（已选 " + set + " 项）" : "") + (open ? " ▴" : " ▾"),
                open ? "true" : "false"];
      }
    }
  });
})();
