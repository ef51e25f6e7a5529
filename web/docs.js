/**
 * The interactive API docs (`/api/docs`): Swagger UI (vendored in `vendor/swagger-ui/`, no
 * CDN) over `/api/v1/openapi.json`, with the API token of this tab (the dashboard's) sent on
 * every request, "Try it out" included. Asks for the token when the tab has none.
 * @module
 */
import { setToken, token } from "./api.js";

const DOCUMENT = "/api/v1/openapi.json";

/** Fetches the document with `value` as token: the document, or null when refused (401). */
async function fetchDocument(value) {
  const res = await fetch(DOCUMENT, { headers: { authorization: `Bearer ${value}` } });
  if (res.status === 401) return null;
  if (!res.ok) throw new Error(`${DOCUMENT} answered ${res.status}`);
  return await res.json();
}

/** Renders Swagger UI with the document and the token pre-authorised. */
function render(spec, value) {
  const ui = globalThis.SwaggerUIBundle({
    spec,
    dom_id: "#swagger-ui",
    deepLinking: true,
    // No call to the public validator: the page works without internet access.
    validatorUrl: null,
    tryItOutEnabled: false,
    persistAuthorization: false,
    requestInterceptor: (request) => {
      request.headers.Authorization ??= `Bearer ${token() ?? value}`;
      return request;
    },
  });
  ui.preauthorizeApiKey("bearer", value);
}

async function main() {
  const stored = token();
  const spec = stored ? await fetchDocument(stored) : null;
  if (spec) return render(spec, stored);
  const section = document.getElementById("signin");
  const form = document.getElementById("signin-form");
  const error = document.getElementById("signin-error");
  section.hidden = false;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = new FormData(form).get("token");
    try {
      const doc = await fetchDocument(String(value));
      if (!doc) {
        error.textContent = "That token was refused.";
        return;
      }
      setToken(String(value));
      section.hidden = true;
      render(doc, String(value));
    } catch (failure) {
      error.textContent = String(failure.message ?? failure);
    }
  });
}

main().catch((error) => {
  document.body.prepend(Object.assign(document.createElement("p"), {
    className: "error",
    textContent: `The API docs could not load: ${error.message ?? error}`,
  }));
});
