/**
 * The HTTP API (Hono), all JSON, all under `Authorization: Bearer <token>` except
 * `/healthz`. The app never touches the runtime: the Deno adapter is `server.ts`.
 *
 * @module
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { type Logger, type Orchestrator, silentLogger } from "../engine/mod.ts";
import { DEFAULT_ORG, JobNotFoundError, replayLog } from "../engine/mod.ts";
import { canonicalJson, type RecordedEvent } from "../events/mod.ts";
import { verifyLog } from "../audit/mod.ts";
import { errorResponse, ValidationError } from "./api_errors.ts";
import { scheduleRoutes } from "./schedule_routes.ts";
import { bareWorkflow, JobListQuery, SubmitJob, submitJobInput } from "./job_requests.ts";
import { resolveStoredWorkflow, workflowRoutes } from "./workflow_routes.ts";
import { refuseUndocumentedBody, validJson, validQuery } from "./validation.ts";
import { AuditStateQuery, EventsQuery } from "./admin_schemas.ts";
import { jobRetryRoutes } from "./job_retry_routes.ts";
import { metricsRoutes } from "./metrics_routes.ts";
import { openApiRoutes } from "./openapi_document.ts";
import { robotTokenRoutes } from "./robot_token_routes.ts";
import { apiTokenRoutes } from "./api_token_routes.ts";
import { principal } from "./auth.ts";
import { authMiddleware } from "./auth_middleware.ts";
import { webRoutes } from "./web_routes.ts";
import { requestLog } from "./request_log.ts";
import { docsRoutes } from "./docs_routes.ts";
import { alertRoutes } from "./alert_routes.ts";

/** Options of {@linkcode createApp}. */
export interface AppOptions {
  orchestrator: Orchestrator;
  /** Bearer token of API clients. */
  apiToken: string;
  /**
   * Where the request log goes: one record per request (`request_log.ts`).
   * @default silentLogger (no request log)
   */
  logger?: Logger;
}

/** An event as the events API shows it (the `events` table's columns). */
export function eventJson(e: RecordedEvent): Record<string, unknown> {
  return {
    global_position: e.globalPosition,
    stream_id: e.streamId,
    stream_version: e.streamVersion,
    event_id: e.eventId,
    type: e.type,
    data: e.data,
    metadata: e.metadata,
    recorded_at: e.recordedAt.toISOString(),
  };
}

/**
 * A filter keeping the events of org `orgId`'s streams (see `engine/org_index.ts`). A
 * stream's first event in the batch names its org itself, in case the read models have not
 * applied it yet.
 */
export function orgFilter(orch: Orchestrator, orgId: string): (e: RecordedEvent) => boolean {
  const seen = new Map<string, string>();
  return (e) => {
    if (e.streamVersion === 1) {
      const named = (e.data as { org_id?: unknown }).org_id;
      seen.set(e.streamId, typeof named === "string" ? named : DEFAULT_ORG);
    }
    return (seen.get(e.streamId) ?? orch.core.orgs.orgOf(e.streamId)) === orgId;
  };
}

/** Largest request body, in bytes (1 MiB, as the robot protocol's frames). */
export const MAX_BODY_BYTES = 1024 * 1024;

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Builds the API. */
export function createApp(options: AppOptions): Hono {
  const { orchestrator: orch, apiToken } = options;
  const app = new Hono();
  app.use("*", requestLog({ logger: options.logger ?? silentLogger }));
  app.onError(errorResponse);
  app.notFound((c) =>
    c.json({ error: { code: "not_found", message: `No route ${c.req.method} ${c.req.path}` } }, 404)
  );

  app.get("/healthz", async (c) => {
    // Draining (graceful shutdown): still serving robots and the API, but not for long.
    if (orch.ready && orch.draining) {
      return c.json({ status: "draining", position: orch.core.position }, 503);
    }
    if (orch.ready) {
      // Serving from memory, but writes wait while the database cannot be reached.
      const problem = await orch.storeProblem();
      if (problem) {
        return c.json({ status: "degraded", error: problem, position: orch.core.position }, 503);
      }
      return c.json({
        status: "ok",
        position: orch.core.position,
        ...(orch.cluster ? { cluster: orch.cluster.status() } : {}),
      });
    }
    if (orch.failure) {
      const body = { status: "failed", error: orch.failure.message, position: orch.core.position };
      return c.json(body, 503);
    }
    return c.json({ status: "starting" }, 503);
  });

  app.use("*", authMiddleware(orch, apiToken));
  app.route("/", metricsRoutes(orch, apiToken));
  app.route("/", webRoutes({ orchestrator: orch, apiToken })); // the dashboard
  app.route("/", docsRoutes()); // public page; the document it shows needs the token

  app.use(
    "/api/*",
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) =>
        c.json({
          error: {
            code: "payload_too_large",
            field: "body",
            message: `Request bodies are limited to ${MAX_BODY_BYTES} bytes`,
          },
        }, 413),
    }),
  );

  // Bodies of operations that document none must be empty (or `{}`).
  app.use("/api/*", refuseUndocumentedBody());

  app.route("/", scheduleRoutes(orch.scheduler, (id) => orch.core.orgs.orgOf(id)));
  app.route("/", workflowRoutes(orch.workflows));
  app.route("/", jobRetryRoutes(orch));
  app.route("/", openApiRoutes());
  app.route("/", robotTokenRoutes(orch));
  app.route("/", alertRoutes(orch.alerts));
  app.route("/", apiTokenRoutes(orch));

  app.post("/api/v1/jobs", async (c) => {
    // The whole body is checked first (every field named on error), then a stored
    // workflow is resolved (404 unknown, 409 not published).
    let raw: unknown;
    const body = await validJson(c, SubmitJob, {
      prepare: (json) => bareWorkflow(raw = json),
    });
    const org = principal(c).org_id;
    const stored = body.workflow_id === undefined ? null : resolveStoredWorkflow(
      orch.workflows,
      { workflow_id: body.workflow_id, workflow_version: body.workflow_version },
      { orgOf: (id: string) => orch.core.orgs.orgOf(`workflow-${id}`), org },
    );
    const input = {
      ...submitJobInput(body, stored?.content ?? body.workflow!),
      ...(stored?.identity ?? {}),
      org_id: org,
    };
    const key = c.req.header("idempotency-key");
    if (key !== undefined) {
      if (key.length < 1 || key.length > 255) {
        throw new ValidationError("Idempotency-Key", "Idempotency-Key must be 1-255 characters");
      }
    }
    try {
      if (key !== undefined) {
        input.idempotency = { key, request_sha256: await sha256Hex(canonicalJson(raw)) };
      }
      const job = await orch.jobs.submit(input);
      if (job.replayed) c.header("Idempotent-Replayed", "true");
      // Read your writes: answer once every read model (queue, dashboard) shows the job.
      if (job.position) await orch.settled(job.position);
      return c.json({ job_id: job.job_id, status: job.status }, job.replayed ? 200 : 201);
    } catch (error) {
      // The store refuses data Postgres cannot hold (NUL, lone surrogates, too deep or too
      // large): name the field of the request it came from.
      if (error instanceof TypeError || error instanceof RangeError) {
        const path = error.message.match(/\.data\.([\w.\[\]-]+)/)?.[1];
        throw new ValidationError(path ?? "body", error.message);
      }
      throw error;
    }
  });

  app.get("/api/v1/jobs", (c) => {
    const q = validQuery(c, JobListQuery);
    return c.json(orch.jobs.list({
      status: q.status,
      workflow_id: q.workflow_id,
      robot_id: q.robot_id,
      created_after: q.created_after && new Date(q.created_after).toISOString(),
      created_before: q.created_before && new Date(q.created_before).toISOString(),
      order: q.order ?? "desc",
      cursor: q.cursor,
      limit: q.limit ?? 100,
      org_id: principal(c).org_id,
    }));
  });

  app.get("/api/v1/jobs/:id/events", async (c) => {
    const jobId = c.req.param("id");
    if (!orch.jobs.view(jobId)) throw new JobNotFoundError(jobId);
    const events = await orch.core.store.readStream(`job-${jobId}`);
    return c.json({ events: events.map(eventJson) });
  });

  app.get("/api/v1/jobs/:id", (c) => {
    const job = orch.jobs.view(c.req.param("id"));
    if (!job) throw new JobNotFoundError(c.req.param("id"));
    const waiting = orch.dispatcher.waitReasons.get(job.job_id);
    return c.json(job.status === "queued" && waiting ? { ...job, queue_reason: waiting } : job);
  });

  app.post("/api/v1/jobs/:id/cancel", async (c) => {
    const job = await orch.jobs.cancel(c.req.param("id"));
    return c.json(job, job.status === "cancelled" ? 200 : 202);
  });

  app.get("/api/v1/robots", (c) => c.json({ robots: orch.robots(principal(c).org_id) }));
  app.get("/api/v1/robots/:id", (c) => {
    const robot = orch.robot(c.req.param("id"));
    if (!robot) {
      return c.json({
        error: { code: "not_found", message: `Robot ${c.req.param("id")} does not exist` },
      }, 404);
    }
    return c.json(robot);
  });

  for (const action of ["pause", "resume"] as const) {
    app.post(`/api/v1/robots/:id/${action}`, async (c) => {
      const robotId = c.req.param("id");
      if (!orch.robot(robotId)) {
        return c.json(
          { error: { code: "not_found", message: `Robot ${robotId} does not exist` } },
          404,
        );
      }
      await orch.setRobotPaused(robotId, action === "pause");
      return c.json(orch.robot(robotId));
    });
  }

  app.get("/api/v1/metrics/dashboard", (c) => c.json(orch.dashboard(principal(c).org_id)));

  app.get("/api/v1/metrics/projections", async (c) => {
    // Lag of this node's read models behind the log: events not yet applied (counted up
    // to 10,000) and the age in seconds of the oldest of them.
    const behind = await orch.core.store.readAll({ after: orch.core.position, limit: 10_000 });
    const oldest = behind[0]?.recordedAt.getTime();
    return c.json({
      projections: ["jobs", "robots", "queue", "dashboard"],
      checkpoint: orch.core.position,
      lag_events: behind.length,
      lag_seconds: oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest) / 1000),
      storage: "in memory, rebuilt from the log at start-up",
    });
  });

  app.get("/api/v1/audit/verify", async (c) => {
    const result = await verifyLog(orch.core.store);
    const org = principal(c).org_id;
    // The whole log is checked (one hash chain per stream, seals over every stream), but
    // only the caller's org's streams are named.
    const problems = result.problems.filter((p) => orch.core.orgs.orgOf(p.streamId) === org);
    return c.json({ ...result, problems, firstProblem: problems[0] });
  });

  app.post("/api/v1/audit/seal", async (c) => c.json(await orch.core.store.seal(), 201));

  app.get("/api/v1/audit/state", async (c) => {
    const { at } = validQuery(c, AuditStateQuery);
    const until = at === undefined ? undefined : new Date(at);
    const { events, state } = await replayLog(orch.core.store, {
      until,
      orgId: principal(c).org_id,
    });
    return c.json({ at: (until ?? new Date()).toISOString(), events, ...state });
  });

  app.get("/api/v1/events", async (c) => {
    const { after = 0, limit = 100, stream, wait: waitSeconds = 0 } = validQuery(c, EventsQuery);
    const read = () =>
      orch.core.store.readAll({ after, limit, streamId: stream }).catch((error) => {
        if (error instanceof RangeError) throw new ValidationError("after", error.message);
        throw error;
      });
    const mine = orgFilter(orch, principal(c).org_id);
    let events = await read();
    // With a stream filter, another org's stream answers as an unknown one: no events,
    // `next_after` not moved, and a long poll that waits the same (a stream has one org, so
    // its events are either all the caller's or none).
    const empty = () => (stream === undefined ? events : events.filter(mine)).length === 0;
    if (empty() && waitSeconds > 0) {
      // Long poll: wait for the next events this node applies, or the time limit.
      await orch.nextEvents(AbortSignal.timeout(waitSeconds * 1000));
      events = await read();
    }
    if (stream !== undefined) events = events.filter(mine);
    // The position read up to, even when the caller's org had no event in the page (without
    // a stream filter: other orgs' events move it, never naming their streams).
    const next = events.length ? events[events.length - 1].globalPosition : after;
    if (events.length) await orch.settled(next);
    return c.json({ events: events.filter(mine).map(eventJson), next_after: next });
  });

  return app;
}
