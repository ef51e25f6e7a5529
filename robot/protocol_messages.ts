/**
 * Envelopes and payloads of the robot WebSocket protocol, version 1
 * (`shared/reference/robot-protocol.md`).
 *
 * @module
 */

import type { JobProgress, JobResultLike, LogEntry } from "./job_result.ts";

/** Every message: `type`, a UUID `id`, an RFC 3339 UTC `timestamp` with `Z`, a `payload`. */
export interface Envelope<P = Record<string, unknown>> {
  /** Message type, e.g. `job_assignment`. */
  type: string;
  /** UUID of this message. */
  id: string;
  /** Send time, RFC 3339 UTC with `Z` (the receiver does not trust it for liveness). */
  timestamp: string;
  /** Type-specific content. */
  payload: P;
  /** Id of the message this one answers. */
  correlation_id?: string;
}

/** `register` (robot → orchestrator): the first message on every connection. */
export interface RegisterPayload {
  /** Stable id of the robot. */
  robot_id: string;
  /** Display name. */
  name: string;
  /** What the robot can run. */
  capabilities: string[];
  /** Routing labels. */
  tags: string[];
  /** Jobs run at once; ≥ 1. */
  max_concurrent_jobs: number;
  /** Environment name, e.g. `production`. */
  environment?: string;
  /** Robot software version. */
  version?: string;
  /** Jobs still running on a reconnecting robot. */
  active_job_ids: string[];
  /** The robot token (a browser-style WebSocket cannot set `Authorization`). */
  auth_token: string;
}

/** Robot status as reported in `heartbeat` and `status_update`. */
export type RobotStatus = "online" | "busy" | "paused" | "maintenance";

/** `heartbeat` (robot → orchestrator), every `heartbeat_interval` seconds. */
export interface HeartbeatPayload {
  /** The robot. */
  robot_id: string;
  /** `busy` when every job slot is taken. */
  status: RobotStatus;
  /** Number of running jobs. */
  current_jobs: number;
  /**
   * Ids of the jobs the robot holds: running, or finished with the result not yet
   * acknowledged. The orchestrator requeues a job of this robot that two consecutive
   * heartbeats omit.
   */
  active_job_ids: string[];
  /** Host CPU load, 0–100. */
  cpu_percent?: number;
  /** Host memory in use, 0–100. */
  memory_percent?: number;
  /** Host disk in use, 0–100. */
  disk_percent?: number;
}

/** `robot_registered` (orchestrator → robot), the answer to `register`. */
export interface RobotRegisteredPayload {
  /** The robot. */
  robot_id: string;
  /** False when the registration is refused (e.g. bad token). */
  success: boolean;
  /** Why, in words. */
  message?: string;
  /** Heartbeat interval and timeout, both in seconds. */
  config?: { heartbeat_interval?: number; heartbeat_timeout?: number };
  /** Jobs the reconnecting robot may keep running; the others have been given away. */
  resume_job_ids?: string[];
}

/** `job_assignment` (orchestrator → robot). */
export interface JobAssignmentPayload {
  /** The job. */
  job_id: string;
  /** Unique to this attempt; every report about the job carries it (fencing). */
  lease_id: string;
  /** Attempt number, from 1. */
  attempt?: number;
  /** The workflow; `content` is the CasareRPA workflow JSON as an object. */
  workflow?: { workflow_id?: string; name?: string; version?: unknown; content?: unknown };
  /** Job variables, overriding the workflow's own. */
  variables?: Record<string, unknown>;
  /** 0–3 (`low` … `critical`). */
  priority?: number | string;
  /** Run timeout, in seconds. */
  timeout?: number;
  /** RFC 3339 time by which the job should be done. */
  deadline?: string;
}

/** `cancel_job` (orchestrator → robot). */
export interface CancelJobPayload {
  /** The job to stop. */
  job_id: string;
  /** Its current lease; a different one is answered with `error {code: "stale_lease"}`. */
  lease_id?: string;
  /** Why, in words; it ends up in the result's error message. */
  reason?: string;
}

/** `error` (both directions). */
export interface ErrorPayload {
  /** Machine-readable code, e.g. `stale_lease`, `invalid_message`, `unknown_job`. */
  code: string;
  /** What went wrong, in a sentence. */
  message: string;
  /** Anything that helps. */
  details?: unknown;
}

/** `job_log` (robot → orchestrator): a batch of log entries. */
export interface JobLogPayload {
  /** The job. */
  job_id: string;
  /** The job's lease. */
  lease_id: string;
  /** At most 50 entries, in order. */
  entries: LogEntry[];
}

/** `job_progress` (robot → orchestrator). */
export interface JobProgressPayload extends JobProgress {
  /** The job. */
  job_id: string;
  /** The job's lease. */
  lease_id: string;
}

/** `job_result` (robot → orchestrator): {@linkcode JobResultLike} plus job and lease ids. */
export interface JobResultPayload extends Partial<Pick<JobResultLike, "logs">> {
  /** The job. */
  job_id: string;
  /** The job's lease. */
  lease_id: string;
  /** How the run ended. */
  status: JobResultLike["status"];
  /** Final workflow variables. */
  outputs: JobResultLike["outputs"];
  /** Wall time of the run, in seconds. */
  execution_time: number;
  /** Per-node status, outputs and duration (ms). */
  node_results: JobResultLike["node_results"];
  /** Why the run failed or was cancelled. */
  error?: JobResultLike["error"];
}

/** Options of {@linkcode createEnvelope}. */
export interface CreateEnvelopeOptions {
  /** Message id. @default crypto.randomUUID() */
  id?: string;
  /** Time of the message in milliseconds since the epoch. @default Date.now() */
  now?: number;
  /** Id of the message this one answers. */
  correlationId?: string;
}

/**
 * Wraps a payload in an envelope.
 *
 * @param type Message type, e.g. `heartbeat`.
 * @param payload Message payload.
 * @param options Id, time and correlation id.
 * @returns The envelope.
 * @example A heartbeat
 * ```ts
 * import { createEnvelope } from "./protocol_messages.ts";
 * const msg = createEnvelope("heartbeat", { robot_id: "r1", status: "online" });
 * console.log(msg.timestamp.endsWith("Z")); // true
 * ```
 */
export function createEnvelope<P>(
  type: string,
  payload: P,
  options: CreateEnvelopeOptions = {},
): Envelope<P> {
  const envelope: Envelope<P> = {
    type,
    id: options.id ?? crypto.randomUUID(),
    timestamp: new Date(options.now ?? Date.now()).toISOString(),
    payload,
  };
  if (options.correlationId !== undefined) envelope.correlation_id = options.correlationId;
  return envelope;
}

/** A received frame is not a protocol envelope. */
export class InvalidMessageError extends Error {
  /** The `id` of the message, when it had one. */
  readonly messageId?: string;

  /**
   * Creates the error.
   *
   * @param message What is wrong with the frame.
   * @param messageId The frame's `id`, when readable.
   */
  constructor(message: string, messageId?: string) {
    super(message);
    this.name = "InvalidMessageError";
    this.messageId = messageId;
  }
}

/**
 * Parses a received text frame into an envelope.
 *
 * @param data The frame (only text frames are valid).
 * @returns The envelope; a missing payload becomes `{}`.
 * @throws {InvalidMessageError} When the frame is binary, not JSON, not an object, or has
 *   no string `type`, or a payload that is not an object.
 */
export function parseEnvelope(data: unknown): Envelope {
  if (typeof data !== "string") throw new InvalidMessageError("Binary frames are not supported");
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    throw new InvalidMessageError(`Frame is not JSON: ${data.slice(0, 80)}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidMessageError("Frame is not a JSON object");
  }
  const v = value as Record<string, unknown>;
  const id = typeof v.id === "string" ? v.id : undefined;
  if (typeof v.type !== "string" || v.type === "") {
    throw new InvalidMessageError("Message has no type", id);
  }
  const payload = v.payload ?? {};
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
    throw new InvalidMessageError(`Message ${v.type} has a payload that is not an object`, id);
  }
  return {
    type: v.type,
    id: id ?? "",
    timestamp: typeof v.timestamp === "string" ? v.timestamp : "",
    payload: payload as Record<string, unknown>,
    ...(typeof v.correlation_id === "string" ? { correlation_id: v.correlation_id } : {}),
  };
}
