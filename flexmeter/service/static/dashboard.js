/* flexmeter dashboard: reads the service's REST API (/v1) and draws it with the vendored uPlot.
   Query string: ?service=<Fiware-Service>&path=<Fiware-ServicePath>&meter=<id>&token=<bearer>&refresh=<s> */
(function () {
  "use strict";
  var params = new URLSearchParams(window.location.search);
  var state = {
    service: params.get("service") || "",
    path: params.get("path") || "/",
    meter: params.get("meter") || "",
    token: params.get("token") || "",
    refresh: Number(params.get("refresh") || "5"),
    charts: {},
    points: {}
  };
  var COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

  function $(id) { return document.getElementById(id); }

  function api(path) {
    var headers = { "Fiware-Service": state.service, "Fiware-ServicePath": state.path };
    if (state.token) { headers.Authorization = "Bearer " + state.token; }
    return fetch(path, { headers: headers }).then(function (response) {
      if (!response.ok) { throw new Error(path + ": HTTP " + response.status); }
      return response.json();
    });
  }

  function seconds(iso) { return Date.parse(iso) / 1000; }

  /* Align several {t, v} series on one x axis (uPlot wants [xs, ys1, ys2, ...]). */
  function align(seriesByName) {
    var names = Object.keys(seriesByName).sort();
    var xs = {};
    names.forEach(function (name) { seriesByName[name].forEach(function (p) { xs[p.t] = true; }); });
    var times = Object.keys(xs).map(Number).sort(function (a, b) { return a - b; });
    var index = {};
    times.forEach(function (t, i) { index[t] = i; });
    var data = [times];
    names.forEach(function (name) {
      var ys = new Array(times.length).fill(null);
      seriesByName[name].forEach(function (p) { ys[index[p.t]] = p.v; });
      data.push(ys);
    });
    return { names: names, data: data };
  }

  function short(id) { return String(id).replace(/^urn:ngsi-ld:/, ""); }

  function draw(key, seriesByName, unit) {
    var element = $("chart-" + key);
    var aligned = align(seriesByName);
    var count = 0;
    aligned.data.slice(1).forEach(function (ys) { ys.forEach(function (y) { if (y !== null) { count += 1; } }); });
    state.points[key] = count;
    element.setAttribute("data-points", String(count));
    if (count === 0) {
      if (state.charts[key]) { state.charts[key].destroy(); delete state.charts[key]; }
      element.innerHTML = "<p class='empty'>no data yet</p>";
      return;
    }
    var width = Math.max(element.clientWidth || 520, 320);
    var signature = aligned.names.join("|");
    var chart = state.charts[key];
    if (chart && chart._signature === signature) {
      chart.setData(aligned.data);
      return;
    }
    if (chart) { chart.destroy(); }
    element.innerHTML = "";
    var series = [{}].concat(aligned.names.map(function (name, i) {
      return { label: short(name), stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false,
               points: { show: aligned.data[0].length < 60 } };
    }));
    chart = new uPlot({ width: width, height: key === "load" ? 260 : 220, series: series,
                        axes: [{}, { label: unit }], scales: { x: { time: true } } }, aligned.data, element);
    chart._signature = signature;
    state.charts[key] = chart;
  }

  function writeCounts() {
    var total = 0;
    Object.keys(state.points).forEach(function (k) { total += state.points[k]; });
    var drawn = document.querySelectorAll(".chart canvas").length;
    $("points").textContent = String(total);
    $("points").setAttribute("data-points", String(total));
    $("charts").textContent = String(drawn);
    $("charts").setAttribute("data-charts", String(drawn));
    $("updated").textContent = new Date().toISOString();
  }

  function card(label, value) {
    return "<div class='card'><b>" + value + "</b><span>" + label + "</span></div>";
  }

  function text(value) {
    var div = document.createElement("div");
    div.textContent = value === null || value === undefined ? "" : String(value);
    return div.innerHTML;
  }

  function overview(data) {
    var html = "";
    Object.keys(data.meters).sort().forEach(function (vector) { html += card(vector + " meters", data.meters[vector]); });
    html += card("readings", data.readings);
    html += card("active alarms", "<span class='" + (data.activeAlarms ? "alarm" : "") + "'>" + data.activeAlarms + "</span>");
    Object.keys(data.latestLosses).forEach(function (area) {
      var value = data.latestLosses[area];
      html += card("losses " + text(short(area)), value === null ? "–" : value.toFixed(2) + " %");
    });
    $("overview").innerHTML = html;
  }

  function meters(list) {
    var select = $("meter");
    var electric = list.filter(function (m) { return m.vector === "electricity"; });
    if (!state.meter && electric.length) { state.meter = electric[0].id; }
    var current = Array.prototype.map.call(select.options, function (o) { return o.value; }).join("|");
    var wanted = list.map(function (m) { return m.id; }).join("|");
    if (current !== wanted) {
      select.innerHTML = list.map(function (m) {
        return "<option value='" + text(m.id) + "'>" + text(short(m.id)) + " (" + text(m.vector) + ")</option>";
      }).join("");
    }
    select.value = state.meter;
  }

  function refresh() {
    $("status").textContent = "refreshing…";
    var work = [
      api("v1/overview").then(overview),
      api("v1/meters").then(function (list) {
        meters(list);
        if (!state.meter) { draw("load", {}, "W"); draw("profile", {}, "kWh"); return null; }
        var id = encodeURIComponent(state.meter);
        $("load-title").textContent = short(state.meter);
        $("profile-title").textContent = short(state.meter);
        return Promise.all([
          api("v1/meters/" + id + "/series?quantity=p").then(function (body) {
            draw("load", { "active power": body.points.map(function (p) { return { t: seconds(p.t), v: p.v }; }) }, "W");
          }),
          api("v1/meters/" + id + "/consumption?resolution=PT1H").then(function (body) {
            draw("profile", { "consumption": body.periods.map(function (p) { return { t: seconds(p.from), v: p.consumption }; }) }, body.periods.length ? body.periods[0].unit : "kWh");
          })
        ]);
      }),
      api("v1/losses").then(function (body) {
        var byArea = {};
        body.balances.forEach(function (b) {
          (byArea[b.area] = byArea[b.area] || []).push({ t: seconds(b.to), v: b.lossesPercent });
        });
        draw("losses", byArea, "%");
      }),
      api("v1/heat").then(function (body) {
        var byMeter = {};
        body.intervals.forEach(function (i) { (byMeter[i.meter] = byMeter[i.meter] || []).push({ t: seconds(i.from), v: i.deltaT }); });
        draw("heat", byMeter, "K");
      }),
      api("v1/water").then(function (rows) {
        var byMeter = {};
        rows.forEach(function (r) { (byMeter[r.meter] = byMeter[r.meter] || []).push({ t: seconds(r.night + "T00:00:00Z"), v: r.minimumFlow }); });
        draw("water", byMeter, "l/h");
      }),
      api("v1/alarms").then(function (rows) {
        $("alarms").querySelector("tbody").innerHTML = rows.length ? rows.map(function (a) {
          var detail = a.kind === "powerOutage" ? a.customersAffected + " customers" : (a.description || "");
          return "<tr><td class='alarm'>" + text(a.kind) + "</td><td>" + text(short(a.source)) + "</td><td>" +
                 text(a.start) + "</td><td>" + text(detail) + "</td></tr>";
        }).join("") : "<tr><td colspan='4' class='empty'>no active alarm</td></tr>";
      }),
      api("v1/completeness").then(function (body) {
        $("completeness-day").textContent = body.day + " · pilot " +
          (body.completeness === null ? "–" : (body.completeness * 100).toFixed(1) + " %");
        $("completeness").querySelector("tbody").innerHTML = body.meters.map(function (m) {
          return "<tr><td>" + text(short(m.id)) + (m.silent ? " <span class='alarm'>silent</span>" : "") + "</td><td>" +
                 m.received + "</td><td>" + m.expected + "</td><td>" +
                 (m.completeness === null ? "–" : (m.completeness * 100).toFixed(1) + " %") + "</td></tr>";
        }).join("");
      })
    ];
    return Promise.all(work).then(function () {
      writeCounts();
      $("status").textContent = "live";
    }).catch(function (error) {
      writeCounts();
      $("status").textContent = String(error.message || error);
    });
  }

  $("service").value = state.service;
  $("path").value = state.path;
  $("tenant").addEventListener("submit", function (event) {
    event.preventDefault();
    state.service = $("service").value;
    state.path = $("path").value || "/";
    state.meter = "";
    refresh();
  });
  $("meter").addEventListener("change", function () { state.meter = $("meter").value; refresh(); });
  refresh();
  if (state.refresh > 0) { window.setInterval(refresh, state.refresh * 1000); }
}());
