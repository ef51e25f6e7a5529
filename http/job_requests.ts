/**
 * Validation of job requests. Each problem is a {@linkcode ValidationError} naming the field.
 *
 * @module
 */
import { parsePriority } from "../actors/mod.ts";
import {
  DEFAULT_RETRY_POLICY,
  InvalidWorkflowError,
  MAX_JOB_TIMEOUT_SECONDS,
  parseRetryPolicy,
  type RetryPolicy,
  ROBOT_ID_PATTERN,
  STRATEGIES,
  type SubmitJobInput,
  validateWorkflowContent,
} from "../engine/mod.ts";
import { ValidationError } from "./api_errors.ts";

/** Largest accepted job timeout, in seconds (7 days). */
export const MAX_TIMEOUT_SECONDS = MAX_JOB_TIMEOUT_SECONDS;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Fields of a `POST /api/v1/jobs` body (after a stored workflow's id was resolved). */
const SUBMIT_FIELDS = new Set([
  "workflow",
  "variables",
  "priority",
  "timeout",
  "robot_id",
  "required_capabilities",
  "retry",
  "load_balancing",
]);

/**
 * Validates the body of `POST /api/v1/jobs` (a bare workflow object is also accepted):
 * `{workflow: object, variables?: object, priority?: "low"|"normal"|"high"|"critical"|0-3,
 *   timeout?: seconds, robot_id?: string, required_capabilities?: string[],
 *   retry?: {max_retries?, initial_delay? (s), max_delay? (s), backoff_factor?},
 *   load_balancing?: "round_robin"|"least_loaded"|"random"|"affinity"}`.
 * An unknown field is refused (a misspelt `priorty` would otherwise be silently ignored).
 * @throws {ValidationError} naming the first wrong field.
 */
export function parseSubmitJob(input: unknown): SubmitJobInput {
  if (!isObject(input)) throw new ValidationError("body", "Body must be a JSON object");
  // A bare CasareRPA workflow file may be posted as is.
  const body = !("workflow" in input) && isObject(input.nodes) ? { workflow: input } : input;
  for (const key of Object.keys(body)) {
    if (!SUBMIT_FIELDS.has(key)) {
      throw new ValidationError(
        key,
        `unknown field ${key}; a job takes ${[...SUBMIT_FIELDS].join(", ")}, or workflow_id ` +
          `and workflow_version instead of workflow`,
      );
    }
  }
  const {
    workflow,
    variables,
    priority,
    timeout,
    robot_id,
    required_capabilities,
    retry,
    load_balancing,
  } = body;
  if (
    load_balancing !== undefined && load_balancing !== null &&
    !STRATEGIES.includes(load_balancing as (typeof STRATEGIES)[number])
  ) {
    throw new ValidationError(
      "load_balancing",
      `load_balancing must be one of ${STRATEGIES.join(", ")}, got ${
        JSON.stringify(load_balancing)
      }`,
    );
  }
  let retryPolicy: RetryPolicy | undefined;
  if (retry !== undefined) {
    try {
      retryPolicy = parseRetryPolicy(retry, DEFAULT_RETRY_POLICY);
    } catch (error) {
      const field = (error as Error).message.match(/^(retry(\.\w+)?)/)?.[1] ?? "retry";
      throw new ValidationError(field, (error as Error).message);
    }
  }
  if (!isObject(workflow)) {
    throw new ValidationError("workflow", "workflow must be a CasareRPA workflow object");
  }
  if (!isObject(workflow.nodes)) {
    throw new ValidationError("workflow.nodes", "workflow.nodes must be an object of nodes");
  }
  if (workflow.connections !== undefined && !Array.isArray(workflow.connections)) {
    throw new ValidationError("workflow.connections", "workflow.connections must be an array");
  }
  // The same content rules as the workflow catalogue (dangling connections, limits, a start
  // node), so an inline workflow that could never run is refused here, not on the robot.
  try {
    validateWorkflowContent(workflow, "workflow");
  } catch (error) {
    if (error instanceof InvalidWorkflowError) {
      throw new ValidationError(error.field, error.message);
    }
    throw error;
  }
  if (workflow.settings !== undefined) {
    if (!isObject(workflow.settings)) {
      throw new ValidationError("workflow.settings", "workflow.settings must be an object");
    }
    const st = workflow.settings.timeout;
    if (
      st !== undefined && st !== null &&
      (typeof st !== "number" || !Number.isFinite(st) || st <= 0 || st > MAX_TIMEOUT_SECONDS)
    ) {
      throw new ValidationError(
        "workflow.settings.timeout",
        `workflow.settings.timeout must be a number of seconds in (0, ${MAX_TIMEOUT_SECONDS}], got ${
          JSON.stringify(st)
        }`,
      );
    }
    const rc = workflow.settings.retry_count;
    if (
      rc !== undefined && rc !== null &&
      (typeof rc !== "number" || !Number.isInteger(rc) || rc < 0 || rc > 100)
    ) {
      throw new ValidationError(
        "workflow.settings.retry_count",
        `workflow.settings.retry_count must be an integer in [0, 100], got ${JSON.stringify(rc)}`,
      );
    }
  }
  if (variables !== undefined && !isObject(variables)) {
    throw new ValidationError("variables", "variables must be an object");
  }
  let prio = 1;
  if (priority !== undefined) {
    try {
      prio = parsePriority(priority);
    } catch (error) {
      throw new ValidationError("priority", (error as Error).message);
    }
  }
  if (
    timeout !== undefined &&
    (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout <= 0 ||
      timeout > MAX_TIMEOUT_SECONDS)
  ) {
    throw new ValidationError(
      "timeout",
      `timeout must be a number of seconds in (0, ${MAX_TIMEOUT_SECONDS}], got ${
        JSON.stringify(timeout)
      }`,
    );
  }
  if (
    robot_id !== undefined && robot_id !== null &&
    (typeof robot_id !== "string" || !ROBOT_ID_PATTERN.test(robot_id))
  ) {
    throw new ValidationError(
      "robot_id",
      "robot_id must be a robot id: 1-128 characters of letters, digits, '.', '_', ':' or '-'",
    );
  }
  if (
    required_capabilities !== undefined &&
    (!Array.isArray(required_capabilities) ||
      required_capabilities.some((c) => typeof c !== "string"))
  ) {
    throw new ValidationError(
      "required_capabilities",
      "required_capabilities must be an array of strings",
    );
  }
  return {
    workflow,
    variables: (variables as Record<string, unknown> | undefined) ?? {},
    priority: prio,
    timeout: timeout as number | undefined,
    robot_id: (robot_id as string | undefined) ?? null,
    required_capabilities: (required_capabilities as string[] | undefined) ?? [],
    retry: retryPolicy,
    load_balancing: (load_balancing as SubmitJobInput["load_balancing"]) ?? null,
  };
}
