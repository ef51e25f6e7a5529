/**
 * Request schemas (zod) of the smaller routes: API tokens, robot provisioning, alerts, and
 * the queries of the log, audit and dashboard reads. The routes validate with them and the
 * OpenAPI document is generated from them (`validation.ts`).
 *
 * @module
 */
import { z } from "zod";
import { ALERT_KINDS, ALERT_STATUSES } from "../alerts/mod.ts";
import { ORG_ID_PATTERN, ROLES } from "../engine/mod.ts";
import { instant, intQuery, must, REQUEST_SCHEMAS, strictObject } from "./validation.ts";

const NAME = z.string(must("name", "a string of at most 200 characters")).max(
  200,
  must("name", "a string of at most 200 characters"),
);

/** Body of `POST /api/v1/tokens`. */
export const IssueApiToken = strictObject({
  role: z.enum(ROLES, must("role", `one of ${ROLES.join(", ")}`)),
  org_id: z.string(must("org_id", "an org id")).regex(
    ORG_ID_PATTERN,
    must("org_id", "an org id: 1-64 letters, digits, _ . or - (starting with a letter or digit)"),
  ).optional().meta({
    description: "default: the caller's org; another org only for system admins",
  }),
  name: NAME.optional().meta({ description: "up to 200 characters" }),
}, "a token").register(REQUEST_SCHEMAS, { id: "IssueApiToken" });

/** Query of `GET /api/v1/tokens`. */
export const TokenListQuery = z.object({
  org_id: z.string().optional().meta({ description: "another org (system admins only)" }),
});

/** Body of `POST /api/v1/robots` (optional). */
export const ProvisionRobot = strictObject({
  robot_id: z.string(must("robot_id", "a string")).optional().meta({
    description: "default: a UUID",
  }),
  name: NAME.optional(),
}, "a robot").register(REQUEST_SCHEMAS, { id: "ProvisionRobot" });

/** Body of `POST /api/v1/alerts/:id/acknowledge` (optional). */
export const AcknowledgeAlert = strictObject({
  note: z.string(
    must("note", "a string of at most 1000 characters, without NUL or lone surrogates"),
  ).max(
    1000,
    must("note", "a string of at most 1000 characters, without NUL or lone surrogates"),
  ).refine(
    (note) => !note.includes("\u0000") && note.isWellFormed(),
    must("note", "a string of at most 1000 characters, without NUL or lone surrogates"),
  ).nullable().optional(),
}, "an acknowledgement").register(REQUEST_SCHEMAS, { id: "AcknowledgeAlert" });

/** Query of `GET /api/v1/alerts`. */
export const AlertListQuery = z.object({
  status: z.enum(ALERT_STATUSES, must("status", `one of ${ALERT_STATUSES.join(", ")}`))
    .optional(),
  kind: z.enum(ALERT_KINDS, must("kind", `one of ${ALERT_KINDS.join(", ")}`)).optional(),
  limit: intQuery("limit", 1, 1000).optional().meta({ description: "1-1000, default 100" }),
});

/** Query of `GET /api/v1/events`. */
export const EventsQuery = z.object({
  after: intQuery("after", 0, Number.MAX_SAFE_INTEGER).optional().meta({
    description: "global position",
  }),
  limit: intQuery("limit", 1, 1000).optional().meta({ description: "1-1000, default 100" }),
  stream: z.string().regex(
    /^[\w.:@-]{1,300}$/,
    must("stream", "a stream id such as job-<id>"),
  ).optional().meta({ description: "stream id" }),
  wait: intQuery("wait", 0, 30).optional().meta({
    description: "seconds to wait for new events, 0-30",
  }),
});

/** Query of `GET /api/v1/audit/state`. */
export const AuditStateQuery = z.object({
  at: instant("at").optional().meta({ description: "RFC 3339, default now" }),
});

/** Query of `GET /api/v1/metrics/history` (the web dashboard's charts). */
export const HistoryQuery = z.object({
  from: instant("from").optional().meta({ description: "RFC 3339; default: an hour before to" }),
  to: instant("to").optional().meta({ description: "RFC 3339; default now" }),
  step: z.coerce.number(must("step", "a positive multiple of 10 seconds")).int(
    must("step", "a positive multiple of 10 seconds"),
  ).positive(must("step", "a positive multiple of 10 seconds")).multipleOf(
    10,
    must("step", "a positive multiple of 10 seconds"),
  ).optional().meta({ description: "seconds, a multiple of 10; default: from the range" }),
});

/** Query of `GET /api/v1/activity` (the web dashboard's feed). */
export const ActivityQuery = z.object({
  limit: intQuery("limit", 1, 100).optional().meta({ description: "1-100, default 20" }),
  robot_id: z.string().optional().meta({ description: "only this robot" }),
});

/** Query of `GET /api/v1/stream` (Server-Sent Events). */
export const StreamQuery = z.object({
  after: z.string().regex(
    /^\s*\d{1,16}\s*$/,
    must("after", "a global position (an integer >= 0)"),
  ).optional().meta({ description: "global position to start after; Last-Event-ID wins" }),
  channels: z.string().optional().meta({
    description: "comma-separated robots:{org_id}, jobs:{org_id}, progress:{job_id}",
  }),
  token: z.string().optional().meta({
    description: "the API token, for EventSource clients that cannot set headers",
  }),
});
