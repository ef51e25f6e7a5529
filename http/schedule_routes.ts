/**
 * REST routes of schedules, mounted by the app with `app.route("/", scheduleRoutes(s))` after
 * its auth middleware. Errors: 400 `{error: {code: "invalid_request", field, message}}`, 404
 * for unknown ids, 409 for a taken id.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import {
  InvalidScheduleError,
  ScheduleExistsError,
  ScheduleNotFoundError,
  type Scheduler,
} from "../schedules/mod.ts";
import { errorResponse, ValidationError } from "./api_errors.ts";
import { validJson, validQuery } from "./validation.ts";
import { NextRunsQuery, ScheduleInput } from "./schedule_schemas.ts";
import { principal } from "./auth.ts";
import { DEFAULT_ORG } from "../engine/mod.ts";

const BASE = "/api/v1/schedules";

function scheduleErrorResponse(error: Error, c: Context): Response {
  if (error instanceof InvalidScheduleError) {
    return c.json({
      error: { code: "invalid_request", field: error.field, message: error.message },
    }, 400);
  }
  if (error instanceof ScheduleNotFoundError) {
    return c.json({ error: { code: "not_found", message: error.message } }, 404);
  }
  if (error instanceof ScheduleExistsError) {
    return c.json(
      { error: { code: "conflict", field: "schedule_id", message: error.message } },
      409,
    );
  }
  return errorResponse(error, c);
}

/**
 * The routes: `POST/GET /api/v1/schedules`, `GET/PATCH/DELETE /api/v1/schedules/:id`,
 * `POST /api/v1/schedules/:id/pause`, `/resume`, and
 * `GET /api/v1/schedules/:id/next-runs?after=<RFC 3339>&count=N` → `{next_runs: [...]}` (UTC
 * instants ending in `Z`, each strictly after `after`; `after` defaults to now, `count` to 5,
 * at most 1000).
 * Schedules are of the caller's org (`schedule.added` records it); lists show that org's only.
 * @param scheduler a started {@linkcode Scheduler}.
 * @param orgOf the org of a stream (`engine/org_index.ts`).
 * @returns a Hono app holding only these routes and its own error mapping.
 */
export function scheduleRoutes(
  scheduler: Scheduler,
  orgOf: (streamId: string) => string = () => DEFAULT_ORG,
): Hono {
  const app = new Hono();
  /** A schedule may only name a stored workflow of its own org (else: not found). */
  const checkWorkflowOrg = (body: { workflow_id?: string | null }, org: string) => {
    const id = body.workflow_id;
    if (typeof id === "string" && orgOf(`workflow-${id}`) !== org) {
      throw new ValidationError("workflow_id", `Workflow ${id} does not exist`);
    }
  };
  app.onError(scheduleErrorResponse);
  app.post(BASE, async (c) => {
    const body = await validJson(c, ScheduleInput);
    const org = principal(c).org_id;
    checkWorkflowOrg(body, org);
    return c.json(await scheduler.add(body, { org_id: org }), 201);
  });
  app.get(BASE, (c) => {
    const org = principal(c).org_id;
    return c.json({
      schedules: scheduler.list().filter((s) => orgOf(`schedule-${s.schedule_id}`) === org),
    });
  });
  app.get(`${BASE}/:id`, (c) => c.json(scheduler.get(c.req.param("id"))));
  app.patch(`${BASE}/:id`, async (c) => {
    const body = await validJson(c, ScheduleInput);
    if ("schedule_id" in body && body.schedule_id !== c.req.param("id")) {
      throw new ValidationError("schedule_id", "schedule_id cannot be changed");
    }
    checkWorkflowOrg(body, principal(c).org_id);
    return c.json(await scheduler.update(c.req.param("id"), body));
  });
  app.delete(`${BASE}/:id`, async (c) => {
    await scheduler.remove(c.req.param("id"));
    return c.body(null, 204);
  });
  app.post(`${BASE}/:id/pause`, async (c) => c.json(await scheduler.pause(c.req.param("id"))));
  app.post(`${BASE}/:id/resume`, async (c) => c.json(await scheduler.resume(c.req.param("id"))));
  app.get(`${BASE}/:id/next-runs`, (c) => {
    const id = c.req.param("id");
    scheduler.get(id); // 404 first
    const query = validQuery(c, NextRunsQuery);
    let after = scheduler.now();
    if (query.after !== undefined) {
      try {
        after = Temporal.Instant.from(query.after);
      } catch {
        throw new ValidationError(
          "after",
          `after must be an RFC 3339 instant with an offset, got ${JSON.stringify(query.after)}`,
        );
      }
    }
    const count = query.count ?? 5;
    const runs = scheduler.nextRuns(id, after, count);
    return c.json({ next_runs: runs.map((r) => r.toString()) });
  });
  return app;
}
