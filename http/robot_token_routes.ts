/**
 * Robot provisioning over the API: each robot may get its own token (shown once, kept only
 * as a SHA-256 in the log), rotated or revoked at any time. Mounted by the app with
 * `app.route("/", robotTokenRoutes(orch))` after its auth middleware.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import type { Orchestrator } from "../engine/mod.ts";
import { RobotAlreadyProvisionedError, RobotTokenNotFoundError } from "../engine/mod.ts";
import { errorResponse, ValidationError } from "./api_errors.ts";
import { validJson } from "./validation.ts";
import { ProvisionRobot } from "./admin_schemas.ts";
import { principal } from "./auth.ts";

function tokenErrorResponse(error: Error, c: Context): Response {
  if (error instanceof RobotAlreadyProvisionedError) {
    return c.json(
      { error: { code: "conflict", field: "robot_id", message: error.message } },
      409,
    );
  }
  if (error instanceof RobotTokenNotFoundError) {
    return c.json({ error: { code: "not_found", message: error.message } }, 404);
  }
  return errorResponse(error, c);
}

/**
 * The routes:
 * - `POST /api/v1/robots {robot_id?, name?}` → 201 `{robot_id, name, active, issued_at,
 *   revoked_at, token}` (`robot_id` defaults to a UUID; the token is shown only here); 409
 *   when the robot already has an active token
 * - `POST /api/v1/robots/:id/token` → 201 a new token replacing the active one (404 if none)
 * - `GET /api/v1/robots/:id/token` → the credential without the token (404 if never issued)
 * - `DELETE /api/v1/robots/:id/token` → 204; a connection registered with it is closed (4001)
 * @param orch the orchestrator.
 */
export function robotTokenRoutes(orch: Orchestrator): Hono {
  const app = new Hono();
  app.onError(tokenErrorResponse);
  app.post("/api/v1/robots", async (c) => {
    const body = await validJson(c, ProvisionRobot, { allowEmpty: true });
    const robotId = body.robot_id ?? crypto.randomUUID();
    try {
      const org = principal(c).org_id;
      const existing = orch.robot(robotId) !== undefined || orch.robotTokens.get(robotId);
      if (existing && orch.core.orgs.robotOrg(robotId) !== org) {
        // Robot ids are global; another org's robot is answered as a taken id.
        throw new RobotAlreadyProvisionedError(robotId);
      }
      const issued = await orch.robotTokens.issue(robotId, {
        name: body.name,
        org_id: org,
      });
      return c.json(issued, 201);
    } catch (error) {
      if (error instanceof TypeError) throw new ValidationError("robot_id", error.message);
      throw error;
    }
  });
  app.post("/api/v1/robots/:id/token", async (c) => {
    const issued = await orch.robotTokens.issue(c.req.param("id"), { rotate: true });
    orch.sessions.closeOwnTokenSession(c.req.param("id"));
    return c.json(issued, 201);
  });
  app.get("/api/v1/robots/:id/token", (c) => {
    const credential = orch.robotTokens.get(c.req.param("id"));
    if (!credential) throw new RobotTokenNotFoundError(c.req.param("id"));
    return c.json(credential);
  });
  app.delete("/api/v1/robots/:id/token", async (c) => {
    await orch.robotTokens.revoke(c.req.param("id"));
    orch.sessions.closeOwnTokenSession(c.req.param("id"));
    return c.body(null, 204);
  });
  return app;
}
