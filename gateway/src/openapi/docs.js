// Starts Swagger UI over the gateway's own document (a file, not an inline script, so the
// page's Content-Security-Policy can forbid inline scripts).
if (window.SwaggerUIBundle) {
  window.ui = window.SwaggerUIBundle({ url: '/openapi.json', dom_id: '#docs', deepLinking: true });
} else {
  document.getElementById('docs').innerHTML =
    '<p>The API reference viewer is not installed here (<code>cargo xtask portal</code> installs it); ' +
    'the document itself is at <a href="/openapi.json">/openapi.json</a>.</p>';
}
