/**
 * Validation of stored workflows: the CasareRPA content (`shared/reference/robot-protocol.md`,
 * "Workflow content") and the catalogue fields around it (name, description, status, tags,
 * folder). Pure: every problem is an {@linkcode InvalidWorkflowError} naming the field and,
 * for content, the node.
 *
 * @module
 */

/** Most nodes in one workflow. */
export const MAX_WORKFLOW_NODES = 2000;
/** Most connections in one workflow. */
export const MAX_WORKFLOW_CONNECTIONS = 10_000;
/** Longest workflow time limit in `settings.timeout`, in seconds (7 days, as jobs). */
const MAX_SETTINGS_TIMEOUT = 7 * 24 * 3600;

/** The reference's `WorkflowStatus`. */
export type WorkflowStatus = "draft" | "published" | "archived";

/** The statuses, in lifecycle order. */
export const WORKFLOW_STATUSES: readonly WorkflowStatus[] = ["draft", "published", "archived"];

/** Thrown for a workflow the catalogue refuses (the API answers 400 with `field`). */
export class InvalidWorkflowError extends Error {
  override name = "InvalidWorkflowError";
  /** JSON path of the offending field, e.g. `content.nodes.log_1.node_type`. */
  readonly field: string;
  /** The node at fault, when the problem is in one. */
  readonly nodeId: string | null;
  constructor(field: string, message: string, nodeId: string | null = null) {
    super(message);
    this.field = field;
    this.nodeId = nodeId;
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Checks CasareRPA workflow content: an object with `nodes` (each an object whose key equals
 * its `node_id`, with a non-empty `node_type` and an object `config`), `connections` (each
 * naming existing nodes and string ports), optional `metadata`, `variables` and `settings`
 * objects, at most {@linkcode MAX_WORKFLOW_NODES} nodes and
 * {@linkcode MAX_WORKFLOW_CONNECTIONS} connections, and at least one start node (a node
 * without an incoming `exec*` connection) when there are nodes.
 * @param content the workflow JSON.
 * @param prefix path of the content in the request, for `field`. @default "content"
 * @throws {InvalidWorkflowError} naming the first problem (and its node).
 */
export function validateWorkflowContent(content: unknown, prefix = "content"): void {
  if (!isRecord(content)) {
    throw new InvalidWorkflowError(prefix, `${prefix} must be a CasareRPA workflow object`);
  }
  for (const key of ["metadata", "variables", "settings"] as const) {
    if (content[key] !== undefined && !isRecord(content[key])) {
      throw new InvalidWorkflowError(`${prefix}.${key}`, `${prefix}.${key} must be an object`);
    }
  }
  if (!isRecord(content.nodes)) {
    throw new InvalidWorkflowError(`${prefix}.nodes`, `${prefix}.nodes must be an object of nodes`);
  }
  const ids = Object.keys(content.nodes);
  if (ids.length > MAX_WORKFLOW_NODES) {
    throw new InvalidWorkflowError(
      `${prefix}.nodes`,
      `A workflow has at most ${MAX_WORKFLOW_NODES} nodes, got ${ids.length}`,
    );
  }
  for (const id of ids) {
    const node = content.nodes[id];
    const at = `${prefix}.nodes.${id}`;
    if (!isRecord(node)) {
      throw new InvalidWorkflowError(at, `Node "${id}" must be an object`, id);
    }
    if (typeof node.node_type !== "string" || node.node_type === "") {
      throw new InvalidWorkflowError(`${at}.node_type`, `Node "${id}" has no node_type`, id);
    }
    if (node.node_id !== undefined && node.node_id !== id) {
      throw new InvalidWorkflowError(
        `${at}.node_id`,
        `Node "${id}" has node_id ${JSON.stringify(node.node_id)}; it must equal its key`,
        id,
      );
    }
    if (node.config !== undefined && !isRecord(node.config)) {
      throw new InvalidWorkflowError(`${at}.config`, `Node "${id}": config must be an object`, id);
    }
  }
  const connections = content.connections ?? [];
  if (!Array.isArray(connections)) {
    throw new InvalidWorkflowError(
      `${prefix}.connections`,
      `${prefix}.connections must be an array`,
    );
  }
  if (connections.length > MAX_WORKFLOW_CONNECTIONS) {
    throw new InvalidWorkflowError(
      `${prefix}.connections`,
      `A workflow has at most ${MAX_WORKFLOW_CONNECTIONS} connections, got ${connections.length}`,
    );
  }
  const nodes = new Set(ids);
  const execTargets = new Set<string>();
  connections.forEach((c: unknown, i: number) => {
    const at = `${prefix}.connections[${i}]`;
    if (!isRecord(c)) throw new InvalidWorkflowError(at, `Connection #${i} must be an object`);
    for (const key of ["source_node", "source_port", "target_node", "target_port"]) {
      if (typeof c[key] !== "string" || c[key] === "") {
        throw new InvalidWorkflowError(`${at}.${key}`, `Connection #${i} has no ${key}`);
      }
    }
    for (const end of ["source_node", "target_node"] as const) {
      const id = c[end] as string;
      if (!nodes.has(id)) {
        throw new InvalidWorkflowError(
          `${at}.${end}`,
          `Connection #${i} (${c.source_node}.${c.source_port} -> ${c.target_node}.${c.target_port}) ` +
            `names node "${id}", which does not exist`,
          id,
        );
      }
    }
    if ((c.target_port as string).startsWith("exec")) execTargets.add(c.target_node as string);
  });
  if (ids.length > 0 && ids.every((id) => execTargets.has(id))) {
    throw new InvalidWorkflowError(
      `${prefix}.connections`,
      "The workflow has no start node: every node has an incoming exec connection",
    );
  }
  const settings = isRecord(content.settings) ? content.settings : {};
  const timeout = settings.timeout;
  if (
    timeout !== undefined && timeout !== null &&
    (typeof timeout !== "number" || !(timeout > 0) || timeout > MAX_SETTINGS_TIMEOUT)
  ) {
    throw new InvalidWorkflowError(
      `${prefix}.settings.timeout`,
      `settings.timeout must be a number of seconds in (0, ${MAX_SETTINGS_TIMEOUT}], got ${
        JSON.stringify(timeout)
      }`,
    );
  }
  const retries = settings.retry_count;
  if (
    retries !== undefined && retries !== null &&
    (typeof retries !== "number" || !Number.isInteger(retries) || retries < 0 || retries > 100)
  ) {
    throw new InvalidWorkflowError(
      `${prefix}.settings.retry_count`,
      `settings.retry_count must be an integer in [0, 100], got ${JSON.stringify(retries)}`,
    );
  }
}

/**
 * Normalises a folder path: `/`-separated segments of 1-100 characters (no `.` or `..`),
 * always starting with `/` and never ending with one (except the root `/`), at most 500
 * characters. `"finance/invoices/"` becomes `"/finance/invoices"`.
 * @throws {InvalidWorkflowError} with field `folder`.
 */
export function normalizeFolder(value: unknown): string {
  if (typeof value !== "string") {
    throw new InvalidWorkflowError("folder", "folder must be a path such as /finance/invoices");
  }
  const segments = value.split("/").filter((s) => s !== "");
  for (const s of segments) {
    if (s === "." || s === ".." || s.length > 100 || [...s].some((ch) => ch.charCodeAt(0) < 0x20)) {
      throw new InvalidWorkflowError(
        "folder",
        `folder segment ${JSON.stringify(s)} is not allowed (1-100 characters, not . or ..)`,
      );
    }
  }
  const path = "/" + segments.join("/");
  if (path.length > 500) {
    throw new InvalidWorkflowError("folder", "folder is longer than 500 characters");
  }
  return path;
}

/** Whether `folder` is `root` or lies below it. */
export function inFolder(folder: string, root: string): boolean {
  return root === "/" || folder === root || folder.startsWith(root + "/");
}

/** The catalogue fields of a workflow version. */
export interface WorkflowFields {
  name: string;
  description: string;
  status: WorkflowStatus;
  /** CasareRPA workflow JSON. */
  content: Record<string, unknown>;
  tags: string[];
  /** Folder path, `/` for the root. */
  folder: string;
}

/**
 * Validates the fields of a create (`base` absent: `content` required, `name` defaults to
 * `content.metadata.name`) or of an update (`base` given: absent fields keep its values).
 * Unknown fields are refused so that a typo is not silently ignored.
 * @throws {InvalidWorkflowError} naming the field.
 */
export function parseWorkflowFields(
  body: Record<string, unknown>,
  base?: WorkflowFields,
): WorkflowFields {
  const known = new Set([
    "workflow_id",
    "name",
    "description",
    "status",
    "content",
    "tags",
    "folder",
    "expected_version",
  ]);
  for (const key of Object.keys(body)) {
    if (!known.has(key)) {
      throw new InvalidWorkflowError(
        key,
        `Unknown field ${key}; expected name, description, status, content, tags, folder`,
      );
    }
  }
  let content = base?.content;
  if (body.content !== undefined || !base) {
    validateWorkflowContent(body.content);
    content = body.content as Record<string, unknown>;
  }
  const meta = isRecord(content!.metadata) ? content!.metadata : {};
  let name = base?.name ?? (typeof meta.name === "string" ? meta.name : undefined);
  if (body.name !== undefined) {
    if (typeof body.name !== "string") {
      throw new InvalidWorkflowError("name", "name must be a string");
    }
    name = body.name.trim();
  }
  if (!name || name.length > 200) {
    throw new InvalidWorkflowError("name", "name must be 1-200 characters");
  }
  let description = base?.description ??
    (typeof meta.description === "string" ? meta.description : "");
  if (body.description !== undefined) {
    if (typeof body.description !== "string" || body.description.length > 10_000) {
      throw new InvalidWorkflowError(
        "description",
        "description must be a string of at most 10000 characters",
      );
    }
    description = body.description;
  }
  let status = base?.status ?? "draft";
  if (body.status !== undefined) {
    if (!WORKFLOW_STATUSES.includes(body.status as WorkflowStatus)) {
      throw new InvalidWorkflowError(
        "status",
        `status must be one of ${WORKFLOW_STATUSES.join(", ")}, got ${JSON.stringify(body.status)}`,
      );
    }
    status = body.status as WorkflowStatus;
  }
  let tags = base?.tags ?? [];
  if (body.tags !== undefined) {
    if (
      !Array.isArray(body.tags) || body.tags.length > 50 ||
      body.tags.some((t) => typeof t !== "string" || t === "" || t.length > 100)
    ) {
      throw new InvalidWorkflowError("tags", "tags must be at most 50 strings of 1-100 characters");
    }
    tags = [...new Set(body.tags as string[])];
  }
  const folder = body.folder !== undefined ? normalizeFolder(body.folder) : base?.folder ?? "/";
  return { name, description, status, content: content!, tags, folder };
}
