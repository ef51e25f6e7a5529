/**
 * Envelope of the robot WebSocket protocol, version 1 (../shared/reference/robot-protocol.md).
 *
 * @module
 */

/** A protocol message. `timestamp` is RFC 3339 UTC with `Z`. */
export interface Envelope {
  type: string;
  id: string;
  timestamp: string;
  payload: Record<string, unknown>;
  correlation_id?: string;
}

/** Largest accepted frame, in bytes (protocol default: 1 MiB). */
export const MAX_FRAME_BYTES = 1024 * 1024;

/** Deepest nesting of arrays and objects accepted in a frame (the envelope counts as 1). */
export const MAX_FRAME_DEPTH = 32;

/** Message types a robot may send (protocol "Robot → orchestrator"). */
export const ROBOT_MESSAGE_TYPES: ReadonlySet<string> = new Set([
  "register",
  "heartbeat",
  "status_update",
  "job_accepted",
  "job_rejected",
  "job_progress",
  "job_log",
  "job_result",
  "disconnect",
  "error",
]);

/** A frame the orchestrator refuses, with the protocol error code to answer. */
export interface FrameError {
  code: "frame_too_large" | "invalid_json" | "invalid_message" | "unknown_type";
  message: string;
  correlationId?: string;
}

/**
 * Parses a text frame into an envelope.
 * @returns the envelope, or a {@linkcode FrameError} describing why it was refused.
 */
export function parseFrame(text: string): Envelope | FrameError {
  if (text.length > MAX_FRAME_BYTES || new TextEncoder().encode(text).length > MAX_FRAME_BYTES) {
    return { code: "frame_too_large", message: `Frames are limited to ${MAX_FRAME_BYTES} bytes` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { code: "invalid_json", message: `Frame is not JSON: ${(error as Error).message}` };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { code: "invalid_message", message: "Frame must be a JSON object" };
  }
  if (depthOf(value, MAX_FRAME_DEPTH) > MAX_FRAME_DEPTH) {
    return {
      code: "invalid_message",
      message: `Frame nests arrays and objects deeper than ${MAX_FRAME_DEPTH} levels`,
    };
  }
  const v = value as Record<string, unknown>;
  const correlationId = typeof v.id === "string" ? v.id : undefined;
  if (typeof v.type !== "string") {
    return { code: "invalid_message", message: "Field type must be a string", correlationId };
  }
  if (!ROBOT_MESSAGE_TYPES.has(v.type)) {
    return { code: "unknown_type", message: `Unknown message type ${v.type}`, correlationId };
  }
  const payload = v.payload ?? {};
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
    return { code: "invalid_message", message: "Field payload must be an object", correlationId };
  }
  return {
    type: v.type,
    id: correlationId ?? crypto.randomUUID(),
    timestamp: typeof v.timestamp === "string" ? v.timestamp : "",
    payload: payload as Record<string, unknown>,
    correlation_id: typeof v.correlation_id === "string" ? v.correlation_id : undefined,
  };
}

/**
 * Nesting depth of a parsed JSON value (a scalar is 0), counted without recursion and
 * stopping as soon as it exceeds `limit` (so a hostile frame costs one bounded walk).
 */
function depthOf(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (depth > deepest) deepest = depth;
    if (deepest > limit) return deepest;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (typeof child === "object" && child !== null) stack.push([child, depth + 1]);
    }
  }
  return deepest;
}

/** Whether {@linkcode parseFrame} refused the frame. */
export function isFrameError(v: Envelope | FrameError): v is FrameError {
  return "code" in v;
}

/** Builds an outgoing envelope stamped with `nowMs` (ms since epoch). */
export function envelope(
  type: string,
  payload: Record<string, unknown>,
  nowMs: number,
  correlationId?: string,
): Envelope {
  const e: Envelope = {
    type,
    id: crypto.randomUUID(),
    timestamp: new Date(nowMs).toISOString(),
    payload,
  };
  if (correlationId) e.correlation_id = correlationId;
  return e;
}
