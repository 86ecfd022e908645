/* Site-list panel: filter, rank and download the table the page carries (gis/sitepanel.py).
   Rows are CSV text written by the package; this script only chooses and orders them. */
(function () {
  "use strict";
  if (window.gpSitePanelsLoaded) { return; }
  window.gpSitePanelsLoaded = true;
  var MAX_MARKS = 2000;

  function findMap() {
    for (var k in window) {
      if (k.indexOf("map_") === 0 && window.L && window[k] instanceof L.Map) { return window[k]; }
    }
    return null;
  }

  function inflate(b64) {
    var bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text().then(JSON.parse);
  }

  /* Split CSV rows at line ends outside quoted fields (a quoted field may hold a newline). */
  function splitRows(body) {
    var rows = [], start = 0, quoted = false;
    for (var i = 0; i < body.length; i++) {
      var c = body.charCodeAt(i);
      if (c === 34) { quoted = !quoted; } else if (c === 10 && !quoted) {
        rows.push(body.slice(start, i)); start = i + 1;
      }
    }
    if (start < body.length) { rows.push(body.slice(start)); }
    return rows;
  }

  /* The first field of a CSV row, unquoted. */
  function firstField(row) {
    if (row.charAt(0) !== '"') { var j = row.indexOf(","); return j < 0 ? row : row.slice(0, j); }
    var out = "", i = 1;
    while (i < row.length) {
      if (row.charAt(i) === '"') { if (row.charAt(i + 1) === '"') { out += '"'; i += 2; continue; } break; }
      out += row.charAt(i); i += 1;
    }
    return out;
  }

  function setup(panel, table) {
    var q = function (sel) { return panel.querySelector(sel); };
    var status = q("[data-role=status]"), count = q("[data-testid$=-count]");
    var button = q("[data-role=download]"), rankBy = q("[data-role=rank]"), topIn = q("[data-role=top]");
    var rows = splitRows(table.body), n = rows.length, cols = table.columns;
    // for the site list the first cell is the rank: kept apart and rewritten after filtering
    var cells = table.renumber ? rows.map(function (r) { return r.slice(r.indexOf(",") + 1); }) : rows;
    var lon = new Float64Array(n), lat = new Float64Array(n);
    rows.forEach(function (r, i) {
      var b = r.lastIndexOf(","), a = r.lastIndexOf(",", b - 1);
      lon[i] = parseFloat(r.slice(a + 1, b)); lat[i] = parseFloat(r.slice(b + 1));
    });
    var map = findMap(), marks = null;
    if (map) { marks = L.layerGroup().addTo(map); }
    var chosen = [], filtered = false, colour = panel.dataset.ringColour;

    function filters() {
      var tests = [];
      panel.querySelectorAll("[data-filter]").forEach(function (el) {
        var col = cols[el.dataset.column];
        if (!col || el.disabled) { return; }
        if (el.dataset.filter === "select" && el.value !== "") {
          var code = col.values.indexOf(el.value);  // -1: no row has it, so nothing matches
          tests.push(function (i) { return code >= 0 && col.codes[i] === code; });
        } else if (el.dataset.filter === "min" && el.value.trim() !== "") {
          var v = Number(el.value);
          if (isFinite(v)) { tests.push(function (i) { return col[i] !== null && col[i] >= v; }); }
        } else if (el.dataset.filter === "flag" && el.checked) {
          tests.push(function (i) { return col[i] === 1; });
        }
      });
      return tests;
    }

    function update() {
      var tests = filters(), order = table.orders[rankBy.value];
      var top = parseInt(topIn.value, 10), limit = isFinite(top) && top >= 1 ? top : Infinity;
      chosen = [];
      for (var k = 0; k < n && chosen.length < limit; k++) {
        var i = order ? order[k] : k, ok = true;
        for (var t = 0; t < tests.length && ok; t++) { ok = tests[t](i); }
        if (ok) { chosen.push(i); }
      }
      count.textContent = String(chosen.length);
      filtered = tests.length > 0 || limit < Infinity;
      var note = !filtered ? "设置条件后在地图上圈出 set a filter or N to ring them on the map"
        : chosen.length > MAX_MARKS ? "地图圈出前 " + MAX_MARKS + " 个 the map rings the first " + MAX_MARKS
        : "地图上以" + panel.dataset.ringZh + "圈出 ringed in " + panel.dataset.ring + " on the map";
      status.textContent = chosen.length ? note : "无符合条件的记录 nothing matches";
      status.className = "gp-status";
      button.disabled = false;
      mark();
    }

    function mark() {
      if (!marks) { return; }
      marks.clearLayers();
      if (!panel.open || !filtered) { return; }
      chosen.slice(0, MAX_MARKS).forEach(function (i, k) {
        if (!isFinite(lon[i]) || !isFinite(lat[i])) { return; }
        var tip = document.createElement("span");
        tip.textContent = (k + 1) + ". " + firstField(cells[i]);  // text, never HTML
        L.circleMarker([lat[i], lon[i]], {radius: 8, color: colour, weight: 3,
          fill: false, interactive: true}).bindTooltip(tip).addTo(marks);
      });
    }

    function csv() {
      var out = ["\ufeff" + table.header];
      chosen.forEach(function (i, k) { out.push(table.renumber ? (k + 1) + "," + cells[i] : cells[i]); });
      return out.join("\n") + "\n";
    }

    button.addEventListener("click", function () {
      var blob = new Blob([csv()], {type: "text/csv;charset=utf-8"});
      var a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = panel.dataset.filename;
      document.body.appendChild(a);
      a.click();
      setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    });
    panel.querySelectorAll("select, input").forEach(function (el) {
      el.addEventListener("change", update);
      if (el.type === "number") { el.addEventListener("input", update); }
    });
    panel.addEventListener("toggle", mark);
    update();
    panel.dataset.ready = "1";
  }

  /* Online pages have a minimap in the bottom-right corner: sit above it. */
  function clearMinimap(panel) {
    var mini = document.querySelector(".leaflet-control-minimap");
    if (mini) { panel.style.bottom = (mini.getBoundingClientRect().height + 30) + "px"; }
  }

  function start() {
    document.querySelectorAll(".gp-sites[data-table]").forEach(function (panel) {
      clearMinimap(panel);
      var data = (window.gpSiteTables || {})[panel.dataset.table];
      var status = panel.querySelector("[data-role=status]");
      var fail = function (text) { status.textContent = text; status.className = "gp-status gp-error"; };
      if (!data) {
        fail("缺少站点表 the site table is missing: keep the page's .js files beside it");
        return;
      }
      if (typeof DecompressionStream === "undefined") {
        fail("浏览器过旧 this browser cannot read the table: use a current Chrome, Edge or Firefox");
        return;
      }
      inflate(data).then(function (table) { setup(panel, table); })
        .catch(function (e) { fail("读取失败 cannot read the table: " + e); });
    });
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
