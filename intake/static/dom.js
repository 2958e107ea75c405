/* CityRelay pages: the one small DOM builder both pages use, and the categories in the page. */
(function () {
  "use strict";

  /* el("a", {href: "/x", text: "go"}, [child, "text"]): attributes null/undefined/false are
     left out, true becomes an empty attribute; "text" and "className" set those properties. */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) {
        return;
      }
      if (name === "text") {
        node.textContent = value;
      } else if (name === "className") {
        node.className = value;
      } else {
        node.setAttribute(name, value === true ? "" : value);
      }
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  /* The categories the server put in the page (a JSON block, which runs nothing), or null
     when it could not: then the page asks the API. */
  function pageCategories() {
    var block = document.getElementById("categories-data");
    if (!block) {
      return null;
    }
    try {
      var list = JSON.parse(block.textContent);
      return Array.isArray(list) ? list : null;
    } catch (error) {
      return null;
    }
  }

  window.CityRelayDom = { el: el, pageCategories: pageCategories };
})();
