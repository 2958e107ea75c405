/* A report's status page: polls GET /api/v1/reports/<id> (with the reporter's key, kept by the
 * form in localStorage, so the answer says what this reporter may do) and shows status, category,
 * office, due time, the office's notes, the after-photos and the case history in plain words in
 * the reader's language; answers the office's question, confirms the fix or reopens the case.
 * Every text people wrote (notes, answers, the report) goes in with textContent, never as HTML. */
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

  var KEY_STORE = "cityrelay.reporterKey";

  var state = {
    report: null,
    busy: false,
    message: null /* {key, params, state}: the outcome of the last action, in words */,
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

  function reporterKey() {
    try {
      return window.localStorage.getItem(KEY_STORE);
    } catch (e) {
      return null;
    }
  }

  function officeOr(office) {
    return officeName(office) || t("office.generic");
  }

  function closureName(closure) {
    return closure ? t("closure." + closure) : "";
  }

  function statusLabel(status) {
    var key = "state.label." + status;
    return t(key) !== key ? t(key) : status;
  }

  function bannerText(report) {
    if (report.status === "closed") {
      return t("state.closed", { closure: closureName(report.closure) });
    }
    var key = "state." + report.status;
    return t(key) !== key ? t(key, { office: officeOr(report.office) }) : statusLabel(report.status);
  }

  /* The note of an entry and who wrote it, or null: shown as the writer's words, never as markup */
  function quoteOf(entry) {
    if (!entry.note) {
      return null;
    }
    return {
      by: entry.by === "reporter" ? t("event.note_reporter") : t("event.note_office", { office: officeOr(entry.office) }),
      text: entry.note
    };
  }

  function photoList(photos, altKey, className) {
    return el(
      "ul",
      { className: className },
      photos.map(function (photo, index) {
        return el("li", { className: "thumb" }, [
          el("a", { href: photo.url, target: "_blank", rel: "noopener" }, [
            el("img", { src: photo.url, alt: t(altKey, { n: index + 1 }), loading: "lazy" })
          ])
        ]);
      })
    );
  }

  function eventLines(event, report) {
    var detail = event.detail || {};
    var title;
    var lines = [];
    var office = officeOr(event.office);
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
    } else if (event.action === "close") {
      title = t("event.close", { closure: closureName(detail.closure) });
    } else if (event.action === "approve-extension") {
      title = t("event.approve-extension", { hours: detail.hours || 0 });
      if (detail.due_at) {
        lines.push(t("event.new_due", { due: formatTime(detail.due_at, true) }));
      }
    } else {
      var key = "event." + event.action;
      title = t(key) !== key ? t(key, { office: office }) : t("event.other");
    }
    return { title: title, lines: lines.filter(Boolean), quote: quoteOf(event) };
  }

  function latest(timeline, action) {
    for (var i = timeline.length - 1; i >= 0; i -= 1) {
      if (timeline[i].action === action) {
        return timeline[i];
      }
    }
    return null;
  }

  /* The latest resolution or closing and what the office wrote about it, unless the case went
   * back to work since. */
  function outcomeEntry(report) {
    var timeline = report.timeline || [];
    if (report.status !== "resolved" && report.status !== "closed") {
      return null;
    }
    for (var i = timeline.length - 1; i >= 0; i -= 1) {
      var entry = timeline[i];
      if (entry.action === "rework" || entry.action === "reopen") {
        return null;
      }
      if ((entry.action === "resolve" || entry.action === "close") && (entry.note || entry.photos.length)) {
        return entry;
      }
    }
    return null;
  }

  function confirmedSinceResolve(timeline) {
    for (var i = timeline.length - 1; i >= 0; i -= 1) {
      if (timeline[i].action === "resolve") {
        return false;
      }
      if (timeline[i].action === "confirm") {
        return true;
      }
    }
    return false;
  }

  function renderOutcome(report) {
    var card = $("outcome-card");
    var entry = outcomeEntry(report);
    card.hidden = !entry;
    var photos = $("after-photos");
    photos.textContent = "";
    if (!entry) {
      return;
    }
    var quote = quoteOf(entry);
    $("outcome-by").textContent = quote ? quote.by : "";
    $("outcome-by").hidden = !quote;
    $("outcome-note").textContent = entry.note;
    $("outcome-note").hidden = !entry.note;
    var shown = report.after_photos || [];
    shown.forEach(function (photo, index) {
      photos.appendChild(
        el("li", { className: "thumb" }, [
          el("a", { href: photo.url, target: "_blank", rel: "noopener" }, [
            el("img", { src: photo.url, alt: t("event.after_photo_alt", { n: index + 1 }) })
          ])
        ])
      );
    });
    photos.hidden = !shown.length;
  }

  function renderActions(report) {
    var allowed = report.allowed_actions || [];
    var timeline = report.timeline || [];
    var office = officeOr(report.office);
    var canAnswer = allowed.indexOf("answer") >= 0;
    var canConfirm = allowed.indexOf("confirm") >= 0;
    var canReopen = allowed.indexOf("reopen") >= 0;

    $("answer-form").hidden = !canAnswer;
    if (canAnswer) {
      var asked = latest(timeline, "ask");
      $("question-label").textContent = t("act.question", { office: officeOr(asked && asked.office) });
      $("question").textContent = asked ? asked.note : "";
    }
    $("confirm-box").hidden = !canConfirm;
    $("confirm-hint").textContent = t("act.confirm_hint", { office: office });
    $("reopen-form").hidden = !canReopen;
    $("reopen-hint").textContent = t("act.reopen_hint", {
      office: office,
      until: report.reopen_until ? formatTime(report.reopen_until, true) : "—"
    });
    $("act-card").hidden = !(canAnswer || canConfirm || canReopen);
    ["answer-btn", "confirm-btn", "reopen-btn"].forEach(function (id) {
      $(id).disabled = state.busy;
    });

    /* what this phone may not do, said once, when the case waits for a reporter */
    var message = state.message;
    if (!message && !allowed.length) {
      var waitsForReporter =
        report.status === "waiting" ||
        report.status === "resolved" ||
        (report.status === "closed" && report.reopen_until && new Date(report.reopen_until) > new Date());
      if (reporterKey() && confirmedSinceResolve(timeline) && report.status !== "waiting") {
        message = { key: "act.confirmed_already", state: "done" };
      } else if (waitsForReporter) {
        message = { key: "act.not_yours", state: "idle" };
      }
    }
    var status = $("act-status");
    status.hidden = !message;
    status.setAttribute("data-state", message ? message.state : "idle");
    status.textContent = message ? actMessageText(message) : "";
  }

  function actMessageText(message) {
    var params = Object.assign({}, message.params || {});
    if (message.key === "act.conflict") {
      params.status = statusLabel(params.status);
    }
    if ("office" in params) {
      params.office = officeOr(state.report && state.report.office);
    }
    return t(message.key, params);
  }

  // The public reads a point rounded to 3 decimals (about 100 m): show no more digits than
  // there are; the reporter's own exact point shows 5.
  function coordinate(value) {
    var thousandths = value * 1000;
    return Math.abs(thousandths - Math.round(thousandths)) < 1e-6
      ? value.toFixed(3)
      : value.toFixed(5);
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
    icon.textContent =
      {
        received: "⏳",
        routed: "✅",
        triage: "🧑‍💼",
        accepted: "✅",
        in_progress: "🛠️",
        waiting: "❓",
        resolved: "🔍",
        closed: "🏁"
      }[report.status] || "ℹ️";
    banner.textContent = bannerText(report);

    $("fact-status").textContent = statusLabel(report.status);
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
      place.push(t("status.coords", { lat: coordinate(report.lat), lon: coordinate(report.lon) }));
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

    renderActions(report);
    renderOutcome(report);

    var events = $("events");
    var timeline = report.timeline || [];
    events.textContent = "";
    timeline.forEach(function (event) {
      var lines = eventLines(event, report);
      var body = lines.lines.map(function (line) {
        return el("p", { text: line });
      });
      if (lines.quote) {
        body.push(el("p", { className: "note-by", text: lines.quote.by }));
        body.push(el("p", { className: "quote note", text: lines.quote.text }));
      }
      if (event.photos && event.photos.length) {
        body.push(photoList(event.photos, "event.after_photo_alt", "thumbs"));
      }
      events.appendChild(
        el("li", { className: "event", "data-action": event.action }, [
          el("time", { datetime: event.at, text: formatTime(event.at, true) }),
          el("strong", { className: "event-title", text: lines.title }),
          el("div", { className: "event-lines" }, body)
        ])
      );
    });
    $("events-empty").hidden = timeline.length > 0;
  }

  /* ---------- the reporter's actions ---------- */

  function fieldNames(body) {
    var fields = (body && body.error && body.error.fields) || {};
    return Object.keys(fields).join(", ") || "—";
  }

  function act(action, payload, onDone) {
    var key = reporterKey();
    if (!key) {
      state.message = { key: "act.not_yours", state: "error" };
      render();
      return;
    }
    state.busy = true;
    state.message = { key: "act.sending", state: "sending" };
    render();
    fetch(API + "/reports/" + reportId + "/" + action, {
      method: "POST",
      headers: { Accept: "application/json", "Content-Type": "application/json", Authorization: "Bearer " + key },
      body: JSON.stringify(payload),
      cache: "no-store"
    })
      .then(function (response) {
        return response
          .json()
          .catch(function () {
            return null;
          })
          .then(function (body) {
            if (response.ok) {
              state.message = onDone();
            } else if (response.status === 409) {
              state.message = {
                key: "act.conflict",
                params: { status: (body && body.error && body.error.status) || "" },
                state: "error"
              };
            } else if (response.status === 401 || response.status === 403) {
              state.message = { key: "act.forbidden", state: "error" };
            } else if (response.status === 422 || response.status === 400) {
              state.message = { key: "act.invalid", params: { fields: fieldNames(body) }, state: "error" };
            } else {
              state.message = { key: "act.server_error", state: "error" };
            }
          });
      })
      .catch(function () {
        state.message = { key: "act.failed", state: "error" };
      })
      .then(function () {
        state.busy = false;
        poll(); /* whatever happened, show the case as it is now */
      });
  }

  $("answer-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var text = $("answer-text").value.trim();
    if (!text) {
      state.message = { key: "act.answer_need", state: "error" };
      $("answer-text").focus();
      render();
      return;
    }
    act("answer", { text: text }, function () {
      $("answer-text").value = "";
      return { key: "act.answered", params: { office: "" }, state: "done" };
    });
  });

  $("confirm-btn").addEventListener("click", function () {
    act("confirm", {}, function () {
      return { key: "act.confirmed", state: "done" };
    });
  });

  $("reopen-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var reason = $("reopen-reason").value.trim();
    if (!reason) {
      state.message = { key: "act.reopen_need", state: "error" };
      $("reopen-reason").focus();
      render();
      return;
    }
    act("reopen", { reason: reason }, function () {
      $("reopen-reason").value = "";
      return { key: "act.reopened", params: { office: "" }, state: "done" };
    });
  });

  function schedule(ms) {
    window.clearTimeout(state.timer);
    state.timer = window.setTimeout(poll, ms);
  }

  function poll() {
    if (document.hidden) {
      return; /* visibilitychange polls again when the page is looked at */
    }
    var headers = { Accept: "application/json" };
    var key = reporterKey();
    if (key) {
      headers.Authorization = "Bearer " + key; /* only to learn what this reporter may do */
    }
    fetch(API + "/reports/" + reportId, { headers: headers, cache: "no-store" })
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

  function keepCategories(list) {
    list.forEach(function (category) {
      state.categories[category.code] = category;
    });
    render();
  }

  function loadCategories() {
    var inPage = window.CityRelayDom.pageCategories();
    if (inPage) {
      keepCategories(inPage); /* in the page already: no request */
      return;
    }
    fetch(API + "/categories", { headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.ok ? response.json() : [];
      })
      .then(keepCategories)
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
