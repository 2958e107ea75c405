/* CityRelay pages: every UI string in simplified Chinese (the default) and English.
 * The choice is kept in localStorage. Elements carry data-i18n (text), data-i18n-placeholder,
 * data-i18n-aria-label; scripts call CityRelayI18n.t(key, params) for the rest. */
(function () {
  "use strict";

  var STORAGE_KEY = "cityrelay.lang";

  var STRINGS = {
    zh: {
      "app.name": "随手拍",
      "app.title": "随手拍 · 城市问题上报",
      "app.skip": "跳到内容",
      "lang.switch": "English",
      "lang.switch_label": "Switch to English",
      "common.optional": "（可选）",

      "form.title": "随手拍 · 城市问题上报",
      "form.submit": "提交",
      "form.sending": "正在提交…",

      "draft.restored": "已恢复上次未送达的草稿，点“提交”即可再发。",

      "loc.heading": "位置",
      "loc.locate": "重新定位",
      "loc.locating": "正在定位…",
      "loc.fixed": "已定位，精度约 ±{accuracy} 米",
      "loc.fixed_poor": "已定位，但精度较差（±{accuracy} 米），请补充地址",
      "loc.coords": "坐标 {lat}, {lon}",
      "loc.clear": "不用这个位置，改填地址",
      "loc.none": "未使用定位，请填写地址或地标",
      "loc.denied": "没有定位权限。请在下面填写地址或地标。",
      "loc.unavailable": "暂时无法定位。请在下面填写地址或地标。",
      "loc.timeout": "定位超时。可点“重新定位”，或填写地址或地标。",
      "loc.unsupported": "此浏览器不能定位。请填写地址或地标。",
      "loc.address_label": "地址或地标",
      "loc.address_placeholder": "例如：临港家园南门、XX路 88 号",
      "loc.address_hint_optional": "选填：定位不准时补充一下。",
      "loc.address_hint_required": "必填：没有定位时，写清楚地址或附近的地标。",
      "loc.need": "请开启定位，或填写地址或地标。",

      "photo.heading": "照片",
      "photo.take": "拍照",
      "photo.empty": "点下方“拍照”按钮，最多 {max} 张。",
      "photo.remove": "删除第 {n} 张照片",
      "photo.alt": "第 {n} 张照片",
      "photo.processing": "正在处理照片…",
      "photo.too_many": "最多 {max} 张照片。",
      "photo.failed": "这张照片读不出来，请重拍。",

      "cat.heading": "问题类别",
      "cat.loading": "正在加载类别…",
      "cat.failed": "类别加载失败，可以不选，直接写说明。",
      "cat.retry": "重新加载类别",

      "text.heading": "说明",
      "text.placeholder": "看到了什么？可以点键盘上的麦克风说话。",
      "text.need": "请拍照、选一个类别或写几句说明。",

      "send.sending": "正在提交…",
      "send.registering": "正在准备上报身份…",
      "send.wait": "网络不通，{seconds} 秒后自动重试（第 {n}/{max} 次）",
      "send.retrying": "正在重试（第 {n}/{max} 次）…",
      "send.gave_up": "还是没发出去。草稿已保存在本机，网络好了再点“提交”。",
      "send.done": "已提交，正在打开进度页…",
      "send.check_fields": "请检查标红的内容。",
      "send.server_error": "服务器暂时出错，请稍后再试。",
      "send.key_reused": "这份草稿的早先版本已经收到（{link}）。再点“提交”会把修改后的内容作为新的上报。",
      "send.key_reused_link": "报告 #{id}",
      "send.unauthorized": "上报身份无效，已重新申请，请再点“提交”。",
      "send.busy_photos": "照片还在处理，请稍等。",

      "recent.heading": "我最近的上报",
      "recent.empty": "还没有上报记录。",
      "recent.item": "报告 #{id}",

      "status.title": "上报进度",
      "status.report": "报告",
      "status.loading": "正在加载…",
      "status.status": "状态",
      "status.category": "类别",
      "status.office": "负责单位",
      "status.due": "处理时限",
      "status.location": "位置",
      "status.text": "说明",
      "status.events": "处理记录",
      "status.no_events": "系统正在处理，请稍候。",
      "status.new_report": "再报一个",
      "status.updated": "更新于 {time}",
      "status.not_found": "找不到报告 #{id}。",
      "status.offline": "网络不通，稍后自动刷新。",
      "status.none": "—",
      "status.uncategorized": "未分类",
      "status.unassigned": "待分派",
      "status.no_due": "分派后给出",
      "status.due_left": "{time}（还剩 {left}）",
      "status.due_over": "{time}（已超时）",
      "status.hours_minutes": "{h} 小时 {m} 分",
      "status.days_hours": "{d} 天 {h} 小时",
      "status.minutes": "{m} 分钟",
      "status.coords": "{lat}, {lon}",
      "status.photo_alt": "第 {n} 张照片",

      "state.received": "已收到，正在分派…",
      "state.routed": "已派给：{office}",
      "state.triage": "等待人工分派",
      "state.label.received": "已收到",
      "state.label.routed": "已派单",
      "state.label.triage": "人工分派中",

      "event.received": "收到上报",
      "event.classified": "确定类别",
      "event.routed": "派给 {office}",
      "event.triaged": "转人工分派",
      "event.received_detail": "通过 {channel} 提交",
      "event.classified_reporter": "上报人选择：{category}",
      "event.classified_auto": "自动识别为 {category}（把握 {confidence}%）",
      "event.classified_unsure": "自动识别把握不够，需要人工判断",
      "event.classified_notext": "没有文字说明，需要人工看照片",
      "event.routed_due": "处理时限：{due}",
      "triage.low_confidence": "类别需要人工确认",
      "triage.no_text": "没有说明也没有类别，需要人工看照片",
      "triage.no_location": "没有坐标，需要人工根据地址定位",
      "triage.outside_jurisdiction": "位置不在任何辖区内",
      "triage.no_office_handles": "附近没有单位负责这一类问题",

      "channel.api": "随手拍",
      "channel.open311": "Open311"
    },
    en: {
      "app.name": "Quick Report",
      "app.title": "Quick Report · city problems",
      "app.skip": "Skip to content",
      "lang.switch": "中文",
      "lang.switch_label": "切换到中文",
      "common.optional": "(optional)",

      "form.title": "Quick Report · city problems",
      "form.submit": "Submit",
      "form.sending": "Sending…",

      "draft.restored": "Your unsent draft is back. Tap “Submit” to send it again.",

      "loc.heading": "Location",
      "loc.locate": "Locate again",
      "loc.locating": "Finding your location…",
      "loc.fixed": "Location found, accurate to ±{accuracy} m",
      "loc.fixed_poor": "Location found, but only to ±{accuracy} m: please add an address",
      "loc.coords": "Coordinates {lat}, {lon}",
      "loc.clear": "Don't use this location, type an address",
      "loc.none": "No location fix: type an address or landmark",
      "loc.denied": "Location permission is off. Type an address or landmark below.",
      "loc.unavailable": "Location is not available. Type an address or landmark below.",
      "loc.timeout": "Location timed out. Tap “Locate again” or type an address.",
      "loc.unsupported": "This browser can't give a location. Type an address or landmark.",
      "loc.address_label": "Address or landmark",
      "loc.address_placeholder": "e.g. south gate of Lingang Homes, 88 X Road",
      "loc.address_hint_optional": "Optional: add it if the fix is poor.",
      "loc.address_hint_required": "Required: without a location fix, name the address or a landmark.",
      "loc.need": "Turn on location or type an address or landmark.",

      "photo.heading": "Photos",
      "photo.take": "Photo",
      "photo.empty": "Tap the “Photo” button below, up to {max}.",
      "photo.remove": "Remove photo {n}",
      "photo.alt": "Photo {n}",
      "photo.processing": "Preparing photo…",
      "photo.too_many": "At most {max} photos.",
      "photo.failed": "This photo could not be read; please take it again.",

      "cat.heading": "What is it?",
      "cat.loading": "Loading categories…",
      "cat.failed": "Categories did not load. You can skip this and just describe it.",
      "cat.retry": "Load categories again",

      "text.heading": "Description",
      "text.placeholder": "What did you see? Tap the microphone on your keyboard to dictate.",
      "text.need": "Take a photo, pick a category or write a few words.",

      "send.sending": "Sending…",
      "send.registering": "Setting up your reporter key…",
      "send.wait": "No connection. Retrying in {seconds} s (retry {n} of {max})",
      "send.retrying": "Retrying (retry {n} of {max})…",
      "send.gave_up": "Still not sent. Your draft is saved on this phone; tap “Submit” when you have a signal.",
      "send.done": "Sent. Opening the status page…",
      "send.check_fields": "Please check the fields marked in red.",
      "send.server_error": "The server had a problem. Please try again later.",
      "send.key_reused": "An earlier version of this draft was already received ({link}). Tap “Submit” again to file the edited draft as a new report.",
      "send.key_reused_link": "report #{id}",
      "send.unauthorized": "Your reporter key was not accepted; a new one was requested. Tap “Submit” again.",
      "send.busy_photos": "A photo is still being prepared; one moment.",

      "recent.heading": "My recent reports",
      "recent.empty": "No reports yet.",
      "recent.item": "Report #{id}",

      "status.title": "Report status",
      "status.report": "Report",
      "status.loading": "Loading…",
      "status.status": "Status",
      "status.category": "Category",
      "status.office": "Office",
      "status.due": "Due",
      "status.location": "Location",
      "status.text": "Description",
      "status.events": "History",
      "status.no_events": "Being processed; one moment.",
      "status.new_report": "Report another",
      "status.updated": "Updated {time}",
      "status.not_found": "There is no report #{id}.",
      "status.offline": "No connection; will refresh by itself.",
      "status.none": "—",
      "status.uncategorized": "Not categorised",
      "status.unassigned": "Not assigned yet",
      "status.no_due": "Set once assigned",
      "status.due_left": "{time} ({left} left)",
      "status.due_over": "{time} (overdue)",
      "status.hours_minutes": "{h} h {m} min",
      "status.days_hours": "{d} d {h} h",
      "status.minutes": "{m} min",
      "status.coords": "{lat}, {lon}",
      "status.photo_alt": "Photo {n}",

      "state.received": "Received, being assigned…",
      "state.routed": "Sent to: {office}",
      "state.triage": "Waiting for a person to assign it",
      "state.label.received": "Received",
      "state.label.routed": "Assigned",
      "state.label.triage": "In triage",

      "event.received": "Report received",
      "event.classified": "Category decided",
      "event.routed": "Sent to {office}",
      "event.triaged": "Sent to triage",
      "event.received_detail": "Filed through {channel}",
      "event.classified_reporter": "Chosen by the reporter: {category}",
      "event.classified_auto": "Recognised as {category} ({confidence}% sure)",
      "event.classified_unsure": "Not sure enough of the category; a person will decide",
      "event.classified_notext": "No description; a person will look at the photos",
      "event.routed_due": "Due {due}",
      "triage.low_confidence": "The category needs a person's decision",
      "triage.no_text": "No description and no category; a person will look at the photos",
      "triage.no_location": "No coordinates; a person will place the address",
      "triage.outside_jurisdiction": "The location is outside every office's area",
      "triage.no_office_handles": "No office nearby handles this kind of problem",

      "channel.api": "Quick Report",
      "channel.open311": "Open311"
    }
  };

  function readStored() {
    try {
      var value = window.localStorage.getItem(STORAGE_KEY);
      return value === "en" || value === "zh" ? value : null;
    } catch (e) {
      return null;
    }
  }

  var lang = readStored() || "zh";
  var listeners = [];

  function t(key, params) {
    var table = STRINGS[lang] || STRINGS.zh;
    var text = Object.prototype.hasOwnProperty.call(table, key) ? table[key] : STRINGS.zh[key];
    if (text === undefined) {
      return key;
    }
    if (params) {
      text = text.replace(/\{(\w+)\}/g, function (whole, name) {
        return Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole;
      });
    }
    return text;
  }

  function apply(root) {
    var scope = root || document;
    scope.querySelectorAll("[data-i18n]").forEach(function (el) {
      el.textContent = t(el.getAttribute("data-i18n"), readParams(el));
    });
    scope.querySelectorAll("[data-i18n-placeholder]").forEach(function (el) {
      el.setAttribute("placeholder", t(el.getAttribute("data-i18n-placeholder")));
    });
    scope.querySelectorAll("[data-i18n-aria-label]").forEach(function (el) {
      el.setAttribute("aria-label", t(el.getAttribute("data-i18n-aria-label"), readParams(el)));
    });
    if (scope === document) {
      document.documentElement.lang = apiLang();
      var titleEl = document.querySelector("title[data-i18n]");
      if (titleEl) {
        document.title = t(titleEl.getAttribute("data-i18n"));
      }
      var button = document.getElementById("lang-switch");
      if (button) {
        button.textContent = t("lang.switch");
        button.setAttribute("lang", lang === "en" ? "zh-Hans" : "en");
        button.setAttribute("aria-label", t("lang.switch_label"));
      }
    }
  }

  function readParams(el) {
    var raw = el.getAttribute("data-i18n-params");
    if (!raw) {
      return null;
    }
    try {
      return JSON.parse(raw);
    } catch (e) {
      return null;
    }
  }

  function apiLang() {
    return lang === "en" ? "en" : "zh-Hans";
  }

  function setLang(next) {
    lang = next === "en" ? "en" : "zh";
    try {
      window.localStorage.setItem(STORAGE_KEY, lang);
    } catch (e) {
      /* private mode: the choice lasts for this page only */
    }
    apply(document);
    listeners.forEach(function (fn) {
      fn(lang);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    apply(document);
    var button = document.getElementById("lang-switch");
    if (button) {
      button.addEventListener("click", function () {
        setLang(lang === "en" ? "zh" : "en");
      });
    }
  });

  window.CityRelayI18n = {
    t: t,
    apply: apply,
    setLang: setLang,
    lang: function () {
      return lang;
    },
    apiLang: apiLang,
    locale: function () {
      return lang === "en" ? "en-GB" : "zh-CN";
    },
    /* a name from the API in the current language: name_zh/name_en or name/name_en */
    pick: function (zh, en) {
      return lang === "en" && en ? en : zh || en || "";
    },
    onChange: function (fn) {
      listeners.push(fn);
    }
  };
})();
