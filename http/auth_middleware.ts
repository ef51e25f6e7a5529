/**
 * The one middleware in front of every route: finds the request's operation in the OpenAPI
 * table (`openapi_document.ts`), then applies `auth.ts`: 503 while the log is replayed, 401
 * without a valid token, 403 for a role the operation does not admit, 404 for a path id of
 * another org. A route that is not in the table is not served at all (404; 405 with `Allow`
 * when its path is there with other methods), so no route can escape the checks by being
 * forgotten there. It also puts the operation on the context (`operation`), for the
 * validators of `validation.ts`.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import type { Orchestrator } from "../engine/mod.ts";
import { accessOf, type Operation, OPERATIONS } from "./openapi_document.ts";
import { ACCESS_ROLES, allowed, authenticate, ID_RESOURCES, isSystemAdmin } from "./auth.ts";

interface Matcher {
  op: Operation;
  method: string;
  pattern: RegExp;
  /** The resource of the path's `:id`, if it has one. */
  resource: string | null;
}

function compile(operations: readonly Operation[]): Matcher[] {
  return operations.map((op) => {
    const pattern = new RegExp(
      "^" + op.path.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(
        /:([A-Za-z_]\w*)/g,
        "(?<$1>[^/]+)",
      ) + "$",
    );
    const resource = op.path.match(/^\/api\/v1\/([\w-]+)\/:id(?:\/|$)/)?.[1] ?? null;
    if (resource !== null && !(resource in ID_RESOURCES)) {
      throw new TypeError(
        `${op.method} ${op.path}: name the org of /${resource}/:id in ID_RESOURCES (http/auth.ts)`,
      );
    }
    return { op, method: op.method.toUpperCase(), pattern, resource };
  });
}

/** The operation a request is for, with its path parameters, or null. */
export function matchOperation(
  matchers: readonly Matcher[],
  method: string,
  path: string,
): { matcher: Matcher; params: Record<string, string> } | null {
  for (const matcher of matchers) {
    if (matcher.method !== method) continue;
    const m = matcher.pattern.exec(path);
    if (!m) continue;
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(m.groups ?? {})) {
      try {
        params[k] = decodeURIComponent(v);
      } catch {
        params[k] = v;
      }
    }
    return { matcher, params };
  }
  return null;
}

/** The methods the operations of `path` have (`HEAD` with `GET`), in table order. */
export function allowedMethods(matchers: readonly Matcher[], path: string): string[] {
  const methods = new Set<string>();
  for (const matcher of matchers) {
    if (!matcher.pattern.test(path)) continue;
    methods.add(matcher.method);
    if (matcher.method === "GET") methods.add("HEAD");
  }
  return [...methods];
}

function error(c: Context, status: 401 | 403 | 404 | 503, code: string, message: string) {
  return c.json({ error: { code, message } }, status);
}

/**
 * The middleware (mount with `app.use("*", authMiddleware(orch, apiToken))` before every
 * route). Sets `principal` on the context for the routes (`auth.ts`: `principal(c)`).
 * Paths outside `/api/` and `/metrics` that are not operations (the dashboard's page and
 * files) pass untouched.
 * @param operations the table to enforce. @default OPERATIONS
 */
export function authMiddleware(
  orch: Orchestrator,
  apiToken: string,
  operations: readonly Operation[] = OPERATIONS,
): MiddlewareHandler {
  const matchers = compile(operations);
  return async (c, next) => {
    const method = c.req.method === "HEAD" ? "GET" : c.req.method;
    const found = matchOperation(matchers, method, c.req.path);
    if (!found) {
      // A known path called with a method it does not have: 405 with the methods it has
      // (RFC 9110 §15.5.6), derived from the same table.
      const methods = allowedMethods(matchers, c.req.path);
      if (methods.length > 0) {
        c.header("Allow", methods.join(", "));
        return c.json({
          error: {
            code: "method_not_allowed",
            message: `${c.req.method} is not allowed on ${c.req.path}; use ${methods.join(", ")}`,
          },
        }, 405);
      }
      if (c.req.path.startsWith("/api/") || c.req.path === "/metrics") {
        return error(c, 404, "not_found", `No route ${c.req.method} ${c.req.path}`);
      }
      return await next();
    }
    // The validators (`validation.ts`) check that they are the ones this entry documents.
    c.set("operation" as never, found.matcher.op as never);
    const access = accessOf(found.matcher.op);
    if (access === "public") return await next();
    // /metrics answers while starting (orchestrator_ready 0); API tokens are known once the
    // log is replayed, the configured token at once.
    if (!orch.ready && found.matcher.op.path !== "/metrics") {
      return error(c, 503, "starting", "Replaying the log; retry shortly");
    }
    // EventSource cannot set headers: the stream also takes ?token=.
    const allowQuery = found.matcher.op.path === "/api/v1/stream";
    const who = await authenticate(c, orch, apiToken, allowQuery);
    if (!who) return error(c, 401, "unauthorized", "Missing or invalid bearer token");
    if (!allowed(access, who)) {
      return error(
        c,
        403,
        "forbidden",
        `Role ${who.role} of org ${who.org_id} may not call ${found.matcher.op.method.toUpperCase()} ${found.matcher.op.path} (roles: ${
          ACCESS_ROLES[access].join(", ")
        }${access === "system" ? " of org default" : ""})`,
      );
    }
    const { resource } = found.matcher;
    if (resource !== null) {
      const id = found.params.id;
      const spec = ID_RESOURCES[resource];
      if (!(spec.systemAdminAnyOrg && isSystemAdmin(who)) && spec.orgOf(orch, id) !== who.org_id) {
        return error(c, 404, "not_found", `${spec.noun} ${id} does not exist`);
      }
    }
    c.set("principal" as never, who as never);
    await next();
  };
}
