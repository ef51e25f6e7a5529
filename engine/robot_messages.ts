/**
 * Validation of robot payloads (robot-protocol.md): a bad field is a `TypeError` or
 * `RangeError` naming it, answered with a protocol `error`; nothing is recorded.
 *
 * @module
 */
import type { JobResult } from "../actors/mod.ts";
import type { RobotRegisteredData } from "../actors/mod.ts";

/** Validates a `register` payload into `robot.registered` data stamped `nowIso`. */
export function validateRegistration(
  p: Record<string, unknown>,
  nowIso: string,
): RobotRegisteredData {
  const robotId = p.robot_id;
  if (typeof robotId !== "string" || !/^[A-Za-z0-9._:-]{1,128}$/.test(robotId)) {
    throw new TypeError(
      "payload.robot_id must be 1-128 characters of letters, digits, '.', '_', ':' or '-'",
    );
  }
  const max = p.max_concurrent_jobs ?? 1;
  if (typeof max !== "number" || !Number.isInteger(max) || max < 1 || max > 10000) {
    throw new RangeError(`payload.max_concurrent_jobs must be an integer >= 1, got ${max}`);
  }
  return {
    robot_id: robotId,
    name: typeof p.name === "string" && p.name ? p.name : robotId,
    capabilities: stringList(p.capabilities, "payload.capabilities"),
    tags: stringList(p.tags, "payload.tags"),
    max_concurrent_jobs: max,
    environment: typeof p.environment === "string" ? p.environment : null,
    version: typeof p.version === "string" ? p.version : null,
    registered_at: nowIso,
  };
}

function stringList(v: unknown, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
    throw new TypeError(`${field} must be an array of strings`);
  }
  return [...v];
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
  const logs = p.logs ?? [];
  if (!Array.isArray(logs)) throw new TypeError("payload.logs must be an array");
  const time = Number(p.execution_time ?? 0);
  if (!Number.isFinite(time) || time < 0) {
    throw new RangeError("payload.execution_time must be a number of seconds >= 0");
  }
  const error = p.error === undefined || p.error === null ? null : obj(p.error, "payload.error");
  return {
    status,
    outputs: obj(p.outputs, "payload.outputs"),
    logs: logs as JobResult["logs"],
    execution_time: time,
    node_results: obj(p.node_results, "payload.node_results") as JobResult["node_results"],
    error: error
      ? {
        type: String(error.type ?? "Error"),
        message: String(error.message ?? ""),
        node_id: typeof error.node_id === "string" ? error.node_id : null,
        stack: typeof error.stack === "string" ? error.stack : null,
      }
      : null,
  };
}
