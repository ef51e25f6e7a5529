/**
 * The alerts API (behind the app's token middleware):
 * Every answer is of the caller's org only (another org's alert id is 404, by the auth
 * middleware); a system admin (`admin` of org `default`) sees and acknowledges every org's.
 * - `GET /api/v1/alerts?status=&kind=&limit=` → `{alerts}`, newest first; `status` one of
 *   `raised`, `acknowledged`, `resolved`; `kind` one of the alert kinds; `limit` 1–1000
 *   (default 100). 400 naming the field otherwise.
 * - `GET /api/v1/alerts/:id` → the alert with its deliveries; 404 when unknown.
 * - `POST /api/v1/alerts/:id/acknowledge` `{note?}` (body optional) → 200 the alert; 404
 *   unknown; 409 `already_acknowledged`; 400 when `note` is not a string of at most 1000
 *   characters.
 *
 * @module
 */
import { Hono } from "hono";
import {
  AlertAlreadyAcknowledgedError,
  type AlertKind,
  type AlertMonitor,
  AlertNotFoundError,
  type AlertStatus,
} from "../alerts/mod.ts";
import { validJson, validQuery } from "./validation.ts";
import { AcknowledgeAlert, AlertListQuery } from "./admin_schemas.ts";
import { isSystemAdmin, principal } from "./auth.ts";

/** The alert routes over a monitor. */
export function alertRoutes(alerts: AlertMonitor): Hono {
  const app = new Hono();
  const notFound = (id: string) => ({
    error: { code: "not_found", message: new AlertNotFoundError(id).message },
  });

  app.get("/api/v1/alerts", (c) => {
    const { status, kind, limit = 100 } = validQuery(c, AlertListQuery);
    const who = principal(c);
    return c.json({
      alerts: alerts.list({
        org_id: isSystemAdmin(who) ? undefined : who.org_id,
        status: status as AlertStatus | undefined,
        kind: kind as AlertKind | undefined,
        limit,
      }),
    });
  });

  app.get("/api/v1/alerts/:id", (c) => {
    const alert = alerts.get(c.req.param("id"));
    return alert ? c.json(alert) : c.json(notFound(c.req.param("id")), 404);
  });

  app.post("/api/v1/alerts/:id/acknowledge", async (c) => {
    const id = c.req.param("id");
    const { note } = await validJson(c, AcknowledgeAlert, { allowEmpty: true });
    // Nothing is written for an id that is not an alert (no stream is made up by a typo).
    if (!alerts.get(id)) return c.json(notFound(id), 404);
    try {
      return c.json(await alerts.acknowledge(id, note ?? null));
    } catch (error) {
      if (error instanceof AlertNotFoundError) return c.json(notFound(id), 404);
      if (error instanceof AlertAlreadyAcknowledgedError) {
        return c.json({
          error: { code: "already_acknowledged", message: error.message },
          alert: error.alert,
        }, 409);
      }
      throw error;
    }
  });
  return app;
}
