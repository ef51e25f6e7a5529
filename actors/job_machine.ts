/**
 * The job's state machine (XState v5), after the reference's JobStateMachine:
 *
 * ```
 * pending → queued → dispatched → running → completed | failed | cancelled | timeout
 * ```
 *
 * plus what a real fleet needs: a dispatched or running job goes back to `queued` when its
 * robot rejects it or is lost; a queued job can be cancelled at once; a dispatched or
 * running job can time out. Machine events are the recorded events themselves
 * (`{type: "job.dispatched", ...data}`), so replaying a stream is folding its events
 * through {@linkcode transition}. The machine has no actions with side effects and never
 * reads a clock: every time is in the event.
 *
 * @module
 */
import { assign, setup } from "xstate";
import type { JobResult, JobSubmittedData, LogEntry, WorkflowRef } from "./job_types.ts";

/** Status names, as in the reference's `JobStatus` enum. */
export type JobStatus =
  | "pending"
  | "queued"
  | "dispatched"
  | "running"
  | "completed"
  | "failed"
  | "cancelled"
  | "timeout";

/** Terminal statuses: a job in one of them never changes again. */
export const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set([
  "completed",
  "failed",
  "cancelled",
  "timeout",
]);

/** Everything the log says about one job. Times are RFC 3339 strings (UTC). */
export interface JobContext {
  job_id: string | null;
  workflow: WorkflowRef | null;
  variables: Record<string, unknown>;
  /** 0 low, 1 normal, 2 high, 3 critical. */
  priority: number;
  /** Per-attempt time limit in seconds. */
  timeout: number;
  /** Robot the submitter asked for, if any. */
  requested_robot_id: string | null;
  required_capabilities: string[];
  /** Robot currently (or last) holding the job. */
  robot_id: string | null;
  lease_id: string | null;
  /** Attempt number of the current lease, starting at 1. */
  attempt: number;
  /** Absolute deadline of the current attempt (RFC 3339). */
  deadline: string | null;
  created_at: string | null;
  queued_at: string | null;
  dispatched_at: string | null;
  started_at: string | null;
  completed_at: string | null;
  /** 0–100 as last reported by the robot. */
  progress: number;
  current_node: string | null;
  /** Robots that rejected the job since it was last queued (not offered again). */
  rejected_by: string[];
  cancel_requested: boolean;
  /** Why the cancel was asked for, when it was. */
  cancel_reason: string | null;
  /**
   * Absolute instant (RFC 3339) after which an unconfirmed cancel revokes the lease
   * (`grace_deadline` of `job.cancel_requested`); null before a cancel, or for a cancel
   * recorded before the field existed.
   */
  cancel_grace_deadline: string | null;
  error: string | null;
  result: JobResult | null;
  /** Why the job is back in the queue, when it is. */
  queue_reason: string | null;
  /** Log entries streamed so far (`job.logged`). */
  log_entries: number;
  /** Retry policy (delays in seconds); `max_retries` 0 = never retried. */
  retry: { max_retries: number; initial_delay: number; max_delay: number; backoff_factor: number };
  /** Failed attempts so far that were retried. */
  failures: number;
  /** Instant before which a retried job is not dispatched again (RFC 3339). */
  retry_at: string | null;
  /** `Idempotency-Key` the job was submitted with, and the SHA-256 of that request. */
  idempotency_key: string | null;
  request_sha256: string | null;
  /** The finished job this one retries, if any. */
  retry_of: string | null;
  /** Load-balancing strategy asked for at submission, else null (the orchestrator's). */
  load_balancing: string | null;
}

/** Recorded job events, as machine events (`type` + the event's data). */
export type JobEvent =
  | ({ type: "job.submitted" } & JobSubmittedData)
  | { type: "job.queued"; queued_at: string; reason: string }
  | {
    type: "job.dispatched";
    robot_id: string;
    lease_id: string;
    attempt: number;
    dispatched_at: string;
    deadline: string;
  }
  | { type: "job.rejected"; robot_id: string; lease_id: string; reason: string }
  | { type: "job.started"; lease_id: string; started_at: string }
  | {
    type: "job.progressed";
    lease_id: string;
    progress: number;
    current_node?: string | null;
    message?: string | null;
  }
  | { type: "job.logged"; lease_id: string; entries: LogEntry[] }
  | {
    type: "job.cancel_requested";
    requested_at: string;
    reason: string;
    /** RFC 3339: requested_at + the cancel grace period. Absent in older logs. */
    grace_deadline?: string;
  }
  | { type: "job.completed"; lease_id: string; completed_at: string; result: JobResult }
  | {
    type: "job.failed";
    lease_id: string | null;
    completed_at: string;
    error: string;
    result: JobResult | null;
  }
  | { type: "job.cancelled"; cancelled_at: string; reason: string; result?: JobResult | null }
  | { type: "job.timed_out"; timed_out_at: string; lease_id: string | null }
  | {
    type: "job.retry_scheduled";
    lease_id: string | null;
    failed_at: string;
    error: string;
    result: JobResult | null;
    /** Retry number, 1-based. */
    retry: number;
    retry_at: string;
  };

/** Context of a job that has no events yet. */
export function emptyJobContext(): JobContext {
  return {
    job_id: null,
    workflow: null,
    variables: {},
    priority: 1,
    timeout: 3600,
    requested_robot_id: null,
    required_capabilities: [],
    robot_id: null,
    lease_id: null,
    attempt: 0,
    deadline: null,
    created_at: null,
    queued_at: null,
    dispatched_at: null,
    started_at: null,
    completed_at: null,
    progress: 0,
    current_node: null,
    rejected_by: [],
    cancel_requested: false,
    cancel_reason: null,
    cancel_grace_deadline: null,
    error: null,
    result: null,
    queue_reason: null,
    log_entries: 0,
    retry: { max_retries: 0, initial_delay: 1, max_delay: 60, backoff_factor: 2 },
    failures: 0,
    retry_at: null,
    idempotency_key: null,
    request_sha256: null,
    retry_of: null,
    load_balancing: null,
  };
}

const sameLease = ({ context, event }: { context: JobContext; event: JobEvent }): boolean =>
  "lease_id" in event && event.lease_id === context.lease_id;

/** The job machine. Pure: use with `transition()` / `initialTransition()` from xstate. */
export const jobMachine = setup({
  types: {} as { context: JobContext; events: JobEvent },
  guards: {
    sameLease,
    notSubmitted: ({ context }) => context.job_id === null,
    canRetry: ({ context, event }) =>
      !context.cancel_requested && context.failures < context.retry.max_retries &&
      (event as Extract<JobEvent, { type: "job.retry_scheduled" }>).retry === context.failures + 1,
  },
  actions: {
    queue: assign(({ event }) => {
      const e = event as Extract<JobEvent, { type: "job.queued" }>;
      return {
        queued_at: e.queued_at,
        queue_reason: e.reason,
        robot_id: null,
        lease_id: null,
        deadline: null,
        progress: 0,
        current_node: null,
      };
    }),
    finish: assign(({ event }) => {
      const e = event as Extract<JobEvent, { type: "job.failed" | "job.completed" }>;
      return e.type === "job.completed"
        ? {
          completed_at: e.completed_at,
          result: e.result,
          error: null,
          progress: 100,
          current_node: null,
        }
        : { completed_at: e.completed_at, result: e.result, error: e.error, current_node: null };
    }),
    cancel: assign(({ event, context }) => {
      const e = event as Extract<JobEvent, { type: "job.cancelled" }>;
      return {
        completed_at: e.cancelled_at,
        error: e.reason,
        result: e.result ?? context.result,
        cancel_requested: true,
      };
    }),
    timeOut: assign(({ event }) => {
      const e = event as Extract<JobEvent, { type: "job.timed_out" }>;
      return { completed_at: e.timed_out_at, error: "Job exceeded its timeout" };
    }),
    progress: assign(({ event }) => {
      const e = event as Extract<JobEvent, { type: "job.progressed" }>;
      return { progress: e.progress, current_node: e.current_node ?? null };
    }),
    requestCancel: assign(({ event }) => {
      const e = event as Extract<JobEvent, { type: "job.cancel_requested" }>;
      return {
        cancel_requested: true,
        cancel_reason: e.reason,
        cancel_grace_deadline: e.grace_deadline ?? null,
      };
    }),
    scheduleRetry: assign(({ event }) => {
      const e = event as Extract<JobEvent, { type: "job.retry_scheduled" }>;
      return {
        failures: e.retry,
        retry_at: e.retry_at,
        queued_at: e.failed_at,
        queue_reason: `retry ${e.retry} after: ${e.error}`,
        error: e.error,
        result: e.result,
        robot_id: null,
        lease_id: null,
        deadline: null,
        progress: 0,
        current_node: null,
        rejected_by: [],
      };
    }),
    countLog: assign(({ context, event }) => ({
      log_entries: context.log_entries +
        (event as Extract<JobEvent, { type: "job.logged" }>).entries.length,
    })),
  },
}).createMachine({
  id: "job",
  initial: "pending",
  context: emptyJobContext,
  states: {
    pending: {
      on: {
        "job.submitted": {
          guard: "notSubmitted",
          actions: assign(({ event }) => {
            const { type: _type, ...data } = event as Extract<JobEvent, { type: "job.submitted" }>;
            return {
              job_id: data.job_id,
              workflow: data.workflow,
              variables: data.variables,
              priority: data.priority,
              timeout: data.timeout,
              requested_robot_id: data.robot_id ?? null,
              required_capabilities: data.required_capabilities ?? [],
              created_at: data.created_at,
              retry: data.retry ??
                { max_retries: 0, initial_delay: 1, max_delay: 60, backoff_factor: 2 },
              idempotency_key: data.idempotency_key ?? null,
              request_sha256: data.request_sha256 ?? null,
              retry_of: data.retry_of ?? null,
              load_balancing: data.load_balancing ?? null,
            };
          }),
        },
        "job.queued": { target: "queued", actions: "queue" },
        "job.cancelled": { target: "cancelled", actions: "cancel" },
      },
    },
    queued: {
      on: {
        "job.dispatched": {
          target: "dispatched",
          actions: assign(({ event }) => {
            const e = event as Extract<JobEvent, { type: "job.dispatched" }>;
            return {
              robot_id: e.robot_id,
              lease_id: e.lease_id,
              attempt: e.attempt,
              dispatched_at: e.dispatched_at,
              deadline: e.deadline,
              queue_reason: null,
              retry_at: null,
            };
          }),
        },
        "job.cancelled": { target: "cancelled", actions: "cancel" },
      },
    },
    dispatched: {
      on: {
        "job.started": {
          guard: "sameLease",
          target: "running",
          actions: assign(({ event }) => ({
            started_at: (event as Extract<JobEvent, { type: "job.started" }>).started_at,
          })),
        },
        "job.rejected": {
          guard: "sameLease",
          target: "queued",
          actions: assign(({ event, context }) => {
            const e = event as Extract<JobEvent, { type: "job.rejected" }>;
            return {
              rejected_by: [...context.rejected_by, e.robot_id],
              robot_id: null,
              lease_id: null,
              deadline: null,
              queue_reason: `rejected by ${e.robot_id}: ${e.reason}`,
            };
          }),
        },
        "job.queued": { target: "queued", actions: "queue" },
        "job.cancel_requested": { actions: "requestCancel" },
        "job.cancelled": { target: "cancelled", actions: "cancel" },
        "job.failed": { target: "failed", actions: "finish" },
        "job.timed_out": { target: "timeout", actions: "timeOut" },
        "job.retry_scheduled": { guard: "canRetry", target: "queued", actions: "scheduleRetry" },
      },
    },
    running: {
      on: {
        "job.progressed": { guard: "sameLease", actions: "progress" },
        "job.logged": { guard: "sameLease", actions: "countLog" },
        "job.cancel_requested": { actions: "requestCancel" },
        "job.completed": { guard: "sameLease", target: "completed", actions: "finish" },
        "job.failed": { target: "failed", actions: "finish" },
        "job.cancelled": { target: "cancelled", actions: "cancel" },
        "job.timed_out": { target: "timeout", actions: "timeOut" },
        "job.retry_scheduled": { guard: "canRetry", target: "queued", actions: "scheduleRetry" },
        "job.queued": { target: "queued", actions: "queue" },
      },
    },
    completed: { type: "final" },
    failed: { type: "final" },
    cancelled: { type: "final" },
    timeout: { type: "final" },
  },
});
