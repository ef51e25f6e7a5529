/**
 * Read models as the API shows them, computed from the engine's folded state: robots,
 * the queue, and a summary of everything (used by the rebuild and point-in-time replay).
 *
 * @module
 */
import type { RobotContext, RobotStatus } from "../actors/mod.ts";
import { type DashboardMetrics, DashboardProjection, type QueueEntry } from "../projections/mod.ts";
import { type JobView, toJobView } from "./job_commands.ts";
import type { EngineCore } from "./orchestrator_engine.ts";
import { load } from "./robot_pool.ts";
import type { RobotLiveness } from "./robot_sessions.ts";

/** A robot as the API shows it: the reference's `Robot` fields plus live metrics. */
export interface RobotView {
  robot_id: string;
  name: string;
  status: RobotStatus;
  connected: boolean;
  /** RFC 3339: last message received (server clock), else last (dis)connection. */
  last_seen: string | null;
  current_jobs: string[];
  /** Running jobs / max concurrent jobs, 0–1. */
  load: number;
  capabilities: string[];
  tags: string[];
  max_concurrent_jobs: number;
  environment: string | null;
  version: string | null;
  disconnect_reason: string | null;
  metrics: {
    jobs_assigned: number;
    cpu_percent: number | null;
    memory_percent: number | null;
    disk_percent: number | null;
  };
}

/** A robot's view, or undefined when the log does not know it. */
export function robotView(
  core: EngineCore,
  robotId: string,
  live?: RobotLiveness,
): RobotView | undefined {
  const state = core.robots.get(robotId);
  if (!state || state.snapshot.context.robot_id === null) return undefined;
  const c: RobotContext = state.snapshot.context;
  return {
    robot_id: robotId,
    name: c.name,
    status: state.snapshot.value as RobotStatus,
    connected: live !== undefined,
    last_seen: live
      ? new Date(live.lastSeen).toISOString()
      : c.last_disconnected_at ?? c.last_connected_at,
    current_jobs: c.current_jobs,
    load: load({ ...c, robot_id: robotId, running: c.current_jobs.length }),
    capabilities: c.capabilities,
    tags: c.tags,
    max_concurrent_jobs: c.max_concurrent_jobs,
    environment: c.environment,
    version: c.version,
    disconnect_reason: c.disconnect_reason,
    metrics: {
      jobs_assigned: c.jobs_assigned,
      cpu_percent: live?.cpu_percent ?? null,
      memory_percent: live?.memory_percent ?? null,
      disk_percent: live?.disk_percent ?? null,
    },
  };
}

/** Everything the read models hold (of one org, or of all), as plain data (ordered, so two can be compared). */
export interface ReadModelsSummary {
  /** Global position of the last event folded (in log order). */
  position: number;
  jobs: JobView[];
  robots: RobotView[];
  queue: QueueEntry[];
  dashboard: DashboardMetrics;
}

/**
 * Summarises the folded state; `nowMs` (ms since epoch) decides the dashboard's "today".
 * Robot liveness (heartbeat figures) is not in the log, so it is left out.
 */
export function summarizeReadModels(
  core: EngineCore,
  nowMs: number,
  orgId?: string,
): ReadModelsSummary {
  const mine = (streamId: string) => orgId === undefined || core.orgs.orgOf(streamId) === orgId;
  const jobs: JobView[] = [];
  for (const state of core.jobs.values()) {
    if (state.snapshot.context.job_id === null) continue;
    if (!mine(`job-${state.snapshot.context.job_id}`)) continue;
    jobs.push(toJobView(state.snapshot.value as JobView["status"], state.snapshot.context));
  }
  jobs.sort((a, b) => (a.job_id < b.job_id ? -1 : 1));
  const robots = [...core.robots.keys()].sort().filter((id) => mine(`robot-${id}`))
    .map((id) => robotView(core, id)!).filter(Boolean);
  const dashboard = orgId === undefined
    ? core.dashboard
    : core.orgDashboards.get(orgId) ?? new DashboardProjection();
  return {
    position: core.position,
    jobs,
    robots,
    queue: [...core.queue.ordered()].filter((e) => mine(`job-${e.job_id}`)),
    dashboard: dashboard.metrics(nowMs),
  };
}
