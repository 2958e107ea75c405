/* CityRelay pages: the one small DOM builder both pages use. */
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

  window.CityRelayDom = { el: el };
})();
