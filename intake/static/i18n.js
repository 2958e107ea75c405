/* CityRelay pages: every UI string in simplified Chinese (the default) and English.
 *
 * The language is the one the address asks for (?lang=en, which the server renders the page in
 * and names in <html data-lang-requested>), else the reader's last choice (kept in localStorage),
 * else Chinese. Elements carry data-i18n (text, with its parameters in data-i18n-params),
 * data-i18n-placeholder, data-i18n-aria-label; scripts call CityRelayI18n.t(key, params) for the
 * rest, and own the text of the elements they fill (those carry no data-i18n). */
(function () {
  "use strict";

  var STORAGE_KEY = "cityrelay.lang";

  /* The tables come from intake/pages_strings.json, which the server also renders the pages
   * from; /report/strings.js hands them over as window.CityRelayStrings. */
  var STRINGS = window.CityRelayStrings || { zh: {}, en: {} };

  function readStored() {
    try {
      var value = window.localStorage.getItem(STORAGE_KEY);
      return value === "en" || value === "zh" ? value : null;
    } catch (e) {
      return null;
    }
  }

  function remember(value) {
    try {
      window.localStorage.setItem(STORAGE_KEY, value);
    } catch (e) {
      /* private mode: the choice lasts for this page only */
    }
  }

  var requested = document.documentElement.getAttribute("data-lang-requested");
  var lang = requested === "en" || requested === "zh" ? requested : readStored() || "zh";
  if (requested === lang) {
    remember(lang); /* the status page opened after sending has no ?lang of its own */
  }
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
      el.setAttribute("placeholder", t(el.getAttribute("data-i18n-placeholder"), readParams(el)));
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

  /* An address that asks for a language keeps asking for the one chosen since, so a reload
   * does not undo the switch. */
  function followInAddress() {
    try {
      var url = new URL(window.location.href);
      if (url.searchParams.has("lang") && url.searchParams.get("lang") !== lang) {
        url.searchParams.set("lang", lang);
        window.history.replaceState(window.history.state, "", url.toString());
      }
    } catch (e) {
      /* an old browser without URL: the stored choice still holds without ?lang */
    }
  }

  function setLang(next) {
    lang = next === "en" ? "en" : "zh";
    remember(lang);
    followInAddress();
    apply(document);
    listeners.forEach(function (fn) {
      fn(lang);
    });
  }

  /* Runs before the page's own script (every script is deferred, in order), so what that script
   * renders is never overwritten by a second pass over data-i18n. */
  function start() {
    apply(document);
    var button = document.getElementById("lang-switch");
    if (button) {
      button.addEventListener("click", function () {
        setLang(lang === "en" ? "zh" : "en");
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }

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
