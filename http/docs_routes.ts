/**
 * `GET /api/docs`: the interactive API docs, Swagger UI over `/api/v1/openapi.json`.
 *
 * The page and Swagger UI's files (vendored in `web/vendor/swagger-ui/`, Apache-2.0, served
 * under `/web/`) are public and hold no data, like the dashboard's; the OpenAPI document
 * itself needs the API token, which the page asks for (or takes from the dashboard's tab).
 * No CDN and no call to Swagger's public validator: the docs work without internet access.
 * Mount before the token middleware of `/api/*`.
 *
 * @module
 */
import { Hono } from "hono";

/** Options of {@linkcode docsRoutes}. */
export interface DocsRoutesOptions {
  /**
   * The page's HTML file.
   * @default the project's `web/docs.html`
   */
  page?: URL;
  /**
   * Reads a file (the adapter to the runtime).
   * @default Deno.readFile
   */
  readFile?: (url: URL) => Promise<Uint8Array>;
}

/** The route `GET /api/docs`. */
export function docsRoutes(options: DocsRoutesOptions = {}): Hono {
  const page = options.page ?? new URL("../web/docs.html", import.meta.url);
  const readFile = options.readFile ?? ((url: URL) => Deno.readFile(url));
  const app = new Hono();
  const serve = async () =>
    new Response(await readFile(page) as Uint8Array<ArrayBuffer>, {
      headers: {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-cache",
        "x-content-type-options": "nosniff",
      },
    });
  app.get("/api/docs", serve);
  return app;
}
