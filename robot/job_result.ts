/**
 * The result of one workflow run: the `job_result` payload of the robot protocol
 * (`shared/reference/robot-protocol.md`) without `job_id` and `lease_id`.
 *
 * @module
 */

/** Final status of a run. */
export type JobStatus = "completed" | "failed" | "cancelled";

/** Level of a log entry. */
export type LogLevel = "debug" | "info" | "warning" | "error" | "critical";

/** One log line of a run, as sent in `job_log.entries` and `job_result.logs`. */
export interface LogEntry {
  /** RFC 3339 UTC time with `Z`, e.g. `2026-01-01T00:00:00.000Z`. */
  timestamp: string;
  /** Severity. */
  level: LogLevel;
  /** The text, placeholders already substituted. */
  message: string;
  /** The node that wrote it; absent for entries about the whole run. */
  node_id?: string;
}

/** What happened to one node (the last execution when it ran several times). */
export interface NodeResult {
  /** Outcome of the node's last execution. */
  status: "completed" | "failed";
  /** The node's outputs of its last execution, e.g. `{result: 40}`. */
  output?: Record<string, unknown>;
  /** Error message of the failed execution. */
  error?: string;
  /** Time spent in the node over all its executions, in milliseconds. */
  duration_ms: number;
}

/** Why a run did not complete. `type` is the error class name, e.g. `UnsupportedNodeError`. */
export interface JobError {
  /** Error class name, e.g. `UnsupportedNodeError`. */
  type: string;
  /** What went wrong, in a sentence. */
  message: string;
  /** The node at fault, when there is one. */
  node_id?: string;
  /** Stack trace of the error, for failures (not for cancellations). */
  stack?: string;
}

/** Progress report of a running job, as sent in `job_progress`. */
export interface JobProgress {
  /** 0–100: share of the workflow's nodes that have run at least once. */
  progress: number;
  /** Id of the node about to run. */
  current_node?: string;
  /** Human-readable step, e.g. `Running LogNode "log_total"`. */
  message?: string;
}

/** The `job_result` payload minus `job_id` and `lease_id`. */
export interface JobResultLike {
  /** How the run ended. */
  status: JobStatus;
  /** The workflow variables at the end of the run (JSON values). */
  outputs: Record<string, unknown>;
  /** Every log entry of the run, in order. */
  logs: LogEntry[];
  /** Wall time of the run, in seconds. */
  execution_time: number;
  /** Per node that ran: its status, outputs and duration. */
  node_results: Record<string, NodeResult>;
  /** Present when `status` is `failed` or `cancelled`. */
  error?: JobError;
}
