/**
 * A stored workflow's state, folded from its stream `workflow-<id>`: pure.
 *
 * Events (data as recorded, times RFC 3339 UTC):
 * - `workflow.created` `{workflow_id, version: 1, fields, created_at}` (fields:
 *   {@linkcode WorkflowFields})
 * - `workflow.updated` `{version, changes, updated_at}`: a new version holding only the fields
 *   that changed; an unchanged save records nothing
 * - `workflow.deleted` `{deleted_at}`
 * - `workflow.deployed` `{robot_ids, version, deployed_at}`: those robots hold `version`
 * - `workflow.undeployed` `{robot_ids, undeployed_at}`
 *
 * `version` counts versions of the workflow (1, 2, …), not events of its stream: a
 * deployment does not make a new version.
 *
 * @module
 */
import type { WorkflowFields } from "./workflow_validation.ts";

/** Prefix of workflow streams. */
export const WORKFLOW_STREAM_PREFIX = "workflow-";

/** One version of a workflow. */
export interface WorkflowVersion extends WorkflowFields {
  version: number;
  /** When this version was saved (RFC 3339 UTC). */
  saved_at: string;
}

/** Where a workflow is deployed: robot id → version it holds and since when. */
export type Deployment = Map<string, { version: number; deployed_at: string }>;

/** A workflow as folded from its events. */
export interface WorkflowState {
  workflow_id: string;
  created_at: string;
  /** Last change of the workflow or of its deployment. */
  updated_at: string;
  deleted: boolean;
  /** Every version, `versions[n - 1]` being version n. */
  versions: WorkflowVersion[];
  deployment: Deployment;
  /** Version of the stream after the last applied event. */
  stream_version: number;
}

/**
 * Applies one event of a `workflow-<id>` stream.
 * @returns the next state (a new object; `state` is not changed); `undefined` before
 *   `workflow.created`.
 */
export function applyWorkflowEvent(
  state: WorkflowState | undefined,
  event: { type: string; data: Record<string, unknown>; streamVersion: number },
): WorkflowState | undefined {
  const d = event.data;
  if (event.type === "workflow.created") {
    const at = d.created_at as string;
    return {
      workflow_id: d.workflow_id as string,
      created_at: at,
      updated_at: at,
      deleted: false,
      versions: [{ ...(d.fields as WorkflowFields), version: 1, saved_at: at }],
      deployment: new Map(),
      stream_version: event.streamVersion,
    };
  }
  if (!state) return undefined;
  const next: WorkflowState = { ...state, stream_version: event.streamVersion };
  switch (event.type) {
    case "workflow.updated": {
      const at = d.updated_at as string;
      const latest = state.versions[state.versions.length - 1];
      const version: WorkflowVersion = {
        ...latest,
        ...(d.changes as Partial<WorkflowFields>),
        version: d.version as number,
        saved_at: at,
      };
      return { ...next, versions: [...state.versions, version], updated_at: at };
    }
    case "workflow.deleted":
      return { ...next, deleted: true, updated_at: d.deleted_at as string };
    case "workflow.deployed": {
      const at = d.deployed_at as string;
      const deployment: Deployment = new Map(state.deployment);
      for (const id of d.robot_ids as string[]) {
        deployment.set(id, { version: d.version as number, deployed_at: at });
      }
      return { ...next, deployment, updated_at: at };
    }
    case "workflow.undeployed": {
      const deployment: Deployment = new Map(state.deployment);
      for (const id of d.robot_ids as string[]) deployment.delete(id);
      return { ...next, deployment, updated_at: d.undeployed_at as string };
    }
    default:
      return next;
  }
}

/** The latest version. */
export function latestVersion(state: WorkflowState): WorkflowVersion {
  return state.versions[state.versions.length - 1];
}

/**
 * The version jobs run by default: the latest version whose status is `published`, unless
 * the workflow's latest version is `archived` (an archived workflow runs nothing by
 * default). A later draft does not replace the published version until it is published.
 * @returns the version, or null when none is published.
 */
export function publishedVersion(state: WorkflowState): WorkflowVersion | null {
  if (latestVersion(state).status === "archived") return null;
  for (let i = state.versions.length - 1; i >= 0; i--) {
    if (state.versions[i].status === "published") return state.versions[i];
  }
  return null;
}
