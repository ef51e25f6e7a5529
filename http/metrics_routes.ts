/**
 * `GET /metrics`: Prometheus text exposition format 0.0.4, written by hand
 * (https://prometheus.io/docs/instrumenting/exposition_formats/). Needs the API bearer token,
 * like the API, of org `default` (checked by `auth_middleware.ts`; Prometheus:
 * `authorization: {credentials_file: …}` in the scrape config).
 *
 * @module
 */
import { Hono } from "hono";
import type { RobotStatus } from "../actors/mod.ts";
import type { Histogram, Orchestrator } from "../engine/mod.ts";
import { ALERT_KINDS, ALERT_STATUSES } from "../alerts/mod.ts";
import { JOB_STATUSES } from "./job_requests.ts";

/** Content type of the text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const ROBOT_STATUSES: readonly RobotStatus[] = ["offline", "online", "busy", "paused"];
const PRIORITIES = ["low", "normal", "high", "critical"];

/** Escapes a label value (backslash, double quote, line feed). */
function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/** Writes metric families in the text format. */
class Exposition {
  #lines: string[] = [];

  family(name: string, type: "counter" | "gauge" | "histogram", help: string): this {
    this.#lines.push(`# HELP ${name} ${help.replaceAll("\\", "\\\\").replaceAll("\n", "\\n")}`);
    this.#lines.push(`# TYPE ${name} ${type}`);
    return this;
  }

  sample(name: string, value: number, labels: Record<string, string> = {}): this {
    const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
    const text = Number.isFinite(value) ? String(value) : value > 0 ? "+Inf" : "NaN";
    this.#lines.push(`${name}${pairs.length ? `{${pairs.join(",")}}` : ""} ${text}`);
    return this;
  }

  histogram(name: string, h: Histogram): this {
    for (const [le, count] of h.cumulative()) this.sample(`${name}_bucket`, count, { le });
    this.sample(`${name}_sum`, h.sum);
    return this.sample(`${name}_count`, h.count);
  }

  toString(): string {
    return this.#lines.join("\n") + "\n";
  }
}

/**
 * Renders every metric of the orchestrator: jobs by status, queue depth by priority, robots
 * by status and connected, workflows by status, events in the log by category, the log
 * position, the read models' lag behind the log (events and seconds, read from the store),
 * attempts ended by outcome, and the dispatch latency and job duration histograms (seconds).
 */
export async function renderMetrics(orch: Orchestrator): Promise<string> {
  const core = orch.core;
  const out = new Exposition();

  const jobs = new Map<string, number>(JOB_STATUSES.map((s) => [s, 0]));
  for (const state of core.jobs.values()) {
    if (state.snapshot.context.job_id === null) continue;
    const status = state.snapshot.value as string;
    jobs.set(status, (jobs.get(status) ?? 0) + 1);
  }
  out.family("orchestrator_jobs", "gauge", "Jobs by status.");
  for (const [status, n] of jobs) out.sample("orchestrator_jobs", n, { status });

  const depth = [0, 0, 0, 0];
  let waitingRetry = 0;
  const now = core.clock.now();
  for (const entry of core.queue.ordered()) {
    depth[entry.priority] = (depth[entry.priority] ?? 0) + 1;
    if (entry.not_before && Date.parse(entry.not_before) > now) waitingRetry++;
  }
  out.family("orchestrator_queue_depth", "gauge", "Queued jobs by priority.");
  PRIORITIES.forEach((priority, i) =>
    out.sample("orchestrator_queue_depth", depth[i], { priority })
  );
  out.family("orchestrator_queue_retry_waiting", "gauge", "Queued jobs waiting for a retry delay.")
    .sample("orchestrator_queue_retry_waiting", waitingRetry);

  const robots = new Map<string, number>(ROBOT_STATUSES.map((s) => [s, 0]));
  for (const state of core.robots.values()) {
    if (state.snapshot.context.robot_id === null) continue;
    const status = state.snapshot.value as string;
    robots.set(status, (robots.get(status) ?? 0) + 1);
  }
  out.family("orchestrator_robots", "gauge", "Robots known to the log, by status.");
  for (const [status, n] of robots) out.sample("orchestrator_robots", n, { status });
  out.family("orchestrator_robots_connected", "gauge", "Robots with an open connection.")
    .sample("orchestrator_robots_connected", [...orch.sessions.connectedRobotIds()].length);

  out.family(
    "orchestrator_workflows",
    "gauge",
    "Stored workflows by status of their latest version.",
  );
  for (const [status, n] of Object.entries(orch.workflows.countByStatus())) {
    out.sample("orchestrator_workflows", n, { status });
  }

  out.family(
    "orchestrator_events_total",
    "counter",
    "Events in the log applied by this node since start (the whole log after a replay), by category.",
  );
  for (const [category, n] of [...orch.metrics.eventsByCategory].sort()) {
    out.sample("orchestrator_events_total", n, { category });
  }
  out.family("orchestrator_log_position", "gauge", "Global position of the last event applied.")
    .sample("orchestrator_log_position", core.position);

  const behind = await core.store.readAll({ after: core.position, limit: 10_000 });
  const oldest = behind[0]?.recordedAt.getTime();
  out.family(
    "orchestrator_projection_lag_events",
    "gauge",
    "Events in the log not yet applied to the read models (counted up to 10000).",
  ).sample("orchestrator_projection_lag_events", behind.length);
  out.family(
    "orchestrator_projection_lag_seconds",
    "gauge",
    "Age of the oldest event not yet applied to the read models, in seconds.",
  ).sample(
    "orchestrator_projection_lag_seconds",
    oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest) / 1000),
  );

  out.family(
    "orchestrator_job_attempts_ended_total",
    "counter",
    "Attempts that ended, by outcome (completed, failed, cancelled, timed_out, retry_scheduled).",
  );
  for (const [outcome, n] of [...orch.metrics.attemptsEnded].sort()) {
    out.sample("orchestrator_job_attempts_ended_total", n, { outcome });
  }
  out.family(
    "orchestrator_dispatch_latency_seconds",
    "histogram",
    "Seconds from a job becoming dispatchable (queued, or its retry time) to its dispatch.",
  ).histogram("orchestrator_dispatch_latency_seconds", orch.metrics.dispatchLatency);
  out.family(
    "orchestrator_job_duration_seconds",
    "histogram",
    "Seconds from job.started to the end of the attempt.",
  ).histogram("orchestrator_job_duration_seconds", orch.metrics.jobDuration);

  out.family(
    "orchestrator_event_append_duration_seconds",
    "histogram",
    "Seconds each append to the event log by this process took, from the call to the commit (or failure).",
  ).histogram("orchestrator_event_append_duration_seconds", orch.metrics.appendLatency);
  out.family(
    "orchestrator_event_appends_total",
    "counter",
    "Appends to the event log by this process, by outcome (written, replayed, failed).",
  );
  for (const outcome of ["written", "replayed", "failed"]) {
    out.sample("orchestrator_event_appends_total", orch.metrics.appends.get(outcome) ?? 0, {
      outcome,
    });
  }

  out.family("orchestrator_alerts", "gauge", "Alerts in the log by kind and status.");
  const alertCounts = orch.alerts.counts();
  for (const kind of ALERT_KINDS) {
    for (const status of ALERT_STATUSES) {
      out.sample("orchestrator_alerts", alertCounts.get(`${kind}|${status}`) ?? 0, {
        kind,
        status,
      });
    }
  }

  out.family("orchestrator_ready", "gauge", "1 once the log is replayed and followed, else 0.")
    .sample("orchestrator_ready", orch.ready ? 1 : 0);
  return out.toString();
}

/**
 * The route `GET /metrics` (401 without the API bearer token).
 * @param orch the orchestrator; `apiToken` the API clients' bearer token.
 */
export function metricsRoutes(orch: Orchestrator, _apiToken?: string): Hono {
  const app = new Hono();
  app.get("/metrics", async (c) => {
    return c.body(await renderMetrics(orch), 200, { "content-type": PROMETHEUS_CONTENT_TYPE });
  });
  return app;
}
