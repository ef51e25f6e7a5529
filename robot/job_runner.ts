/**
 * Runs one assigned job through an executor and shapes its `job_result` payload.
 *
 * @module
 */

import type { JobResultLike } from "./job_result.ts";
import type { JobReporter } from "./job_reporter.ts";
import type { JobAssignmentPayload, JobResultPayload } from "./protocol_messages.ts";
import type { WorkflowExecutor } from "./workflow_engine.ts";

/** Options of {@linkcode runJob}. */
export interface RunJobOptions {
  /** The `job_assignment` payload. */
  assignment: JobAssignmentPayload;
  /** Runs the workflow. */
  executor: WorkflowExecutor;
  /** Aborted by `cancel_job` or a forced shutdown. */
  signal: AbortSignal;
  /** Receives the run's logs and progress; closed when the run ends. */
  reporter: JobReporter;
}

/**
 * Runs the assignment's `workflow.content` with its `variables` and `timeout` (seconds).
 * Never throws: an executor that throws gives a `failed` result (`error.type` is the
 * thrown error's name).
 *
 * @param options Assignment, executor, signal and reporter.
 * @returns The executor's result.
 */
export async function runJob(options: RunJobOptions): Promise<JobResultLike> {
  const { assignment, reporter } = options;
  const started = Date.now();
  try {
    const variables = typeof assignment.variables === "object" && assignment.variables !== null &&
        !Array.isArray(assignment.variables)
      ? assignment.variables
      : {};
    return await options.executor(assignment.workflow?.content, {
      variables,
      signal: options.signal,
      onLog: (entry) => reporter.log(entry),
      onProgress: (progress) => reporter.progress(progress),
      timeoutSeconds: typeof assignment.timeout === "number" && assignment.timeout > 0
        ? assignment.timeout
        : undefined,
    });
  } catch (e) {
    const error = e instanceof Error ? e : new Error(String(e));
    return {
      status: options.signal.aborted ? "cancelled" : "failed",
      outputs: {},
      logs: [],
      execution_time: (Date.now() - started) / 1000,
      node_results: {},
      error: { type: error.name, message: error.message, stack: error.stack },
    };
  } finally {
    reporter.close();
  }
}

const encoder = new TextEncoder();
const sizeOf = (value: unknown): number => encoder.encode(JSON.stringify(value)).length;

/**
 * Builds the `job_result` payload, shrunk to fit `maxBytes` of JSON: first without `logs`
 * (already streamed in `job_log`), then without node outputs, then without `outputs`
 * (replaced by `{_truncated: true}`).
 *
 * @param jobId The job.
 * @param leaseId The lease of this attempt.
 * @param result The run's result.
 * @param maxBytes Largest payload size in bytes. @default 900 * 1024
 * @returns The payload and whether it had to be shrunk.
 */
export function toJobResultPayload(
  jobId: string,
  leaseId: string,
  result: JobResultLike,
  maxBytes = 900 * 1024,
): { payload: JobResultPayload; truncated: boolean } {
  const payload: JobResultPayload = { job_id: jobId, lease_id: leaseId, ...result };
  if (sizeOf(payload) <= maxBytes) return { payload, truncated: false };
  delete payload.logs;
  if (sizeOf(payload) > maxBytes) {
    payload.node_results = Object.fromEntries(
      Object.entries(payload.node_results).map(([id, r]) => {
        const { output: _dropped, ...rest } = r;
        return [id, rest];
      }),
    );
  }
  if (sizeOf(payload) > maxBytes) payload.outputs = { _truncated: true };
  return { payload, truncated: true };
}
