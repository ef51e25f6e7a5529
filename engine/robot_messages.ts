/**
 * Validation of robot payloads (robot-protocol.md): a bad field is a `TypeError` or
 * `RangeError` naming it, answered with a protocol `error`; nothing is recorded.
 *
 * @module
 */
import type { JobResult, LogEntry } from "../actors/mod.ts";
import type { RobotRegisteredData } from "../actors/mod.ts";

/** Most entries in one `job_log` message or one result's `logs`. */
export const MAX_LOG_ENTRIES = 10_000;

/**
 * Refuses a string the log cannot hold (`\u0000` or a lone UTF-16 surrogate: jsonb rejects
 * both with error 22P05) or one longer than `max` UTF-16 code units, naming the field.
 * @throws {TypeError} naming `field` and the problem.
 */
export function checkText(v: string, field: string, max = 65_536): string {
  if (v.length > max) throw new TypeError(`${field} must be at most ${max} characters`);
  if (v.includes("\u0000")) throw new TypeError(`${field} contains \\u0000 (NUL)`);
  if (!v.isWellFormed()) throw new TypeError(`${field} contains a lone UTF-16 surrogate`);
  return v;
}

function optText(v: unknown, field: string, max?: number): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== "string") throw new TypeError(`${field} must be a string, got ${typeof v}`);
  return checkText(v, field, max);
}

/**
 * Robot ids: 1-128 characters of letters, digits, `.`, `_`, `:` or `-` (what registration
 * accepts, so a job asking for another id could never run).
 */
export const ROBOT_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** Validates a `register` payload into `robot.registered` data stamped `nowIso`. */
export function validateRegistration(
  p: Record<string, unknown>,
  nowIso: string,
): RobotRegisteredData {
  const robotId = p.robot_id;
  if (typeof robotId !== "string" || !ROBOT_ID_PATTERN.test(robotId)) {
    throw new TypeError(
      "payload.robot_id must be 1-128 characters of letters, digits, '.', '_', ':' or '-'",
    );
  }
  const max = p.max_concurrent_jobs ?? 1;
  if (typeof max !== "number" || !Number.isInteger(max) || max < 1 || max > 10000) {
    throw new RangeError(`payload.max_concurrent_jobs must be an integer >= 1, got ${max}`);
  }
  if (p.active_job_ids !== undefined && p.active_job_ids !== null) {
    stringList(p.active_job_ids, "payload.active_job_ids", 10_000);
  }
  return {
    robot_id: robotId,
    name: optText(p.name, "payload.name", 256) || robotId,
    capabilities: stringList(p.capabilities, "payload.capabilities"),
    tags: stringList(p.tags, "payload.tags"),
    max_concurrent_jobs: max,
    environment: optText(p.environment, "payload.environment", 256),
    version: optText(p.version, "payload.version", 256),
    registered_at: nowIso,
  };
}

function stringList(v: unknown, field: string, maxItems = 256): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
    throw new TypeError(`${field} must be an array of strings`);
  }
  if (v.length > maxItems) throw new RangeError(`${field} must have at most ${maxItems} items`);
  v.forEach((x, i) => checkText(x, `${field}[${i}]`, 256));
  return [...v];
}

/**
 * Validates log entries (`job_log.entries`, `job_result.logs`): each
 * `{timestamp: string, level: string, message: string, node_id?: string | null}`.
 * @throws {TypeError} naming the first bad entry and field.
 */
export function validateLogEntries(v: unknown, field: string): LogEntry[] {
  if (!Array.isArray(v)) throw new TypeError(`${field} must be an array of log entries`);
  if (v.length > MAX_LOG_ENTRIES) {
    throw new RangeError(`${field} must have at most ${MAX_LOG_ENTRIES} entries, got ${v.length}`);
  }
  return v.map((e, i) => {
    const at = `${field}[${i}]`;
    if (typeof e !== "object" || e === null || Array.isArray(e)) {
      throw new TypeError(`${at} must be an object {timestamp, level, message, node_id?}`);
    }
    const entry = e as Record<string, unknown>;
    for (const key of ["timestamp", "level", "message"]) {
      if (typeof entry[key] !== "string") {
        throw new TypeError(`${at}.${key} must be a string, got ${typeof entry[key]}`);
      }
    }
    const out: LogEntry = {
      timestamp: checkText(entry.timestamp as string, `${at}.timestamp`, 64),
      level: checkText(entry.level as string, `${at}.level`, 32),
      message: checkText(entry.message as string, `${at}.message`),
    };
    if (entry.node_id !== undefined) out.node_id = optText(entry.node_id, `${at}.node_id`, 256);
    return out;
  });
}

/**
 * Validates the fields every job message carries: `job_id` and `lease_id`, strings of at
 * most 128 characters.
 * @throws {TypeError} naming the field.
 */
export function validateJobRef(p: Record<string, unknown>): { jobId: string; leaseId: string } {
  const ref = (key: string): string => {
    const v = p[key];
    if (typeof v !== "string" || v.length === 0) {
      throw new TypeError(`payload.${key} must be a non-empty string, got ${JSON.stringify(v)}`);
    }
    return checkText(v, `payload.${key}`, 128);
  };
  return { jobId: ref("job_id"), leaseId: ref("lease_id") };
}

/**
 * Validates a `job_progress` payload: `progress` a number (clamped to 0-100),
 * `current_node` and `message` optional strings.
 * @throws {TypeError} naming the field.
 */
export function validateProgress(
  p: Record<string, unknown>,
): { progress: number; current_node: string | null; message: string | null } {
  if (typeof p.progress !== "number" || !Number.isFinite(p.progress)) {
    throw new TypeError(
      `payload.progress must be a number from 0 to 100, got ${JSON.stringify(p.progress)}`,
    );
  }
  return {
    progress: Math.max(0, Math.min(100, p.progress)),
    current_node: optText(p.current_node, "payload.current_node", 256),
    message: optText(p.message, "payload.message", 4096),
  };
}

/** Validates a `job_result` payload into the reference's `JobResult`. */
export function validateResult(p: Record<string, unknown>): JobResult {
  const status = p.status;
  if (status !== "completed" && status !== "failed" && status !== "cancelled") {
    throw new RangeError(
      `payload.status must be completed, failed or cancelled, got ${JSON.stringify(status)}`,
    );
  }
  const obj = (v: unknown, field: string): Record<string, unknown> => {
    if (v === undefined || v === null) return {};
    if (typeof v !== "object" || Array.isArray(v)) {
      throw new TypeError(`${field} must be an object`);
    }
    return v as Record<string, unknown>;
  };
  const logs = validateLogEntries(p.logs ?? [], "payload.logs");
  const time = Number(p.execution_time ?? 0);
  if (!Number.isFinite(time) || time < 0) {
    throw new RangeError("payload.execution_time must be a number of seconds >= 0");
  }
  const error = p.error === undefined || p.error === null ? null : obj(p.error, "payload.error");
  return {
    status,
    outputs: obj(p.outputs, "payload.outputs"),
    logs,
    execution_time: time,
    node_results: obj(p.node_results, "payload.node_results") as JobResult["node_results"],
    error: error
      ? {
        type: optText(error.type, "payload.error.type", 256) ?? "Error",
        message: optText(error.message, "payload.error.message") ?? "",
        node_id: optText(error.node_id, "payload.error.node_id", 256),
        stack: optText(error.stack, "payload.error.stack"),
      }
      : null,
  };
}
