/**
 * The workflow catalogue (the reference's `Workflow` model, its `save_workflow` /
 * `load_workflow`, and the `WorkflowDistributor`): event-sourced in `workflow-<id>` streams
 * (see `workflow_state.ts`), its read model folded from the log at start and kept up to
 * date from the live subscription and from its own appends (each event is applied once per
 * stream version).
 *
 * @module
 */
import { canonicalJson, type EventStore, WrongExpectedVersionError } from "../events/mod.ts";
import type { Clock } from "./clock.ts";
import { CLIENT_ID_PATTERN, CLIENT_ID_RULE } from "./org_index.ts";
import {
  applyWorkflowEvent,
  latestVersion,
  publishedVersion,
  WORKFLOW_STREAM_PREFIX,
  type WorkflowState,
  type WorkflowVersion,
} from "./workflow_state.ts";
import {
  WorkflowExistsError,
  WorkflowInUseError,
  WorkflowNotFoundError,
  WorkflowNotPublishedError,
  WorkflowVersionConflictError,
} from "./workflow_errors.ts";
import {
  type DeploymentView,
  summaries,
  view,
  type WorkflowVersionSummary,
  type WorkflowView,
} from "./workflow_views.ts";
import {
  inFolder,
  InvalidWorkflowError,
  normalizeFolder,
  parseWorkflowFields,
  WORKFLOW_STATUSES,
  type WorkflowFields,
  type WorkflowStatus,
} from "./workflow_validation.ts";

/** Filters of {@linkcode WorkflowRegistry.list}. */
export interface WorkflowListOptions {
  /** Only workflows in this folder or below it. */
  folder?: string;
  status?: WorkflowStatus;
  /** Only workflows carrying this tag. */
  tag?: string;
  /** Case-insensitive substring of the name. */
  q?: string;
  /** Only workflows of this org. */
  org_id?: string;
}

/** The workflow a job runs, resolved from the catalogue. */
export interface ResolvedWorkflow {
  workflow_id: string;
  name: string;
  version: number;
  content: Record<string, unknown>;
}

/** Options of {@linkcode WorkflowRegistry}. */
export interface WorkflowRegistryOptions {
  store: Pick<EventStore, "append">;
  clock: Clock;
  /**
   * Whether a robot id is known, and of org `orgId` when given (deployments name only known
   * robots of the workflow's org).
   */
  robotExists(robotId: string, orgId?: string): boolean;
  /** The org of a stream (see `org_index.ts`). @default every stream is of org `default` */
  orgOf?(streamId: string): string;
  /**
   * Awaited after each append with the global position of its event, so that a command
   * answers once every read model shows it (read your writes).
   */
  settled?(position: number): Promise<void>;
  /**
   * The schedules (not removed) that run workflow `workflowId` by id; a workflow they use is
   * not deleted. @default none
   */
  usedBy?(workflowId: string): string[];
}

/** The catalogue; see the module doc. */
export class WorkflowRegistry {
  #options: WorkflowRegistryOptions;
  #states = new Map<string, WorkflowState>();

  constructor(options: WorkflowRegistryOptions) {
    this.#options = options;
  }

  /**
   * The catalogue folded from the log, for a start-up checkpoint
   * (`engine/startup_checkpoint.ts`; a live reference, serialised at once).
   */
  checkpointState(): unknown {
    return this.#states;
  }

  /** Replaces the catalogue with one from {@linkcode WorkflowRegistry.checkpointState}. */
  restoreState(state: unknown): void {
    this.#states = state as Map<string, WorkflowState>;
  }

  /**
   * Applies events read from the log (any stream; others are ignored). An event already
   * applied (its stream version is not the next one) is skipped.
   */
  apply(
    events: Iterable<
      { streamId: string; type: string; data: Record<string, unknown>; streamVersion: number }
    >,
  ): void {
    for (const e of events) {
      if (!e.streamId.startsWith(WORKFLOW_STREAM_PREFIX)) continue;
      const id = e.streamId.slice(WORKFLOW_STREAM_PREFIX.length);
      const state = this.#states.get(id);
      if (e.streamVersion !== (state?.stream_version ?? 0) + 1) continue;
      const next = applyWorkflowEvent(state, e);
      if (next) this.#states.set(id, next);
    }
  }

  /**
   * Creates a workflow (version 1). Body: `{workflow_id?, name?, description?, status?,
   * content, tags?, folder?}`; `workflow_id` defaults to a random UUID, `name` to
   * `content.metadata.name`.
   * @throws {InvalidWorkflowError} | {WorkflowExistsError}
   */
  async create(
    body: Record<string, unknown>,
    options: { org_id?: string } = {},
  ): Promise<WorkflowView> {
    const id = body.workflow_id === undefined ? crypto.randomUUID() : body.workflow_id;
    if (typeof id !== "string" || !CLIENT_ID_PATTERN.test(id)) {
      throw new InvalidWorkflowError("workflow_id", `workflow_id must be ${CLIENT_ID_RULE}`);
    }
    const fields = parseWorkflowFields(body);
    if (this.#states.has(id)) throw new WorkflowExistsError(id);
    try {
      await this.#append(id, 0, "workflow.created", {
        workflow_id: id,
        ...(options.org_id !== undefined ? { org_id: options.org_id } : {}),
        version: 1,
        fields,
        created_at: this.#now(),
      });
    } catch (error) {
      if (error instanceof WrongExpectedVersionError) {
        throw new WorkflowExistsError(id, { cause: error });
      }
      throw error;
    }
    return this.get(id, { content: true });
  }

  /**
   * Saves a new version with the given fields changed (absent fields keep their values);
   * an unchanged save records nothing. `expected_version`, when given, must be the latest.
   * @throws {WorkflowNotFoundError} | {InvalidWorkflowError} | {WorkflowVersionConflictError}
   */
  async update(id: string, body: Record<string, unknown>): Promise<WorkflowView> {
    const state = this.#get(id);
    const latest = latestVersion(state);
    if ("workflow_id" in body && body.workflow_id !== id) {
      throw new InvalidWorkflowError("workflow_id", "workflow_id cannot be changed");
    }
    if (body.expected_version !== undefined) {
      if (!Number.isInteger(body.expected_version)) {
        throw new InvalidWorkflowError("expected_version", "expected_version must be an integer");
      }
      if (body.expected_version !== latest.version) {
        throw new WorkflowVersionConflictError(id, body.expected_version as number, latest.version);
      }
    }
    const next = parseWorkflowFields(body, latest);
    const changes = Object.fromEntries(
      Object.entries(next).filter(([k, v]) =>
        canonicalJson(v) !== canonicalJson(latest[k as keyof WorkflowFields])
      ),
    );
    if (Object.keys(changes).length > 0) {
      await this.#appendOrConflict(id, state, "workflow.updated", {
        version: latest.version + 1,
        changes,
        updated_at: this.#now(),
      });
    }
    return this.get(id, { content: true });
  }

  /**
   * Deletes a workflow (`workflow.deleted`); its id stays taken.
   * @throws {WorkflowNotFoundError} | {WorkflowInUseError} when schedules run it by id.
   */
  async remove(id: string): Promise<void> {
    const state = this.#get(id);
    const users = this.#options.usedBy?.(id) ?? [];
    if (users.length > 0) throw new WorkflowInUseError(id, users);
    await this.#appendOrConflict(id, state, "workflow.deleted", { deleted_at: this.#now() });
  }

  /** The workflow's view. @throws {WorkflowNotFoundError} */
  get(id: string, options: { content?: boolean } = {}): WorkflowView {
    return view(this.#get(id), options.content ?? false);
  }

  /** Workflows matching the filters (without content), by folder then name then id. */
  list(options: WorkflowListOptions = {}): WorkflowView[] {
    const folder = options.folder === undefined ? undefined : normalizeFolder(options.folder);
    if (options.status !== undefined && !WORKFLOW_STATUSES.includes(options.status)) {
      throw new InvalidWorkflowError(
        "status",
        `status must be one of ${WORKFLOW_STATUSES.join(", ")}`,
      );
    }
    const q = options.q?.toLowerCase();
    const out: WorkflowView[] = [];
    for (const state of this.#states.values()) {
      if (state.deleted) continue;
      if (options.org_id !== undefined && this.#orgOf(state.workflow_id) !== options.org_id) {
        continue;
      }
      const v = latestVersion(state);
      if (folder !== undefined && !inFolder(v.folder, folder)) continue;
      if (options.status && v.status !== options.status) continue;
      if (options.tag && !v.tags.includes(options.tag)) continue;
      if (q && !v.name.toLowerCase().includes(q)) continue;
      out.push(view(state, false));
    }
    const key = (w: WorkflowView) => [w.folder, w.name.toLowerCase(), w.workflow_id];
    return out.sort((a, b) => {
      const [x, y] = [key(a), key(b)];
      for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
      return 0;
    });
  }

  /**
   * Every folder path holding a workflow (of org `orgId` when given), with their ancestors,
   * sorted (`/` first).
   */
  folders(orgId?: string): string[] {
    const set = new Set<string>(["/"]);
    for (const state of this.#states.values()) {
      if (state.deleted) continue;
      if (orgId !== undefined && this.#orgOf(state.workflow_id) !== orgId) continue;
      const parts = latestVersion(state).folder.split("/").filter(Boolean);
      for (let i = 1; i <= parts.length; i++) set.add("/" + parts.slice(0, i).join("/"));
    }
    return [...set].sort();
  }

  /** Every version of a workflow, oldest first. @throws {WorkflowNotFoundError} */
  versions(id: string): WorkflowVersionSummary[] {
    return summaries(this.#get(id));
  }

  /**
   * One version with its content.
   * @throws {WorkflowNotFoundError} | {InvalidWorkflowError} (field `version`) when it does
   *   not exist.
   */
  version(id: string, version: number): WorkflowVersion {
    const state = this.#get(id);
    const v = Number.isInteger(version) ? state.versions[version - 1] : undefined;
    if (!v) {
      throw new InvalidWorkflowError(
        "version",
        `Workflow ${id} has versions 1 to ${state.versions.length}, not ${version}`,
      );
    }
    return v;
  }

  /**
   * The workflow a job runs: `version` when given (of any status, to try a draft), else the
   * published version.
   * @throws {WorkflowNotFoundError} | {WorkflowNotPublishedError} | {InvalidWorkflowError}
   *   (field `workflow_version`) for a version that does not exist.
   */
  resolve(id: string, version?: number): ResolvedWorkflow {
    const state = this.#get(id);
    let v: WorkflowVersion | null;
    if (version !== undefined) {
      v = state.versions[version - 1] ?? null;
      if (!v) {
        throw new InvalidWorkflowError(
          "workflow_version",
          `Workflow ${id} has versions 1 to ${state.versions.length}, not ${version}`,
        );
      }
    } else {
      v = publishedVersion(state);
      if (!v) throw new WorkflowNotPublishedError(id, latestVersion(state).status);
    }
    return { workflow_id: id, name: v.name, version: v.version, content: v.content };
  }

  /**
   * Deploys a version (default: the published one) on robots (`workflow.deployed`).
   * @throws {WorkflowNotFoundError} | {WorkflowNotPublishedError} | {InvalidWorkflowError}
   *   naming `robot_ids` (not a non-empty array of known robot ids) or `version`.
   */
  async deploy(id: string, body: Record<string, unknown>): Promise<DeploymentView> {
    const state = this.#get(id);
    const robotIds = this.#robotIds(body.robot_ids, false, this.#orgOf(id));
    let version: number;
    if (body.version !== undefined) {
      version = this.version(id, body.version as number).version;
    } else {
      const published = publishedVersion(state);
      if (!published) throw new WorkflowNotPublishedError(id, latestVersion(state).status);
      version = published.version;
    }
    await this.#appendOrConflict(id, state, "workflow.deployed", {
      robot_ids: robotIds,
      version,
      deployed_at: this.#now(),
    });
    return this.deployment(id);
  }

  /**
   * Removes a deployment from robots (`robot_ids` absent: from every robot). Robots that do
   * not hold it are ignored; nothing to remove records nothing.
   * @throws {WorkflowNotFoundError} | {InvalidWorkflowError} naming `robot_ids`.
   */
  async undeploy(id: string, body: Record<string, unknown>): Promise<DeploymentView> {
    const state = this.#get(id);
    const requested = body.robot_ids === undefined
      ? [...state.deployment.keys()]
      : this.#robotIds(body.robot_ids, true);
    const robotIds = requested.filter((r) => state.deployment.has(r));
    if (robotIds.length > 0) {
      await this.#appendOrConflict(id, state, "workflow.undeployed", {
        robot_ids: robotIds,
        undeployed_at: this.#now(),
      });
    }
    return this.deployment(id);
  }

  /** Where the workflow is deployed. @throws {WorkflowNotFoundError} */
  deployment(id: string): DeploymentView {
    const state = this.#get(id);
    const published = publishedVersion(state)?.version ?? null;
    return {
      workflow_id: id,
      published_version: published,
      robots: [...state.deployment].sort(([a], [b]) => (a < b ? -1 : 1)).map(([robotId, d]) => ({
        robot_id: robotId,
        version: d.version,
        deployed_at: d.deployed_at,
        current: d.version === published,
      })),
    };
  }

  /** Robots a workflow is deployed on (empty when none or unknown): for dispatch. */
  deployedRobots(id: string): ReadonlySet<string> {
    const state = this.#states.get(id);
    return state && !state.deleted ? new Set(state.deployment.keys()) : new Set();
  }

  /** Number of workflows not deleted, by status of their latest version (for metrics). */
  countByStatus(): Record<WorkflowStatus, number> {
    const counts = { draft: 0, published: 0, archived: 0 };
    for (const s of this.#states.values()) if (!s.deleted) counts[latestVersion(s).status]++;
    return counts;
  }

  #orgOf(workflowId: string): string {
    return this.#options.orgOf?.(WORKFLOW_STREAM_PREFIX + workflowId) ?? "default";
  }

  #robotIds(value: unknown, allowUnknown: boolean, orgId?: string): string[] {
    if (!Array.isArray(value) || value.length === 0 || value.length > 1000) {
      throw new InvalidWorkflowError(
        "robot_ids",
        "robot_ids must be a non-empty array of robot ids",
      );
    }
    value.forEach((r, i) => {
      if (typeof r !== "string" || (!allowUnknown && !this.#options.robotExists(r, orgId))) {
        throw new InvalidWorkflowError(
          `robot_ids[${i}]`,
          `Robot ${JSON.stringify(r)} does not exist`,
        );
      }
    });
    return [...new Set(value as string[])].sort();
  }

  /** Whether a workflow with this id is stored and not deleted. */
  exists(id: string): boolean {
    const state = this.#states.get(id);
    return state !== undefined && !state.deleted;
  }

  #get(id: string): WorkflowState {
    const state = this.#states.get(id);
    if (!state || state.deleted) throw new WorkflowNotFoundError(id);
    return state;
  }

  #now(): string {
    return new Date(this.#options.clock.now()).toISOString();
  }

  async #appendOrConflict(
    id: string,
    state: WorkflowState,
    type: string,
    data: Record<string, unknown>,
  ): Promise<void> {
    try {
      await this.#append(id, state.stream_version, type, data);
    } catch (error) {
      if (error instanceof WrongExpectedVersionError) {
        const latest = latestVersion(this.#get(id)).version;
        throw new WorkflowVersionConflictError(id, latestVersion(state).version, latest);
      }
      throw error;
    }
  }

  async #append(
    id: string,
    expectedVersion: number,
    type: string,
    data: Record<string, unknown>,
  ): Promise<void> {
    const { events } = await this.#options.store.append([{
      streamId: WORKFLOW_STREAM_PREFIX + id,
      expectedVersion,
      // Schema version 1 of every workflow event (see actors/event_schemas.ts).
      events: [{ type, data, metadata: { schema_version: 1 } }],
    }]);
    this.apply(events);
    await this.#options.settled?.(events[events.length - 1].globalPosition);
  }
}
