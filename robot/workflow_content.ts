/**
 * CasareRPA workflow JSON (`shared/reference/robot-protocol.md`, "Workflow content") and
 * its checked, indexed form that the engine walks.
 *
 * @module
 */

import { WorkflowValidationError } from "./workflow_errors.ts";

/** One node as written in the workflow file. */
export interface WorkflowNodeSpec {
  /** Unique id, the same as its key in `nodes`. */
  node_id: string;
  /** CasareRPA node type, e.g. `ForLoopStartNode`. */
  node_type: string;
  /** Node parameters; string values may hold `{{placeholders}}`. */
  config: Record<string, unknown>;
  /** Editor position; ignored. */
  position?: unknown;
}

/** One connection as written in the workflow file. */
export interface ConnectionSpec {
  /** Node the connection leaves. */
  source_node: string;
  /** Output port, e.g. `exec_out`, `body`, `true`, `case_0`, or a data output. */
  source_port: string;
  /** Node the connection enters. */
  target_node: string;
  /** Input port: `exec_in` for execution flow, else a data input. */
  target_port: string;
}

/** `settings` of a workflow. */
export interface WorkflowSettings {
  /** Fail the run at the first node error. @default true */
  stop_on_error: boolean;
  /** Run timeout in seconds; `0` or absent means none. */
  timeout?: number;
  /** Extra attempts for a failing node. @default 0 */
  retry_count: number;
}

/** A workflow checked and indexed for execution. */
export interface WorkflowGraph {
  /** `metadata.name`, or empty. */
  name: string;
  /** Nodes in file order. */
  nodes: Map<string, WorkflowNodeSpec>;
  /** Exec connections: `source node → source port → target node ids` (file order). */
  execOut: Map<string, Map<string, string[]>>;
  /** Data connections into a node: `target node → target port → {node, port}`. */
  dataIn: Map<string, Map<string, { node: string; port: string }>>;
  /** Nodes without an incoming exec connection, in file order: where the run starts. */
  startNodes: string[];
  /** Initial workflow variables (from the file's `variables`). */
  variables: Record<string, unknown>;
  /** `settings`, with defaults filled in. */
  settings: WorkflowSettings;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** A connection is an exec connection when it enters an `exec_in` (or other `exec*`) port. */
const isExecConnection = (c: ConnectionSpec): boolean => c.target_port.startsWith("exec");

/**
 * A declared workflow variable is either a plain value or a CasareRPA descriptor such as
 * `{"type": "int", "default_value": 3}`.
 */
function declaredValue(v: unknown): unknown {
  if (isRecord(v)) {
    if ("default_value" in v) return v.default_value;
    if ("value" in v && ("type" in v || "data_type" in v)) return v.value;
  }
  return v;
}

/**
 * Checks workflow content and indexes it for the engine.
 *
 * @param content The workflow as an object, or as a JSON string (CasareRPA dialect).
 * @returns The indexed graph.
 * @throws {WorkflowValidationError} When the content is not an object with `nodes`, a node
 *   has no `node_type`, a connection names a node that does not exist, or no node is free
 *   of incoming exec connections (nowhere to start).
 * @example Parse a one-node workflow
 * ```ts
 * import { parseWorkflow } from "./workflow_content.ts";
 * const g = parseWorkflow({ nodes: { a: { node_id: "a", node_type: "LogNode", config: {} } } });
 * console.log(g.startNodes); // ["a"]
 * ```
 */
export function parseWorkflow(content: unknown): WorkflowGraph {
  let raw = content;
  if (typeof raw === "string") {
    try {
      raw = JSON.parse(raw);
    } catch (cause) {
      throw new WorkflowValidationError("Workflow content is a string but not valid JSON", {
        cause,
      });
    }
  }
  if (!isRecord(raw)) {
    throw new WorkflowValidationError(
      `Workflow content must be an object, got ${raw === null ? "null" : typeof raw}`,
    );
  }
  if (!isRecord(raw.nodes)) {
    throw new WorkflowValidationError("Workflow content has no `nodes` object");
  }
  const nodes = new Map<string, WorkflowNodeSpec>();
  for (const [key, value] of Object.entries(raw.nodes)) {
    if (!isRecord(value) || typeof value.node_type !== "string" || value.node_type === "") {
      throw new WorkflowValidationError(`Node "${key}" has no node_type`, { nodeId: key });
    }
    const nodeId = typeof value.node_id === "string" && value.node_id ? value.node_id : key;
    if (nodeId !== key) {
      throw new WorkflowValidationError(
        `Node key "${key}" and its node_id "${nodeId}" differ`,
        { nodeId: key },
      );
    }
    const config = isRecord(value.config) ? value.config : {};
    nodes.set(key, { node_id: key, node_type: value.node_type, config, position: value.position });
  }

  const connections = raw.connections ?? [];
  if (!Array.isArray(connections)) {
    throw new WorkflowValidationError("Workflow `connections` must be an array");
  }
  const execOut = new Map<string, Map<string, string[]>>();
  const dataIn = new Map<string, Map<string, { node: string; port: string }>>();
  const hasIncomingExec = new Set<string>();
  connections.forEach((c: unknown, i: number) => {
    if (
      !isRecord(c) || typeof c.source_node !== "string" || typeof c.target_node !== "string" ||
      typeof c.source_port !== "string" || typeof c.target_port !== "string"
    ) {
      throw new WorkflowValidationError(`Connection #${i} is missing a node or port name`);
    }
    const conn = c as unknown as ConnectionSpec;
    for (const end of [conn.source_node, conn.target_node]) {
      if (!nodes.has(end)) {
        throw new WorkflowValidationError(`Connection #${i} names unknown node "${end}"`);
      }
    }
    if (isExecConnection(conn)) {
      const ports = execOut.get(conn.source_node) ?? new Map<string, string[]>();
      execOut.set(conn.source_node, ports);
      ports.set(conn.source_port, [...(ports.get(conn.source_port) ?? []), conn.target_node]);
      hasIncomingExec.add(conn.target_node);
    } else {
      const ports = dataIn.get(conn.target_node) ?? new Map();
      dataIn.set(conn.target_node, ports);
      ports.set(conn.target_port, { node: conn.source_node, port: conn.source_port });
    }
  });

  const variables: Record<string, unknown> = {};
  if (isRecord(raw.variables)) {
    for (const [k, v] of Object.entries(raw.variables)) variables[k] = declaredValue(v);
  }
  const s = isRecord(raw.settings) ? raw.settings : {};
  const settings: WorkflowSettings = {
    stop_on_error: s.stop_on_error !== false,
    timeout: typeof s.timeout === "number" && s.timeout > 0 ? s.timeout : undefined,
    retry_count: typeof s.retry_count === "number" && s.retry_count > 0
      ? Math.floor(s.retry_count)
      : 0,
  };
  const startNodes = [...nodes.keys()].filter((id) => !hasIncomingExec.has(id));
  if (nodes.size > 0 && startNodes.length === 0) {
    throw new WorkflowValidationError(
      "Workflow has no start node: every node has an incoming exec connection",
    );
  }
  const metadata = isRecord(raw.metadata) ? raw.metadata : {};
  return {
    name: typeof metadata.name === "string" ? metadata.name : "",
    nodes,
    execOut,
    dataIn,
    startNodes,
    variables,
    settings,
  };
}
