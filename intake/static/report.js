/* The one-tap reporter page: location, photos, category, text, one submit.
 *
 * The draft (text, address, category, position, photo list and its Idempotency-Key) lives in
 * localStorage; the prepared photo files live in IndexedDB, so a retry after a reload sends the
 * very same bytes and the server answers it with the first report. */
(function () {
  "use strict";

  var I = window.CityRelayI18n;
  var t = I.t;

  var API = "/api/v1";
  var STORE = {
    key: "cityrelay.reporterKey",
    draft: "cityrelay.draft",
    recent: "cityrelay.recentReports"
  };
  var MAX_PHOTOS = Number(document.body.getAttribute("data-max-photos")) || 5;
  var MAX_EDGE = 1600; /* longest side of an uploaded photo, in pixels */
  var KEEP_ORIGINAL_BYTES = 1500000; /* a photo within MAX_EDGE and this size is sent as it is */
  var JPEG_QUALITY = 0.85;
  var GEO_TIMEOUT_MS = 10000;
  var POOR_ACCURACY_M = 100;
  var REQUEST_TIMEOUT_MS = 60000;
  var RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 15000];
  var RECENT_KEEP = 20;
  var RECENT_LOOKUP = 5;

  var CATEGORY_ICONS = {
    manhole_cover: "🕳️",
    street_light: "💡",
    bin_overflow: "🗑️",
    exposed_garbage: "🚮",
    green_space: "🌳",
    street_tree: "🌲",
    waterlogging: "🌊",
    road_damage: "🚧",
    traffic_facility: "🚦",
    illegal_parking: "🅿️",
    blocked_passage: "🚒",
    illegal_ads: "📢",
    street_vending: "🛒",
    construction: "🏗️",
    noise: "🔊",
    safety_hazard: "⚠️",
    access_restriction: "🚪",
    rider_need: "🛵",
    other: "❓"
  };

  var $ = function (id) {
    return document.getElementById(id);
  };
  var form = $("report-form");
  var fields = $("form-fields");
  var addressInput = $("address");
  var textInput = $("text");
  var photoInput = $("photo-input");
  var cameraButton = $("camera-btn");
  var submitButton = $("submit-btn");
  var sendStatus = $("send-status");

  /* ---------- small helpers ---------- */

  function readJson(key, fallback) {
    try {
      var raw = window.localStorage.getItem(key);
      return raw ? JSON.parse(raw) : fallback;
    } catch (e) {
      return fallback;
    }
  }

  function writeJson(key, value) {
    try {
      window.localStorage.setItem(key, JSON.stringify(value));
    } catch (e) {
      /* storage full or private mode: the page still works, only less durably */
    }
  }

  function readString(key) {
    try {
      return window.localStorage.getItem(key);
    } catch (e) {
      return null;
    }
  }

  function writeString(key, value) {
    try {
      if (value === null) {
        window.localStorage.removeItem(key);
      } else {
        window.localStorage.setItem(key, value);
      }
    } catch (e) {
      /* see writeJson */
    }
  }

  function uuid() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    /* crypto.randomUUID needs a secure context; getRandomValues does not. */
    var bytes = new Uint8Array(16);
    if (window.crypto && window.crypto.getRandomValues) {
      window.crypto.getRandomValues(bytes);
    } else {
      for (var i = 0; i < 16; i += 1) {
        bytes[i] = Math.floor(Math.random() * 256);
      }
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map
      .call(bytes, function (b) {
        return (b + 0x100).toString(16).slice(1);
      })
      .join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join(
      "-"
    );
  }

  function sleep(ms) {
    return new Promise(function (resolve) {
      window.setTimeout(resolve, ms);
    });
  }

  var el = window.CityRelayDom.el;

  /* ---------- photo blobs in IndexedDB (memory if IndexedDB is unavailable) ---------- */

  var photoStore = (function () {
    var memory = new Map();
    var opening = null;

    function open() {
      if (!("indexedDB" in window)) {
        return Promise.resolve(null);
      }
      if (!opening) {
        opening = new Promise(function (resolve) {
          var request;
          try {
            request = window.indexedDB.open("cityrelay", 1);
          } catch (e) {
            resolve(null);
            return;
          }
          request.onupgradeneeded = function () {
            request.result.createObjectStore("photos");
          };
          request.onsuccess = function () {
            resolve(request.result);
          };
          request.onerror = function () {
            resolve(null);
          };
          request.onblocked = function () {
            resolve(null);
          };
        });
      }
      return opening;
    }

    function run(mode, operation) {
      return open().then(function (db) {
        if (!db) {
          return undefined;
        }
        return new Promise(function (resolve) {
          var tx;
          var request;
          try {
            tx = db.transaction("photos", mode);
            request = operation(tx.objectStore("photos"));
          } catch (e) {
            resolve(undefined);
            return;
          }
          tx.oncomplete = function () {
            resolve(request ? request.result : undefined);
          };
          tx.onerror = tx.onabort = function () {
            resolve(undefined);
          };
        });
      });
    }

    return {
      put: function (id, blob) {
        memory.set(id, blob);
        return run("readwrite", function (store) {
          return store.put(blob, id);
        });
      },
      get: function (id) {
        if (memory.has(id)) {
          return Promise.resolve(memory.get(id));
        }
        return run("readonly", function (store) {
          return store.get(id);
        });
      },
      remove: function (id) {
        memory.delete(id);
        return run("readwrite", function (store) {
          return store.delete(id);
        });
      },
      clear: function () {
        memory.clear();
        return run("readwrite", function (store) {
          return store.clear();
        });
      }
    };
  })();

  /* ---------- the draft ---------- */

  function newDraft() {
    return {
      v: 1,
      idempotencyKey: uuid(),
      text: "",
      address: "",
      category: null,
      lang: null,
      position: null,
      photos: [],
      attempts: 0,
      createdAt: Date.now()
    };
  }

  function loadDraft() {
    var stored = readJson(STORE.draft, null);
    if (!stored || stored.v !== 1 || typeof stored.idempotencyKey !== "string") {
      return null;
    }
    stored.photos = Array.isArray(stored.photos) ? stored.photos : [];
    return stored;
  }

  var draft = loadDraft();
  var restored = Boolean(draft && draft.attempts > 0);
  if (!draft) {
    draft = newDraft();
  }
  saveDraft();

  function saveDraft() {
    writeJson(STORE.draft, draft);
  }

  /* ---------- state that is shown ---------- */

  var ui = {
    locState: "idle", /* idle | locating | fixed | denied | unavailable | timeout | unsupported | none */
    sendState: { state: "idle", key: null, params: null },
    categories: null,
    categoriesFailed: false,
    blobs: {}, /* photo id -> Blob */
    thumbUrls: {}, /* photo id -> object URL */
    processing: 0,
    sending: false,
    errors: {} /* slot -> message (a string, or a DOM node builder) */
  };

  /* ---------- location ---------- */

  function locate(explicit) {
    if (!("geolocation" in navigator)) {
      ui.locState = "unsupported";
      renderLocation();
      return;
    }
    if (!explicit && draft.attempts > 0 && draft.position) {
      /* a draft that was already sent keeps its position: a new fix would change the body */
      ui.locState = "fixed";
      renderLocation();
      return;
    }
    ui.locState = "locating";
    renderLocation();
    navigator.geolocation.getCurrentPosition(
      function (position) {
        draft.position = {
          lat: position.coords.latitude,
          lon: position.coords.longitude,
          accuracy: Math.round(position.coords.accuracy || 0)
        };
        saveDraft();
        ui.locState = "fixed";
        clearError("location");
        clearError("address");
        renderLocation();
      },
      function (error) {
        var codes = { 1: "denied", 2: "unavailable", 3: "timeout" };
        ui.locState = draft.position ? "fixed" : codes[error.code] || "unavailable";
        renderLocation();
      },
      { enableHighAccuracy: true, timeout: GEO_TIMEOUT_MS, maximumAge: 30000 }
    );
  }

  function renderLocation() {
    var status = $("loc-status");
    var detail = $("loc-detail");
    var clear = $("loc-clear");
    var state = draft.position ? "fixed" : ui.locState;
    if (state === "fixed" && !draft.position) {
      state = "none";
    }
    status.setAttribute("data-state", state);
    detail.hidden = true;
    clear.hidden = true;
    if (state === "fixed") {
      var accuracy = draft.position.accuracy;
      status.textContent = t(accuracy > POOR_ACCURACY_M ? "loc.fixed_poor" : "loc.fixed", {
        accuracy: accuracy
      });
      detail.textContent = t("loc.coords", {
        lat: draft.position.lat.toFixed(5),
        lon: draft.position.lon.toFixed(5)
      });
      detail.hidden = false;
      clear.hidden = false;
    } else if (state === "locating") {
      status.textContent = t("loc.locating");
    } else if (state === "idle") {
      status.textContent = "";
    } else {
      status.textContent = t("loc." + state);
    }
    var needAddress = !draft.position && state !== "locating" && state !== "idle";
    $("address-hint").textContent = t(
      needAddress ? "loc.address_hint_required" : "loc.address_hint_optional"
    );
    $("location-section").classList.toggle("needs-address", needAddress);
    addressInput.required = needAddress;
  }

  /* ---------- photos ---------- */

  function decodeImage(file) {
    if (typeof window.createImageBitmap === "function") {
      return window.createImageBitmap(file, { imageOrientation: "from-image" }).then(
        function (bitmap) {
          return {
            source: bitmap,
            width: bitmap.width,
            height: bitmap.height,
            close: function () {
              bitmap.close();
            }
          };
        },
        function () {
          return decodeWithImage(file);
        }
      );
    }
    return decodeWithImage(file);
  }

  function decodeWithImage(file) {
    return new Promise(function (resolve, reject) {
      var url = URL.createObjectURL(file);
      var image = new Image();
      image.onload = function () {
        resolve({
          source: image,
          width: image.naturalWidth,
          height: image.naturalHeight,
          close: function () {
            URL.revokeObjectURL(url);
          }
        });
      };
      image.onerror = function () {
        URL.revokeObjectURL(url);
        reject(new Error("undecodable image"));
      };
      image.src = url;
    });
  }

  /* Large photos are drawn into a canvas at most MAX_EDGE pixels long and sent as JPEG; if the
   * browser cannot decode or encode the photo, the original file is sent. */
  function preparePhoto(file) {
    return decodeImage(file)
      .then(function (image) {
        try {
          var longest = Math.max(image.width, image.height);
          var tooBig = longest > MAX_EDGE;
          if (!longest || (!tooBig && file.size <= KEEP_ORIGINAL_BYTES)) {
            return file;
          }
          var scale = tooBig ? MAX_EDGE / longest : 1;
          var canvas = document.createElement("canvas");
          canvas.width = Math.max(1, Math.round(image.width * scale));
          canvas.height = Math.max(1, Math.round(image.height * scale));
          var context = canvas.getContext("2d");
          if (!context) {
            return file;
          }
          context.fillStyle = "#ffffff";
          context.fillRect(0, 0, canvas.width, canvas.height);
          context.drawImage(image.source, 0, 0, canvas.width, canvas.height);
          return new Promise(function (resolve) {
            canvas.toBlob(
              function (blob) {
                if (!blob || !blob.size || (!tooBig && blob.size >= file.size)) {
                  resolve(file);
                } else {
                  resolve(blob);
                }
              },
              "image/jpeg",
              JPEG_QUALITY
            );
          });
        } finally {
          image.close();
        }
      })
      .catch(function () {
        return file;
      });
  }

  function photoName(blob, index, original) {
    if (blob === original && original.name) {
      return original.name;
    }
    return "photo-" + (index + 1) + ".jpg";
  }

  function addPhotos(files) {
    clearError("photos");
    files.forEach(function (file) {
      if (draft.photos.length + ui.processing >= MAX_PHOTOS) {
        showError("photos", t("photo.too_many", { max: MAX_PHOTOS }));
        return;
      }
      ui.processing += 1;
      renderPhotos();
      preparePhoto(file)
        .then(function (blob) {
          var id = uuid();
          var entry = {
            id: id,
            name: photoName(blob, draft.photos.length, file),
            type: blob.type || file.type || "application/octet-stream",
            size: blob.size
          };
          ui.blobs[id] = blob;
          return photoStore.put(id, blob).then(function () {
            draft.photos.push(entry);
            saveDraft();
          });
        })
        .catch(function () {
          showError("photos", t("photo.failed"));
        })
        .then(function () {
          ui.processing -= 1;
          renderPhotos();
        });
    });
  }

  function removePhoto(id) {
    draft.photos = draft.photos.filter(function (photo) {
      return photo.id !== id;
    });
    saveDraft();
    delete ui.blobs[id];
    if (ui.thumbUrls[id]) {
      URL.revokeObjectURL(ui.thumbUrls[id]);
      delete ui.thumbUrls[id];
    }
    photoStore.remove(id);
    renderPhotos();
  }

  function renderPhotos() {
    var list = $("thumbs");
    list.textContent = "";
    draft.photos.forEach(function (photo, index) {
      var blob = ui.blobs[photo.id];
      if (blob && !ui.thumbUrls[photo.id]) {
        ui.thumbUrls[photo.id] = URL.createObjectURL(blob);
      }
      var remove = el("button", {
        type: "button",
        className: "thumb-remove",
        "aria-label": t("photo.remove", { n: index + 1 }),
        text: "×"
      });
      remove.addEventListener("click", function () {
        removePhoto(photo.id);
      });
      list.appendChild(
        el("li", { className: "thumb" }, [
          el("img", { src: ui.thumbUrls[photo.id] || null, alt: t("photo.alt", { n: index + 1 }) }),
          remove
        ])
      );
    });
    for (var i = 0; i < ui.processing; i += 1) {
      list.appendChild(
        el("li", { className: "thumb thumb-busy" }, [
          el("span", { className: "spinner", "aria-hidden": "true" }),
          el("span", { className: "visually-hidden", text: t("photo.processing") })
        ])
      );
    }
    var count = draft.photos.length + ui.processing;
    $("photo-count").textContent = count + "/" + MAX_PHOTOS;
    $("photo-empty").hidden = count > 0;
    cameraButton.disabled = ui.sending || count >= MAX_PHOTOS;
  }

  function restorePhotos() {
    var entries = draft.photos.slice();
    return Promise.all(
      entries.map(function (photo) {
        return photoStore.get(photo.id).then(function (blob) {
          if (blob) {
            ui.blobs[photo.id] = blob;
          }
        });
      })
    ).then(function () {
      var before = draft.photos.length;
      draft.photos = draft.photos.filter(function (photo) {
        return Boolean(ui.blobs[photo.id]);
      });
      if (draft.photos.length !== before) {
        saveDraft();
      }
      renderPhotos();
    });
  }

  /* ---------- categories ---------- */

  function loadCategories() {
    ui.categoriesFailed = false;
    var inPage = window.CityRelayDom.pageCategories();
    if (inPage) {
      /* in the page already: no request, no round trip before the form is whole */
      ui.categories = inPage;
      renderCategories();
      return Promise.resolve();
    }
    renderCategories();
    return fetch(API + "/categories", { headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (list) {
        ui.categories = list;
        renderCategories();
      })
      .catch(function () {
        ui.categoriesFailed = true;
        renderCategories();
      });
  }

  /* the taxonomy's English names explain themselves in parentheses; a button shows the name */
  function shortName(category) {
    var name = I.pick(category.name_zh, category.name_en);
    var short = name.replace(/\s*[(（][^()（）]*[)）]\s*$/, "");
    return short || name;
  }

  function renderCategories() {
    var grid = $("categories");
    grid.textContent = "";
    if (!ui.categories) {
      if (ui.categoriesFailed) {
        var retry = el("button", { type: "button", className: "btn btn-small", text: t("cat.retry") });
        retry.addEventListener("click", loadCategories);
        grid.appendChild(el("p", { className: "hint", text: t("cat.failed") }));
        grid.appendChild(retry);
      } else {
        grid.appendChild(el("p", { className: "hint", text: t("cat.loading") }));
      }
      return;
    }
    ui.categories.forEach(function (category) {
      var pressed = draft.category === category.code;
      var button = el(
        "button",
        {
          type: "button",
          className: "cat-btn" + (category.urgent ? " urgent" : ""),
          "aria-pressed": pressed ? "true" : "false",
          "data-code": category.code,
          title: I.pick(category.name_zh, category.name_en)
        },
        [
          el("span", {
            className: "cat-icon",
            "aria-hidden": "true",
            text: CATEGORY_ICONS[category.code] || "📍"
          }),
          el("span", { className: "cat-name", text: shortName(category) })
        ]
      );
      button.addEventListener("click", function () {
        draft.category = draft.category === category.code ? null : category.code;
        saveDraft();
        edited("category");
        clearError("text");
        renderCategories();
      });
      grid.appendChild(button);
    });
  }

  /* ---------- recent reports ---------- */

  function recentReports() {
    var list = readJson(STORE.recent, []);
    return Array.isArray(list)
      ? list.filter(function (item) {
          return item && typeof item.id === "number";
        })
      : [];
  }

  function rememberReport(id) {
    var list = recentReports().filter(function (item) {
      return item.id !== id;
    });
    list.unshift({ id: id, at: Date.now() });
    writeJson(STORE.recent, list.slice(0, RECENT_KEEP));
  }

  var recentDetails = {}; /* id -> report JSON, for status and category */

  function renderRecent() {
    var list = $("recent-list");
    var items = recentReports();
    list.textContent = "";
    $("recent-empty").hidden = items.length > 0;
    var dateFormat = new Intl.DateTimeFormat(I.locale(), {
      month: "numeric",
      day: "numeric",
      hour: "2-digit",
      minute: "2-digit"
    });
    items.forEach(function (item) {
      var report = recentDetails[item.id];
      var meta = [dateFormat.format(new Date(item.at))];
      if (report) {
        meta.push(t("state.label." + report.status));
        if (report.category_name) {
          meta.push(I.pick(report.category_name.zh, report.category_name.en));
        }
      }
      list.appendChild(
        el("li", {}, [
          el("a", { href: "/report/" + item.id, className: "recent-link" }, [
            el("span", { className: "recent-id", text: t("recent.item", { id: item.id }) }),
            el("span", { className: "recent-meta", text: meta.join(" · ") })
          ])
        ])
      );
    });
  }

  function lookUpRecent() {
    recentReports()
      .slice(0, RECENT_LOOKUP)
      .forEach(function (item) {
        fetch(API + "/reports/" + item.id, { headers: { Accept: "application/json" } })
          .then(function (response) {
            return response.ok ? response.json() : null;
          })
          .then(function (report) {
            if (report) {
              recentDetails[item.id] = report;
              renderRecent();
            }
          })
          .catch(function () {
            /* offline: the list still shows the links */
          });
      });
  }

  /* ---------- errors next to fields ---------- */

  var FIELD_SLOTS = {
    lat: "location",
    lon: "location",
    location: "location",
    address: "address",
    text: "text",
    category: "category",
    photos: "photos"
  };

  function slotFor(field) {
    return FIELD_SLOTS[String(field).split(".")[0]] || "_general";
  }

  function errorNode(slot) {
    return document.querySelector('[data-error-for="' + slot + '"]');
  }

  function showError(slot, message) {
    var node = errorNode(slot);
    if (!node) {
      node = errorNode("_general");
    }
    if (typeof message === "string") {
      node.textContent = message;
    } else {
      node.textContent = "";
      node.appendChild(message);
    }
    node.hidden = false;
    var field = { address: addressInput, text: textInput }[slot];
    if (field) {
      field.setAttribute("aria-invalid", "true");
      field.setAttribute("aria-describedby", node.id || (node.id = "error-" + slot));
    }
  }

  function clearError(slot) {
    var node = errorNode(slot);
    if (node) {
      node.hidden = true;
      node.textContent = "";
    }
    var field = { address: addressInput, text: textInput }[slot];
    if (field) {
      field.removeAttribute("aria-invalid");
    }
  }

  function clearAllErrors() {
    document.querySelectorAll("[data-error-for]").forEach(function (node) {
      clearError(node.getAttribute("data-error-for"));
    });
  }

  function focusFirstError() {
    var first = document.querySelector("[data-error-for]:not([hidden])");
    if (first && first.getAttribute("data-error-for") !== "_general") {
      first.scrollIntoView({ block: "center", behavior: "smooth" });
    }
  }

  /* ---------- sending ---------- */

  function setSendState(state, key, params) {
    ui.sendState = { state: state, key: key, params: params || null };
    renderSendState();
  }

  function renderSendState() {
    var s = ui.sendState;
    sendStatus.setAttribute("data-state", s.state);
    sendStatus.hidden = !s.key;
    sendStatus.textContent = s.key ? t(s.key, s.params) : "";
    submitButton.setAttribute("aria-busy", ui.sending ? "true" : "false");
    submitButton.querySelector("span").textContent = t(ui.sending ? "form.sending" : "form.submit");
  }

  function lock(locked) {
    ui.sending = locked;
    fields.disabled = locked;
    submitButton.disabled = locked;
    renderPhotos();
    renderSendState();
  }

  function NetworkFailure(message) {
    this.message = message;
  }

  function ApiFailure(status, body) {
    this.status = status;
    this.body = body;
  }

  /* fetch with a time limit; a network error or a timeout rejects with NetworkFailure */
  function request(url, options) {
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = null;
    if (controller) {
      options.signal = controller.signal;
      timer = window.setTimeout(function () {
        controller.abort();
      }, REQUEST_TIMEOUT_MS);
    }
    return fetch(url, options).then(
      function (response) {
        window.clearTimeout(timer);
        return response;
      },
      function (error) {
        window.clearTimeout(timer);
        throw new NetworkFailure(String(error && error.message));
      }
    );
  }

  function readBody(response) {
    return response.text().then(function (text) {
      try {
        return text ? JSON.parse(text) : null;
      } catch (e) {
        return null;
      }
    });
  }

  function ensureReporterKey() {
    var key = readString(STORE.key);
    if (key) {
      return Promise.resolve(key);
    }
    setSendState("sending", "send.registering");
    return request(API + "/reporters", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ occupation: "rider" })
    }).then(function (response) {
      return readBody(response).then(function (body) {
        if (response.status === 201 && body && body.key) {
          writeString(STORE.key, body.key);
          return body.key;
        }
        if (response.status >= 500) {
          throw new NetworkFailure("HTTP " + response.status);
        }
        throw new ApiFailure(response.status, body);
      });
    });
  }

  function buildBody() {
    var body = new FormData();
    body.append("text", draft.text);
    if (draft.position) {
      body.append("lat", String(draft.position.lat));
      body.append("lon", String(draft.position.lon));
    }
    body.append("address", draft.address);
    if (draft.category) {
      body.append("category", draft.category);
    }
    body.append("lang", draft.lang || I.apiLang());
    draft.photos.forEach(function (photo) {
      body.append("photos", ui.blobs[photo.id], photo.name);
    });
    return body;
  }

  function postReport(key) {
    return request(API + "/reports", {
      method: "POST",
      headers: {
        Authorization: "Bearer " + key,
        "Idempotency-Key": draft.idempotencyKey,
        Accept: "application/json"
      },
      body: buildBody()
    }).then(function (response) {
      return readBody(response).then(function (body) {
        if (response.status === 202 && body && typeof body.id === "number") {
          return body;
        }
        if (response.status >= 500 || response.status === 408 || response.status === 429) {
          throw new NetworkFailure("HTTP " + response.status);
        }
        throw new ApiFailure(response.status, body);
      });
    });
  }

  /* Waits before retry number n (1-based), showing a countdown; the "online" event cuts the
   * wait short. */
  function waitBeforeRetry(n) {
    var base = RETRY_DELAYS_MS[Math.min(n - 1, RETRY_DELAYS_MS.length - 1)];
    var delay = Math.round(base * (0.8 + Math.random() * 0.4));
    var until = Date.now() + delay;
    return new Promise(function (resolve) {
      var timer = null;
      function done() {
        window.clearInterval(timer);
        window.removeEventListener("online", done);
        resolve();
      }
      function tick() {
        var left = until - Date.now();
        if (left <= 0) {
          done();
          return;
        }
        setSendState("retrying", "send.wait", {
          seconds: Math.ceil(left / 1000),
          n: n,
          max: RETRY_DELAYS_MS.length
        });
      }
      window.addEventListener("online", done);
      timer = window.setInterval(tick, 250);
      tick();
    });
  }

  function submit() {
    if (ui.sending) {
      return; /* a second tap while sending does nothing: one draft, one request at a time */
    }
    clearAllErrors();
    if (ui.processing > 0) {
      showError("photos", t("send.busy_photos"));
      return;
    }
    draft.text = textInput.value;
    draft.address = addressInput.value;
    var problems = false;
    if (!draft.position && !draft.address.trim()) {
      showError("address", t("loc.need"));
      problems = true;
    }
    if (!draft.text.trim() && !draft.category && draft.photos.length === 0) {
      showError("text", t("text.need"));
      problems = true;
    }
    if (problems) {
      setSendState("error", "send.check_fields");
      focusFirstError();
      return;
    }
    if (!draft.attempts || !draft.lang) {
      /* the language is part of the report: a retry after switching the page's language must
       * still send the body the server may already hold for this Idempotency-Key */
      draft.lang = I.apiLang();
    }
    draft.attempts += 1;
    saveDraft();
    lock(true);
    setSendState("sending", "send.sending");
    send(0, false);
  }

  function send(retry, reRegistered) {
    if (retry > 0) {
      setSendState("retrying", "send.retrying", { n: retry, max: RETRY_DELAYS_MS.length });
    }
    ensureReporterKey()
      .then(function (key) {
        if (retry === 0) {
          setSendState("sending", "send.sending");
        }
        return postReport(key);
      })
      .then(accepted, function (failure) {
        if (failure instanceof ApiFailure && failure.status === 401 && !reRegistered) {
          /* the key was lost on the server (or revoked): register again, once */
          writeString(STORE.key, null);
          send(retry, true);
          return;
        }
        if (failure instanceof ApiFailure) {
          rejected(failure);
          return;
        }
        if (retry >= RETRY_DELAYS_MS.length) {
          lock(false);
          setSendState("failed", "send.gave_up");
          return;
        }
        waitBeforeRetry(retry + 1).then(function () {
          send(retry + 1, reRegistered);
        });
      });
  }

  function accepted(body) {
    setSendState("done", "send.done");
    rememberReport(body.id);
    writeString(STORE.draft, null);
    var cleared = photoStore.clear();
    var target = "/report/" + encodeURIComponent(body.id);
    /* do not wait long for IndexedDB: the draft in localStorage is already gone */
    Promise.race([cleared, sleep(1000)]).then(function () {
      window.location.assign(target);
    });
  }

  function rejected(failure) {
    lock(false);
    var error = (failure.body && failure.body.error) || {};
    if (error.code === "idempotency_key_reused") {
      /* the server has an earlier version of this draft; the edited one needs a key of its own */
      draft.idempotencyKey = uuid();
      draft.attempts = 0;
      draft.lang = null;
      saveDraft();
      var messages = (error.fields && error.fields["Idempotency-Key"]) || [];
      var match = /report (\d+)/.exec(messages.join(" "));
      var link = match
        ? el("a", { href: "/report/" + match[1], text: t("send.key_reused_link", { id: match[1] }) })
        : null;
      var text = t("send.key_reused", { link: "\u0000" }).split("\u0000");
      var message = el("span", {}, [text[0]].concat(link ? [link] : ["…"]).concat([text[1] || ""]));
      if (match) {
        rememberReport(Number(match[1]));
        renderRecent();
      }
      showError("_general", message);
      setSendState("error", null);
      return;
    }
    if (failure.status === 401) {
      writeString(STORE.key, null);
      setSendState("error", "send.unauthorized");
      return;
    }
    var fieldErrors = error.fields || {};
    var names = Object.keys(fieldErrors);
    names.forEach(function (name) {
      var list = fieldErrors[name];
      var text = Array.isArray(list) ? list.join(" ") : String(list);
      var slot = slotFor(name);
      var existing = errorNode(slot);
      var prefix = slot === "_general" && name !== "_body" ? name + ": " : "";
      if (existing && !existing.hidden && existing.textContent) {
        text = existing.textContent + " " + prefix + text;
        prefix = "";
      }
      showError(slot, prefix + text);
    });
    if (!names.length) {
      showError("_general", error.message || t("send.server_error"));
    }
    setSendState("error", names.length ? "send.check_fields" : null);
    focusFirstError();
  }

  /* ---------- wiring ---------- */

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    submit();
  });

  cameraButton.addEventListener("click", function () {
    photoInput.click();
  });

  photoInput.addEventListener("change", function () {
    var files = Array.prototype.slice.call(photoInput.files || []);
    photoInput.value = "";
    addPhotos(files);
  });

  $("locate-btn").addEventListener("click", function () {
    locate(true);
  });

  $("loc-clear").addEventListener("click", function () {
    draft.position = null;
    saveDraft();
    ui.locState = "none";
    renderLocation();
    addressInput.focus();
  });

  function edited(slot) {
    clearError(slot);
    if (ui.sendState.state === "error") {
      setSendState("idle", null);
    }
  }

  addressInput.addEventListener("input", function () {
    draft.address = addressInput.value;
    saveDraft();
    edited("address");
  });

  textInput.addEventListener("input", function () {
    draft.text = textInput.value;
    saveDraft();
    edited("text");
  });

  I.onChange(function () {
    renderLocation();
    renderPhotos();
    renderCategories();
    renderRecent();
    renderSendState();
  });

  addressInput.value = draft.address;
  textInput.value = draft.text;
  $("draft-notice").hidden = !restored;
  renderLocation();
  renderPhotos();
  renderCategories();
  renderRecent();
  renderSendState();
  restorePhotos();
  loadCategories();
  lookUpRecent();
  locate(false);

  /* for tests and for a person looking at the page with developer tools */
  window.CityRelayReporter = {
    draft: function () {
      return JSON.parse(JSON.stringify(draft));
    }
  };
})();
