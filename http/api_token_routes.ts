/**
 * API tokens over the API (admins only; see `http/auth.ts` and `engine/api_tokens.ts`), and
 * `GET /api/v1/auth/me`. Mounted by the app after its auth middleware.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import { ApiTokenNotFoundError, type Orchestrator } from "../engine/mod.ts";
import { errorResponse, ValidationError } from "./api_errors.ts";
import { validJson, validQuery } from "./validation.ts";
import { IssueApiToken, TokenListQuery } from "./admin_schemas.ts";
import { isSystemAdmin, principal } from "./auth.ts";

function tokenErrorResponse(error: Error, c: Context): Response {
  if (error instanceof ApiTokenNotFoundError) {
    return c.json({ error: { code: "not_found", message: error.message } }, 404);
  }
  return errorResponse(error, c);
}

/**
 * The routes:
 * - `GET /api/v1/auth/me` → `{org_id, role, token_id, system_admin}` (any role but `robot`)
 * - `POST /api/v1/tokens {role, org_id?, name?}` → 201 `{token_id, org_id, role, name,
 *   active, issued_at, revoked_at, token}`; the token is shown only here. `org_id` defaults
 *   to the caller's org; another org is for system admins only (403 otherwise): issuing the
 *   first `admin` token of an org is how the org is created.
 * - `GET /api/v1/tokens[?org_id=]` → `{tokens}` of the caller's org (another org: system
 *   admins only)
 * - `GET /api/v1/tokens/:id` → the token's view; `DELETE /api/v1/tokens/:id` → 204
 * @param orch the orchestrator.
 */
export function apiTokenRoutes(orch: Orchestrator): Hono {
  const app = new Hono();
  app.onError(tokenErrorResponse);
  app.get("/api/v1/auth/me", (c) => {
    const p = principal(c);
    return c.json({ ...p, system_admin: isSystemAdmin(p) });
  });
  const forbidden = (c: Context) =>
    c.json({
      error: {
        code: "forbidden",
        field: "org_id",
        message: "Only admins of org default may manage another org's tokens",
      },
    }, 403);
  app.post("/api/v1/tokens", async (c) => {
    const p = principal(c);
    const b = await validJson(c, IssueApiToken);
    const orgId = b.org_id ?? p.org_id;
    try {
      if (orgId !== p.org_id && !isSystemAdmin(p)) return forbidden(c);
      const issued = await orch.apiTokens.issue({
        org_id: orgId,
        role: b.role,
        name: b.name ?? null,
      });
      return c.json(issued, 201);
    } catch (error) {
      if (error instanceof TypeError) {
        const field = error.message.startsWith("role") ? "role" : "org_id";
        throw new ValidationError(field, error.message);
      }
      throw error;
    }
  });
  app.get("/api/v1/tokens", (c) => {
    const p = principal(c);
    const orgId = validQuery(c, TokenListQuery).org_id ?? p.org_id;
    if (orgId !== p.org_id && !isSystemAdmin(p)) return forbidden(c);
    return c.json({ tokens: orch.apiTokens.list(orgId) });
  });
  app.get("/api/v1/tokens/:id", (c) => {
    const view = orch.apiTokens.get(c.req.param("id"));
    if (!view) throw new ApiTokenNotFoundError(c.req.param("id"));
    return c.json(view);
  });
  app.delete("/api/v1/tokens/:id", async (c) => {
    await orch.apiTokens.revoke(c.req.param("id"));
    return c.body(null, 204);
  });
  return app;
}
