/**
 * The contract between the workflow engine and node implementations.
 *
 * A handler gets a {@linkcode NodeContext} (resolved parameters, variables, loop state) and
 * returns a {@linkcode NodeOutcome}: its outputs and which exec ports to follow. Handlers
 * do no I/O; time and cancellation come through the context.
 *
 * @module
 */

import type { Clock } from "../clock.ts";
import type { LogLevel } from "../job_result.ts";

/** How execution arrived at a node. */
export type Arrival = "exec" | "loop_back";

/** What a node handler sees. */
export interface NodeContext {
  /** Id of the node being run. */
  readonly nodeId: string;
  /** Its type as written in the workflow, e.g. `ForLoopStartNode`. */
  readonly nodeType: string;
  /** The node's config exactly as written (placeholders not substituted). */
  readonly config: Readonly<Record<string, unknown>>;
  /** `exec` through a connection; `loop_back` from a loop end, break or continue. */
  readonly arrival: Arrival;
  /** Workflow variables; live, shared by all nodes of the run. */
  readonly variables: Map<string, unknown>;
  /** Cancellation of the run. */
  readonly signal: AbortSignal;
  /** Clock of the run. */
  readonly clock: Clock;
  /** Iteration limit of one loop, unless the node configures its own. */
  readonly maxLoopIterations: number;
  /**
   * A parameter: the value on a connected data input port of that name, else the config
   * value with placeholders substituted (`undefined` when absent).
   */
  param(key: string): unknown;
  /** Whether the parameter is given (data input connected, or present in config). */
  has(key: string): boolean;
  /**
   * The value of a condition parameter: the value on the connected data input of that
   * name, else the config value evaluated as a CEL expression with placeholders (a
   * non-string config value is returned as is; an absent one is `undefined`).
   *
   * @throws {ExpressionError} When the expression is invalid.
   */
  evaluate(key: string): unknown;
  /** Writes a log entry attributed to this node. */
  log(level: LogLevel, message: string): void;
  /** Whether an exec output port of this node is connected. */
  hasExecPort(port: string): boolean;
  /** State of the loop started by `startId`, if that loop is active. */
  getLoop<T>(startId: string): T | undefined;
  /** Sets (or with `undefined` ends) the state of the loop started by `startId`. */
  setLoop(startId: string, state: unknown): void;
  /** Ids of the active loops' start nodes, innermost (most recently started) last. */
  activeLoops(): string[];
  /** Ids of the workflow's nodes of one of these types, in file order. */
  nodesOfType(types: readonly string[]): string[];
}

/** What a node handler returns. */
export interface NodeOutcome {
  /** The node's outputs, readable as `{{node_id.name}}`; the first is also `output`. */
  outputs?: Record<string, unknown>;
  /** Exec output ports to follow, in order. @default ["exec_out"] */
  next?: string[];
  /** Jump to this node instead (a loop back edge); `next` is then ignored. */
  jumpTo?: string;
}

/** Runs one node. May be async (e.g. a wait); must honour `ctx.signal` when it waits. */
export type NodeHandler = (ctx: NodeContext) => NodeOutcome | Promise<NodeOutcome>;

/** Node handlers by node type, e.g. `"LogNode"`. */
export type NodeRegistry = ReadonlyMap<string, NodeHandler>;

/**
 * Finds the handler of a node type; `X` and `XNode` name the same type.
 *
 * @param registry Handlers by type.
 * @param nodeType Type as written in the workflow.
 * @returns The handler, or `undefined` when the type is not supported.
 */
export function findHandler(registry: NodeRegistry, nodeType: string): NodeHandler | undefined {
  return registry.get(nodeType) ??
    (nodeType.endsWith("Node")
      ? registry.get(nodeType.slice(0, -4))
      : registry.get(`${nodeType}Node`));
}

/**
 * Reads a number parameter.
 *
 * @throws {TypeError} When present but not a finite number (or numeric string).
 */
export function numberParam(ctx: NodeContext, key: string, fallback?: number): number {
  const raw = ctx.param(key);
  if (raw === undefined || raw === null || raw === "") {
    if (fallback !== undefined) return fallback;
    throw new TypeError(`${ctx.nodeType} "${ctx.nodeId}" needs a number in "${key}"`);
  }
  const n = typeof raw === "number" ? raw : typeof raw === "string" ? Number(raw.trim()) : NaN;
  if (!Number.isFinite(n)) {
    throw new TypeError(
      `${ctx.nodeType} "${ctx.nodeId}": "${key}" must be a number, got ${JSON.stringify(raw)}`,
    );
  }
  return n;
}

/**
 * Reads a string parameter (numbers and booleans are turned into text).
 *
 * @throws {TypeError} When present but an object or array.
 */
export function stringParam(ctx: NodeContext, key: string, fallback = ""): string {
  const raw = ctx.param(key);
  if (raw === undefined || raw === null) return fallback;
  if (typeof raw === "object") {
    throw new TypeError(
      `${ctx.nodeType} "${ctx.nodeId}": "${key}" must be text, got ${JSON.stringify(raw)}`,
    );
  }
  return String(raw);
}
