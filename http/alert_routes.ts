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
  ALERT_KINDS,
  ALERT_STATUSES,
  AlertAlreadyAcknowledgedError,
  type AlertKind,
  type AlertMonitor,
  AlertNotFoundError,
  type AlertStatus,
} from "../alerts/mod.ts";
import { readJsonObject, ValidationError } from "./api_errors.ts";
import { isSystemAdmin, principal } from "./auth.ts";

/** The alert routes over a monitor. */
export function alertRoutes(alerts: AlertMonitor): Hono {
  const app = new Hono();
  const notFound = (id: string) => ({
    error: { code: "not_found", message: new AlertNotFoundError(id).message },
  });

  app.get("/api/v1/alerts", (c) => {
    const status = c.req.query("status") || undefined;
    if (status !== undefined && !ALERT_STATUSES.includes(status as AlertStatus)) {
      throw new ValidationError(
        "status",
        `status must be one of ${ALERT_STATUSES.join(", ")}, got ${status}`,
      );
    }
    const kind = c.req.query("kind") || undefined;
    if (kind !== undefined && !ALERT_KINDS.includes(kind as AlertKind)) {
      throw new ValidationError(
        "kind",
        `kind must be one of ${ALERT_KINDS.join(", ")}, got ${kind}`,
      );
    }
    const limitRaw = c.req.query("limit");
    const limit = limitRaw === undefined || limitRaw === "" ? 100 : Number(limitRaw);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new ValidationError(
        "limit",
        `limit must be an integer from 1 to 1000, got ${limitRaw}`,
      );
    }
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
    const body = await readJsonObject(c, { allowEmpty: true });
    const note = (body as { note?: unknown }).note;
    if (
      note !== undefined && note !== null &&
      (typeof note !== "string" || note.length > 1000 || note.includes("\u0000") ||
        !note.isWellFormed())
    ) {
      throw new ValidationError(
        "note",
        "note must be a string of at most 1000 characters, without NUL or lone surrogates",
      );
    }
    // Nothing is written for an id that is not an alert (no stream is made up by a typo).
    if (!alerts.get(id)) return c.json(notFound(id), 404);
    try {
      return c.json(await alerts.acknowledge(id, (note as string | undefined) ?? null));
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
