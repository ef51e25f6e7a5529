/**
 * Data shapes of jobs, after the reference's `Job`, `JobResult` and `Workflow` models.
 *
 * @module
 */

/** The workflow a job runs: CasareRPA workflow JSON plus its identity. */
export interface WorkflowRef {
  workflow_id: string;
  name: string;
  version: string;
  /** CasareRPA workflow JSON (`metadata`, `nodes`, `connections`, `variables`, `settings`). */
  content: Record<string, unknown>;
}

/** One log line of a run (the reference's `LogEntry`). */
export interface LogEntry {
  /** RFC 3339 UTC. */
  timestamp: string;
  level: string;
  message: string;
  node_id?: string | null;
}

/** Outcome of one node (protocol `node_results` value). */
export interface NodeResult {
  status: string;
  output?: unknown;
  error?: string | null;
  /** Duration in milliseconds. */
  duration_ms?: number;
}

/** Error of a failed run (protocol `error`). */
export interface ErrorInfo {
  type: string;
  message: string;
  node_id?: string | null;
  stack?: string | null;
}

/** The reference's `JobResult`, as reported by the robot in `job_result`. */
export interface JobResult {
  status: "completed" | "failed" | "cancelled";
  outputs: Record<string, unknown>;
  logs: LogEntry[];
  /** Wall time of the run in seconds, as measured by the robot. */
  execution_time: number;
  node_results: Record<string, NodeResult>;
  error: ErrorInfo | null;
}

/** Data of `job.submitted`. */
export interface JobSubmittedData {
  job_id: string;
  workflow: WorkflowRef;
  variables: Record<string, unknown>;
  /** 0 low, 1 normal, 2 high, 3 critical. */
  priority: number;
  /** Time limit of one attempt in seconds. */
  timeout: number;
  robot_id?: string | null;
  required_capabilities?: string[];
  /** RFC 3339 UTC. */
  created_at: string;
  /** Retry policy of the job (the reference's RetryPolicy; delays in seconds). */
  retry?: {
    max_retries: number;
    initial_delay: number;
    max_delay: number;
    backoff_factor: number;
  };
  /** `Idempotency-Key` of the submitting request, if any. */
  idempotency_key?: string | null;
  /** SHA-256 (hex) of the submitting request's body, when it had an idempotency key. */
  request_sha256?: string | null;
  /** The finished job this one retries, if any. */
  retry_of?: string | null;
  /**
   * Load-balancing strategy for this job (`round_robin`, `least_loaded`, `random`,
   * `affinity`), overriding the orchestrator's `LOAD_BALANCING`; absent or null: the default.
   */
  load_balancing?: string | null;
}

/** Priority names and numbers, from the robot protocol ("Priorities"). */
export const PRIORITIES = { low: 0, normal: 1, high: 2, critical: 3 } as const;

/** A priority name. */
export type PriorityName = keyof typeof PRIORITIES;

/** Name of a priority number (0–3). */
export function priorityName(priority: number): PriorityName {
  return (["low", "normal", "high", "critical"] as const)[priority] ?? "normal";
}

/**
 * Parses a priority given as a name (`"high"`) or a number 0–3.
 * @throws {RangeError} when the value is neither.
 */
export function parsePriority(value: unknown): number {
  if (typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= 3) {
    return value;
  }
  if (typeof value === "string" && Object.hasOwn(PRIORITIES, value)) {
    return PRIORITIES[value as PriorityName];
  }
  throw new RangeError(
    `priority must be one of low, normal, high, critical or 0-3, got ${JSON.stringify(value)}`,
  );
}
