/**
 * Errors of the workflow catalogue that callers branch on (the API maps each to a status in
 * `http/workflow_errors.ts`).
 *
 * @module
 */
import type { WorkflowStatus } from "./workflow_validation.ts";

/** Thrown for an unknown or deleted workflow id (the API answers 404). */
export class WorkflowNotFoundError extends Error {
  override name = "WorkflowNotFoundError";
  readonly workflowId: string;
  constructor(workflowId: string) {
    super(`Workflow ${workflowId} does not exist`);
    this.workflowId = workflowId;
  }
}

/**
 * Thrown when deleting a workflow that schedules still run by `workflow_id` (the API answers
 * 409 `workflow_in_use` with their ids): remove them or point them at another workflow first.
 */
export class WorkflowInUseError extends Error {
  override name = "WorkflowInUseError";
  readonly workflowId: string;
  /** The schedules (not removed) whose `workflow_id` is this workflow. */
  readonly scheduleIds: string[];
  constructor(workflowId: string, scheduleIds: string[]) {
    super(
      `Workflow ${workflowId} is used by schedule${scheduleIds.length > 1 ? "s" : ""} ${
        scheduleIds.join(", ")
      }; delete them or change their workflow_id first`,
    );
    this.workflowId = workflowId;
    this.scheduleIds = scheduleIds;
  }
}

/**
 * Thrown when creating a workflow whose id is taken (the API answers 409): by a workflow of
 * any org, live or deleted (ids are global and stay taken). The message is the same in every
 * case, so it does not tell another org's workflow from one's own deleted one.
 */
export class WorkflowExistsError extends Error {
  override name = "WorkflowExistsError";
  readonly workflowId: string;
  constructor(workflowId: string, options?: ErrorOptions) {
    super(
      `Workflow id ${workflowId} is taken; choose another (workflow ids are unique across organisations and stay taken after a delete) or leave workflow_id out for a random one`,
      options,
    );
    this.workflowId = workflowId;
  }
}

/**
 * Thrown when a job or deployment asks for the published version of a workflow that has
 * none (never published, or archived); the API answers 409 `workflow_not_published`.
 */
export class WorkflowNotPublishedError extends Error {
  override name = "WorkflowNotPublishedError";
  readonly workflowId: string;
  readonly status: WorkflowStatus;
  constructor(workflowId: string, status: WorkflowStatus) {
    super(
      `Workflow ${workflowId} has no published version (it is ${status}); publish it ` +
        `(PUT {"status": "published"}) or name a workflow_version`,
    );
    this.workflowId = workflowId;
    this.status = status;
  }
}

/** Thrown when an update names an `expected_version` that is not the latest (409). */
export class WorkflowVersionConflictError extends Error {
  override name = "WorkflowVersionConflictError";
  readonly workflowId: string;
  readonly expected: number;
  readonly actual: number;
  constructor(workflowId: string, expected: number, actual: number) {
    super(
      actual === expected
        ? `Workflow ${workflowId} was changed by another save at the same time: reload and retry`
        : `Workflow ${workflowId} is at version ${actual}, not ${expected}: reload and retry`,
    );
    this.workflowId = workflowId;
    this.expected = expected;
    this.actual = actual;
  }
}
