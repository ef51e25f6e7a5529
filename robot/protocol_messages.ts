/**
 * Envelopes and payloads of the robot WebSocket protocol, version 1
 * (`shared/reference/robot-protocol.md`).
 *
 * @module
 */

import type { JobProgress, JobResultLike, LogEntry } from "./job_result.ts";

/** Every message: `type`, a UUID `id`, an RFC 3339 UTC `timestamp` with `Z`, a `payload`. */
export interface Envelope<P = Record<string, unknown>> {
  type: string;
  id: string;
  timestamp: string;
  payload: P;
  /** Id of the message this one answers. */
  correlation_id?: string;
}

/** `register` (robot → orchestrator): the first message on every connection. */
export interface RegisterPayload {
  robot_id: string;
  name: string;
  capabilities: string[];
  tags: string[];
  /** ≥ 1. */
  max_concurrent_jobs: number;
  environment?: string;
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
  robot_id: string;
  status: RobotStatus;
  current_jobs: number;
  active_job_ids: string[];
  cpu_percent?: number;
  memory_percent?: number;
  disk_percent?: number;
}

/** `robot_registered` (orchestrator → robot), the answer to `register`. */
export interface RobotRegisteredPayload {
  robot_id: string;
  success: boolean;
  message?: string;
  /** Both in seconds. */
  config?: { heartbeat_interval?: number; heartbeat_timeout?: number };
  /** Jobs the reconnecting robot may keep running; the others have been given away. */
  resume_job_ids?: string[];
}

/** `job_assignment` (orchestrator → robot). */
export interface JobAssignmentPayload {
  job_id: string;
  lease_id: string;
  attempt?: number;
  workflow?: { workflow_id?: string; name?: string; version?: unknown; content?: unknown };
  variables?: Record<string, unknown>;
  priority?: number | string;
  /** Seconds. */
  timeout?: number;
  /** RFC 3339. */
  deadline?: string;
}

/** `cancel_job` (orchestrator → robot). */
export interface CancelJobPayload {
  job_id: string;
  lease_id?: string;
  reason?: string;
}

/** `error` (both directions). */
export interface ErrorPayload {
  code: string;
  message: string;
  details?: unknown;
}

/** `job_log` (robot → orchestrator): a batch of log entries. */
export interface JobLogPayload {
  job_id: string;
  lease_id: string;
  entries: LogEntry[];
}

/** `job_progress` (robot → orchestrator). */
export interface JobProgressPayload extends JobProgress {
  job_id: string;
  lease_id: string;
}

/** `job_result` (robot → orchestrator). */
export interface JobResultPayload extends Partial<Pick<JobResultLike, "logs">> {
  job_id: string;
  lease_id: string;
  status: JobResultLike["status"];
  outputs: JobResultLike["outputs"];
  execution_time: number;
  node_results: JobResultLike["node_results"];
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
