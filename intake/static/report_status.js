/* A report's status page: polls GET /api/v1/reports/<id> and shows status, category, office,
 * due time and the case history in the reader's language. */
(function () {
  "use strict";

  var I = window.CityRelayI18n;
  var t = I.t;

  var API = "/api/v1";
  var reportId = Number(document.body.getAttribute("data-report-id"));
  var timeZone = document.body.getAttribute("data-timezone") || undefined;
  var FAST_POLL_MS = 1500; /* while the report waits for a worker */
  var SLOW_POLL_MS = 60000; /* once it is routed or in triage: offices may act later */
  var MAX_POLL_MS = 30000;

  var $ = function (id) {
    return document.getElementById(id);
  };

  var state = {
    report: null,
    notFound: false,
    offline: false,
    updatedAt: null,
    categories: {},
    delay: FAST_POLL_MS,
    timer: null
  };

  var el = window.CityRelayDom.el;

  function formatTime(iso, withDate) {
    if (!iso) {
      return "";
    }
    var date = new Date(iso);
    if (isNaN(date.getTime())) {
      return iso;
    }
    var options = { hour: "2-digit", minute: "2-digit", hour12: false };
    if (withDate) {
      options.month = "numeric";
      options.day = "numeric";
      options.weekday = "short";
    }
    try {
      return new Intl.DateTimeFormat(I.locale(), Object.assign({ timeZone: timeZone }, options)).format(
        date
      );
    } catch (e) {
      return new Intl.DateTimeFormat(I.locale(), options).format(date);
    }
  }

  function duration(ms) {
    var minutes = Math.max(0, Math.round(ms / 60000));
    var hours = Math.floor(minutes / 60);
    if (hours >= 24) {
      return t("status.days_hours", { d: Math.floor(hours / 24), h: hours % 24 });
    }
    if (hours > 0) {
      return t("status.hours_minutes", { h: hours, m: minutes % 60 });
    }
    return t("status.minutes", { m: minutes });
  }

  function officeName(office) {
    return office ? I.pick(office.name, office.name_en) : "";
  }

  function categoryName(code, names) {
    if (names) {
      return I.pick(names.zh, names.en);
    }
    var known = code && state.categories[code];
    return known ? I.pick(known.name_zh, known.name_en) : code || "";
  }

  function dueText(report) {
    if (!report.due_at) {
      return t("status.no_due");
    }
    var due = new Date(report.due_at);
    var left = due.getTime() - Date.now();
    var time = formatTime(report.due_at, true);
    return left > 0 ? t("status.due_left", { time: time, left: duration(left) }) : t("status.due_over", { time: time });
  }

  function eventLines(event, report) {
    var detail = event.detail || {};
    var title;
    var lines = [];
    if (event.action === "received") {
      title = t("event.received");
      lines.push(t("event.received_detail", { channel: t("channel." + report.channel) }));
    } else if (event.action === "classified") {
      title = t("event.classified");
      if (detail.method === "reporter") {
        lines.push(t("event.classified_reporter", { category: categoryName(detail.category) }));
      } else if (detail.category) {
        lines.push(
          t("event.classified_auto", {
            category: categoryName(detail.category),
            confidence: Math.round((detail.confidence || 0) * 100)
          })
        );
      } else if (detail.method === "none") {
        lines.push(t("event.classified_notext"));
      } else {
        lines.push(t("event.classified_unsure"));
      }
    } else if (event.action === "routed") {
      title = t("event.routed", { office: officeName(event.office) });
      if (detail.due_at) {
        lines.push(t("event.routed_due", { due: formatTime(detail.due_at, true) }));
      }
    } else if (event.action === "triaged") {
      title = t("event.triaged");
      var reason = detail.triage_reason;
      var key = "triage." + reason;
      lines.push(reason && t(key) !== key ? t(key) : event.note);
    } else {
      title = event.action;
      lines.push(event.note);
    }
    /* the server writes its notes in English; show them to English readers as well */
    if (I.lang() === "en" && event.note && lines.indexOf(event.note) < 0) {
      lines.push(event.note);
    }
    return { title: title, lines: lines.filter(Boolean) };
  }

  function render() {
    var article = $("report");
    var report = state.report;
    var banner = $("status-text");
    var icon = $("status-icon");
    var pollStatus = $("poll-status");

    pollStatus.hidden = !state.offline;
    pollStatus.setAttribute("data-state", state.offline ? "retrying" : "idle");
    pollStatus.textContent = state.offline ? t("status.offline") : "";
    $("updated").textContent = state.updatedAt
      ? t("status.updated", { time: formatTime(state.updatedAt.toISOString(), false) })
      : "";

    if (state.notFound) {
      article.setAttribute("data-status", "not_found");
      article.setAttribute("aria-busy", "false");
      icon.textContent = "❔";
      banner.removeAttribute("data-i18n");
      banner.textContent = t("status.not_found", { id: reportId });
      return;
    }
    if (!report) {
      return;
    }
    article.setAttribute("data-status", report.status);
    article.setAttribute("aria-busy", report.status === "received" ? "true" : "false");
    banner.removeAttribute("data-i18n");
    icon.textContent = { received: "⏳", routed: "✅", triage: "🧑‍💼" }[report.status] || "ℹ️";
    banner.textContent = t("state." + report.status, { office: officeName(report.office) });

    $("fact-status").textContent = t("state.label." + report.status);
    $("fact-category").textContent =
      categoryName(report.category, report.category_name) ||
      (report.status === "received" ? "…" : t("status.uncategorized"));
    $("fact-office").textContent =
      officeName(report.office) || (report.status === "received" ? "…" : t("status.unassigned"));
    $("fact-due").textContent = report.status === "received" ? "…" : dueText(report);

    var place = [];
    if (report.address) {
      place.push(report.address);
    }
    if (report.lat !== null && report.lon !== null && report.lat !== undefined) {
      place.push(t("status.coords", { lat: report.lat.toFixed(5), lon: report.lon.toFixed(5) }));
    }
    $("fact-location").textContent = place.join(" · ") || t("status.none");
    $("fact-text-row").hidden = !report.text;
    $("fact-text").textContent = report.text || "";

    var photos = $("status-photos");
    photos.textContent = "";
    (report.photos || []).forEach(function (photo, index) {
      photos.appendChild(
        el("li", { className: "thumb" }, [
          el("a", { href: photo.url, target: "_blank", rel: "noopener" }, [
            el("img", { src: photo.url, alt: t("status.photo_alt", { n: index + 1 }), loading: "lazy" })
          ])
        ])
      );
    });
    photos.hidden = !(report.photos || []).length;

    var events = $("events");
    events.textContent = "";
    (report.events || []).forEach(function (event) {
      var lines = eventLines(event, report);
      events.appendChild(
        el("li", { className: "event", "data-action": event.action }, [
          el("time", { datetime: event.at, text: formatTime(event.at, true) }),
          el("strong", { className: "event-title", text: lines.title }),
          el(
            "div",
            { className: "event-lines" },
            lines.lines.map(function (line) {
              return el("p", { text: line });
            })
          )
        ])
      );
    });
    $("events-empty").hidden = (report.events || []).length > 0;
  }

  function schedule(ms) {
    window.clearTimeout(state.timer);
    state.timer = window.setTimeout(poll, ms);
  }

  function poll() {
    if (document.hidden) {
      return; /* visibilitychange polls again when the page is looked at */
    }
    fetch(API + "/reports/" + reportId, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) {
        if (response.status === 404) {
          state.notFound = true;
          state.offline = false;
          render();
          return;
        }
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json().then(function (report) {
          state.report = report;
          state.notFound = false;
          state.offline = false;
          state.updatedAt = new Date();
          state.delay = report.status === "received" ? FAST_POLL_MS : SLOW_POLL_MS;
          render();
          schedule(state.delay);
        });
      })
      .catch(function () {
        state.offline = true;
        state.delay = Math.min(MAX_POLL_MS, state.delay * 2);
        render();
        schedule(state.delay);
      });
  }

  function loadCategories() {
    fetch(API + "/categories", { headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.ok ? response.json() : [];
      })
      .then(function (list) {
        list.forEach(function (category) {
          state.categories[category.code] = category;
        });
        render();
      })
      .catch(function () {
        /* names fall back to codes */
      });
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && !state.notFound) {
      poll();
    }
  });
  I.onChange(render);
  loadCategories();
  poll();
})();
