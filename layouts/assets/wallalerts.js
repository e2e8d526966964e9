/* Alerts of 突发事件 on the wall (docs/halls.md "Alerts"): the urgent and safety-critical cases of
   this wall's region that nobody has acknowledged yet (a city wall: the escalated and city-level
   ones), as the server sends them in wall-alerts. One is shown at a time in a red strip under
   the header -- the case, its class, its place, when, and 已升级 when escalated -- and several
   take turns every TURN_MS, so they queue rather than overlap; the strip never covers the
   panels. The shown alert's grid flashes on the map. A new alert flashes the strip for
   NEW_MS and, on a screen whose setting has sound on, beeps (WebAudio: nothing to download).
   Text is set as text nodes, never markup. An acknowledged alert drops out of the list. */
(function () {
  "use strict";

  var TURN_MS = 8000;
  var FLASH_MS = 500;
  var NEW_MS = 4000;

  var W = (window.gridhall = window.gridhall || {});
  var wall = (W.wall = W.wall || {});
  var state = (W.alerts = W.alerts || { rows: [], index: 0, seen: {}, turn: null, flash: null, on: false });

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  function stopFlash() {
    window.clearInterval(state.flash);
    state.flash = null;
    var code = state.flashing;
    state.flashing = null;
    var layer = code && wall.layers && wall.layers[code];
    if (layer && layer.setStyle && wall.restyle) { wall.restyle(code); }
  }

  function flashGrid(code) {
    stopFlash();
    var layer = code && wall.layers && wall.layers[code];
    if (!layer || !layer.setStyle) { return; }
    state.flashing = code;
    state.flash = window.setInterval(function () {
      state.on = !state.on;
      if (state.on) {
        layer.setStyle({ color: "#ff2d2d", weight: 4, opacity: 1, fill: true, fillColor: "#ff2d2d", fillOpacity: 0.9 });
      } else if (wall.restyle) {
        wall.restyle(code);
      }
    }, FLASH_MS);
  }

  function beep() {
    try {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) { return; }
      var ctx = state.audio || (state.audio = new Ctx());
      var osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.frequency.value = 880;
      gain.gain.value = 0.2;
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start();
      osc.stop(ctx.currentTime + 0.6);
    } catch (e) { /* no audio device: the strip says it all */ }
  }

  function render() {
    var box = document.getElementById("wall-alert");
    if (!box) { return; }
    while (box.firstChild) { box.removeChild(box.firstChild); }
    var rows = state.rows;
    document.documentElement.setAttribute("data-wall-alerts", String(rows.length));
    if (!rows.length) {
      box.classList.remove("is-on");
      stopFlash();
      return;
    }
    var a = rows[state.index % rows.length];
    box.classList.add("is-on");
    box.setAttribute("data-alert", String(a.id));
    box.appendChild(el("span", "wall-alert__tag", a.escalated ? "已升级 · " + a.reason : a.reason));
    box.appendChild(el("span", "wall-alert__number", a.number));
    box.appendChild(el("span", "wall-alert__class", a.klass));
    box.appendChild(el("span", "wall-alert__place", a.place + (a.grid ? " · " + a.grid : "")));
    box.appendChild(el("span", "wall-alert__time", a.raised + " 上报"));
    if (rows.length > 1) {
      box.appendChild(el("span", "wall-alert__count", (state.index % rows.length + 1) + " / " + rows.length));
    }
    flashGrid(a.grid);
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    gridhall_alerts: {
      show: function (rows) {
        rows = Array.isArray(rows) ? rows : [];
        var fresh = rows.filter(function (r) { return !state.seen[r.id]; });
        rows.forEach(function (r) { state.seen[r.id] = true; });
        state.rows = rows;
        if (fresh.length) {
          // the newest arrival is shown first, and the strip calls attention to it for a moment
          state.index = rows.indexOf(fresh[fresh.length - 1]);
          var box = document.getElementById("wall-alert");
          if (box) {
            box.classList.add("is-new");
            window.setTimeout(function () { box.classList.remove("is-new"); }, NEW_MS);
          }
          if (W.screenSound) { beep(); }
        } else if (state.index >= rows.length) {
          state.index = 0;
        }
        render();
        window.clearInterval(state.turn);
        state.turn = rows.length > 1 ? window.setInterval(function () {
          state.index = (state.index + 1) % state.rows.length;
          render();
        }, TURN_MS) : null;
        return rows.length;
      }
    }
  });
})();
