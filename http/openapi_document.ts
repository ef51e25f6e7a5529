/**
 * The OpenAPI 3.1 document of the API, served at `GET /api/v1/openapi.json`: one entry per
 * route in {@linkcode OPERATIONS} (a test checks that every route the Hono app registers is
 * listed). Request bodies and queries are the zod schemas the routes validate with
 * (`validJson`/`validQuery` check that they are these very objects), converted by zod's
 * `z.toJSONSchema` (`validation.ts`); the table itself holds what no validator knows:
 * roles (`access`, enforced by `auth_middleware.ts`), summaries and the answers, whose
 * schemas are in `openapi_schemas.ts`.
 *
 * @module
 */
import { Hono } from "hono";
import type { z } from "zod";
import { ref, SCHEMAS } from "./openapi_schemas.ts";
import { jsonSchemaOf, namedJsonSchemas } from "./validation.ts";
import { JobListQuery, SubmitJob } from "./job_requests.ts";
import { NextRunsQuery, ScheduleInput } from "./schedule_schemas.ts";
import {
  AcknowledgeAlert,
  ActivityQuery,
  AlertListQuery,
  AuditStateQuery,
  EventsQuery,
  HistoryQuery,
  IssueApiToken,
  ProvisionRobot,
  StreamQuery,
  TokenListQuery,
} from "./admin_schemas.ts";
import {
  DeployInput,
  UndeployInput,
  WorkflowInput,
  WorkflowListQuery,
  WorkflowVersionParams,
} from "./workflow_schemas.ts";
import { type Access, ACCESS_ROLES } from "./auth.ts";

/** One documented operation. */
export interface Operation {
  method: "get" | "post" | "put" | "patch" | "delete";
  /** Hono path (`:id` for a path parameter). */
  path: string;
  summary: string;
  tag: string;
  /**
   * The path parameters, when they are more than strings: the zod object the route
   * validates them with (`validParams`).
   */
  params?: z.ZodObject;
  /** The query: the zod object the route validates it with (`validQuery`). */
  query?: z.ZodObject;
  /**
   * The JSON body: the zod schema the route validates it with (`validJson`); without one,
   * a body must be empty or `{}` (`refuseUndocumentedBody`).
   */
  body?: z.ZodType;
  /** The body may be empty (read as `{}`). @default false */
  optionalBody?: boolean;
  /** Status → [description, component schema or null for no body]. */
  responses: Record<string, [string, string | null]>;
  /** False for routes without the bearer token. @default true */
  auth?: boolean;
  /** Content type of the 200 answer when not JSON. */
  produces?: string;
  /**
   * Roles that may call it (`http/auth.ts`). @default `public` when `auth` is false, else
   * `read` for `get` and `admin` for other methods
   */
  access?: Access;
}

/** The access an operation needs (its `access`, else the default). */
export function accessOf(op: Operation): Access {
  return op.access ?? (op.auth === false ? "public" : op.method === "get" ? "read" : "admin");
}

const E400: [string, string] = ["Bad input; `field` names it", "Error"];
const E404: [string, string] = ["Unknown id", "Error"];
const E409: [string, string] = ["Conflict with the current state", "Error"];

/** Every route of the API. */
// deno-fmt-ignore -- one line per route reads as a table
export const OPERATIONS: readonly Operation[] = [
  { method: "get", path: "/healthz", access: "public", summary: "Readiness: 200 once the log is replayed, else 503", tag: "health", auth: false, responses: { 200: ["Ready", "Health"], 503: ["Starting or failed", "Health"] } },
  { method: "get", path: "/metrics", access: "system", summary: "Prometheus text exposition format 0.0.4", tag: "metrics", produces: "text/plain; version=0.0.4", responses: { 200: ["Metrics", null] } },
  { method: "get", path: "/ws/realtime", access: "public", summary: "Realtime channels over WebSocket (robots:{org_id}, jobs:{org_id}, progress:{job_id}); token in the first `auth` message or `?token=`; upgrade required", tag: "events", responses: { 101: ["Switching protocols", null], 426: ["Not a WebSocket upgrade", "Error"] } },
  { method: "get", path: "/ws/robot", access: "public", summary: "Robot WebSocket (protocol version 1); upgrade required", tag: "robots", auth: false, responses: { 101: ["Switching protocols", null], 426: ["Not a WebSocket upgrade", "Error"] } },
  { method: "get", path: "/api/v1/openapi.json", access: "any", summary: "This document", tag: "meta", responses: { 200: ["OpenAPI 3.1 document", "Object"] } },
  { method: "get", path: "/api/docs", access: "public", summary: "Interactive docs of this document (Swagger UI, served without internet access); asks for the API token", tag: "meta", auth: false, produces: "text/html", responses: { 200: ["An HTML page", null] } },
  // Jobs
  { method: "post", path: "/api/v1/jobs", access: "operate", summary: "Submit a job (inline workflow or workflow_id); honours Idempotency-Key", tag: "jobs", body: SubmitJob, responses: { 201: ["Queued", "JobCreated"], 200: ["Idempotent replay", "JobCreated"], 400: E400, 404: ["Unknown workflow_id", "Error"], 409: ["Workflow not published", "Error"], 413: ["Body over 1 MiB", "Error"], 422: ["Idempotency-Key reused with another body", "Error"] } },
  { method: "get", path: "/api/v1/jobs", access: "read", summary: "List jobs with filters, sorting and a cursor", tag: "jobs", query: JobListQuery, responses: { 200: ["A page of jobs", "JobList"], 400: E400 } },
  { method: "get", path: "/api/v1/jobs/:id", access: "read", summary: "A job with its result", tag: "jobs", responses: { 200: ["The job", "Job"], 404: E404 } },
  { method: "get", path: "/api/v1/jobs/:id/events", access: "log", summary: "The job's history (its stream)", tag: "jobs", responses: { 200: ["Events in version order", "EventList"], 404: E404 } },
  { method: "post", path: "/api/v1/jobs/:id/cancel", access: "operate", summary: "Cancel a job", tag: "jobs", responses: { 200: ["Cancelled", "Job"], 202: ["The robot is asked to stop", "Job"], 400: E400, 404: E404, 409: ["Already finished", "Error"] } },
  { method: "post", path: "/api/v1/jobs/:id/retry", access: "operate", summary: "Run a finished job again as a new job (retry_of)", tag: "jobs", responses: { 201: ["The new job", "JobCreated"], 200: ["Idempotent replay", "JobCreated"], 400: E400, 404: E404, 409: ["Not finished", "Error"] } },
  // Robots
  { method: "get", path: "/api/v1/robots", access: "read", summary: "Robots with status, load and metrics", tag: "robots", responses: { 200: ["Robots", "RobotList"] } },
  { method: "get", path: "/api/v1/robots/:id", access: "read", summary: "One robot", tag: "robots", responses: { 200: ["The robot", "Robot"], 404: E404 } },
  { method: "post", path: "/api/v1/robots/:id/pause", access: "operate", summary: "Stop giving the robot new jobs", tag: "robots", responses: { 200: ["The robot", "Robot"], 400: E400, 404: E404, 409: E409 } },
  { method: "post", path: "/api/v1/robots/:id/resume", access: "operate", summary: "Give the robot jobs again", tag: "robots", responses: { 200: ["The robot", "Robot"], 400: E400, 404: E404, 409: E409 } },
  { method: "post", path: "/api/v1/robots", access: "admin", summary: "Provision a robot: its own token, shown once", tag: "robots", body: ProvisionRobot, optionalBody: true, responses: { 201: ["The credential and its token", "RobotCredential"], 400: E400, 409: ["Already has an active token", "Error"] } },
  { method: "post", path: "/api/v1/robots/:id/token", access: "admin", summary: "Rotate a robot's token (the old one stops working)", tag: "robots", responses: { 201: ["The credential and its new token", "RobotCredential"], 400: E400, 404: ["No active token", "Error"] } },
  { method: "get", path: "/api/v1/robots/:id/token", access: "admin", summary: "A robot's credential (never the token)", tag: "robots", responses: { 200: ["The credential", "RobotCredential"], 404: ["Never provisioned", "Error"] } },
  { method: "delete", path: "/api/v1/robots/:id/token", access: "admin", summary: "Revoke a robot's token; its connection on that token is closed", tag: "robots", responses: { 204: ["Revoked", null], 400: E400, 404: ["No active token", "Error"] } },
  // API tokens (organisations and roles)
  { method: "get", path: "/api/v1/auth/me", access: "any", summary: "The caller's org and role", tag: "auth", responses: { 200: ["The principal", "Principal"] } },
  { method: "post", path: "/api/v1/tokens", access: "admin", summary: "Issue an API token with an org and a role; shown once (another org: system admins only)", tag: "auth", body: IssueApiToken, responses: { 201: ["The token", "ApiToken"], 400: E400 } },
  { method: "get", path: "/api/v1/tokens", access: "admin", summary: "API tokens of the caller's org (system admins: `org_id` for another org)", tag: "auth", query: TokenListQuery, responses: { 200: ["Tokens", "ApiTokenList"], 400: E400 } },
  { method: "get", path: "/api/v1/tokens/:id", access: "admin", summary: "One API token (never the token itself)", tag: "auth", responses: { 200: ["The token", "ApiToken"], 404: E404 } },
  { method: "delete", path: "/api/v1/tokens/:id", access: "admin", summary: "Revoke an API token", tag: "auth", responses: { 204: ["Revoked", null], 400: E400, 404: E404 } },
  // Workflows
  { method: "post", path: "/api/v1/workflows", access: "operate", summary: "Create a workflow (version 1)", tag: "workflows", body: WorkflowInput, responses: { 201: ["The workflow", "Workflow"], 400: E400, 409: ["workflow_id taken", "Error"] } },
  { method: "get", path: "/api/v1/workflows", access: "read", summary: "List workflows (no content) and the folder tree", tag: "workflows", query: WorkflowListQuery, responses: { 200: ["Workflows", "WorkflowList"], 400: E400 } },
  { method: "get", path: "/api/v1/workflows/:id", access: "read", summary: "A workflow with its latest content", tag: "workflows", responses: { 200: ["The workflow", "Workflow"], 404: E404 } },
  { method: "put", path: "/api/v1/workflows/:id", access: "operate", summary: "Save a new version with the given fields changed", tag: "workflows", body: WorkflowInput, responses: { 200: ["The workflow", "Workflow"], 400: E400, 404: E404, 409: ["expected_version is not the latest", "Error"] } },
  { method: "delete", path: "/api/v1/workflows/:id", access: "operate", summary: "Delete a workflow (refused while schedules run it by id)", tag: "workflows", responses: { 204: ["Deleted", null], 400: E400, 404: E404, 409: ["Schedules use it: `schedule_ids` names them", "Error"] } },
  { method: "get", path: "/api/v1/workflows/:id/versions", access: "read", summary: "Every version of a workflow", tag: "workflows", responses: { 200: ["Versions", "WorkflowVersions"], 404: E404 } },
  { method: "get", path: "/api/v1/workflows/:id/versions/:version", params: WorkflowVersionParams, access: "read", summary: "One version with its content", tag: "workflows", responses: { 200: ["The version", "WorkflowVersion"], 400: E400, 404: E404 } },
  { method: "post", path: "/api/v1/workflows/:id/deploy", access: "operate", summary: "Deploy a version (default: the published one) on robots", tag: "workflows", body: DeployInput, responses: { 200: ["The deployment", "Deployment"], 400: E400, 404: E404, 409: ["Not published", "Error"] } },
  { method: "post", path: "/api/v1/workflows/:id/undeploy", access: "operate", summary: "Remove a deployment from robots (default: all)", tag: "workflows", body: UndeployInput, optionalBody: true, responses: { 200: ["The deployment", "Deployment"], 400: E400, 404: E404 } },
  { method: "get", path: "/api/v1/workflows/:id/deployment", access: "read", summary: "Where a workflow is deployed", tag: "workflows", responses: { 200: ["The deployment", "Deployment"], 404: E404 } },
  // Schedules
  { method: "post", path: "/api/v1/schedules", access: "operate", summary: "Add a schedule", tag: "schedules", body: ScheduleInput, responses: { 201: ["The schedule", "Schedule"], 400: E400, 409: ["schedule_id taken", "Error"] } },
  { method: "get", path: "/api/v1/schedules", access: "read", summary: "List schedules", tag: "schedules", responses: { 200: ["Schedules", "ScheduleList"] } },
  { method: "get", path: "/api/v1/schedules/:id", access: "read", summary: "One schedule", tag: "schedules", responses: { 200: ["The schedule", "Schedule"], 404: E404 } },
  { method: "patch", path: "/api/v1/schedules/:id", access: "operate", summary: "Change fields of a schedule", tag: "schedules", body: ScheduleInput, responses: { 200: ["The schedule", "Schedule"], 400: E400, 404: E404 } },
  { method: "delete", path: "/api/v1/schedules/:id", access: "operate", summary: "Remove a schedule", tag: "schedules", responses: { 204: ["Removed", null], 400: E400, 404: E404 } },
  { method: "post", path: "/api/v1/schedules/:id/pause", access: "operate", summary: "Pause a schedule", tag: "schedules", responses: { 200: ["The schedule", "Schedule"], 400: E400, 404: E404 } },
  { method: "post", path: "/api/v1/schedules/:id/resume", access: "operate", summary: "Resume a schedule", tag: "schedules", responses: { 200: ["The schedule", "Schedule"], 400: E400, 404: E404 } },
  { method: "get", path: "/api/v1/schedules/:id/next-runs", access: "read", summary: "The next runs after an instant", tag: "schedules", query: NextRunsQuery, responses: { 200: ["Runs", "NextRuns"], 400: E400, 404: E404 } },
  // Alerts
  { method: "get", path: "/api/v1/alerts", access: "read", summary: "Alerts of the caller's org (a system admin: every org's), newest first", tag: "alerts", query: AlertListQuery, responses: { 200: ["Alerts", "AlertList"], 400: E400 } },
  { method: "get", path: "/api/v1/alerts/:id", access: "read", summary: "An alert of the caller's org with its evidence and deliveries", tag: "alerts", responses: { 200: ["The alert", "Alert"], 404: E404 } },
  { method: "post", path: "/api/v1/alerts/:id/acknowledge", access: "operate", summary: "Acknowledge an alert (body optional)", tag: "alerts", body: AcknowledgeAlert, optionalBody: true, responses: { 200: ["The alert", "Alert"], 400: E400, 404: E404, 409: ["Already acknowledged", "Error"] } },
  // Metrics, events, audit
  { method: "get", path: "/api/v1/metrics/dashboard", access: "read", summary: "The reference's DashboardMetrics", tag: "metrics", responses: { 200: ["Metrics", "Dashboard"] } },
  { method: "get", path: "/api/v1/metrics/history", access: "read", summary: "Dashboard time series of the metrics (web dashboard)", tag: "metrics", query: HistoryQuery, responses: { 200: ["Points", "Object"], 400: E400 } },
  { method: "get", path: "/api/v1/activity", access: "read", summary: "Recent activity (web dashboard)", tag: "metrics", query: ActivityQuery, responses: { 200: ["Activity", "Object"], 400: E400 } },
  { method: "get", path: "/api/v1/stream", access: "log", summary: "Server-Sent Events of the log (resume with Last-Event-ID)", tag: "events", query: StreamQuery, produces: "text/event-stream", responses: { 200: ["An event stream", null], 400: E400, 403: ["The token's role may not read the log, or a `robots:`/`jobs:` channel of another org", "Error"], 404: ["A `progress:` channel of a job that is not the caller's org's (unknown or another org's: the same answer)", "Error"] } },
  { method: "get", path: "/api/v1/metrics/projections", access: "read", summary: "Lag of the read models behind the log", tag: "metrics", responses: { 200: ["Lag", "Object"] } },
  { method: "get", path: "/api/v1/events", access: "log", summary: "The log in global order (long poll with wait)", tag: "events", query: EventsQuery, responses: { 200: ["Events", "EventList"], 400: E400 } },
  { method: "get", path: "/api/v1/audit/verify", access: "log", summary: "Check every hash chain and the seals", tag: "audit", responses: { 200: ["The result", "Object"] } },
  { method: "post", path: "/api/v1/audit/seal", access: "audit", summary: "Seal the log now", tag: "audit", responses: { 201: ["The seal", "Object"], 400: E400 } },
  { method: "get", path: "/api/v1/audit/state", access: "log", summary: "Jobs, robots, queue and metrics as they stood at an instant", tag: "audit", query: AuditStateQuery, responses: { 200: ["The state", "Object"], 400: E400 } },
];

/** The query parameters of an operation, from its zod schema. */
function queryParameters(query: Operation["query"]): Record<string, unknown>[] {
  if (query === undefined) return [];
  return Object.entries(query.shape as Record<string, z.ZodType>).map(([name, field]) => {
    const { description, ...schema } = jsonSchemaOf(field);
    return {
      name,
      in: "query",
      required: !field.safeParse(undefined).success,
      ...(description === undefined ? {} : { description }),
      schema,
    };
  });
}

/** `/api/v1/jobs/:id` → `/api/v1/jobs/{id}`. */
export function openApiPath(honoPath: string): string {
  return honoPath.replace(/:([A-Za-z_]\w*)/g, "{$1}");
}

/**
 * Builds the OpenAPI 3.1 document from {@linkcode OPERATIONS}.
 * @param operations the operations to describe. @default OPERATIONS
 */
export function openApiDocument(
  operations: readonly Operation[] = OPERATIONS,
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of operations) {
    const path = openApiPath(op.path);
    const parameters = [
      ...[...op.path.matchAll(/:([A-Za-z_]\w*)/g)].map(([, name]) => ({
        name,
        in: "path",
        required: true,
        schema: op.params?.shape[name]
          ? jsonSchemaOf(op.params.shape[name] as z.ZodType)
          : { type: "string" },
      })),
      ...queryParameters(op.query),
    ];
    const responses: Record<string, unknown> = {};
    for (const [status, [description, schema]] of Object.entries(op.responses)) {
      const type = status === "200" && op.produces ? op.produces : "application/json";
      responses[status] = schema === null && !(status === "200" && op.produces)
        ? { description }
        : {
          description,
          content: { [type]: { schema: schema ? ref(schema) : { type: "string" } } },
        };
    }
    if (op.auth !== false && accessOf(op) !== "public") {
      responses["401"] ??= {
        description: "Missing or invalid bearer token",
        content: { "application/json": { schema: ref("Error") } },
      };
      responses["403"] ??= {
        description: "The token's role may not do this",
        content: { "application/json": { schema: ref("Error") } },
      };
    }
    if (op.method !== "get") {
      // Every body is read by `readJson` (`validation.ts`), which refuses other types.
      responses["415"] ??= {
        description:
          "A body sent with a Content-Type other than application/json (or +json); `field` is `Content-Type`",
        content: { "application/json": { schema: ref("Error") } },
      };
    }
    paths[path] ??= {};
    paths[path][op.method] = {
      operationId: `${op.method}${
        path.replace(/[^A-Za-z0-9]+(\w)?/g, (_, c) => (c ?? "").toUpperCase())
      }`,
      summary: op.summary,
      description: accessOf(op) === "public"
        ? "No token."
        : `Roles: ${ACCESS_ROLES[accessOf(op)].join(", ")}${
          accessOf(op) === "system" ? " (of org `default` only)" : ""
        }. Ids of another org's entities answer 404, as unknown ids.`,
      "x-roles": accessOf(op) === "public" ? [] : [...ACCESS_ROLES[accessOf(op)]],
      tags: [op.tag],
      ...(parameters.length ? { parameters } : {}),
      ...(op.body
        ? {
          requestBody: {
            required: !op.optionalBody,
            content: {
              "application/json": {
                schema: jsonSchemaOf(op.body),
              },
            },
          },
        }
        : {}),
      responses,
      ...(op.auth === false || accessOf(op) === "public" ? { security: [] } : {}),
    };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "orchestrator",
      version: "1",
      description:
        "Event-sourced control plane for RPA robots. Every error is `{error: {code, message, field?}}`; `field` names the offending field of a 400 as a JSON path (`variables.x`, `robot_ids[1]`). JSON bodies are closed: an unknown field is a 400 naming it, and an operation without a request body takes only an empty body or `{}`. A known path called with a method it does not have answers 405 with an `Allow` header. A body is JSON: one sent with another `Content-Type` (other than `application/json` or a `+json` type, with `charset=utf-8` if any) is a 415 naming the header; no `Content-Type`, or curl's default `application/x-www-form-urlencoded`, is read as JSON.\n\n" +
        "**Organisations and roles.** Every token carries an org and a role (admin, operator, viewer, auditor, robot); each operation lists the roles it admits (`x-roles`); ids of another org answer 404 as unknown ids; lists and streams hold the caller's org only.\n\n" +
        "**Realtime channels** `robots:{org_id}`, `jobs:{org_id}`, `progress:{job_id}` (own org only), over SSE (`GET /api/v1/stream?channels=a,b`) and WebSocket `/ws/realtime` with JSON messages. " +
        'Client: `{"type":"auth","token"}` (unless the upgrade carried it), `{"type":"subscribe","channels":[...],"after"?:position}`, `{"type":"unsubscribe","channels":[...]}`, `{"type":"broadcast","channel","event","data"?}` (admins), `{"type":"ping"}`. ' +
        'Server: `{"type":"ready","org_id","role","checkpoint"}`, `{"type":"subscribed","channels","checkpoint"}`, `{"type":"unsubscribed","channels"}`, `{"type":"event","position","channels","event"}` (once per event, in log order; resume with `after`), `{"type":"broadcasted","position"}`, `{"type":"pong"}`, `{"type":"reset","checkpoint"}`, `{"type":"error","code","message","channel"?}` (codes unauthorized, forbidden, not_found, invalid_channel, invalid_message).',
    },
    servers: [{ url: "/" }],
    security: [{ bearer: [] }],
    tags: [...new Set(operations.map((o) => o.tag))].map((name) => ({ name })),
    paths,
    components: {
      securitySchemes: {
        bearer: {
          type: "http",
          scheme: "bearer",
          description:
            "An API token: the configured ORCHESTRATOR_API_TOKEN (admin of org `default`) or one issued by POST /api/v1/tokens with an org and a role (admin, operator, viewer, auditor, robot). Each operation's description and `x-roles` name the roles it admits; ids of another org answer 404.",
        },
      },
      // Response schemas (hand-written) and the named request schemas (from the zod
      // validators; they win where a name is in both).
      schemas: { ...SCHEMAS, ...namedJsonSchemas() },
    },
  };
}

/** The route `GET /api/v1/openapi.json` (behind the app's auth middleware). */
export function openApiRoutes(): Hono {
  const app = new Hono();
  const document = openApiDocument();
  app.get("/api/v1/openapi.json", (c) => c.json(document));
  return app;
}
