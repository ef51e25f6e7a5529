/**
 * The scheduler's public types: what it submits per tick, how it shows a schedule, its
 * options, and the errors its commands throw.
 *
 * @module
 */
import type { EventStore, SqlTx } from "../events/mod.ts";
import type { Clock } from "../engine/clock.ts";
import type { ScheduleDefinition } from "./schedule_input.ts";

/** What the scheduler asks the engine to run for one tick. */
export interface ScheduledJobInput {
  /** Derived from (`schedule_id`, `scheduled_for`): submitting twice must give one job. */
  job_id: string;
  schedule_id: string;
  /** The tick, RFC 3339 UTC. */
  scheduled_for: string;
  workflow: Record<string, unknown> | null;
  workflow_id: string | null;
  variables: Record<string, unknown>;
  /** 0-3. */
  priority: number;
  robot_id: string | null;
}

/** A schedule as the API shows it. */
export type ScheduleView = ScheduleDefinition & {
  schedule_id: string;
  next_run: string | null;
  last_run: string | null;
  /** Job of the last fire (the previous run of the overlap policy). */
  last_job_id: string | null;
  /** Tick held by `queue_one` until the previous run ends. */
  pending_run: string | null;
  created_at: string;
  updated_at: string;
};

/**
 * A leader's fencing (cluster mode, `engine/cluster.ts`): `check` runs inside the append's
 * transaction and throws (`FencedError`) once this node's term is over; `metadata` is
 * recorded on each fenced event (`{leader_node, leader_token}`).
 */
export interface SchedulerLeaderFence {
  check(tx: SqlTx): Promise<void>;
  metadata(): Record<string, unknown>;
}

/** Options of {@linkcode Scheduler}. */
export interface SchedulerOptions {
  store: Pick<EventStore, "append" | "readAll" | "readStream">;
  clock: Clock;
  /**
   * Submits the tick's job; must be idempotent on `job_id`. Called only for a tick, so in
   * cluster mode it must be fenced like the tick's own events (the engine commits it
   * `asLeader`).
   */
  submitJob(input: ScheduledJobInput): Promise<{ job_id: string }>;
  /**
   * The leader's fence, or null on a single node. What a tick writes (`schedule.fired`,
   * `schedule.skipped`, `schedule.queued`) runs its check in the append's transaction, so
   * a former leader that comes back cannot record a tick. API commands (add, update,
   * pause, resume, remove) run on any node and are not fenced.
   * @default () => null
   */
  leaderFence?(): SchedulerLeaderFence | null;
  /**
   * Whether a job is still active (not yet completed, failed, cancelled or timed out): the
   * overlap policies `skip` and `queue_one` ask it about the schedule's previous run. A job
   * it does not know counts as ended.
   * @default () => false
   */
  jobActive?(jobId: string): boolean;
  /**
   * Whether a stored workflow with this id exists: a schedule naming one that does not is
   * refused when it is added or updated (400 naming `workflow_id`) instead of failing at
   * every tick.
   * @default () => true
   */
  workflowExists?(workflowId: string): boolean;
  /**
   * Milliseconds a tick may be overdue and still count as on time (not a misfire).
   * @default 5000
   */
  misfireGraceMs?: number;
  /**
   * Receives errors of timer-driven work; a failed fire is retried 1 s later (a tick then
   * overdue beyond the grace follows the misfire policy).
   * @default console.error
   */
  onError?: (error: unknown) => void;
  /**
   * Resolves once the engine's read models (the org index among them) applied the event at a
   * global position: awaited after `schedule.added`, so that the schedule is reachable
   * through the API (its org known) when `add` returns. @default resolves at once
   */
  settled?: (position: number) => Promise<void>;
}

/** Thrown for an unknown or removed schedule id (the API answers 404). */
export class ScheduleNotFoundError extends Error {
  override name = "ScheduleNotFoundError";
  readonly scheduleId: string;
  constructor(scheduleId: string) {
    super(`Schedule ${scheduleId} does not exist`);
    this.scheduleId = scheduleId;
  }
}

/**
 * Thrown when adding a schedule whose id is taken (the API answers 409): by a schedule of
 * any org, live or deleted (ids are global and stay taken). The message is the same in every
 * case, so it does not tell another org's schedule from one's own deleted one.
 */
export class ScheduleExistsError extends Error {
  override name = "ScheduleExistsError";
  readonly scheduleId: string;
  constructor(scheduleId: string, options?: ErrorOptions) {
    super(
      `Schedule id ${scheduleId} is taken; choose another (schedule ids are unique across organisations and stay taken after a delete) or leave schedule_id out for a random one`,
      options,
    );
    this.scheduleId = scheduleId;
  }
}
