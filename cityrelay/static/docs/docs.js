// Swagger UI over this server's own OpenAPI document. Kept out of the page so the pages'
// Content-Security-Policy (script-src 'self', no inline script) holds.
"use strict";

window.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    // The validator badge would send the document to validator.swagger.io: nothing leaves
    // this server.
    validatorUrl: null,
  });
});
