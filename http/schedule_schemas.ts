/**
 * Request schemas (zod) of the schedule routes: the routes validate with them and the
 * OpenAPI document is generated from them (`validation.ts`). Cross-field rules (a workflow
 * or a workflow_id, the anchor, a cron expression that never fires) stay with the
 * scheduler (`schedules/schedule_input.ts`), which applies them to the merged definition.
 *
 * @module
 */
import { z } from "zod";
import {
  FREQUENCIES,
  InvalidScheduleError,
  MISFIRE_POLICIES,
  nextRuns,
  OVERLAP_POLICIES,
  validateZoneName,
} from "../schedules/mod.ts";
import { CLIENT_ID_PATTERN, CLIENT_ID_RULE } from "../engine/mod.ts";
import { Priority, RobotId } from "./job_requests.ts";
import { WorkflowContent } from "./workflow_schemas.ts";
import { instant, intQuery, must, REQUEST_SCHEMAS, strictObject } from "./validation.ts";

const nonEmpty = (field: string) =>
  z.string(must(field, "a non-empty string or null")).min(
    1,
    must(field, "a non-empty string or null"),
  ).nullable();

const oneOf = <T extends string>(field: string, values: readonly T[]) =>
  z.enum(values as [T, ...T[]], must(field, `one of ${values.join(", ")}`));

/**
 * Body of `POST /api/v1/schedules` and `PATCH /api/v1/schedules/:id` (every field optional
 * in a patch; `schedule_id` cannot change).
 */
export const ScheduleInput = strictObject({
  schedule_id: z.string(must("schedule_id", CLIENT_ID_RULE)).regex(
    CLIENT_ID_PATTERN,
    must("schedule_id", CLIENT_ID_RULE),
  ).optional().meta({
    description: "letters, digits, _ . -; default a UUID (create only)",
  }),
  name: nonEmpty("name").optional(),
  workflow: WorkflowContent.nullable().optional().meta({
    description: "inline workflow; either this or workflow_id",
  }),
  workflow_id: nonEmpty("workflow_id").optional().meta({
    description: "a stored workflow of the caller's org; either this or workflow",
  }),
  frequency: oneOf("frequency", FREQUENCIES).optional().meta({
    description: "default: cron when cron_expression is given",
  }),
  cron_expression: nonEmpty("cron_expression").optional().meta({
    description: "for frequency cron: 5 fields, or 6 with seconds first",
  }),
  timezone: z.string(must("timezone", "an IANA zone name")).optional().meta({
    description: "IANA zone name (not a fixed offset); default UTC",
  }),
  start_at: nonEmpty("start_at").optional().meta({
    description: "RFC 3339 instant anchoring the interval frequencies; default: now",
    format: "date-time",
  }),
  enabled: z.boolean(must("enabled", "a boolean")).optional(),
  variables: z.record(z.string(), z.unknown(), must("variables", "a JSON object")).optional(),
  robot_id: RobotId.nullable().optional(),
  priority: Priority.optional(),
  misfire_policy: oneOf("misfire_policy", MISFIRE_POLICIES).optional(),
  catch_up_window: z.number(must("catch_up_window", "a number of seconds >= 0")).min(
    0,
    must("catch_up_window", "a number of seconds >= 0"),
  ).optional().meta({ description: "seconds" }),
  overlap_policy: oneOf("overlap_policy", OVERLAP_POLICIES).optional(),
}, "a schedule").superRefine((body, ctx) => {
  if (body.timezone !== undefined) {
    try {
      validateZoneName(body.timezone);
    } catch (error) {
      if (!(error instanceof InvalidScheduleError)) throw error;
      ctx.addIssue({ code: "custom", path: ["timezone"], message: error.message });
    }
  }
  if (typeof body.cron_expression === "string") {
    try {
      // Count 0 only parses the expression (whether it ever fires is the scheduler's
      // check, at its own now).
      nextRuns(
        { frequency: "cron", cron_expression: body.cron_expression, timezone: "UTC" },
        new Date(0),
        0,
      );
    } catch (error) {
      if (!(error instanceof InvalidScheduleError)) throw error;
      ctx.addIssue({ code: "custom", path: ["cron_expression"], message: error.message });
    }
  }
}).register(REQUEST_SCHEMAS, { id: "ScheduleInput" });

/** Query of `GET /api/v1/schedules/:id/next-runs`. */
export const NextRunsQuery = z.object({
  after: instant("after", "1970-01-01T00:00:00Z").optional().meta({
    description: "RFC 3339 with an offset; default now",
  }),
  count: intQuery("count", 1, 1000).optional().meta({ description: "1-1000, default 5" }),
});
