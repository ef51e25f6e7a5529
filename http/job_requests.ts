/**
 * Request schemas (zod) of the job routes: the routes validate with them and the OpenAPI
 * document is generated from them (`validation.ts`). Each problem is a
 * {@linkcode ValidationError} naming the field.
 *
 * @module
 */
import { z } from "zod";
import { type JobStatus, parsePriority } from "../actors/mod.ts";
import {
  DEFAULT_RETRY_POLICY,
  MAX_JOB_TIMEOUT_SECONDS,
  parseRetryPolicy,
  ROBOT_ID_PATTERN,
  STRATEGIES,
  type SubmitJobInput,
} from "../engine/mod.ts";
import { WorkflowContent } from "./workflow_schemas.ts";
import { ValidationError } from "./api_errors.ts";
import { instant, intQuery, must, REQUEST_SCHEMAS, strictObject } from "./validation.ts";

/** Largest accepted job timeout, in seconds (7 days). */
export const MAX_TIMEOUT_SECONDS = MAX_JOB_TIMEOUT_SECONDS;

const PRIORITY_WHAT = "one of low, normal, high, critical or 0-3";

/** A job priority: a name or 0 (low) … 3 (critical). */
export const Priority = z.union([
  z.enum(["low", "normal", "high", "critical"]),
  z.int().min(0).max(3),
], must("priority", PRIORITY_WHAT)).meta({ description: "low|normal|high|critical or 0-3" });

/** A robot id: 1-128 letters, digits, `.`, `_`, `:` or `-`. */
export const RobotId = z.string().regex(ROBOT_ID_PATTERN);

const seconds = (field: string) =>
  z.number(must(field, `a number of seconds in (0, ${MAX_TIMEOUT_SECONDS}]`))
    .positive(must(field, `a number of seconds in (0, ${MAX_TIMEOUT_SECONDS}]`))
    .max(MAX_TIMEOUT_SECONDS, must(field, `a number of seconds in (0, ${MAX_TIMEOUT_SECONDS}]`));

/** `retry` of a job: its retry policy (`engine/retry_policy.ts` holds the rules). */
export const RetryInput = strictObject({
  max_retries: z.int().min(0).max(100).optional(),
  initial_delay: z.number().min(0.001).max(86_400).optional().meta({ description: "seconds" }),
  max_delay: z.number().min(0.001).max(86_400).optional().meta({ description: "seconds" }),
  backoff_factor: z.number().min(1).max(100).optional(),
}, "retry").superRefine((retry, ctx) => {
  try {
    parseRetryPolicy(retry, DEFAULT_RETRY_POLICY);
  } catch (error) {
    const message = (error as Error).message;
    const field = message.match(/^retry\.(\w+)/)?.[1];
    ctx.addIssue({ code: "custom", message, path: field ? [field] : [] });
  }
});

/**
 * Body of `POST /api/v1/jobs`: either an inline `workflow` or a stored `workflow_id` (with
 * `workflow_version`, default: its published version); a bare workflow file is accepted as
 * `workflow` (see {@linkcode bareWorkflow}). Unknown fields are refused.
 */
export const SubmitJob = strictObject({
  workflow: WorkflowContent.optional(),
  workflow_id: z.string(must("workflow_id", "a workflow id")).min(
    1,
    must("workflow_id", "a workflow id"),
  ).optional().meta({ description: "a stored workflow, instead of `workflow`" }),
  workflow_version: z.int(must("workflow_version", "a positive integer")).min(
    1,
    must("workflow_version", "a positive integer"),
  ).optional().meta({ description: "version of the stored workflow; default: the published one" }),
  variables: z.record(z.string(), z.unknown(), must("variables", "an object")).optional(),
  priority: Priority.optional(),
  timeout: seconds("timeout").optional().meta({ description: "seconds per attempt" }),
  robot_id: RobotId.nullable().optional().meta({
    description: "run on this robot only",
  }),
  required_capabilities: z.array(z.string(), must("required_capabilities", "an array of strings"))
    .optional(),
  retry: RetryInput.optional(),
  load_balancing: z.enum(
    STRATEGIES as [string, ...string[]],
    must(
      "load_balancing",
      `one of ${STRATEGIES.join(", ")}`,
    ),
  ).nullable().optional().meta({
    description: "this job's strategy; default: the orchestrator's LOAD_BALANCING",
  }),
}, "a job").superRefine((body, ctx) => {
  if (body.workflow === undefined && body.workflow_id === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["workflow"],
      message: "workflow (inline) or workflow_id (stored) is required",
    });
  } else if (body.workflow !== undefined && body.workflow_id !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["workflow_id"],
      message: "workflow_id names a stored workflow; give it or an inline workflow, not both",
    });
  } else if (body.workflow !== undefined && body.workflow_version !== undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["workflow_version"],
      message: "workflow_version goes with workflow_id",
    });
  }
}).meta({
  description: "Either `workflow` (inline) or `workflow_id`; a bare workflow file is accepted too",
}).register(REQUEST_SCHEMAS, { id: "SubmitJob" });

/**
 * A `POST /api/v1/jobs` body that is a bare workflow file becomes `{workflow: body}`.
 * Unknown top-level keys of the file are kept (the file format grows), but a job option
 * that is not a workflow key (`priority`, `timeout`, `robot_id`, …) would be silently
 * lost inside the workflow, so it is refused.
 * @throws {ValidationError} naming the first job option found in a bare workflow.
 */
export function bareWorkflow(json: unknown): unknown {
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  if (
    !isObject(json) || "workflow" in json || "workflow_id" in json || !isObject(json.nodes)
  ) {
    return json;
  }
  const workflowKeys = new Set(Object.keys(WorkflowContent.shape));
  const option = Object.keys(json).find((k) =>
    Object.hasOwn(SubmitJob.shape, k) && !workflowKeys.has(k)
  );
  if (option !== undefined) {
    throw new ValidationError(
      option,
      `${option} is a job option, but the body is a bare workflow file (it has nodes and no workflow field), where it would be lost; send {"workflow": <the file>, "${option}": …}`,
    );
  }
  return { workflow: json };
}

/**
 * The engine's input for a validated {@linkcode SubmitJob} whose workflow is inline (a
 * stored one resolved into `workflow`).
 */
export function submitJobInput(
  body: z.output<typeof SubmitJob>,
  workflow: Record<string, unknown>,
): SubmitJobInput {
  return {
    workflow,
    variables: body.variables ?? {},
    priority: body.priority === undefined ? 1 : parsePriority(body.priority),
    timeout: body.timeout,
    robot_id: body.robot_id ?? null,
    required_capabilities: body.required_capabilities ?? [],
    retry: body.retry === undefined
      ? undefined
      : parseRetryPolicy(body.retry, DEFAULT_RETRY_POLICY),
    load_balancing: (body.load_balancing ?? null) as SubmitJobInput["load_balancing"],
  };
}

/** Every job status, in lifecycle order (the job machine's states). */
export const JOB_STATUSES: readonly JobStatus[] = [
  "pending",
  "queued",
  "dispatched",
  "running",
  "completed",
  "failed",
  "cancelled",
  "timeout",
];

/** Query of `GET /api/v1/jobs`. */
export const JobListQuery = z.object({
  status: z.enum(
    JOB_STATUSES as [JobStatus, ...JobStatus[]],
    must(
      "status",
      `one of ${JOB_STATUSES.join(", ")}`,
    ),
  ).optional().meta({ description: "job status" }),
  workflow_id: z.string().optional().meta({ description: "workflow" }),
  robot_id: z.string().optional().meta({ description: "robot" }),
  created_after: instant("created_after").optional().meta({ description: "RFC 3339" }),
  created_before: instant("created_before").optional().meta({ description: "RFC 3339" }),
  order: z.enum(["asc", "desc"], must("order", "asc or desc")).optional().meta({
    description: "asc or desc (default)",
  }),
  limit: intQuery("limit", 1, 1000).optional().meta({ description: "1-1000, default 100" }),
  cursor: z.string().refine((v) => {
    const [created, jobId, ...rest] = v.split("|");
    return rest.length === 0 && !!jobId && !Number.isNaN(Date.parse(created));
  }, { error: "cursor must be the next_cursor of a previous page" }).optional().meta({
    description: "next_cursor of the previous page",
  }),
});
