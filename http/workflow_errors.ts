/**
 * HTTP answers to the workflow catalogue's errors (used by the app's one `onError`).
 *
 * @module
 */
import type { Context } from "hono";
import {
  InvalidWorkflowError,
  WorkflowExistsError,
  WorkflowInUseError,
  WorkflowNotFoundError,
  WorkflowNotPublishedError,
  WorkflowVersionConflictError,
} from "../engine/mod.ts";

/**
 * The response for a workflow error, or null for other errors:
 * 400 `invalid_request` with `field` (and `node_id` when a node is at fault), 404
 * `not_found`, 409 `conflict` / `workflow_not_published` / `version_conflict` /
 * `workflow_in_use` (with `schedule_ids`).
 */
export function workflowErrorResponse(error: Error, c: Context): Response | null {
  if (error instanceof InvalidWorkflowError) {
    const body: Record<string, unknown> = {
      code: "invalid_request",
      field: error.field,
      message: error.message,
    };
    if (error.nodeId !== null) body.node_id = error.nodeId;
    return c.json({ error: body }, 400);
  }
  if (error instanceof WorkflowNotFoundError) {
    return c.json({ error: { code: "not_found", message: error.message } }, 404);
  }
  if (error instanceof WorkflowExistsError) {
    return c.json(
      { error: { code: "conflict", field: "workflow_id", message: error.message } },
      409,
    );
  }
  if (error instanceof WorkflowInUseError) {
    return c.json({
      error: {
        code: "workflow_in_use",
        field: "workflow_id",
        message: error.message,
        schedule_ids: error.scheduleIds,
      },
    }, 409);
  }
  if (error instanceof WorkflowNotPublishedError) {
    return c.json({
      error: { code: "workflow_not_published", field: "workflow_id", message: error.message },
    }, 409);
  }
  if (error instanceof WorkflowVersionConflictError) {
    return c.json({
      error: {
        code: "version_conflict",
        field: "expected_version",
        message: error.message,
        expected: error.expected,
        actual: error.actual,
      },
    }, 409);
  }
  return null;
}
