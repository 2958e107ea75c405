// The statistics pages: charts from the page's JSON block (vendored ECharts), sortable tables,
// and filters that fetch the page's body again instead of reloading the page.
(function () {
  "use strict";

  var charts = [];

  function readChartData(root) {
    var block = root.querySelector("#chart-data");
    if (!block) return null;
    try {
      return JSON.parse(block.textContent);
    } catch (error) {
      return null;
    }
  }

  function disposeCharts() {
    charts.forEach(function (chart) { chart.dispose(); });
    charts = [];
  }

  function makeChart(element, option) {
    if (!element || typeof window.echarts === "undefined") return;
    // Canvas, and tooltips drawn on the canvas too: no inline style attributes, so the
    // page's Content-Security-Policy (style-src 'self') holds.
    var chart = window.echarts.init(element, null, { renderer: "canvas" });
    chart.setOption(option);
    charts.push(chart);
  }

  function drawCharts(root) {
    disposeCharts();
    var data = readChartData(root);
    if (!data) return;
    var labels = data.labels;
    var tooltip = { trigger: "axis", renderMode: "richText" };
    makeChart(root.querySelector("#trend-chart"), {
      animation: false,
      tooltip: tooltip,
      legend: { top: 0, data: [labels.received, labels.closed, labels.on_time] },
      grid: { left: 48, right: 56, top: 40, bottom: 32 },
      xAxis: { type: "category", data: data.trend.periods },
      yAxis: [
        { type: "value", minInterval: 1 },
        { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value} %" } }
      ],
      series: [
        { name: labels.received, type: "bar", data: data.trend.received, itemStyle: { color: "#6b8fd6" } },
        { name: labels.closed, type: "bar", data: data.trend.closed, itemStyle: { color: "#1e7b34" } },
        { name: labels.on_time, type: "line", yAxisIndex: 1, data: data.trend.on_time,
          connectNulls: true, itemStyle: { color: "#b3261e" } }
      ]
    });
    var names = data.categories.names.slice().reverse();
    var categoryChart = root.querySelector("#category-chart");
    if (categoryChart) {
      // Room for every category's name: a bar pair per line.
      categoryChart.style.height = Math.max(240, 26 * names.length + 70) + "px";
    }
    makeChart(categoryChart, {
      animation: false,
      tooltip: tooltip,
      legend: { top: 0, data: [labels.cases, labels.closed] },
      grid: { left: 8, right: 24, top: 32, bottom: 8, containLabel: true },
      xAxis: { type: "value", minInterval: 1 },
      // Long names are cut short on the axis; the table below has them whole.
      yAxis: { type: "category", data: names, axisLabel: { interval: 0, width: 150, overflow: "truncate" } },
      series: [
        { name: labels.cases, type: "bar", data: data.categories.cases.slice().reverse(), itemStyle: { color: "#6b8fd6" } },
        { name: labels.closed, type: "bar", data: data.categories.closed.slice().reverse(), itemStyle: { color: "#1e7b34" } }
      ]
    });
  }

  function cellValue(row, index, numeric) {
    var cell = row.children[index];
    var raw = cell ? (cell.getAttribute("data-value") || "") : "";
    if (!numeric) return raw.toLowerCase();
    // Empty (no figure) sorts after every number, whichever the direction.
    return raw === "" ? null : parseFloat(raw);
  }

  function sortBy(table, header, index, numeric) {
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("thead th").forEach(function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).filter(function (r) { return r.children.length > 1; });
    rows.sort(function (a, b) {
      var x = cellValue(a, index, numeric), y = cellValue(b, index, numeric);
      if (x === y) return 0;
      if (x === null) return 1;
      if (y === null) return -1;
      return (x < y ? -1 : 1) * (ascending ? 1 : -1);
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }

  function makeSortable(root) {
    root.querySelectorAll("table.sortable").forEach(function (table) {
      table.querySelectorAll("thead th").forEach(function (header, index) {
        var button = header.querySelector("button[data-sort]");
        if (!button) return;
        button.addEventListener("click", function () {
          sortBy(table, header, index, button.getAttribute("data-sort") === "number");
        });
      });
    });
  }

  function enhance(root) {
    drawCharts(root);
    makeSortable(root);
  }

  function wireFilters() {
    var form = document.getElementById("filters");
    if (!form || !window.fetch) return;
    var target = document.getElementById(form.getAttribute("data-target"));
    var status = document.getElementById("filter-status");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var params = new URLSearchParams();
      new FormData(form).forEach(function (value, name) {
        if (String(value).trim() !== "") params.append(name, value);
      });
      var pageUrl = form.getAttribute("action") + (params.toString() ? "?" + params.toString() : "");
      params.append("fragment", "1");
      status.textContent = form.getAttribute("data-loading");
      form.setAttribute("aria-busy", "true");
      fetch(form.getAttribute("action") + "?" + params.toString(), {
        credentials: "same-origin",
        headers: { Accept: "text/html" }
      }).then(function (response) {
        return response.text().then(function (text) { return { ok: response.ok, text: text }; });
      }).then(function (answer) {
        form.removeAttribute("aria-busy");
        if (!answer.ok) {
          // A refused filter: the whole answer is the page that says why.
          window.location.assign(pageUrl);
          return;
        }
        // A template keeps the fragment whole (a leading JSON block included) and runs
        // nothing while it is parsed.
        var fresh = document.createElement("template");
        fresh.innerHTML = answer.text;
        target.replaceChildren(fresh.content);
        enhance(target);
        window.history.replaceState(null, "", pageUrl);
        status.textContent = form.getAttribute("data-done");
      }).catch(function () {
        form.removeAttribute("aria-busy");
        status.textContent = form.getAttribute("data-failed");
      });
    });
    form.querySelectorAll("select").forEach(function (select) {
      select.addEventListener("change", function () { form.requestSubmit(); });
    });
  }

  window.addEventListener("resize", function () {
    charts.forEach(function (chart) { chart.resize(); });
  });

  document.addEventListener("DOMContentLoaded", function () {
    enhance(document);
    wireFilters();
  });
})();
