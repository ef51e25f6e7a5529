/**
 * The workflow catalogue as the API shows it, computed from the folded state: pure.
 *
 * @module
 */
import { latestVersion, publishedVersion, type WorkflowState } from "./workflow_state.ts";
import type { WorkflowStatus } from "./workflow_validation.ts";

/** One version as listed by `GET /workflows/:id/versions`. */
export interface WorkflowVersionSummary {
  version: number;
  status: WorkflowStatus;
  name: string;
  /** RFC 3339 UTC. */
  saved_at: string;
}

/** A workflow as the API shows it. `content` is left out of lists. */
export interface WorkflowView {
  /** Same as `workflow_id` (for generic tree views). */
  id: string;
  workflow_id: string;
  name: string;
  description: string;
  /** Folder path, `/` for the root. */
  folder: string;
  /** Latest version number (1, 2, …). */
  version: number;
  /** Status of the latest version. */
  status: WorkflowStatus;
  tags: string[];
  content?: Record<string, unknown>;
  /** The version jobs run by default, or null. */
  published_version: number | null;
  created_at: string;
  updated_at: string;
  versions: WorkflowVersionSummary[];
  /** Robots the workflow is deployed on, sorted. */
  deployed_robot_ids: string[];
}

/** A workflow's deployment as the API shows it. */
export interface DeploymentView {
  workflow_id: string;
  published_version: number | null;
  robots: { robot_id: string; version: number; deployed_at: string; current: boolean }[];
}

/** Every version of a workflow, oldest first, without content. */
export function summaries(state: WorkflowState): WorkflowVersionSummary[] {
  return state.versions.map((v) => ({
    version: v.version,
    status: v.status,
    name: v.name,
    saved_at: v.saved_at,
  }));
}

/** A workflow's view; `withContent` adds the content of its latest version. */
export function view(state: WorkflowState, withContent: boolean): WorkflowView {
  const v = latestVersion(state);
  return {
    id: state.workflow_id,
    workflow_id: state.workflow_id,
    name: v.name,
    description: v.description,
    folder: v.folder,
    version: v.version,
    status: v.status,
    tags: v.tags,
    ...(withContent ? { content: v.content } : {}),
    published_version: publishedVersion(state)?.version ?? null,
    created_at: state.created_at,
    updated_at: state.updated_at,
    versions: summaries(state),
    deployed_robot_ids: [...state.deployment.keys()].sort(),
  };
}
