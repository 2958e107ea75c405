// The statistics pages: sortable tables, and filters that fetch the page's body again instead
// of reloading the page. The charts are SVG in the page itself and need nothing from here.
(function () {
  "use strict";

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
        // A template keeps the fragment whole (its inline SVG charts included) and runs
        // nothing while it is parsed.
        var fresh = document.createElement("template");
        fresh.innerHTML = answer.text;
        target.replaceChildren(fresh.content);
        makeSortable(target);
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

  document.addEventListener("DOMContentLoaded", function () {
    makeSortable(document);
    wireFilters();
  });
})();
