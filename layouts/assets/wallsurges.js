/* Surges (突增预警) on the wall (docs/wall.md "Surges"): the surges under way in this wall's region,
   as the server sends them in wall-surges (callbacks/wall.py surges; pushed like every panel).
   Each is ringed on the map in the surge colour (wall-config's "surge", dashboard/figures/heat.py:
   one definition) -- a grid's a ring around the cell, sized in rem like the hot-spot rings but
   larger and dashed; a street's a circle around the whole street -- and listed in a small box on
   the map: place, class group, "x 件 / 通常 y 件", since when. A surge that ends (or expires)
   drops out of the list the server sends, and its ring goes with it. Text is set as text
   nodes, never markup. */
(function () {
  "use strict";

  var SHOWN = 4;  // entries listed; the rest are counted ("另有 n 处"), all are ringed

  var W = (window.gridhall = window.gridhall || {});
  var wall = (W.wall = W.wall || {});
  wall.boundaries = wall.boundaries || {};  // region code -> its outline's layer (streets' rings)
  var state = (W.surges = W.surges || { rows: [], key: null });

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  function colour() {
    return (wall.cfg && wall.cfg.surge) || "currentColor";  // the colour comes with wall-config (heat.py)
  }

  function rem() {
    return parseFloat(window.getComputedStyle(document.documentElement).fontSize) || 17;
  }

  function mapOf() {
    if (wall.map) { return wall.map; }
    var codes = Object.keys(wall.layers || {});
    var any = codes.length ? wall.layers[codes[0]] : null;
    return any && any._map ? any._map : null;
  }

  /* The rings: redrawn when the list, the zoom or the size changes (called from wall.js too). */
  function drawRings() {
    var map = mapOf();
    if (!map) { return; }
    var zoom = map.getZoom();
    var size = map.getSize();
    var key = JSON.stringify(state.rows.map(function (r) { return [r.id, r.level, r.place]; })) +
      "@" + zoom + "/" + size.x + "x" + size.y + "/" + rem();
    if (key === state.key && state.group && map.hasLayer(state.group)) { return; }
    if (!map.getPane("surges")) {
      var pane = map.createPane("surges");
      pane.style.zIndex = 450;  // over the grids (410) and the outlines (420)
      pane.style.pointerEvents = "none";
    }
    if (!state.renderer) { state.renderer = L.svg({ pane: "surges" }); }
    if (!state.group) { state.group = L.layerGroup(); }
    if (!map.hasLayer(state.group)) { state.group.addTo(map); }
    state.group.clearLayers();
    var r = rem(), c = colour(), drawn = 0, missing = false, places = [];
    state.rows.forEach(function (s) {
      var opts = { pane: "surges", renderer: state.renderer, color: c, opacity: 1, interactive: false };
      if (s.level === "street") {
        var outline = wall.boundaries[s.place];
        if (!outline || !outline.getBounds) { missing = true; return; }
        var b = outline.getBounds(), centre = b.getCenter();
        L.circle(centre, Object.assign({}, opts, {
          radius: centre.distanceTo(b.getNorthEast()) * 1.04, weight: r * 0.22,
          dashArray: (r * 0.9) + " " + (r * 0.45), fill: true, fillColor: c, fillOpacity: 0.08
        })).addTo(state.group);
      } else {
        var layer = wall.layers && wall.layers[s.place];
        if (!layer || !layer.getBounds) { missing = true; return; }
        var at = layer.getBounds().getCenter();
        L.circleMarker(at, Object.assign({}, opts, {
          radius: r * 1.45, weight: r * 0.24, dashArray: (r * 0.55) + " " + (r * 0.3), fill: false
        })).addTo(state.group);
        L.circleMarker(at, Object.assign({}, opts, { radius: r * 0.3, weight: 0, fill: true, fillColor: c,
                                                       fillOpacity: 1 })).addTo(state.group);
      }
      drawn += 1;
      places.push(s.place);
    });
    // The geometry may not be drawn yet: leave the key unset so the next call tries again.
    state.key = missing ? null : key;
    document.documentElement.setAttribute("data-wall-surge-rings", String(drawn));
    document.documentElement.setAttribute("data-wall-surge-places", places.join(","));
    placeBox(map);
  }

  /* The list must not hide a ring: of the map's free corners (the legend holds the bottom left)
     it takes the first whose box covers the fewest rings, top right first. */
  var CORNERS = ["tr", "br", "tl"];
  function placeBox(map) {
    var box = document.getElementById("wall-surges-box");
    if (!box || !state.group || !state.rows.length) { return; }
    var frame = map.getContainer().getBoundingClientRect();
    var rings = [];
    state.group.eachLayer(function (l) {
      var b = l.getBounds ? l.getBounds() : null;
      var lo, hi;
      if (l instanceof L.CircleMarker && !(l instanceof L.Circle)) {
        var c = map.latLngToContainerPoint(l.getLatLng()), rad = l.getRadius();
        lo = L.point(c.x - rad, c.y - rad);
        hi = L.point(c.x + rad, c.y + rad);
      } else if (b) {
        var nw = map.latLngToContainerPoint(b.getNorthWest()), se = map.latLngToContainerPoint(b.getSouthEast());
        lo = L.point(Math.min(nw.x, se.x), Math.min(nw.y, se.y));
        hi = L.point(Math.max(nw.x, se.x), Math.max(nw.y, se.y));
      }
      if (lo) { rings.push([lo.x + frame.left, lo.y + frame.top, hi.x + frame.left, hi.y + frame.top]); }
    });
    var best = null;
    CORNERS.forEach(function (corner) {
      CORNERS.forEach(function (c) { box.classList.toggle("wall-surges--" + c, c === corner); });
      var r = box.getBoundingClientRect();
      var covered = rings.filter(function (g) {
        return g[0] < r.right && g[2] > r.left && g[1] < r.bottom && g[3] > r.top;
      }).length;
      if (best === null || covered < best[1]) { best = [corner, covered]; }
    });
    CORNERS.forEach(function (c) { box.classList.toggle("wall-surges--" + c, c === best[0]); });
    box.setAttribute("data-corner", best[0]);
  }
  wall.drawSurges = drawRings;

  function render() {
    var box = document.getElementById("wall-surges-box");
    var list = document.getElementById("wall-surge-list");
    var rows = state.rows;
    document.documentElement.setAttribute("data-wall-surges", String(rows.length));
    if (!box || !list) { return; }
    while (list.firstChild) { list.removeChild(list.firstChild); }
    box.classList.toggle("is-on", rows.length > 0);
    rows.slice(0, SHOWN).forEach(function (s) {
      var li = el("li", "wall-surges__item");
      li.setAttribute("data-surge", String(s.id));
      li.setAttribute("data-place", s.place);
      li.appendChild(el("span", "wall-surges__mark"));
      // line 1: where (the street, and a grid's community); line 2: what, since when, and the count
      li.appendChild(el("span", "wall-surges__place", s.name + (s.level === "street" ? "（全街道）" : "")));
      li.appendChild(el("span", "wall-surges__group", s.group + " · 自 " + s.since));
      li.appendChild(el("span", "wall-surges__text", s.text));
      li.title = s.name + (s.level === "grid" ? " · " + s.place : "");
      list.appendChild(li);
    });
    if (rows.length > SHOWN) {
      list.appendChild(el("li", "wall-surges__more", "另有 " + (rows.length - SHOWN) + " 处突增"));
    }
  }

  // Geometry arrives after the first list (or is redrawn at a new zoom): look again now and then.
  if (!state.timer) {
    state.timer = window.setInterval(function () { if (state.rows.length || state.key !== null) { drawRings(); } }, 1000);
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    gridhall_surges: {
      show: function (rows) {
        state.rows = Array.isArray(rows) ? rows : [];
        state.key = null;
        render();
        drawRings();
        return state.rows.length;
      }
    }
  });
})();
